//! TOML text to [`Scenario`], reporting every syntax error, unknown key and type error
//! with its place.
//!
//! The whole file is deserialized with `serde_ignored` collecting unknown keys and
//! `serde_path_to_error` naming the key of a type error. A type error stops serde, so
//! after one the offending value is cut out of the parsed document and the document is
//! deserialized again, until it goes through: every type error is found, whatever
//! section it is in, and the model can grow without this file knowing its sections.
//! (A "missing key" that only exists because a value was cut out is not reported; the
//! table that lacks it is cut out in turn. Array elements cut out are tracked so key
//! paths keep the file's indexes.) Positions come from the spans of the parsed
//! document, which cutting does not change.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::model::*;
use super::source::{parse_path, show_path, Ctx, Seg};
use super::suggest::closest;

type DeError = serde_path_to_error::Error<toml::de::Error>;

/// Bound on the cut-and-retry rounds (each round cuts one value out).
const MAX_ROUNDS: usize = 500;

/// What the file parsed into.
pub(crate) struct Parsed {
    pub scenario: Scenario,
    /// Paths (in the file) of the values cut out for a type error; empty when none was.
    /// The scenario is then what is left, still worth validating for its other problems
    /// (see [`Cuts::hides`]), but never a plan.
    pub cut: Cuts,
}

/// The values cut out for type errors (see [`Parsed::cut`]), each with whether it
/// took away a request that extracts variables (other requests may use them).
pub(crate) struct Cuts(pub Vec<(Vec<Seg>, bool)>);

impl Cuts {
    /// Whether a problem validation found at `key` may only exist because a value was
    /// cut out: it is at, above or below a cut value, or in a section that reads the
    /// section a value was cut from (a fault names services, a criterion requests...).
    pub fn hides(&self, key: &str, message: &str) -> bool {
        let key = parse_path(key);
        let top = |p: &[Seg]| match p.first() {
            Some(Seg::Key(k)) => k.clone(),
            _ => String::new(),
        };
        let reader = top(&key);
        if reader.is_empty() {
            return !self.0.is_empty();
        }
        self.0.iter().any(|(c, extracts)| {
            let n = c.len().min(key.len());
            if c[..n] == key[..n] {
                return true;
            }
            // A whole element cut (`requests[2]`), or its name.
            let element = c.len() <= 2 || matches!(c.get(2), Some(Seg::Key(k)) if k == "name");
            match (reader.as_str(), top(c).as_str()) {
                ("duration", "load") => true,
                ("load", "requests") => element,
                ("requests", "load") => c.len() <= 1,
                ("requests", "requests") => *extracts,
                ("services", "backend" | "target") => true,
                ("faults", "services" | "target" | "backend") => true,
                // The load and the cap only place a fault's end against the deadline
                // (at `faults[i].at`); an unknown target is still unknown.
                ("faults", "duration" | "load") => {
                    matches!(key.last(), Some(Seg::Key(k)) if k == "at")
                }
                // Only a name that no longer resolves; a wrong unit is still wrong.
                ("criteria", "requests" | "services" | "flows")
                | ("flows", "requests")
                | ("requests", "targets") => {
                    element && message.starts_with("no ") && message.contains(" is named ")
                }
                // Weights of the cut requests or flows are unknown.
                ("requests", "flows") => element && message.contains("weight 0"),
                ("canary", "target") => true,
                _ => false,
            }
        })
    }
}

