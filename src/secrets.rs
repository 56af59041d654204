//! Secret values (variables marked `secret = true`), masked as `***` wherever gauntlet
//! writes text: report files, events, the terminal, error messages. One function masks
//! them all, so no writer can forget an escaping of its own.

/// What a secret value is replaced with.
pub const MASK: &str = "***";

/// The values to mask, longest first (a secret that contains another is masked whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// The values as written, and each as the formats escape it, once or twice (a JSON
    /// value quoted in a reason that is itself JSON or HTML): an escaped form is the same
    /// secret. Empty values are dropped.
    pub fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        let mut all: Vec<String> = Vec::new();
        for v in values.into_iter().filter(|v| !v.is_empty()) {
            let once: Vec<String> = ESCAPES.iter().map(|e| e(&v)).collect();
            for o in &once {
                all.extend(ESCAPES.iter().map(|e| e(o)));
            }
            all.extend(once);
            all.push(v);
        }
        all.retain(|v| !v.is_empty());
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Secrets(all)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// [`Secrets::mask`] on bytes (a report file); bytes that are not UTF-8 are masked
    /// as raw byte strings.
    pub fn mask_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.0.is_empty() {
            return bytes;
        }
        match String::from_utf8(bytes) {
            Ok(s) => self.mask(&s).into_bytes(),
            Err(e) => {
                let mut b = e.into_bytes();
                for s in &self.0 {
                    b = replace_bytes(&b, s.as_bytes(), MASK.as_bytes());
                }
                b
            }
        }
    }
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// How each format writes a text: JSON, HTML, CSV (quoted field), a URL path and query
/// (as the URL parser percent-encodes them).
const ESCAPES: [fn(&str) -> String; 5] = [
    |v| {
        // Always `"..."`: a JSON string of a string.
        serde_json::to_string(v)
            .map(|j| j[1..j.len() - 1].to_string())
            .unwrap_or_default()
    },
    |v| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    },
    |v| v.replace('"', "\"\""),
    |v| {
        let mut u = url::Url::parse("http://h/").expect("a valid URL");
        u.set_path(v);
        u.path().trim_start_matches('/').to_string()
    },
    |v| {
        let mut u = url::Url::parse("http://h/").expect("a valid URL");
        u.set_query(Some(v));
        u.query().unwrap_or_default().to_string()
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_is_masked() {
        let s = Secrets::new(["to\"k<en".to_string(), String::new()]);
        assert_eq!(s.mask("a to\"k<en b"), "a *** b");
        assert_eq!(s.mask(r#"{"v":"to\"k<en"}"#), r#"{"v":"***"}"#);
        assert_eq!(s.mask("<td>to&quot;k&lt;en</td>"), "<td>***</td>");
        assert_eq!(s.mask("x,\"to\"\"k<en\""), "x,\"***\"");
        assert_eq!(
            s.mask_bytes(b"\xff to\"k<en".to_vec()),
            b"\xff ***".to_vec()
        );
        assert_eq!(
            s.mask("http://h/a/to%22k%3Cen?q=to%22k%3Cen"),
            "http://h/a/***?q=***"
        );
        assert!(Secrets::new([String::new()]).is_empty());
        // JSON in JSON, JSON in HTML.
        assert_eq!(
            s.mask(r#"{"r":"found \"to\\\"k<en\""}"#),
            r#"{"r":"found \"***\""}"#
        );
        assert_eq!(s.mask("to\\&quot;k&lt;en"), "***");
    }

    #[test]
    fn a_longer_secret_is_masked_whole() {
        let s = Secrets::new(["abc".to_string(), "abcdef".to_string()]);
        assert_eq!(s.mask("abcdef abc"), "*** ***");
    }
}
