//! Where things are in the scenario text: key paths, the span of a key or value, line and
//! column of a byte offset, and offsets inside string literals. Every diagnostic is
//! made here, so each one carries its file, line, column, key and source line.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Diagnostic;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path as written in messages: `load.stages[1].duration`,
/// `requests[0].headers."x.y"`.
pub(crate) fn show_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    s.push_str(k);
                } else {
                    s.push('"');
                    s.push_str(&k.replace('\\', "\\\\").replace('"', "\\\""));
                    s.push('"');
                }
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// The inverse of [`show_path`].
pub(crate) fn parse_path(s: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut key = String::new();
    let mut have_key = false;
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if have_key {
                    out.push(Seg::Key(std::mem::take(&mut key)));
                    have_key = false;
                }
            }
            '"' => {
                have_key = true;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                key.push(n);
                            }
                        }
                        '"' => break,
                        c => key.push(c),
                    }
                }
            }
            '[' => {
                if have_key {
                    out.push(Seg::Key(std::mem::take(&mut key)));
                    have_key = false;
                }
                let mut n = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    n.push(c);
                }
                out.push(Seg::Index(n.parse().unwrap_or(0)));
            }
            c => {
                have_key = true;
                key.push(c);
            }
        }
    }
    if have_key {
        out.push(Seg::Key(key));
    }
    out
}

/// Spans of the node at a key path.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The key's span, when the node is a table entry.
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
    /// The whole path was found (else the deepest existing node is returned).
    pub exact: bool,
}

/// The scenario text being checked, and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub root: DeTable<'a>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a Path, src: &'a str) -> Self {
        Ctx {
            file,
            src,
            root: DeTable::new(),
            diags: Vec::new(),
        }
    }

    /// The node at `path`, or the deepest existing one on the way.
    pub fn find(&self, path: &[Seg]) -> Found {
        let mut found = Found {
            key: None,
            value: 0..0,
            exact: path.is_empty(),
        };
        let mut table: Option<&DeTable<'a>> = Some(&self.root);
        let mut array: Option<&[Spanned<DeValue<'a>>]> = None;
        for (n, seg) in path.iter().enumerate() {
            let next: Option<&Spanned<DeValue<'a>>> = match seg {
                Seg::Key(k) => table.and_then(|t| {
                    t.iter()
                        .find(|(key, _)| key.get_ref() == k)
                        .map(|(key, v)| {
                            found.key = Some(key.span());
                            v
                        })
                }),
                Seg::Index(i) => array.and_then(|a| a.get(*i)).inspect(|_| {
                    found.key = None;
                }),
            };
            let Some(v) = next else {
                return found;
            };
            found.value = v.span();
            found.exact = n + 1 == path.len();
            table = None;
            array = None;
            match v.get_ref() {
                DeValue::Table(t) => table = Some(t),
                DeValue::Array(a) => array = Some(a.as_ref()),
                _ => {}
            }
        }
        found
    }

    /// The value at `path` as parsed, if present.
    pub fn value(&self, path: &[Seg]) -> Option<&Spanned<DeValue<'a>>> {
        let mut cur: Option<&Spanned<DeValue<'a>>> = None;
        for seg in path {
            cur = match (seg, cur.map(|v| v.get_ref())) {
                (Seg::Key(k), None) => self
                    .root
                    .iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(_, v)| v),
                (Seg::Key(k), Some(DeValue::Table(t))) => {
                    t.iter().find(|(key, _)| key.get_ref() == k).map(|(_, v)| v)
                }
                (Seg::Index(i), Some(DeValue::Array(a))) => a.as_ref().get(*i),
                _ => None,
            };
            cur?;
        }
        cur
    }

    /// A problem at a byte range of the source.
    pub fn at_span(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = self.diagnostic(span, key, message.into(), hint);
        self.diags.push(d);
    }

    /// A problem with the value at `path` (or where it should be).
    pub fn at_value(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let f = self.find(&parse_path(path));
        self.at_span(f.value, path, message, hint);
    }

    /// A problem with the key at `path` itself (unknown key, key that does not apply).
    pub fn at_key(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let f = self.find(&parse_path(path));
        let span = match (f.exact, f.key) {
            (true, Some(k)) => k,
            _ => f.value,
        };
        self.at_span(span, path, message, hint);
    }

    /// A problem inside the string at `path`: `col` and `width` count chars of the
    /// string's value (after unescaping).
    pub fn in_string(
        &mut self,
        path: &str,
        col: usize,
        width: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let f = self.find(&parse_path(path));
        let span = if f.exact {
            let start = string_offset(self.src, f.value.clone(), col);
            let end = string_offset(self.src, f.value.clone(), col + width.max(1));
            start..end.max(start + 1)
        } else {
            f.value
        };
        self.at_span(span, path, message, hint);
    }

    pub fn diagnostic(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut start = span.start.min(self.src.len());
        while !self.src.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = self.src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |i| start + i);
        let line_no = self.src[..start].matches('\n').count() + 1;
        let column = self.src[line_start..start].chars().count() + 1;
        let mut end = span.end.clamp(start, line_end);
        while !self.src.is_char_boundary(end) {
            end += 1;
        }
        let width = self.src[start..end].chars().count().max(1);
        let text = self.src[line_start..line_end].trim_end_matches('\r');
        Diagnostic {
            file: self.file.to_path_buf(),
            line: line_no,
            column,
            key: key.to_string(),
            message,
            hint,
            source_line: Some(text.to_string()),
            width,
        }
    }
}

