//! Units a scenario writes as text, parsed in one place: byte sizes ("512MiB", "64KiB/s"),
//! and host names as they appear in URLs and `host:port` strings. Everything after
//! `scenario` holds these typed values and never parses the text again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, written "512MiB", "2GiB", "64KiB", "1MB", "100B" or a bare number of
/// bytes. Binary units (KiB, MiB, GiB, TiB) are powers of 1024, SI units (KB, MB, GB, TB)
/// powers of 1000; unit letters are not case-sensitive. A trailing "/s" is accepted (for
/// bandwidths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// The largest size a scenario may write: 1 PiB. Anything larger is a typo, and keeping
/// sizes far below `u64::MAX` lets every later computation stay exact in f64 and u64.
pub const MAX_BYTES: u64 = 1 << 50;

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Bytes per unit name, or None for an unknown unit.
    pub fn unit(u: &str) -> Option<f64> {
        const K: f64 = 1024.0;
        Some(match u.to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "kib" => K,
            "mib" => K * K,
            "gib" => K * K * K,
            "tib" => K * K * K * K,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a size: {why}; write it like \"64KiB\", \"512MiB\" or \"2GiB\"")]
pub struct ByteSizeError {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ByteSizeError {
            text: s.to_string(),
            why,
        };
        let t = s.trim();
        let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err("it does not start with a number"));
        }
        let n: f64 = num.parse().map_err(|_| err("the number is malformed"))?;
        let mult = ByteSize::unit(unit.trim())
            .ok_or_else(|| err("unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"))?;
        let bytes = n * mult;
        if !bytes.is_finite() || bytes > MAX_BYTES as f64 {
            return Err(err("it is larger than 1PiB"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that keeps the number at least 1, one decimal at most.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut i = 0;
        while v >= 1024.0 && i + 1 < UNITS.len() {
            v /= 1024.0;
            i += 1;
        }
        if i == 0 || v.fract() == 0.0 {
            write!(f, "{}{}", v as u64, UNITS[i])
        } else {
            write!(f, "{v:.1}{}", UNITS[i])
        }
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "minimum": 0,
            "description": "A size: \"512MiB\", \"2GiB\", \"64KiB\", \"1MB\", \"100B\" or a number of bytes (KiB, MiB, GiB, TiB: powers of 1024; KB, MB, GB, TB: of 1000; a trailing \"/s\" for bandwidths). At most 1PiB.",
            "pattern": "^\\s*[0-9.]+\\s*[a-zA-Z]*\\s*(/s)?\\s*$"
        })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a size like "64KiB", "512MiB" or "2GiB""#)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .ok()
                    .filter(|n| *n <= MAX_BYTES)
                    .map(ByteSize)
                    .ok_or_else(|| E::custom(format!("{n} bytes is out of range (0 to 1PiB)")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A host as written in a URL or `host:port` ("[::1]", " LocalHost "), in the one form
/// every comparison uses: brackets and spaces removed, lower case.
pub fn bare_host(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Is `host` on the allow list? Both sides are compared as [`bare_host`]s, so
/// `allow_hosts = ["[::1]"]` allows a target `http://[::1]:8080`.
pub fn host_allowed(allow_hosts: &[String], host: &str) -> bool {
    let host = bare_host(host);
    allow_hosts.iter().any(|h| bare_host(h) == host)
}

/// Is `host` a loopback name or address? gauntlet only sends traffic to those.
pub fn is_loopback(host: &str) -> bool {
    let h = bare_host(host);
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// "127.0.0.1:80", "localhost:80", "[::1]:80" → (bare host, port).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (h, p) = s.trim().rsplit_once(':')?;
    let port = p.parse().ok()?;
    let h = bare_host(h);
    if h.is_empty() {
        return None;
    }
    Some((h, port))
}

/// A URL as it may be shown (reports, notices, errors): its user-info (`user:password@`)
/// replaced by `***@`. Works on text that is not a valid URL too, so nothing slips
/// through a parse error.
pub fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.into();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("0", 0),
            ("100B", 100),
            ("64KiB", 65536),
            ("64kib", 65536),
            ("64KiB/s", 65536),
            ("1KB", 1000),
            ("1kB", 1000),
            ("1.5MiB", 1572864),
            ("2GiB", 2 << 30),
            (" 512 MiB ", 512 << 20),
        ] {
            assert_eq!(text.parse::<ByteSize>().unwrap().bytes(), bytes, "{text}");
        }
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "1.2.3MiB",
            "2PiB",
            "99999999999TiB",
            "-1",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn size_display() {
        assert_eq!(ByteSize(512).to_string(), "512B");
        assert_eq!(ByteSize(2 << 30).to_string(), "2GiB");
        assert_eq!(ByteSize(1572864).to_string(), "1.5MiB");
    }

    #[test]
    fn hosts() {
        assert_eq!(bare_host(" [::1] "), "::1");
        assert!(host_allowed(&["[::1]".into()], "::1"));
        assert!(host_allowed(&["LocalHost".into()], "localhost"));
        assert!(!host_allowed(&["127.0.0.1".into()], "127.0.0.2"));
        assert!(is_loopback("[::1]") && is_loopback("127.0.0.9") && is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("example.com"));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(split_host_port("h:x"), None);
    }

    #[test]
    fn user_info_is_redacted() {
        for (url, shown) in [
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("http://u:p@h:1/a@b?c=d@e", "http://***@h:1/a@b?c=d@e"),
            ("ws://user@h", "ws://***@h"),
            ("http://h:1/x@y", "http://h:1/x@y"),
            ("not a url", "not a url"),
            ("http://a:b@[bad", "http://***@[bad"),
        ] {
            assert_eq!(redact_userinfo(url), shown, "{url}");
        }
    }
}
