//! One formatter per kind of quantity, as a person writes it (`200ms`, `0.1%`, `512MiB`,
//! `5000`, `12.35/s`); every report formats figures with these.

/// A number with at most `decimals` decimals, trailing zeros removed ("200", "0.1").
pub fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration in µs, in the largest unit that keeps it readable, never rounded past µs
/// below 1ms.
pub fn duration_us(us: f64) -> String {
    if !us.is_finite() {
        "∞".into()
    } else if us >= 60e6 {
        format!("{}m", trim(us / 60e6, 2))
    } else if us >= 1e6 {
        format!("{}s", trim(us / 1e6, 3))
    } else if us >= 1e3 {
        format!("{}ms", trim(us / 1e3, 3))
    } else {
        format!("{}µs", trim(us, 0))
    }
}

/// A duration in seconds (see [`duration_us`]).
pub fn duration_s(s: f64) -> String {
    duration_us(s * 1e6)
}

/// A percentage, in percent: `0.1%`.
pub fn percent(p: f64) -> String {
    format!("{}%", trim(p, 4))
}

/// Bytes in the largest binary unit that keeps the number at least 1: `512MiB`.
pub fn bytes(b: f64) -> String {
    const K: f64 = 1024.0;
    if b < 0.0 {
        // Memory retained or grown can be negative: it went down.
        format!("-{}", bytes(-b))
    } else if b >= K * K * K {
        format!("{}GiB", trim(b / (K * K * K), 2))
    } else if b >= K * K {
        format!("{}MiB", trim(b / (K * K), 2))
    } else if b >= K {
        format!("{}KiB", trim(b / K, 2))
    } else {
        format!("{}B", trim(b, 0))
    }
}

/// A memory growth rate in bytes per minute: `12MiB/min`.
pub fn bytes_per_minute(b: f64) -> String {
    format!("{}/min", bytes(b))
}

/// A count: `5000`.
pub fn count(c: f64) -> String {
    trim(c, 3)
}

/// A plain number (a scraped gauge): three decimals, more below 1 so small values do not
/// read as 0.
pub fn number(v: f64) -> String {
    if v != 0.0 && v.abs() < 1.0 {
        trim(v, 6)
    } else {
        trim(v, 3)
    }
}

/// Per second: `12.35/s`.
pub fn rate(r: f64) -> String {
    format!("{}/s", trim(r, 2))
}

/// Milliseconds with a fixed number of decimals, from µs: the latency tables' columns.
pub fn ms(us: f64, decimals: usize) -> String {
    format!("{:.decimals$}", us / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Quantity;

    #[test]
    fn quantities() {
        let q = |q: Quantity| q.to_string();
        assert_eq!(q(Quantity::DurationUs(200_000.0)), "200ms");
        assert_eq!(q(Quantity::DurationUs(1234.0)), "1.234ms");
        assert_eq!(q(Quantity::DurationUs(999.0)), "999µs");
        assert_eq!(q(Quantity::DurationUs(1.5e6)), "1.5s");
        assert_eq!(q(Quantity::DurationUs(300e6)), "5m");
        assert_eq!(q(Quantity::Percent(0.1)), "0.1%");
        assert_eq!(q(Quantity::Percent(99.99)), "99.99%");
        assert_eq!(q(Quantity::Percent(100.0 / 3.0)), "33.3333%");
        assert_eq!(q(Quantity::Bytes(2.0 * 1024.0 * 1024.0 * 1024.0)), "2GiB");
        assert_eq!(q(Quantity::Bytes(512.0)), "512B");
        assert_eq!(q(Quantity::Count(5000.0)), "5000");
        assert_eq!(q(Quantity::Number(0.0005)), "0.0005");
        assert_eq!(q(Quantity::Number(12.5)), "12.5");
        assert_eq!(q(Quantity::PerSecond(12.345)), "12.35/s");
        assert_eq!(trim(10.0, 2), "10");
        assert_eq!(trim(0.0, 2), "0");
        assert_eq!(duration_s(2.5), "2.5s");
    }
}
