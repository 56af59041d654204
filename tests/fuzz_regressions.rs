//! Every input the fuzzer (`bash scripts/fuzz.sh`) ever crashed on, kept under
//! tests/fixtures/fuzz_regressions/: loading it returns a plan or positioned errors
//! without a panic, and `gauntlet validate` exits 0 or 2, never 101.

use std::path::Path;
use std::process::Command;

fn inputs() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz_regressions");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no inputs in {}", dir.display());
    v
}

#[test]
fn the_library_never_panics_on_a_crash_input() {
    for f in inputs() {
        let bytes = std::fs::read(&f).unwrap();
        let r = std::panic::catch_unwind(|| {
            gauntlet::scenario::load_bytes(&f, &bytes)
                .map(|_| ())
                .map_err(|e| e.0)
        });
        match r {
            Err(_) => panic!("{}: panicked", f.display()),
            Ok(Err(diags)) => {
                for d in diags {
                    assert!(d.line > 0 && d.column > 0, "{}: {d:?}", f.display());
                }
            }
            Ok(Ok(())) => {}
        }
    }
}

#[test]
fn validate_exits_0_or_2_on_every_crash_input() {
    for f in inputs() {
        let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
            .arg("validate")
            .arg(&f)
            .output()
            .unwrap();
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(code, Some(0 | 2)) && !stderr.contains("panicked"),
            "{}: exit {code:?}\n{stderr}",
            f.display()
        );
    }
}