/// Parse; `None` when the text is not a scenario (the problems are in `ctx`). Unknown
/// keys and type errors are reported but do not stop the scenario (what is left of it)
/// from being returned, so semantic checks can run too.
pub(crate) fn parse(ctx: &mut Ctx<'_>) -> Option<Parsed> {
    let root = match DeTable::parse(ctx.src) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut message = format!("invalid TOML: {}", e.message());
            if e.message() == "duplicate key" {
                if let Some(k) = ctx.src.get(span.clone()) {
                    message.push_str(&format!(" `{k}`: it is defined twice"));
                }
            }
            let hint = if e.message().starts_with("string values must be quoted") {
                Some("put text in quotes, like base_url = \"http://127.0.0.1:8080\"".into())
            } else {
                None
            };
            ctx.at_span(span, "", message, hint);
            return None;
        }
    };
    let span = root.span();
    ctx.root = root.into_inner();
    check_think_time_keys(ctx);

    let mut tree = Spanned::new(span, DeValue::Table(ctx.root.clone()));
    let mut st = Rounds::default();
    settle_faults(ctx, &mut tree, &mut st);
    // Each element and section on its own first: a round (one type error) then costs
    // the size of its element, not of the file, so validation stays linear in the file.
    settle_each::<ServiceSpec>(ctx, &mut tree, "services", &mut st);
    settle_each::<RequestSpec>(ctx, &mut tree, "requests", &mut st);
    settle_each::<FlowSpec>(ctx, &mut tree, "flows", &mut st);
    settle_each::<WsSpec>(ctx, &mut tree, "ws", &mut st);
    settle_each::<String>(ctx, &mut tree, "criteria", &mut st);
    settle_each::<StageSpec>(ctx, &mut tree, "load.stages", &mut st);
    let _ = settle::<LoadSpec>(ctx, &mut tree, &parse_path("load"), &mut st);
    let _ = settle::<CanarySpec>(ctx, &mut tree, &parse_path("canary"), &mut st);
    let _ = settle::<Target>(ctx, &mut tree, &parse_path("target"), &mut st);
    if let Some(scenario) = settle::<Scenario>(ctx, &mut tree, &[], &mut st) {
        let mut cut: Vec<(Vec<Seg>, bool)> = st
            .cut
            .iter()
            .map(|c| {
                let path = parse_path(c);
                let extracts = matches!(path.first(), Some(Seg::Key(k)) if k == "requests")
                    && path.len() >= 2
                    && ctx
                        .value(&join(&path[..2], vec![Seg::Key("extract".into())]))
                        .is_some();
                (path, extracts)
            })
            .collect();
        if st.failed && cut.is_empty() {
            // A type error whose value could not be cut: nothing after it is reliable.
            cut.push((Vec::new(), true));
        }
        ctx.remap = st.live;
        return Some(Parsed {
            scenario,
            cut: Cuts(cut),
        });
    }
    // serde names only the first missing top-level key.
    for required in ["name", "target"] {
        if !ctx.root.iter().any(|(k, _)| k.get_ref() == required) {
            let msg = format!("missing field `{required}`");
            ctx.at_span(0..0, "", humanize(&msg).0, missing_root_hint(&msg));
        }
    }
    None
}

/// What the cut-and-retry rounds share.
#[derive(Default)]
struct Rounds {
    /// For each array (by its path in the file) that lost elements: the file indexes of
    /// the elements left.
    live: HashMap<String, Vec<usize>>,
    /// File paths of the values cut out.
    cut: HashSet<String>,
    unknown_seen: HashSet<String>,
    /// A type error was reported: the scenario is not returned.
    failed: bool,
}

