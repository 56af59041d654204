//! Placeholders in request paths, headers and bodies: `{{fake.name}}`, `{{fake.email}}`,
//! `{{fake.word}}`, `{{fake.sentence}}`, `{{fake.uuid}}`, `{{fake.id}}`,
//! `{{rand.int(1,100)}}`, `{{user.id}}`, `{{iteration}}` and `{{var}}` for a value
//! extracted earlier by the same user. Parsed once when the scenario is loaded; rendering
//! is allocation-light and follows the user's seeded RNG, so runs replay.
//!
//! Generators:
//!
//! | placeholder | renders |
//! |---|---|
//! | `fake.name` | full name, "Ava Smith" |
//! | `fake.first_name`, `fake.last_name` | one name |
//! | `fake.email` | e-mail address |
//! | `fake.word`, `fake.sentence` | lorem ipsum |
//! | `fake.uuid` | UUID v4 (from the user's RNG, so it replays) |
//! | `fake.id` | a number from 1 to 2^63-1 |
//! | `fake.city` | city name |
//! | `rand.int(A,B)` | integer in A..=B |
//! | `rand.float(A,B)` | number in A..B |
//! | `user.id` | the 1-based user number |
//! | `iteration` | the user's iteration count |
//! | `VAR` | a value extracted by an earlier request (`[A-Za-z_][A-Za-z0-9_]*`) |
//!
//! Whitespace inside the braces is allowed: `{{ rand.int(1, 10) }}`.

use std::collections::HashMap;
use std::fmt::Write as _;

use fake::faker::address::raw::CityName;
use fake::faker::internet::raw::FreeEmail;
use fake::faker::lorem::raw::Word;
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::EN;
use fake::Fake;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

/// Everything a render may read.
pub struct RenderCtx<'a> {
    /// The user's own RNG, seeded from the scenario seed and the user number.
    pub rng: &'a mut ChaCha8Rng,
    /// Values this user extracted so far.
    pub vars: &'a HashMap<String, String>,
    /// 1-based user number.
    pub user: usize,
    /// This user's iteration count.
    pub iteration: u64,
}

/// The generators, for messages.
pub const GENERATORS: &[&str] = &[
    "fake.name",
    "fake.first_name",
    "fake.last_name",
    "fake.email",
    "fake.word",
    "fake.sentence",
    "fake.uuid",
    "fake.id",
    "fake.city",
    "rand.int(A,B)",
    "rand.float(A,B)",
    "user.id",
    "iteration",
];

/// Names that cannot be extracted variables: they start a generator.
pub const RESERVED: &[&str] = &["fake", "rand", "user", "iteration"];

/// A template with a problem: what, and where (0-based char column in the template
/// text, and how many chars the placeholder spans).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub column: usize,
    pub width: usize,
    pub hint: Option<String>,
}

impl std::error::Error for TemplateError {}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// The default is the empty template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Gen(Gen),
}

#[derive(Debug, Clone, PartialEq)]
enum Gen {
    Name,
    FirstName,
    LastName,
    Email,
    Word,
    Sentence,
    Uuid,
    Id,
    City,
    Int(i64, i64),
    Float(f64, f64),
    UserId,
    Iteration,
    Var(String),
}

impl Gen {
    /// Renders as a number (so a JSON leaf holding only this renders unquoted).
    fn numeric(&self) -> bool {
        matches!(
            self,
            Gen::Id | Gen::Int(..) | Gen::Float(..) | Gen::UserId | Gen::Iteration
        )
    }

    fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        let rng = &mut *ctx.rng;
        match self {
            Gen::Name => {
                // fake's English Name is "{FirstName} {LastName}", drawn in this order.
                out.push_str(FirstName(EN).fake_with_rng::<&str, _>(rng));
                out.push(' ');
                out.push_str(LastName(EN).fake_with_rng::<&str, _>(rng));
            }
            Gen::FirstName => out.push_str(FirstName(EN).fake_with_rng::<&str, _>(rng)),
            Gen::LastName => out.push_str(LastName(EN).fake_with_rng::<&str, _>(rng)),
            Gen::Email => out.push_str(&FreeEmail(EN).fake_with_rng::<String, _>(rng)),
            Gen::Word => out.push_str(Word(EN).fake_with_rng::<&str, _>(rng)),
            Gen::Sentence => {
                let n = rng.random_range(4..10);
                for i in 0..n {
                    if i > 0 {
                        out.push(' ');
                    }
                    let w: &str = Word(EN).fake_with_rng(rng);
                    if i == 0 {
                        let mut cs = w.chars();
                        if let Some(c) = cs.next() {
                            out.extend(c.to_uppercase());
                            out.push_str(cs.as_str());
                        }
                    } else {
                        out.push_str(w);
                    }
                }
                out.push('.');
            }
            Gen::Uuid => {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                b[6] = (b[6] & 0x0f) | 0x40; // version 4
                b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out.push('-');
                    }
                    out.push(HEX[(byte >> 4) as usize] as char);
                    out.push(HEX[(byte & 0xf) as usize] as char);
                }
            }
            Gen::Id => {
                let _ = write!(out, "{}", rng.random_range(1..=i64::MAX as u64));
            }
            Gen::City => out.push_str(&CityName(EN).fake_with_rng::<String, _>(rng)),
            Gen::Int(a, b) => {
                let _ = write!(out, "{}", rng.random_range(*a..=*b));
            }
            Gen::Float(a, b) => {
                let v = if a < b { rng.random_range(*a..*b) } else { *a };
                let _ = write!(out, "{v}");
            }
            Gen::UserId => {
                let _ = write!(out, "{}", ctx.user);
            }
            Gen::Iteration => {
                let _ = write!(out, "{}", ctx.iteration);
            }
            Gen::Var(name) => {
                if let Some(v) = ctx.vars.get(name) {
                    out.push_str(v);
                }
            }
        }
    }
}

/// One placeholder or literal run, with the char column it starts at.
struct Piece {
    part: Part,
    column: usize,
    /// In chars.
    width: usize,
}

