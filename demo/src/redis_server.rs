//! redis-server (Debian's package) with the stack's persistence settings.
//!
//! Fixed: append-only file, fsync on every write (`--appendfsync always`): a crash loses
//! nothing acknowledged. `redis-no-persistence`: no AOF and no RDB snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Defect, Defects, DemoError, RedisArgs};

/// Finds `program` (a bare name is looked up on PATH).
pub fn find_redis_server(program: &Path) -> Result<PathBuf, DemoError> {
    if program.components().count() > 1 {
        return if program.is_file() {
            Ok(program.to_path_buf())
        } else {
            Err(DemoError::RedisServerNotFound(program.to_path_buf()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| DemoError::RedisServerNotFound(program.to_path_buf()))
}

/// The redis-server arguments for this configuration.
pub fn redis_args(host: &str, port: u16, dir: &Path, defects: &Defects) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        host.into(),
        "--dir".into(),
        dir.display().to_string(),
        "--daemonize".into(),
        "no".into(),
        // RDB snapshots off in both modes: the fixed mode relies on the AOF alone.
        "--save".into(),
        "".into(),
    ];
    if !matches!(host, "127.0.0.1" | "::1" | "localhost") {
        // Reachable from a private container network; there is no password in the demo.
        a.extend(["--protected-mode".into(), "no".into()]);
    }
    if defects.has(Defect::RedisNoPersistence) {
        a.extend(["--appendonly".into(), "no".into()]);
    } else {
        a.extend([
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
        ]);
    }
    a
}

/// A ready-to-spawn redis-server command.
pub fn redis_command(
    program: &Path,
    host: &str,
    port: u16,
    dir: &Path,
    defects: &Defects,
) -> Result<Command, DemoError> {
    let exe = find_redis_server(program)?;
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut c = Command::new(exe);
    c.args(redis_args(host, port, dir, defects));
    Ok(c)
}

/// `gauntlet demo redis`: replaces this process with redis-server, so a signal sent to this
/// pid (SIGKILL, SIGSTOP) reaches Redis itself.
pub fn run(args: RedisArgs) -> Result<(), DemoError> {
    use std::os::unix::process::CommandExt;
    let defects = Defects::resolve(&args.defects)?;
    let mut cmd = redis_command(
        &args.redis_server,
        &args.host,
        args.port,
        &args.dir,
        &defects,
    )?;
    eprintln!(
        "demo redis: exec redis-server on {}:{} (dir {}, persistence: {})",
        args.host,
        args.port,
        args.dir.display(),
        if defects.has(Defect::RedisNoPersistence) {
            "none (defect redis-no-persistence)"
        } else {
            "AOF, appendfsync always"
        }
    );
    let source = cmd.exec();
    Err(DemoError::Spawn {
        what: "redis-server".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_follows_the_defect() {
        let fixed = redis_args("127.0.0.1", 1, Path::new("/d"), &Defects::default()).join(" ");
        assert!(
            fixed.contains("--appendonly yes --appendfsync always"),
            "{fixed}"
        );
        assert!(!fixed.contains("protected-mode"));
        let broken = redis_args(
            "0.0.0.0",
            1,
            Path::new("/d"),
            &Defects::new(&[Defect::RedisNoPersistence]),
        )
        .join(" ");
        assert!(broken.contains("--appendonly no"), "{broken}");
        assert!(broken.contains("--protected-mode no"), "{broken}");
    }

    #[test]
    fn missing_program_is_named() {
        let e = find_redis_server(Path::new("no-such-redis-server-xyz")).unwrap_err();
        assert!(
            e.to_string().contains("apt-get install redis-server"),
            "{e}"
        );
    }
}