/// Deserialize the value at `base` (a path in the cut tree) as `T`, reporting unknown
/// keys and every type error, cutting out each value with a type error until it goes
/// through. None when it does not; a value under the root that cannot go through is
/// itself cut out.
fn settle<T: DeserializeOwned>(
    ctx: &mut Ctx<'_>,
    tree: &mut Spanned<DeValue<'_>>,
    base: &[Seg],
    st: &mut Rounds,
) -> Option<T> {
    for _ in 0..MAX_ROUNDS {
        let (res, unknown) = deserialize::<T>(node_at(tree, base)?);
        for u in unknown {
            let orig = to_file_path(&join(base, u), &st.live);
            if st.unknown_seen.insert(show_path(&orig)) {
                unknown_key(ctx, &orig);
            }
        }
        let e = match res {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        st.failed = true;
        let here = join(base, error_path(e.path()));
        let orig = to_file_path(&here, &st.live);
        let caused_by_cut = e
            .inner()
            .message()
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
            .is_some_and(|k| {
                st.cut
                    .contains(&show_path(&join(&orig, vec![Seg::Key(k.to_string())])))
            });
        if !caused_by_cut {
            type_error(ctx, &orig, e.into_inner());
        }
        if here.is_empty() || !cut_out(tree, &here, &orig, &mut st.live) {
            break;
        }
        st.cut.insert(show_path(&orig));
        if here.len() <= base.len() {
            break;
        }
    }
    None
}

/// Settle each element of the array at `array` as a `T`, last to first (so cutting one
/// out keeps the indexes of those still to settle).
fn settle_each<T: DeserializeOwned>(
    ctx: &mut Ctx<'_>,
    tree: &mut Spanned<DeValue<'_>>,
    array: &str,
    st: &mut Rounds,
) {
    let path = parse_path(array);
    let n = match node_at(tree, &path).map(|v| v.get_ref()) {
        Some(DeValue::Array(a)) => a.len(),
        _ => return,
    };
    for i in (0..n).rev() {
        let _ = settle::<T>(ctx, tree, &join(&path, vec![Seg::Index(i)]), st);
    }
}

/// The value at `path` in the (cut) tree.
fn node_at<'t, 'a>(
    tree: &'t Spanned<DeValue<'a>>,
    path: &[Seg],
) -> Option<&'t Spanned<DeValue<'a>>> {
    let mut node = tree;
    for seg in path {
        node = match (seg, node.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// `[[faults]]` is tagged by `kind`, which serde can only read by buffering the table:
/// inside it serde_ignored sees no unknown key and a type error loses its key. So each
/// fault table is first checked here as its kind's struct: keys that are not its kind's
/// are reported (and cut out), then the table is settled like the rest of the file.
/// Last to first, so cutting a fault out keeps the indexes of those still to check.
fn settle_faults(ctx: &mut Ctx<'_>, tree: &mut Spanned<DeValue<'_>>, st: &mut Rounds) {
    let faults = vec![Seg::Key("faults".into())];
    let n = match node_at(tree, &faults).map(|v| v.get_ref()) {
        Some(DeValue::Array(a)) => a.len(),
        _ => return,
    };
    let all_keys = all_fault_keys();
    for i in (0..n).rev() {
        let base = join(&faults, vec![Seg::Index(i)]);
        let (kind, keys) = match node_at(tree, &base).map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => {
                let kind = t.get("kind").and_then(|v| match v.get_ref() {
                    DeValue::String(s) => FaultKind::ALL.iter().copied().find(|k| k.as_str() == s),
                    _ => None,
                });
                let keys: Vec<String> = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
                (kind, keys)
            }
            _ => continue,
        };
        let allowed = match kind {
            Some(k) => fault_keys(k),
            None => all_keys.clone(),
        };
        for key in keys {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let path = join(&base, vec![Seg::Key(key.clone())]);
            match kind {
                Some(k) if all_keys.contains(&key.as_str()) => {
                    let own: Vec<&str> = allowed
                        .iter()
                        .copied()
                        .filter(|f| !COMMON_FAULT_KEYS.contains(f))
                        .collect();
                    let takes = if own.is_empty() {
                        format!("`{}` takes no keys of its own", k.as_str())
                    } else {
                        format!("`{}` takes: {}", k.as_str(), own.join(", "))
                    };
                    ctx.at_key(
                        &show_path(&path),
                        format!("`{key}` does not apply to a `{}` fault", k.as_str()),
                        Some(takes),
                    );
                }
                _ => unknown_key_among(ctx, &path, &allowed),
            }
            st.unknown_seen.insert(show_path(&path));
            let _ = cut_out(tree, &path, &path, &mut st.live);
        }
        if let Some(k) = kind {
            // The tag is not a field of the kind's struct.
            st.unknown_seen
                .insert(show_path(&join(&base, vec![Seg::Key("kind".into())])));
            k.with_spec_type(&mut SettleKind {
                ctx: &mut *ctx,
                tree: &mut *tree,
                base: &base,
                st: &mut *st,
            });
        }
    }
}

struct SettleKind<'c, 'a, 't, 'b> {
    ctx: &'c mut Ctx<'a>,
    tree: &'t mut Spanned<DeValue<'b>>,
    base: &'t [Seg],
    st: &'t mut Rounds,
}

impl SpecTypeVisitor for SettleKind<'_, '_, '_, '_> {
    type Out = ();
    fn visit<T: DeserializeOwned + 'static>(&mut self) {
        let _ = settle::<T>(self.ctx, self.tree, self.base, self.st);
    }
}

struct FieldsOf;

impl SpecTypeVisitor for FieldsOf {
    type Out = &'static [&'static str];
    fn visit<T: DeserializeOwned + 'static>(&mut self) -> Self::Out {
        fields_of::<T>()
    }
}

