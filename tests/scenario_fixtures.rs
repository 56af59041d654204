//! The bad scenario files under tests/fixtures/bad/ each fail `gauntlet validate` with
//! exit code 2 and exactly the error text in their sibling `.expected` file; the files
//! under tests/fixtures/good/ validate.
//!
//! After a deliberate change to the messages, rewrite the expected files with
//! `GAUNTLET_BLESS=1 cargo test --test scenario_fixtures` and review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture files of one kind, relative to the crate root (as the messages show them).
fn fixtures(kind: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new("tests/fixtures").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(&dir))
        .unwrap()
        .map(|e| dir.join(e.unwrap().file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn validate(files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .current_dir(root())
        .arg("validate")
        .args(files)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

#[test]
fn every_bad_fixture_fails_with_its_expected_message() {
    let bless = std::env::var_os("GAUNTLET_BLESS").is_some();
    let files = fixtures("bad", "toml");
    assert!(files.len() >= 14, "fixtures missing: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let out = validate(std::slice::from_ref(f));
        let stderr = text(&out.stderr);
        let expected_file = root().join(f.with_extension("expected"));
        if bless {
            std::fs::write(&expected_file, &stderr).unwrap();
            continue;
        }
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit code {:?}, expected 2",
                f.display(),
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "{}: unexpected stdout:\n{}",
                f.display(),
                text(&out.stdout)
            ));
        }
        let expected = match std::fs::read_to_string(&expected_file) {
            Ok(e) => e.replace("\r\n", "\n"),
            Err(e) => {
                failures.push(format!("{}: {e}", expected_file.display()));
                continue;
            }
        };
        if stderr.trim_end() != expected.trim_end() {
            let first_diff = stderr
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(stderr.lines().count().min(expected.lines().count()));
            failures.push(format!(
                "{}: stderr differs from {} (first at line {}):\n--- got ---\n{stderr}\n--- expected ---\n{expected}",
                f.display(),
                expected_file.display(),
                first_diff + 1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_expected_file_has_its_fixture() {
    for e in fixtures("bad", "expected") {
        assert!(
            root().join(e.with_extension("toml")).exists(),
            "{} has no .toml",
            e.display()
        );
    }
}

#[test]
fn each_problem_has_one_header_line_with_file_line_and_column() {
    let f = PathBuf::from("tests/fixtures/bad/many_problems.toml");
    let out = validate(std::slice::from_ref(&f));
    let stderr = text(&out.stderr);
    let headers: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: tests/fixtures/bad/many_problems.toml:"))
        .collect();
    assert!(headers.len() >= 10, "{stderr}");
    let mut lines = Vec::new();
    for h in &headers {
        let rest = h.trim_start_matches("error: tests/fixtures/bad/many_problems.toml:");
        let mut parts = rest.splitn(3, ':');
        let line: usize = parts.next().unwrap().parse().expect(h);
        let col: usize = parts.next().unwrap().parse().expect(h);
        assert!(line > 0 && col > 0, "{h}");
        lines.push(line);
    }
    // In file order.
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn several_bad_files_are_all_reported() {
    let files = fixtures("bad", "toml");
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for f in &files {
        assert!(
            stderr.contains(&format!("error: {}:", f.display())),
            "{} missing:\n{stderr}",
            f.display()
        );
    }
}

#[test]
fn good_fixtures_validate() {
    let files = fixtures("good", "toml");
    assert!(files.len() >= 3);
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for f in &files {
        assert!(stdout.contains(&format!("{}: ok", f.display())), "{stdout}");
    }
}
