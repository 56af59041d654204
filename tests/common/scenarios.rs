//! Running the shipped scenarios with the real binary: a copy of a scenario on free ports,
//! its run, and the verdict of each criterion read back from its JUnit file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn scenario(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file)
}

pub fn run(file: &Path, reports: &Path, run_id: &str, defects: Option<&str>) -> Output {
    run_with(file, reports, run_id, defects, &[])
}

/// [`run`] with more arguments (`--scale-time`, `--set`...).
pub fn run_with(
    file: &Path,
    reports: &Path,
    run_id: &str,
    defects: Option<&str>,
    extra: &[&str],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    c.arg("run")
        .arg(file)
        .arg("--reports")
        .arg(reports)
        .arg("--run-id")
        .arg(run_id)
        .arg("--quiet")
        .args(extra);
    match defects {
        Some(d) => c.env("GAUNTLET_DEMO_DEFECTS", d),
        None => c.env_remove("GAUNTLET_DEMO_DEFECTS"),
    };
    c.output().expect("run gauntlet")
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// (criterion, failed, what junit says) for each test case of a run's junit.xml.
pub fn verdicts(report: &Path) -> Vec<(String, bool, String)> {
    let path = report.join("junit.xml");
    let xml =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let name = case
                .split_once("name=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(n, _)| unescape(n))
                .unwrap_or_default();
            let body = case.split("</testcase>").next().unwrap_or_default();
            let said = body
                .split_once("message=\"")
                .or_else(|| body.split_once("<system-out>"))
                .map(|(_, r)| {
                    unescape(r.split(['"', '<']).next().unwrap_or_default())
                        .trim()
                        .replace('\n', " / ")
                })
                .unwrap_or_default();
            (name, body.contains("<failure"), said)
        })
        .collect()
}

/// A copy of `file` in `dir` with every demo port (184xx) replaced by a free one and the
/// fixed data folder replaced by one inside `dir`.
pub fn with_own_ports(file: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("read scenario");
    let mut ports = std::collections::HashMap::new();
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let is_port = b[i..].starts_with(b"184")
            && b.len() >= i + 5
            && b[i + 3..i + 5].iter().all(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_digit())
            && b.get(i + 5).is_none_or(|c| !c.is_ascii_digit());
        if is_port {
            let old = &text[i..i + 5];
            let new = *ports.entry(old.to_string()).or_insert_with(free_port);
            out.push_str(&new.to_string());
            i += 5;
        } else {
            let c = text[i..].chars().next().expect("char boundary");
            out.push(c);
            i += c.len_utf8();
        }
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let out = out.replace(
        "/tmp/gauntlet-scenario-redis-crash",
        &data.display().to_string(),
    );
    let copy = dir.join(file.file_name().expect("file name"));
    std::fs::write(&copy, out).expect("write scenario copy");
    copy
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