/// Byte offset in `src` of char `col` of the string literal at `span` (after
/// unescaping). Falls back to the literal's start when the span is not a string.
pub(crate) fn string_offset(src: &str, span: Range<usize>, col: usize) -> usize {
    let Some(lit) = src.get(span.clone()) else {
        return span.start;
    };
    let (open, basic) = if lit.starts_with("\"\"\"") {
        (3, true)
    } else if lit.starts_with("'''") {
        (3, false)
    } else if lit.starts_with('"') {
        (1, true)
    } else if lit.starts_with('\'') {
        (1, false)
    } else {
        return span.start;
    };
    let mut i = open;
    // A newline right after a multi-line opening delimiter is trimmed.
    if open == 3 {
        if lit[i..].starts_with("\r\n") {
            i += 2;
        } else if lit[i..].starts_with('\n') {
            i += 1;
        }
    }
    let bytes = lit.as_bytes();
    let end = lit.len().saturating_sub(open).max(i);
    let mut produced = 0;
    while i < end {
        if produced == col {
            return span.start + i;
        }
        if basic && bytes[i] == b'\\' {
            let next = lit[i + 1..].chars().next().unwrap_or(' ');
            match next {
                'u' => i += 6,
                'U' => i += 10,
                'x' => i += 4,
                ' ' | '\t' | '\r' | '\n' => {
                    // Line-ending backslash: skips the newline and following whitespace.
                    i += 1;
                    while i < lit.len() && (bytes[i] as char).is_whitespace() {
                        i += 1;
                    }
                    continue;
                }
                c => i += 1 + c.len_utf8(),
            }
            produced += 1;
            continue;
        }
        let c = lit[i..].chars().next().unwrap_or(' ');
        i += c.len_utf8();
        produced += 1;
    }
    span.start + i.min(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for p in [
            "load.stages[1].duration",
            "requests[0].checks[2].status",
            "requests[3].headers.\"x.y\"",
            "name",
        ] {
            assert_eq!(show_path(&parse_path(p)), p);
        }
        assert_eq!(
            parse_path("a[2].b"),
            vec![Seg::Key("a".into()), Seg::Index(2), Seg::Key("b".into())]
        );
    }

    #[test]
    fn offsets_inside_string_literals() {
        let src = r#"x = "a\"b{{c}}""#;
        let span = 4..src.len();
        // value: a"b{{c}} ; char 3 is the first `{`
        assert_eq!(&src[string_offset(src, span.clone(), 3)..][..2], "{{");
        assert_eq!(string_offset(src, span.clone(), 0), 5);
        let src = "x = 'a{{c}}'";
        assert_eq!(string_offset(src, 4..src.len(), 1), 6);
        let src = "x = \"\"\"\nab{{c}}\"\"\"";
        assert_eq!(&src[string_offset(src, 4..src.len(), 2)..][..2], "{{");
        let src = "x = 42";
        assert_eq!(string_offset(src, 4..6, 1), 4);
    }
}