fn parse_pieces(s: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut lit_col = 0;
    let mut rest = s;
    let mut col = 0; // chars consumed so far
    while let Some(open) = rest.find("{{") {
        let before = &rest[..open];
        if lit.is_empty() {
            lit_col = col;
        }
        lit.push_str(before);
        col += before.chars().count();
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError {
                message: "unclosed placeholder: `{{` without `}}`".into(),
                column: col,
                width: 2,
                hint: Some("close it like {{fake.name}}".into()),
            });
        };
        let inner = &after[..close];
        let width = inner.chars().count() + 4;
        let gen = parse_gen(inner).map_err(|(message, hint)| TemplateError {
            message,
            column: col,
            width,
            hint,
        })?;
        if !lit.is_empty() {
            let width = lit.chars().count();
            pieces.push(Piece {
                part: Part::Lit(std::mem::take(&mut lit)),
                column: lit_col,
                width,
            });
        }
        pieces.push(Piece {
            part: Part::Gen(gen),
            column: col,
            width,
        });
        col += width;
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        if lit.is_empty() {
            lit_col = col;
        }
        lit.push_str(rest);
    }
    if !lit.is_empty() {
        let width = lit.chars().count();
        pieces.push(Piece {
            part: Part::Lit(lit),
            column: lit_col,
            width,
        });
    }
    Ok(pieces)
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_gen(inner: &str) -> Result<Gen, (String, Option<String>)> {
    let t = inner.trim();
    let valid = || Some(format!("valid generators: {}", GENERATORS.join(", ")));
    if t.is_empty() {
        return Err(("empty placeholder `{{}}`".into(), valid()));
    }
    // Calls: rand.int(A,B), rand.float(A,B)
    if let Some(paren) = t.find('(') {
        let name = t[..paren].trim();
        let Some(args) = t[paren + 1..].strip_suffix(')') else {
            return Err((format!("`{t}`: missing `)`"), None));
        };
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let two = |kind: &str| -> Result<(), (String, Option<String>)> {
            if args.len() != 2 || args.iter().any(|a| a.is_empty()) {
                Err((
                    format!("{name} takes two {kind}s, like {name}(1,100); found `{t}`"),
                    None,
                ))
            } else {
                Ok(())
            }
        };
        return match name {
            "rand.int" => {
                two("whole number")?;
                let p = |a: &str| {
                    a.parse::<i64>().map_err(|_| {
                        (
                            format!("rand.int bounds must be whole numbers; found `{a}`"),
                            None,
                        )
                    })
                };
                let (a, b) = (p(args[0])?, p(args[1])?);
                if a > b {
                    return Err((
                        format!("rand.int({a},{b}): the lower bound is above the upper bound"),
                        None,
                    ));
                }
                Ok(Gen::Int(a, b))
            }
            "rand.float" => {
                two("number")?;
                let p = |a: &str| match a.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err((
                        format!("rand.float bounds must be numbers; found `{a}`"),
                        None,
                    )),
                };
                let (a, b) = (p(args[0])?, p(args[1])?);
                if a > b {
                    return Err((
                        format!("rand.float({a},{b}): the lower bound is above the upper bound"),
                        None,
                    ));
                }
                // The sampler needs b - a to be finite too (it panics otherwise).
                if !(b - a).is_finite() {
                    return Err((
                        format!(
                            "rand.float({},{}): the range is too wide to draw from",
                            args[0], args[1]
                        ),
                        None,
                    ));
                }
                Ok(Gen::Float(a, b))
            }
            other => Err((unknown(other), hint_for(other))),
        };
    }
    Ok(match t {
        "fake.name" => Gen::Name,
        "fake.first_name" => Gen::FirstName,
        "fake.last_name" => Gen::LastName,
        "fake.email" => Gen::Email,
        "fake.word" => Gen::Word,
        "fake.sentence" => Gen::Sentence,
        "fake.uuid" => Gen::Uuid,
        "fake.id" => Gen::Id,
        "fake.city" => Gen::City,
        "user.id" => Gen::UserId,
        "iteration" => Gen::Iteration,
        "rand.int" | "rand.float" => {
            return Err((format!("{t} needs bounds, like {t}(1,100)"), None));
        }
        v if is_ident(v) && !RESERVED.contains(&v) => Gen::Var(v.to_string()),
        v if v.starts_with("fake.")
            || v.starts_with("rand.")
            || v.starts_with("user.")
            || RESERVED.contains(&v) =>
        {
            return Err((unknown(v), hint_for(v)));
        }
        v => {
            return Err((
                format!("`{{{{{v}}}}}` is neither a generator nor a variable name"),
                Some(format!(
                    "variables are names like item_id; {}",
                    valid().unwrap_or_default()
                )),
            ))
        }
    })
}

fn unknown(name: &str) -> String {
    format!("unknown generator `{name}`")
}

fn hint_for(name: &str) -> Option<String> {
    let bare: Vec<&str> = GENERATORS
        .iter()
        .map(|g| g.split('(').next().unwrap_or(g))
        .collect();
    let list = format!("valid generators: {}", GENERATORS.join(", "));
    Some(match crate::scenario::suggest::closest(name, bare) {
        Some(s) => format!("did you mean `{s}`? {list}"),
        None => list,
    })
}

impl Template {
    /// Parse; the error says what is wrong with which placeholder, and where.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            parts: parse_pieces(s)?.into_iter().map(|p| p.part).collect(),
        })
    }

    /// Names of extracted variables this template reads.
    pub fn vars(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let Part::Gen(Gen::Var(name)) = p {
                if !v.contains(&name.as_str()) {
                    v.push(name);
                }
            }
        }
        v
    }

    /// The text, when the template holds no placeholder (render it once, not per
    /// request).
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Append the rendered text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Gen(g) => g.render(ctx, out),
            }
        }
    }
}

