//! Where things are in the scenario text: key paths, the span of a key or value, line and
//! column of a byte offset, and offsets inside string literals. Every diagnostic is
//! made here, so each one carries its file, line, column, key and source line.

use std::collections::HashMap;
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

/// A problem found, placed by its byte span; turned into a [`Diagnostic`] (line, column,
/// source line) once at the end, in one pass over the text (see [`Ctx::finish`]), so the
/// cost of validation stays linear in the size of the file however many problems it has.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub span: Range<usize>,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

/// The scenario text being checked, and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub root: DeTable<'a>,
    pub diags: Vec<Pending>,
    /// Byte offset of the start of each line.
    lines: Vec<usize>,
    /// When values with type errors were cut out before validation: for each array that
    /// lost elements (by its path in the file), the file indexes of those left, so the
    /// paths validation reports (indexes in the cut document) point at the file's.
    pub remap: HashMap<String, Vec<usize>>,
}

/// A source line longer than this (bytes) is shown as a window around the problem.
const LONG_LINE: usize = 240;
/// Chars shown before and after the problem's start in such a window.
const WINDOW_BEFORE: usize = 60;
const WINDOW_AFTER: usize = 120;

impl<'a> Ctx<'a> {
    pub fn new(file: &'a Path, src: &'a str) -> Self {
        let lines = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ctx {
            file,
            src,
            root: DeTable::new(),
            diags: Vec::new(),
            lines,
            remap: HashMap::new(),
        }
    }

    /// 1-based line of a byte offset, and the offset where that line starts.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        let n = self.lines.partition_point(|&s| s <= offset).max(1);
        (n, self.lines[n - 1])
    }

    /// Every problem, in file order (duplicates removed), with line, column and source.
    pub fn finish(&mut self) -> Vec<Diagnostic> {
        let mut pending = std::mem::take(&mut self.diags);
        for p in &mut pending {
            p.span.start = self.boundary_before(p.span.start);
        }
        pending.sort_by_key(|p| p.span.start);
        pending.dedup_by(|a, b| {
            a.span.start == b.span.start && a.key == b.key && a.message == b.message
        });
        // Columns by one walk over the text, in order: linear, not per problem.
        let (mut at, mut col, mut line_start) = (0usize, 1usize, 0usize);
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let start = p.span.start;
            let (line, ls) = self.line_of(start);
            if ls != line_start || start < at {
                line_start = ls;
                at = ls;
                col = 1;
            }
            col += self.src[at..start].chars().count();
            at = start;
            out.push(self.make(p, line, line_start, col));
        }
        out
    }

    fn boundary_before(&self, offset: usize) -> usize {
        let mut start = offset.min(self.src.len());
        while !self.src.is_char_boundary(start) {
            start -= 1;
        }
        start
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
                    t.get_key_value(k.as_str()).map(|(key, v)| {
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
                (Seg::Key(k), None) => self.root.get(k.as_str()),
                (Seg::Key(k), Some(DeValue::Table(t))) => t.get(k.as_str()),
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
        self.diags.push(Pending {
            span,
            key: key.to_string(),
            message: message.into(),
            hint,
        });
    }

    /// `path` (as validation names it) as a path in the file, see [`Ctx::remap`].
    pub fn file_path(&self, path: &str) -> Vec<Seg> {
        let mut out: Vec<Seg> = Vec::new();
        for seg in parse_path(path) {
            match seg {
                Seg::Index(i) if !self.remap.is_empty() => {
                    let idx = self
                        .remap
                        .get(&show_path(&out))
                        .and_then(|l| l.get(i).copied())
                        .unwrap_or(i);
                    out.push(Seg::Index(idx));
                }
                s => out.push(s),
            }
        }
        out
    }

    /// A problem with the value at `path` (or where it should be).
    pub fn at_value(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let path = self.file_path(path);
        let f = self.find(&path);
        self.at_span(f.value, &show_path(&path), message, hint);
    }

    /// A problem with the key at `path` itself (unknown key, key that does not apply).
    pub fn at_key(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let path = self.file_path(path);
        let f = self.find(&path);
        let span = match (f.exact, f.key) {
            (true, Some(k)) => k,
            _ => f.value,
        };
        self.at_span(span, &show_path(&path), message, hint);
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
        let path = show_path(&self.file_path(path));
        let f = self.find(&parse_path(&path));
        let span = if f.exact {
            let start = string_offset(self.src, f.value.clone(), col);
            let end = string_offset(self.src, f.value.clone(), col + width.max(1));
            start..end.max(start + 1)
        } else {
            f.value
        };
        self.at_span(span, &path, message, hint);
    }

    /// One problem with its line, column and source line (for a single lookup; many
    /// problems go through [`Ctx::finish`]).
    pub fn diagnostic(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let start = self.boundary_before(span.start);
        let (line, line_start) = self.line_of(start);
        let col = self.src[line_start..start].chars().count() + 1;
        let p = Pending {
            span: start..span.end,
            key: key.to_string(),
            message,
            hint,
        };
        self.make(p, line, line_start, col)
    }

    /// The diagnostic of `p`, whose start is on `line` at char column `column`. The source
    /// line is cut to a window around the problem when it is long, so a file written on
    /// one huge line does not copy that line into every problem.
    fn make(&self, p: Pending, line: usize, line_start: usize, column: usize) -> Diagnostic {
        let src = self.src;
        let start = p.span.start;
        let look = self.boundary_before(start + LONG_LINE);
        let line_end = match src.as_bytes()[start..look].iter().position(|b| *b == b'\n') {
            Some(i) => Some(start + i),
            None if look == src.len() => Some(src.len()),
            None => None,
        };
        let long = start - line_start > LONG_LINE || line_end.is_none();
        let (text, caret, shown_end) = if long {
            let from = src[line_start..start]
                .char_indices()
                .rev()
                .take(WINDOW_BEFORE)
                .last()
                .map_or(start, |(i, _)| line_start + i);
            let to = src[start..line_end.unwrap_or(look)]
                .char_indices()
                .nth(WINDOW_AFTER)
                .map_or(line_end.unwrap_or(look), |(i, _)| start + i);
            let to = self.boundary_before(to);
            let cut_front = from > line_start;
            let mut t = String::new();
            if cut_front {
                t.push('…');
            }
            t.push_str(&src[from..to]);
            if Some(to) != line_end {
                t.push('…');
            }
            let caret = src[from..start].chars().count() + 1 + usize::from(cut_front);
            (t, caret, to)
        } else {
            let end = line_end.unwrap_or(look);
            (src[line_start..end].to_string(), column, end)
        };
        let mut end = p.span.end.clamp(start, shown_end);
        while !src.is_char_boundary(end) {
            end += 1;
        }
        let width = src[start..end].chars().count().max(1);
        let text = text.trim_end_matches('\r');
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            key: p.key,
            message: p.message,
            hint: p.hint,
            source_line: Some(text.to_string()),
            caret,
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