/// The keys a fault of `kind` takes, `kind` included.
fn fault_keys(kind: FaultKind) -> Vec<&'static str> {
    let mut keys = vec!["kind"];
    keys.extend(kind.with_spec_type(&mut FieldsOf));
    keys
}

/// The keys some fault takes.
fn all_fault_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = Vec::new();
    for k in FaultKind::ALL {
        for f in fault_keys(*k) {
            if !keys.contains(&f) {
                keys.push(f);
            }
        }
    }
    keys
}

fn missing_root_hint(msg: &str) -> Option<String> {
    match msg {
        "missing field `name`" => Some("add `name = \"...\"` at the top of the file".into()),
        "missing field `target`" => {
            Some("add a [target] table with base_url and allow_hosts".into())
        }
        _ => None,
    }
}

/// A path in the (cut) tree, with the file's array indexes.
fn to_file_path(path: &[Seg], live: &HashMap<String, Vec<usize>>) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(path.len());
    for seg in path {
        match seg {
            Seg::Index(i) => {
                let idx = live
                    .get(&show_path(&out))
                    .and_then(|l| l.get(*i).copied())
                    .unwrap_or(*i);
                out.push(Seg::Index(idx));
            }
            k => out.push(k.clone()),
        }
    }
    out
}

/// Remove the value at `here` from the tree; false when there is nothing to remove.
fn cut_out(
    tree: &mut Spanned<DeValue<'_>>,
    here: &[Seg],
    orig: &[Seg],
    live: &mut HashMap<String, Vec<usize>>,
) -> bool {
    let Some((last, parent)) = here.split_last() else {
        return false;
    };
    let mut node = tree;
    for seg in parent {
        let next = match (seg, node.get_mut()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get_mut(k.as_str()),
            (Seg::Index(i), DeValue::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node.get_mut()) {
        (Seg::Key(k), DeValue::Table(t)) => t.remove(k.as_str()).is_some(),
        (Seg::Index(i), DeValue::Array(a)) if *i < a.len() => {
            let len = a.len();
            let kept: DeArray<'_> = a
                .iter()
                .enumerate()
                .filter(|(j, _)| j != i)
                .map(|(_, v)| v.clone())
                .collect();
            *a = kept;
            let key = show_path(&orig[..orig.len() - 1]);
            let l = live.entry(key).or_insert_with(|| (0..len).collect());
            if *i < l.len() {
                l.remove(*i);
            }
            true
        }
        _ => false,
    }
}

fn deserialize<T: DeserializeOwned>(
    v: &Spanned<DeValue<'_>>,
) -> (Result<T, DeError>, Vec<Vec<Seg>>) {
    let mut unknown = Vec::new();
    let mut cb = |p: serde_ignored::Path| unknown.push(ignored_path(&p));
    let de = serde_ignored::Deserializer::new(ValueDeserializer::from(v.clone()), &mut cb);
    let r = serde_path_to_error::deserialize(de);
    (r, unknown)
}

fn ignored_path(p: &serde_ignored::Path) -> Vec<Seg> {
    use serde_ignored::Path as P;
    match p {
        P::Root => Vec::new(),
        P::Seq { parent, index } => {
            let mut v = ignored_path(parent);
            v.push(Seg::Index(*index));
            v
        }
        P::Map { parent, key } => {
            let mut v = ignored_path(parent);
            v.push(Seg::Key(key.clone()));
            v
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

fn error_path(p: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment as S;
    p.iter()
        .filter_map(|s| match s {
            S::Seq { index } => Some(Seg::Index(*index)),
            S::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        })
        .collect()
}

fn join(base: &[Seg], rest: Vec<Seg>) -> Vec<Seg> {
    let mut v = base.to_vec();
    v.extend(rest);
    v
}

/// Report a type error at `path` (the file's key path).
fn type_error(ctx: &mut Ctx<'_>, path: &[Seg], inner: toml::de::Error) {
    let path = path.to_vec();
    let msg = inner.message().to_string();
    let key = show_path(&path);
    let span = inner.span().unwrap_or_else(|| ctx.find(&path).value);

    // Untagged enums only say "did not match any variant": say what is expected, and
    // for a think-time range check its bounds one by one.
    if msg.contains("untagged enum ThinkTime") {
        if let Some(v) = ctx.value(&path).cloned() {
            match v.get_ref() {
                DeValue::Table(t) => {
                    let mut reported = false;
                    for bound in ["min", "max"] {
                        match t.iter().find(|(k, _)| k.get_ref() == bound) {
                            None => {
                                ctx.at_span(
                                    span.clone(),
                                    &key,
                                    format!("missing key `{bound}`"),
                                    Some(
                                        "write a range like { min = \"50ms\", max = \"200ms\" }"
                                            .into(),
                                    ),
                                );
                                reported = true;
                            }
                            Some((_, bv)) => {
                                let (r, _) = deserialize::<HumanDuration>(bv);
                                if let Err(e) = r {
                                    type_error(
                                        ctx,
                                        &join(&path, vec![Seg::Key(bound.into())]),
                                        e.into_inner(),
                                    );
                                    reported = true;
                                }
                            }
                        }
                    }
                    if reported {
                        return;
                    }
                }
                DeValue::String(_) => {
                    let (r, _) = deserialize::<HumanDuration>(&v);
                    if let Err(e) = r {
                        type_error(ctx, &path, e.into_inner());
                        return;
                    }
                }
                _ => {}
            }
        }
        let found = ctx
            .value(&path)
            .map(|v| describe(v.get_ref()))
            .unwrap_or_default();
        ctx.at_span(
            span,
            &key,
            format!("expected a duration like \"100ms\" or a range like {{ min = \"50ms\", max = \"200ms\" }}{found}"),
            None,
        );
        return;
    }
    if msg.contains("untagged enum StatusCheck") {
        let found = ctx
            .value(&path)
            .map(|v| describe(v.get_ref()))
            .unwrap_or_default();
        ctx.at_span(
            span,
            &key,
            format!("expected a status code like 201, a list like [200, 201] or a class like \"2xx\"{found}"),
            None,
        );
        return;
    }
    let (message, mut hint) = humanize(&msg);
    if path.is_empty() {
        hint = hint.or_else(|| missing_root_hint(&msg));
    }
    ctx.at_span(span, &key, message, hint);
}

/// ", found integer `30`" for messages about a value of the wrong shape.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!(", found string \"{s}\""),
        DeValue::Integer(i) => format!(", found integer `{}`", i.as_str()),
        DeValue::Float(x) => format!(", found float `{}`", x.as_str()),
        DeValue::Boolean(b) => format!(", found boolean `{b}`"),
        DeValue::Datetime(d) => format!(", found datetime `{d}`"),
        DeValue::Array(_) => ", found an array".into(),
        DeValue::Table(_) => ", found a table".into(),
    }
}

/// serde's wording, in the file's terms.
fn humanize(msg: &str) -> (String, Option<String>) {
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return (format!("missing key {rest}"), None);
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        // "`clsed`, expected `closed` or `open`"
        let mut ticks = rest.split('`').skip(1).step_by(2);
        let found = ticks.next().unwrap_or("");
        let valid: Vec<&str> = ticks.collect();
        let hint = closest(found, valid.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        let list = valid
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return (
            format!("unknown value `{found}`; expected one of {list}"),
            hint,
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                return (
                    format!("expected {}, found {found}", expected_words(expected)),
                    None,
                );
            }
        }
    }
    if msg.starts_with("invalid length") {
        return (msg.to_string(), None);
    }
    (msg.to_string(), None)
}

fn expected_words(e: &str) -> String {
    match e {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" => "a whole number, 0 or more".into(),
        "i64" | "i32" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        e if e.starts_with("struct ") || e.starts_with("internally tagged enum ") => {
            "a table".into()
        }
        "variant identifier" => "a string naming one of its allowed values".into(),
        e => e.to_string(),
    }
}

/// `load.think_time` is an untagged enum, so serde_ignored cannot see into its table.
fn check_think_time_keys(ctx: &mut Ctx<'_>) {
    let keys: Vec<String> = match ctx
        .value(&parse_path("load.think_time"))
        .map(|v| v.get_ref())
    {
        Some(DeValue::Table(t)) => t.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
        _ => return,
    };
    for k in keys {
        if k != "min" && k != "max" {
            unknown_key(
                ctx,
                &parse_path(&format!("load.think_time.{}", show_path(&[Seg::Key(k)]))),
            );
        }
    }
}

fn unknown_key(ctx: &mut Ctx<'_>, path: &[Seg]) {
    let Some((_, parent)) = path.split_last() else {
        return;
    };
    unknown_key_among(ctx, path, &known_keys(parent));
}

/// Report the unknown key at `path`; `known` are the keys its table may hold.
fn unknown_key_among(ctx: &mut Ctx<'_>, path: &[Seg], known: &[&'static str]) {
    let Some((Seg::Key(last), parent)) = path.split_last() else {
        return;
    };
    let top = fields_of::<Scenario>();
    let hint = if !parent.is_empty()
        && top.contains(&last.as_str())
        && !known.contains(&last.as_str())
    {
        let table = match parent.first() {
            Some(Seg::Key(k))
                if matches!(
                    ctx.value(&parent[..1]).map(|v| v.get_ref()),
                    Some(DeValue::Array(_))
                ) =>
            {
                format!("[[{k}]]")
            }
            Some(Seg::Key(k)) => format!("[{k}]"),
            _ => "a table".into(),
        };
        let first = first_header(ctx)
            .map(|(line, text)| format!(" (`{text}` on line {line})"))
            .unwrap_or_default();
        Some(format!(
            "`{last}` is a top-level key, but here it belongs to {table}: in TOML every key after a \
             [table] header goes into that table. Top-level keys must come before the first [table]; \
             move it above the first table header{first}"
        ))
    } else if matches!(parent.first(), Some(Seg::Key(k)) if k == "requests")
        && matches!(
            last.as_str(),
            "expect" | "messages" | "send" | "hold" | "subprotocol"
        )
    {
        Some(format!(
            "`{last}` belongs to a WebSocket user: [[requests]] are HTTP; put it in a [[ws]] entry \
             (messages = [{{ send = \"...\", expect = {{ contains = \"...\" }} }}])"
        ))
    } else if let Some(s) = closest(last, known.iter().copied()) {
        Some(format!("did you mean `{s}`?"))
    } else if !known.is_empty() {
        Some(format!("valid keys here: {}", known.join(", ")))
    } else {
        None
    };
    ctx.at_key(&show_path(path), "unknown key", hint);
}

/// Line number and text of the first `[table]` or `[[array]]` header.
fn first_header(ctx: &Ctx<'_>) -> Option<(usize, String)> {
    let start = ctx
        .root
        .iter()
        .filter(|(k, v)| v.span().start < k.span().start)
        .map(|(_, v)| v.span().start)
        .min()?;
    let d = ctx.diagnostic(start..start, "", String::new(), None);
    Some((d.line, d.source_line.unwrap_or_default().trim().to_string()))
}

/// The keys a table at `parent` may hold.
fn known_keys(parent: &[Seg]) -> Vec<&'static str> {
    let shape: Vec<&str> = parent
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let indexed = |n: usize| matches!(parent.get(n), Some(Seg::Index(_)));
    match shape.as_slice() {
        [] => fields_of::<Scenario>().to_vec(),
        ["target"] => fields_of::<Target>().to_vec(),
        ["target", "tls"] => fields_of::<TlsSpec>().to_vec(),
        ["targets", _] => fields_of::<NamedTarget>().to_vec(),
        ["targets", _, "tls"] => fields_of::<TlsSpec>().to_vec(),
        ["load"] => fields_of::<LoadSpec>().to_vec(),
        ["load", "stages"] => fields_of::<StageSpec>().to_vec(),
        ["load", "think_time"] => vec!["min", "max"],
        ["services"] if indexed(1) => fields_of::<ServiceSpec>().to_vec(),
        ["services", "health"] => fields_of::<HealthSpec>().to_vec(),
        ["services", "restart"] => fields_of::<RestartSpec>().to_vec(),
        ["services", "proxy"] => fields_of::<ProxySpec>().to_vec(),
        ["requests"] if indexed(1) => fields_of::<RequestSpec>().to_vec(),
        ["requests", "extract"] => fields_of::<ExtractSpec>().to_vec(),
        ["requests", "checks"] => fields_of::<CheckSpec>().to_vec(),
        ["flows"] if indexed(1) => fields_of::<FlowSpec>().to_vec(),
        ["ws"] if indexed(1) => fields_of::<WsSpec>().to_vec(),
        ["ws", "messages"] => fields_of::<WsMessageSpec>().to_vec(),
        ["ws", "messages", "expect"] => fields_of::<WsExpectSpec>().to_vec(),
        ["ws", "messages", "extract"] => fields_of::<WsExtractSpec>().to_vec(),
        ["faults"] if indexed(1) => all_fault_keys(),
        _ => Vec::new(),
    }
}