/// Each variable a template text reads, with the 0-based char column and width of its
/// placeholder (for messages). Empty when the text does not parse.
pub(crate) fn var_places(s: &str) -> Vec<(String, usize, usize)> {
    parse_pieces(s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p.part {
            Part::Gen(Gen::Var(name)) => Some((name, p.column, p.width)),
            _ => None,
        })
        .collect()
}

/// A JSON body compiled to a flat list of literal JSON text and placeholders, so
/// rendering is a sequence of appends.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {
    parts: Vec<JsonPart>,
}

#[derive(Debug, Clone, PartialEq)]
enum JsonPart {
    /// JSON text, already escaped.
    Lit(String),
    /// Inside a JSON string: rendered, then escaped.
    Str(Gen),
    /// A whole leaf that is one numeric placeholder: rendered as a bare number.
    Bare(Gen),
}

/// Where in a JSON body a template problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonTemplateError {
    /// Keys and indexes from the body's root to the string, e.g. `["user", "0"]`.
    pub path: Vec<JsonPathElem>,
    pub error: TemplateError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPathElem {
    Key(String),
    Index(usize),
}

impl JsonTemplate {
    /// Compile a TOML value (the scenario's `json = ...`) into a JSON template.
    pub fn compile(v: &toml::Value) -> Result<JsonTemplate, JsonTemplateError> {
        let mut c = JsonCompiler {
            parts: Vec::new(),
            lit: String::new(),
            path: Vec::new(),
        };
        c.value(v)?;
        c.flush();
        Ok(JsonTemplate { parts: c.parts })
    }

    pub fn vars(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let JsonPart::Str(Gen::Var(name)) | JsonPart::Bare(Gen::Var(name)) = p {
                if !v.contains(&name.as_str()) {
                    v.push(name);
                }
            }
        }
        v
    }

    /// Append the JSON text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        for p in &self.parts {
            match p {
                JsonPart::Lit(s) => out.push_str(s),
                JsonPart::Bare(g) => g.render(ctx, out),
                JsonPart::Str(g) => {
                    let start = out.len();
                    g.render(ctx, out);
                    if out[start..]
                        .bytes()
                        .any(|b| b == b'"' || b == b'\\' || b < 0x20)
                    {
                        let tail = out.split_off(start);
                        escape_json_into(&tail, out);
                    }
                }
            }
        }
    }
}

struct JsonCompiler {
    parts: Vec<JsonPart>,
    lit: String,
    path: Vec<JsonPathElem>,
}

impl JsonCompiler {
    fn flush(&mut self) {
        if !self.lit.is_empty() {
            self.parts
                .push(JsonPart::Lit(std::mem::take(&mut self.lit)));
        }
    }

