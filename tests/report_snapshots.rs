//! Snapshots of every report format for a hand-built run (tests/report_fixture). The
//! fixture's times are fixed; run-dependent values (timestamps, durations, version) are
//! masked anyway so the snapshots only change when a format does.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test --test report_snapshots`
//! and review the diff of `tests/snapshots/`.

mod report_fixture;

use gauntlet::report::{self, html, junit, summary, timeseries, EndedBy};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn terminal_summary_plain() {
    let (plan, info, record, verdict) = report_fixture::run();
    let text = report::terminal_summary(&plan, &info, &record, &verdict, false);
    assert!(!text.contains('\x1b'), "no ANSI codes without color");
    let mut s = settings();
    s.add_filter(r"\d{8}T\d{6}\.\d{3}Z", "[TIMESTAMP]");
    s.bind(|| insta::assert_snapshot!("terminal_summary", text));
}

#[test]
fn terminal_summary_interrupted_without_requests() {
    let (plan, info, record, verdict) = report_fixture::empty_run();
    let text = report::terminal_summary(&plan, &info, &record, &verdict, false);
    let mut s = settings();
    s.add_filter(r"\d{8}T\d{6}\.\d{3}Z", "[TIMESTAMP]");
    s.bind(|| insta::assert_snapshot!("terminal_summary_interrupted", text));
}

#[test]
fn terminal_summary_in_color() {
    let (plan, info, record, verdict) = report_fixture::run();
    let text = report::terminal_summary(&plan, &info, &record, &verdict, true);
    assert!(text.contains("\x1b[1;31mFAIL\x1b[0m"), "{text}");
    assert!(text.contains("\x1b[1;32mPASS\x1b[0m"), "{text}");
    // Same text once the colors are taken out.
    let plain = report::terminal_summary(&plan, &info, &record, &verdict, false);
    let stripped = regex_lite_strip(&text);
    assert_eq!(stripped, plain);
}

/// Remove `ESC [ ... m` sequences.
fn regex_lite_strip(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn junit_settings() -> insta::Settings {
    let mut s = settings();
    s.add_filter(r#"timestamp="[0-9T:.+\-Z]+""#, r#"timestamp="[TIMESTAMP]""#);
    s.add_filter(r#"time="[0-9.]+""#, r#"time="[TIME]""#);
    s.add_filter(
        r#"(name="(started_at|ended_at)" value=)"[^"]+""#,
        r#"$1"[TIMESTAMP]""#,
    );
    s.add_filter(
        r#"(name="gauntlet_version" value=)"[^"]+""#,
        r#"$1"[VERSION]""#,
    );
    s
}

#[test]
fn junit_xml() {
    let (_plan, info, record, verdict) = report_fixture::run();
    let xml = junit::to_xml(&info, &record, &verdict).unwrap();
    junit_settings().bind(|| insta::assert_snapshot!("junit", xml));
}

#[test]
fn junit_xml_interrupted() {
    let (_plan, info, record, verdict) = report_fixture::empty_run();
    let xml = junit::to_xml(&info, &record, &verdict).unwrap();
    junit_settings().bind(|| insta::assert_snapshot!("junit_interrupted", xml));
}

#[test]
fn junit_xml_error() {
    let (_plan, mut info, record, verdict) = report_fixture::run();
    info.ended_by = EndedBy::Error("service `api` exited with code 1".into());
    info.exit_code = 3;
    let xml = junit::to_xml(&info, &record, &verdict).unwrap();
    assert!(
        xml.contains(
            r#"<error message="the run ended with an error: service `api` exited with code 1""#
        ),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
}

#[test]
fn timeseries_csv() {
    let (_plan, _info, record, _verdict) = report_fixture::run();
    let csv = String::from_utf8(timeseries::to_csv(&record).unwrap()).unwrap();
    settings().bind(|| insta::assert_snapshot!("timeseries_csv", csv));
}

#[test]
fn summary_json() {
    let (plan, info, record, verdict) = report_fixture::run();
    let json = summary::to_json(&summary::build(&plan, &info, &record, &verdict));
    let mut s = settings();
    s.add_filter(
        r#""(started_at|ended_at)": "[^"]+""#,
        r#""$1": "[TIMESTAMP]""#,
    );
    s.add_filter(
        r#""gauntlet_version": "[^"]+""#,
        r#""gauntlet_version": "[VERSION]""#,
    );
    s.bind(|| insta::assert_snapshot!("summary_json", json));
}

#[test]
fn events_jsonl() {
    let (_plan, _info, record, _verdict) = report_fixture::run();
    let text = report::events::to_jsonl(&record);
    settings().bind(|| insta::assert_snapshot!("events_jsonl", text));
}

#[test]
fn html_is_deterministic_and_marks_faults() {
    let (plan, info, record, verdict) = report_fixture::run();
    let a = html::render(&plan, &info, &record, &verdict);
    let b = html::render(&plan, &info, &record, &verdict);
    assert_eq!(a, b);
    // The pause window is shaded and labelled on each of the 5 charts.
    assert_eq!(a.matches("<title>pause api</title>").count(), 5, "{a}");
    assert_eq!(a.matches("<svg ").count(), 5);
    // Latency on the criteria's basis first, labelled, then the other basis.
    let basis = a
        .find("Latency per second, corrected (the criteria&#39;s basis)")
        .expect("the basis chart");
    let other = a.find("Latency per second, raw").expect("the raw chart");
    assert!(basis < other);
    // The fixture's corrected p95 is twice the raw one: the charts are not the same.
    let svg = |from: usize| {
        let s = &a[from..];
        s[..s.find("</svg>").unwrap()].to_string()
    };
    assert_ne!(
        svg(basis),
        svg(other).replace(", raw", ", corrected (the criteria&#39;s basis)")
    );
    // No comparison section without a baseline.
    assert!(!a.contains("Comparison with the baseline"));
}
