//! Redis persistence as the stack configures it: SIGKILL redis-server, start it again on
//! the same folder, count the keys that survived.

#[path = "common/demo.rs"]
mod demo;

use demo::Redis;
use redis::Commands;

const KEYS: usize = 200;

/// Writes KEYS acknowledged keys, crashes Redis, restarts it; returns the keys found.
fn survivors(defects: &[&str]) -> usize {
    let mut redis = Redis::start(defects);
    {
        let mut c = redis.conn();
        for i in 0..KEYS {
            let _: () = c.set(format!("canary:{i}"), i).unwrap();
        }
    }
    redis.crash();
    redis.restart();
    let mut c = redis.conn();
    (0..KEYS)
        .filter(|i| {
            c.get::<_, Option<usize>>(format!("canary:{i}"))
                .unwrap()
                .is_some()
        })
        .count()
}

#[test]
fn without_persistence_a_crash_loses_every_key() {
    assert_eq!(survivors(&["redis-no-persistence"]), 0);
}

#[test]
fn with_aof_fsync_always_a_crash_loses_no_acknowledged_key() {
    assert_eq!(survivors(&[]), KEYS);
}

#[test]
fn missing_redis_server_is_named_with_the_package_to_install() {
    let out = std::process::Command::new(demo::bin())
        .args([
            "demo",
            "redis",
            "--port",
            "1",
            "--redis-server",
            "/nonexistent/redis-server",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis-server not found") && err.contains("apt-get install redis-server"),
        "{err}"
    );
}