    fn value(&mut self, v: &toml::Value) -> Result<(), JsonTemplateError> {
        match v {
            toml::Value::String(s) => self.string(s)?,
            toml::Value::Integer(i) => {
                let _ = write!(self.lit, "{i}");
            }
            toml::Value::Float(f) => {
                if f.is_finite() {
                    self.lit.push_str(
                        &serde_json::Number::from_f64(*f).map_or("null".into(), |n| n.to_string()),
                    );
                } else {
                    return Err(JsonTemplateError {
                        path: self.path.clone(),
                        error: TemplateError {
                            message: format!("JSON has no `{f}`; use a finite number"),
                            column: 0,
                            width: 1,
                            hint: None,
                        },
                    });
                }
            }
            toml::Value::Boolean(b) => self.lit.push_str(if *b { "true" } else { "false" }),
            toml::Value::Datetime(d) => escape_json_string(&d.to_string(), &mut self.lit),
            toml::Value::Array(a) => {
                self.lit.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(',');
                    }
                    self.path.push(JsonPathElem::Index(i));
                    self.value(x)?;
                    self.path.pop();
                }
                self.lit.push(']');
            }
            toml::Value::Table(t) => {
                self.lit.push('{');
                for (i, (k, x)) in t.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(',');
                    }
                    escape_json_string(k, &mut self.lit);
                    self.lit.push(':');
                    self.path.push(JsonPathElem::Key(k.clone()));
                    self.value(x)?;
                    self.path.pop();
                }
                self.lit.push('}');
            }
        }
        Ok(())
    }

    fn string(&mut self, s: &str) -> Result<(), JsonTemplateError> {
        let pieces = parse_pieces(s).map_err(|error| JsonTemplateError {
            path: self.path.clone(),
            error,
        })?;
        if let [Piece {
            part: Part::Gen(g), ..
        }] = pieces.as_slice()
        {
            if g.numeric() {
                self.flush();
                self.parts.push(JsonPart::Bare(g.clone()));
                return Ok(());
            }
        }
        self.lit.push('"');
        for p in pieces {
            match p.part {
                Part::Lit(l) => {
                    let mut e = String::new();
                    escape_json_string(&l, &mut e);
                    self.lit.push_str(&e[1..e.len() - 1]);
                }
                Part::Gen(g) => {
                    self.flush();
                    self.parts.push(JsonPart::Str(g));
                }
            }
        }
        self.lit.push('"');
        Ok(())
    }
}

/// `s` as a JSON string literal, quotes included.
fn escape_json_string(s: &str, out: &mut String) {
    out.push('"');
    escape_json_into(s, out);
    out.push('"');
}

/// `s` escaped for the inside of a JSON string.
fn escape_json_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A request body: raw text or JSON with placeholders in its strings (a string that is
/// exactly one numeric placeholder, like `"{{rand.int(1,9)}}"`, renders as a number).
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    Raw(Template),
    Json(JsonTemplate),
}

impl BodyTemplate {
    pub fn vars(&self) -> Vec<&str> {
        match self {
            BodyTemplate::Raw(t) => t.vars(),
            BodyTemplate::Json(j) => j.vars(),
        }
    }