/// The field names of a struct, as its `Deserialize` impl declares them.
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Grab(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Grab {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut g = Grab(None);
    let _ = T::deserialize(&mut g);
    g.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_keys_come_from_each_kinds_struct() {
        let kill = fault_keys(FaultKind::Kill);
        assert_eq!(&kill[..COMMON_FAULT_KEYS.len()], &COMMON_FAULT_KEYS[..]);
        assert_eq!(
            &kill[COMMON_FAULT_KEYS.len()..],
            &["signal", "restart_after"]
        );
        assert_eq!(
            fault_keys(FaultKind::Restart).len(),
            COMMON_FAULT_KEYS.len()
        );
        let all = all_fault_keys();
        for k in ["latency", "size", "workers", "url", "duration"] {
            assert!(all.contains(&k), "{k}");
        }
    }

    #[test]
    fn field_lists_come_from_the_model() {
        let f = fields_of::<LoadSpec>();
        assert!(f.contains(&"think_time") && f.contains(&"stages"), "{f:?}");
        assert!(fields_of::<Scenario>().contains(&"criteria"));
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn serde_messages_in_the_files_terms() {
        assert_eq!(humanize("missing field `stages`").0, "missing key `stages`");
        let (m, h) = humanize("unknown variant `clsed`, expected `closed` or `open`");
        assert_eq!(m, "unknown value `clsed`; expected one of `closed`, `open`");
        assert_eq!(h.as_deref(), Some("did you mean `closed`?"));
        assert_eq!(
            humanize("invalid type: string \"x\", expected u32").0,
            "expected a whole number from 0 to 4294967295, found string \"x\""
        );
    }
}
