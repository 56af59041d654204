//! Prometheus text exposition helpers, and the process figures every component exports.

use std::fmt::Write;

/// Appends a `# HELP` / `# TYPE` header.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends one metric family with a single unlabelled sample.
pub(crate) fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Resident set size of this process in bytes (Linux: VmRSS in /proc/self/status).
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Appends `process_resident_memory_bytes` (and open fds) when available.
pub(crate) fn process(out: &mut String) {
    if let Some(rss) = process_rss_bytes() {
        single(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        single(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            dir.count() as f64,
        );
    }
}

/// Reads one sample from Prometheus text: `name` may include labels exactly as written
/// (e.g. `demo_http_requests_total{route="health",status="200"}`). For tests and probes.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_finds_labelled_and_plain() {
        let text = "# HELP a x\n# TYPE a counter\na 3\nb{route=\"x\",status=\"200\"} 7\n";
        assert_eq!(sample(text, "a"), Some(3.0));
        assert_eq!(sample(text, "b{route=\"x\",status=\"200\"}"), Some(7.0));
        assert_eq!(sample(text, "c"), None);
    }

    #[test]
    fn rss_is_read() {
        assert!(process_rss_bytes().unwrap_or(0) > 0);
    }
}
