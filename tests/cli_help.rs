//! `--help` of the binary and of each subcommand, as snapshots: a change to the CLI's
//! surface shows up in review.

mod common;

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(common::gauntlet_bin())
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!(help(&["--help"]));
}

#[test]
fn run_help() {
    insta::assert_snapshot!(help(&["run", "--help"]));
}

#[test]
fn validate_help() {
    insta::assert_snapshot!(help(&["validate", "--help"]));
}

#[test]
fn report_help() {
    insta::assert_snapshot!(help(&["report", "--help"]));
}

#[test]
fn capacity_help() {
    insta::assert_snapshot!(help(&["capacity", "--help"]));
}
