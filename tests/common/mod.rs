//! Helpers shared by the integration tests that run the real `gauntlet` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn gauntlet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

/// A port free on 127.0.0.1 right now (bind :0, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Write `body` as a scenario file in `dir`, with `{PORT}` replaced.
pub fn write_scenario(dir: &Path, name: &str, body: &str, port: u16) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body.replace("{PORT}", &port.to_string())).expect("write scenario");
    path
}

/// `gauntlet run FILE --reports DIR/reports --run-id ID`, quiet, bounded by the scenario.
pub fn run_scenario(dir: &Path, file: &Path, run_id: &str) -> Output {
    Command::new(gauntlet_bin())
        .arg("run")
        .arg(file)
        .arg("--reports")
        .arg(dir.join("reports"))
        .arg("--run-id")
        .arg(run_id)
        .arg("--quiet")
        .output()
        .expect("run gauntlet")
}

pub fn report_dir(dir: &Path, run_id: &str) -> PathBuf {
    dir.join("reports").join(run_id)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