    /// The content type this body is sent with.
    pub fn content_type(&self) -> &'static str {
        match self {
            BodyTemplate::Raw(_) => "text/plain; charset=utf-8",
            BodyTemplate::Json(_) => "application/json",
        }
    }

    /// Append the body to `out` (reuse one buffer across requests); returns the content
    /// type.
    pub fn render_into(&self, ctx: &mut RenderCtx<'_>, out: &mut String) -> &'static str {
        match self {
            BodyTemplate::Raw(t) => t.render(ctx, out),
            BodyTemplate::Json(j) => j.render(ctx, out),
        }
        self.content_type()
    }

    /// The body bytes and its content type.
    pub fn render(&self, ctx: &mut RenderCtx<'_>) -> (Vec<u8>, &'static str) {
        let mut s = String::new();
        let ct = self.render_into(ctx, &mut s);
        (s.into_bytes(), ct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn render_with(t: &Template, seed: u64, vars: &HashMap<String, String>) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ctx = RenderCtx {
            rng: &mut rng,
            vars,
            user: 7,
            iteration: 3,
        };
        let mut out = String::new();
        t.render(&mut ctx, &mut out);
        out
    }

    fn render(s: &str) -> String {
        render_with(&Template::parse(s).unwrap(), 1, &HashMap::new())
    }

    #[test]
    fn literals_pass_through() {
        assert_eq!(render("/api/items"), "/api/items");
        assert_eq!(render(""), "");
        assert_eq!(render("a { b } {c} }}"), "a { b } {c} }}");
        assert_eq!(Template::parse("/x").unwrap().as_literal(), Some("/x"));
        assert_eq!(Template::parse("/{{user.id}}").unwrap().as_literal(), None);
    }

    #[test]
    fn same_seed_same_output() {
        let t = Template::parse(
            "{{fake.name}}|{{fake.first_name}}|{{fake.last_name}}|{{fake.email}}|{{fake.word}}|\
             {{fake.sentence}}|{{fake.uuid}}|{{fake.id}}|{{fake.city}}|{{rand.int(1,1000000)}}|\
             {{rand.float(0,1)}}",
        )
        .unwrap();
        let v = HashMap::new();
        let a = render_with(&t, 42, &v);
        assert_eq!(a, render_with(&t, 42, &v));
        assert_ne!(a, render_with(&t, 43, &v));
    }

    #[test]
    fn each_generator() {
        let name = render("{{fake.name}}");
        assert_eq!(name.split(' ').count(), 2, "{name}");
        assert!(!render("{{fake.first_name}}").is_empty());
        assert!(!render("{{fake.last_name}}").is_empty());
        let email = render("{{fake.email}}");
        assert!(email.contains('@') && email.contains('.'), "{email}");
        let word = render("{{fake.word}}");
        assert!(!word.is_empty() && !word.contains(' '), "{word}");
        let s = render("{{fake.sentence}}");
        assert!(
            s.ends_with('.') && (4..10).contains(&s.split(' ').count()),
            "{s}"
        );
        assert!(s.chars().next().unwrap().is_uppercase(), "{s}");
        let u = render("{{fake.uuid}}");
        assert_eq!(u.len(), 36, "{u}");
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'), "version 4: {u}");
        assert!(
            matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
            "variant: {u}"
        );
        assert!(render("{{fake.id}}").parse::<u64>().unwrap() >= 1);
        assert!(!render("{{fake.city}}").is_empty());
        for seed in 0..200 {
            let t = Template::parse("{{rand.int(-2,2)}}").unwrap();
            let n: i64 = render_with(&t, seed, &HashMap::new()).parse().unwrap();
            assert!((-2..=2).contains(&n));
            let t = Template::parse("{{rand.float(1.5,2.5)}}").unwrap();
            let x: f64 = render_with(&t, seed, &HashMap::new()).parse().unwrap();
            assert!((1.5..2.5).contains(&x));
        }
        // Both bounds are reachable.
        let t = Template::parse("{{rand.int(0,1)}}").unwrap();
        let seen: std::collections::HashSet<String> = (0..50)
            .map(|s| render_with(&t, s, &HashMap::new()))
            .collect();
        assert_eq!(seen.len(), 2);
        assert_eq!(render("{{rand.int(5,5)}}"), "5");
        assert_eq!(render("{{rand.float(2,2)}}"), "2");
        assert_eq!(render("u{{user.id}}-i{{iteration}}"), "u7-i3");
    }

    #[test]
    fn variables_and_whitespace() {
        let t =
            Template::parse("/items/{{ item_id }}/{{ rand.int( 1 , 3 ) }}/{{item_id}}").unwrap();
        assert_eq!(t.vars(), vec!["item_id"]);
        let mut v = HashMap::new();
        v.insert("item_id".to_string(), "42".to_string());
        let out = render_with(&t, 1, &v);
        assert!(
            out.starts_with("/items/42/") && out.ends_with("/42"),
            "{out}"
        );
        // A missing variable renders empty.
        assert_eq!(render("/items/{{item_id}}"), "/items/");
        assert_eq!(
            var_places("a{{ x }}b{{y}}"),
            vec![("x".into(), 1, 7), ("y".into(), 9, 5)]
        );
    }

    #[test]
    fn parse_errors() {
        let e = Template::parse("/x/{{fake.nme}}").unwrap_err();
        assert_eq!(e.message, "unknown generator `fake.nme`");
        assert_eq!((e.column, e.width), (3, 12));
        let hint = e.hint.unwrap();
        assert!(hint.starts_with("did you mean `fake.name`?"), "{hint}");
        assert!(
            hint.contains("fake.uuid") && hint.contains("rand.int(A,B)"),
            "{hint}"
        );
        let e = Template::parse("ab{{fake.name").unwrap_err();
        assert!(e.message.starts_with("unclosed placeholder"), "{e:?}");
        assert_eq!(e.column, 2);
        let e = Template::parse("{{}}").unwrap_err();
        assert!(e.message.contains("empty"), "{e:?}");
        for bad in [
            "{{rand.int(1)}}",
            "{{rand.int(a,b)}}",
            "{{rand.int(5,1)}}",
            "{{rand.int(1,2}}",
            "{{rand.int}}",
            "{{rand.float(x,1)}}",
            "{{rand.gauss(1,2)}}",
            "{{user.name}}",
            "{{fake}}",
            "{{item-id}}",
            "{{a.b}}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::parse("{{rand.float(0.5, 1e3)}}").is_ok());
        let e = Template::parse("{{rand.gauss(1,2)}}").unwrap_err();
        assert!(
            e.to_string().contains("unknown generator `rand.gauss`"),
            "{e}"
        );
    }

    fn json(src: &str) -> JsonTemplate {
        let v: toml::Table = toml::from_str(src).unwrap();
        JsonTemplate::compile(&v["json"]).unwrap()
    }

    fn render_json(j: &JsonTemplate, vars: &HashMap<String, String>) -> serde_json::Value {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut ctx = RenderCtx {
            rng: &mut rng,
            vars,
            user: 2,
            iteration: 5,
        };
        let mut out = String::new();
        j.render(&mut ctx, &mut out);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"))
    }

    #[test]
    fn json_bodies() {
        let j = json(
            r#"json = { name = "{{fake.name}}", n = "{{rand.int(1,9)}}", f = "{{rand.float(0,1)}}",
                        id = "{{fake.id}}", u = "{{user.id}}", i = "{{iteration}}",
                        s = "n={{rand.int(1,9)}}", q = "say \"hi\"\n", v = "{{var}}",
                        list = [1, 2.5, true, "{{user.id}}x"], nested = { deep = ["{{iteration}}"] } }"#,
        );
        let mut vars = HashMap::new();
        vars.insert("var".to_string(), "a\"b\\c".to_string());
        let v = render_json(&j, &vars);
        assert!(v["name"].as_str().unwrap().contains(' '));
        assert!((1..=9).contains(&v["n"].as_i64().unwrap()));
        assert!(v["f"].is_f64());
        assert!(v["id"].is_u64());
        assert_eq!(v["u"], 2);
        assert_eq!(v["i"], 5);
        assert!(v["s"].as_str().unwrap().starts_with("n="));
        assert_eq!(v["q"], "say \"hi\"\n");
        assert_eq!(v["v"], "a\"b\\c");
        assert_eq!(v["list"], serde_json::json!([1, 2.5, true, "2x"]));
        assert_eq!(v["nested"]["deep"][0], 5);
        assert_eq!(j.vars(), vec!["var"]);
        let b = BodyTemplate::Json(j);
        assert_eq!(b.vars(), vec!["var"]);
    }

    #[test]
    fn json_errors_say_where() {
        let v: toml::Table = toml::from_str(r#"json = { a = [ "ok", "{{fake.bad}}" ] }"#).unwrap();
        let e = JsonTemplate::compile(&v["json"]).unwrap_err();
        assert_eq!(
            e.path,
            vec![JsonPathElem::Key("a".into()), JsonPathElem::Index(1)]
        );
        assert_eq!(e.error.message, "unknown generator `fake.bad`");
    }

    #[test]
    fn raw_body() {
        let b = BodyTemplate::Raw(Template::parse("hello {{user.id}}").unwrap());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let vars = HashMap::new();
        let mut ctx = RenderCtx {
            rng: &mut rng,
            vars: &vars,
            user: 1,
            iteration: 0,
        };
        let (bytes, ct) = b.render(&mut ctx);
        assert_eq!(bytes, b"hello 1");
        assert!(ct.starts_with("text/plain"));
    }
}
