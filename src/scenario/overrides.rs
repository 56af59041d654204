//! One scenario file, every environment. Before the file is parsed, its text gets:
//! `${VAR}` / `${VAR:-default}` filled in (from `--set vars.NAME=...`, the environment,
//! `--vars FILE`'s `[vars]`, the scenario's `[vars]`, then the `:-default`, in that
//! order), then the key paths of `--vars FILE` and `--set PATH=VALUE` (dotted key paths
//! with `[n]` indexes, the value read as TOML, else as a string), then `--scale-time`.
//! All of it is applied to the text, so every later message still has a line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{DocumentMut, Item, Value};

use super::Diagnostic;

/// What the command line adds to a scenario file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `PATH=VALUE`, in the order given (a later one wins).
    pub sets: Vec<(String, String)>,
    /// `--vars FILE`: one environment's values (key paths and a `[vars]` table).
    pub vars_file: Option<PathBuf>,
    /// `--scale-time F`: every duration of the timeline multiplied by F.
    pub scale_time: Option<f64>,
}

/// A variable as declared: its value (`None`: none given) and whether it is secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Var {
    pub value: Option<String>,
    pub secret: bool,
}

/// A scalar as the text `${NAME}` puts in the file; `None` for a table or an array.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.value().clone()),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Float(f) => Some(f.value().to_string()),
        Value::Boolean(b) => Some(b.value().to_string()),
        _ => None,
    }
}

/// `NAME = value` or `NAME = { default = value, secret = true }`; `Err` says what is wrong.
fn read_var(item: &Item) -> Result<Var, String> {
    if let Some(v) = item.as_value().and_then(scalar_text) {
        return Ok(Var {
            value: Some(v),
            secret: false,
        });
    }
    let Some(t) = item.as_table_like() else {
        return Err("a variable is a value, or { default = value, secret = true }".into());
    };
    let mut var = Var::default();
    for (k, v) in t.iter() {
        match k {
            "default" | "value" => {
                var.value = Some(
                    v.as_value()
                        .and_then(scalar_text)
                        .ok_or_else(|| format!("`{k}` is text, a number or a boolean"))?,
                )
            }
            "secret" => {
                var.secret = v
                    .as_value()
                    .and_then(Value::as_bool)
                    .ok_or("`secret` is true or false")?
            }
            other => return Err(format!("unknown key `{other}`: write default and secret")),
        }
    }
    Ok(var)
}

/// The scenario's own `[vars]`, read leniently (the parser reports what does not fit).
/// `${...}` is filled with a neutral value first, so a file that only parses once
/// filled in still gives its variables.
pub(super) fn scenario_vars(text: &str) -> BTreeMap<String, Var> {
    let neutral = interpolate(Path::new(""), text, |_| Some("0".into()));
    let doc = neutral.ok().and_then(|t| t.parse::<DocumentMut>().ok());
    let mut out = BTreeMap::new();
    if let Some(t) = doc
        .as_ref()
        .and_then(|d| d.get("vars"))
        .and_then(Item::as_table_like)
    {
        for (k, v) in t.iter() {
            if let Ok(var) = read_var(v) {
                out.insert(k.to_string(), var);
            }
        }
    }
    out
}

/// The scenario's top-level `secrets = ["NAME", ...]`: variables (usually from the
/// environment) whose values are masked, read leniently like [`scenario_vars`].
pub(super) fn scenario_secret_names(text: &str) -> Vec<String> {
    let neutral = interpolate(Path::new(""), text, |_| Some("0".into()));
    let doc = neutral.ok().and_then(|t| t.parse::<DocumentMut>().ok());
    doc.as_ref()
        .and_then(|d| d.get("secrets"))
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `--vars FILE`, read: its `[vars]` and its key paths with their values.
#[derive(Debug, Default)]
pub(super) struct VarsFile {
    pub path: PathBuf,
    pub vars: BTreeMap<String, Var>,
    pub sets: Vec<(String, Value)>,
}

/// Read `--vars FILE`: `[vars]` gives variables; every other key is a key path of the
/// scenario (`target.base_url = "..."`, `[load]` then `max_in_flight = 50`, or a quoted
/// path with indexes: `"load.stages[1].users" = 50`) set to its value. An inline table
/// or an array is one value.
pub(super) fn read_vars_file(path: &Path) -> Result<VarsFile, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![diag(
            path,
            "",
            format!("cannot read the --vars file: {e}"),
            None,
        )]
    })?;
    let doc = text.parse::<DocumentMut>().map_err(|e| {
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let line = text[..at].matches('\n').count() + 1;
        let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
        let column = text[line_start..at].chars().count() + 1;
        vec![Diagnostic {
            line,
            column,
            source_line: text[line_start..].lines().next().map(String::from),
            caret: column,
            ..diag(
                path,
                "",
                format!("invalid TOML: {}", e.message().trim()),
                None,
            )
        }]
    })?;
    let mut out = VarsFile {
        path: path.to_path_buf(),
        ..VarsFile::default()
    };
    let mut problems = Vec::new();
    for (k, item) in doc.iter() {
        if k == "vars" {
            match item.as_table_like() {
                Some(t) => {
                    for (name, v) in t.iter() {
                        match read_var(v) {
                            Ok(var) => {
                                out.vars.insert(name.to_string(), var);
                            }
                            Err(why) => {
                                problems.push(diag(path, &format!("vars.{name}"), why, None))
                            }
                        }
                    }
                }
                None => problems.push(diag(
                    path,
                    "vars",
                    "`vars` is a table of variables: [vars] then NAME = value".into(),
                    None,
                )),
            }
            continue;
        }
        flatten(path, k, item, &mut out.sets, &mut problems);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn flatten(
    file: &Path,
    at: &str,
    item: &Item,
    out: &mut Vec<(String, Value)>,
    problems: &mut Vec<Diagnostic>,
) {
    match item {
        Item::Value(v) => out.push((at.to_string(), v.clone())),
        Item::Table(t) => {
            for (k, v) in t.iter() {
                flatten(file, &format!("{at}.{k}"), v, out, problems);
            }
        }
        Item::ArrayOfTables(_) => problems.push(diag(
            file,
            at,
            "an array of tables cannot be merged into the scenario".into(),
            Some(format!(
                "set one entry's keys by path, e.g. \"{at}[0].name\" = \"...\""
            )),
        )),
        Item::None => {}
    }
}

/// Where a value set on the scenario comes from, for messages.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Origin {
    CommandLine,
    VarsFile(PathBuf),
}

/// One key path set to a value.
#[derive(Debug, Clone)]
pub(super) struct SetOp {
    pub origin: Origin,
    pub path: String,
    pub value: Value,
}

impl SetOp {
    /// `--set PATH=VALUE`, its value read as TOML, else as a string.
    pub fn command_line(path: &str, value: &str) -> SetOp {
        SetOp {
            origin: Origin::CommandLine,
            path: path.to_string(),
            value: value_of(value),
        }
    }

    /// The value as a variable's text (`--set vars.NAME=...`).
    pub fn text(&self) -> Option<String> {
        scalar_text(&self.value)
    }
}

fn diag(file: &Path, key: &str, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        key: key.into(),
        message,
        hint,
        source_line: None,
        caret: 0,
        width: 1,
    }
}

/// `${NAME}` and `${NAME:-default}` replaced from `env`; `$${` stays a literal `${`. A
/// value goes in escaped for a double-quoted TOML string (`"` and `\`), where variables
/// belong. An unset variable without a default is a problem at its line and column.
pub fn interpolate(
    file: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<Diagnostic>> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let (mut out, mut problems) = (String::with_capacity(text.len()), Vec::new());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let offset = text.len() - rest.len() + i;
        let here = |message: String, hint: Option<String>| {
            let line = text[..offset].matches('\n').count() + 1;
            let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
            let column = text[line_start..offset].chars().count() + 1;
            Diagnostic {
                line,
                column,
                source_line: text[line_start..].lines().next().map(String::from),
                caret: column,
                width: inner.chars().count() + 3,
                ..diag(file, "", message, hint)
            }
        };
        match (valid, env(name).or(default.map(String::from))) {
            (false, _) => problems.push(here(
                format!("`${{{inner}}}` is not a variable reference"),
                Some("write ${NAME} or ${NAME:-default} (letters, digits, _), or $${ for a literal ${".into()),
            )),
            (true, Some(v)) => out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\"")),
            (true, None) => problems.push(here(
                format!("variable `{name}` is not set (not in the environment, --vars or [vars])"),
                Some(format!("export {name}=..., give it in [vars] (or a --vars file), or a default: ${{{name}:-value}}")),
            )),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One step of a key path: a key, or an index into an array.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_steps(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut idx) = match part.find('[') {
            Some(b) => (&part[..b], &part[b..]),
            None => (part, ""),
        };
        if key.is_empty() {
            return None;
        }
        steps.push(Step::Key(key.to_string()));
        while let Some(r) = idx.strip_prefix('[') {
            let close = r.find(']')?;
            steps.push(Step::Index(r[..close].trim().parse().ok()?));
            idx = &r[close + 1..];
        }
        if !idx.is_empty() {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// The value as TOML (`5000`, `"text"`, `true`, `["a"]`, `{ min = "1s" }`), else the text
/// as a string (`--set target.base_url=https://staging.example.com`).
fn value_of(text: &str) -> Value {
    text.trim()
        .parse::<Value>()
        .unwrap_or_else(|_| Value::from(text))
}

/// Apply `--set` overrides to the scenario text. Each problem names its path.
#[cfg(test)]
pub fn apply_sets(
    file: &Path,
    text: &str,
    sets: &[(String, String)],
) -> Result<String, Vec<Diagnostic>> {
    let ops: Vec<SetOp> = sets
        .iter()
        .map(|(p, v)| SetOp::command_line(p, v))
        .collect();
    edit(file, text, &ops, None).map(|(t, _)| t)
}

/// Apply the key paths set (in order: a later one wins), then scale the timeline by
/// `scale` (see [`scale_time`]). Each problem names its path, and the `--vars` file it
/// comes from. Also returns the key paths that were scaled.
pub(super) fn edit(
    file: &Path,
    text: &str,
    ops: &[SetOp],
    scale: Option<f64>,
) -> Result<(String, Vec<String>), Vec<Diagnostic>> {
    if ops.is_empty() && scale.is_none() {
        return Ok((text.to_string(), Vec::new()));
    }
    // A file that does not parse is reported by the normal pipeline, with positions.
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok((text.to_string(), Vec::new()));
    };
    let mut problems = Vec::new();
    for op in ops {
        let (from, key) = match &op.origin {
            Origin::CommandLine => (file, format!("--set {}", op.path)),
            Origin::VarsFile(f) => (f.as_path(), op.path.clone()),
        };
        let Some(steps) = path_steps(&op.path) else {
            problems.push(diag(
                from,
                &key,
                format!("`{}` is not a key path", op.path),
                Some("write it like load.stages[1].users or target.base_url".into()),
            ));
            continue;
        };
        if let Err(why) = set(doc.as_item_mut(), &steps, op.value.clone()) {
            problems.push(diag(from, &key, why, None));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let scaled = match scale {
        Some(f) => scale_time(&mut doc, f),
        None => Vec::new(),
    };
    Ok((doc.to_string(), scaled))
}

/// The keys of a fault that are places on the timeline (scaled by `--scale-time`).
const FAULT_TIME_KEYS: [&str; 4] = ["at", "duration", "every", "restart_after"];

/// `--scale-time F`: the run's timeline multiplied by F: the scenario's `duration` and
/// `cooldown`, every load stage's `duration`, every fault's `at`, `duration`, `every` and
/// `restart_after`. What a request or a probe takes (think time, timeouts, intervals,
/// health startup) is not the timeline and keeps its value. A value that is not a
/// duration is left for the parser to report. Returns the paths scaled.
pub(super) fn scale_time(doc: &mut DocumentMut, f: f64) -> Vec<String> {
    let mut scaled = Vec::new();
    let root = doc.as_table_mut();
    for key in ["duration", "cooldown"] {
        if let Some(v) = root.get_mut(key).and_then(Item::as_value_mut) {
            if scale_value(v, f) {
                scaled.push(key.to_string());
            }
        }
    }
    fn each(item: Option<&mut Item>, at: &str, keys: &[&str], f: f64, scaled: &mut Vec<String>) {
        let mut tables: Vec<&mut dyn toml_edit::TableLike> = Vec::new();
        match item {
            Some(Item::ArrayOfTables(aot)) => {
                tables.extend(aot.iter_mut().map(|t| t as &mut dyn toml_edit::TableLike))
            }
            Some(Item::Value(Value::Array(arr))) => tables.extend(
                arr.iter_mut()
                    .filter_map(Value::as_inline_table_mut)
                    .map(|t| t as &mut dyn toml_edit::TableLike),
            ),
            _ => {}
        }
        for (i, t) in tables.into_iter().enumerate() {
            for key in keys {
                if let Some(v) = t.get_mut(key).and_then(Item::as_value_mut) {
                    if scale_value(v, f) {
                        scaled.push(format!("{at}[{i}].{key}"));
                    }
                }
            }
        }
    }
    let stages = root
        .get_mut("load")
        .and_then(Item::as_table_like_mut)
        .and_then(|l| l.get_mut("stages"));
    each(stages, "load.stages", &["duration"], f, &mut scaled);
    each(
        root.get_mut("faults"),
        "faults",
        &FAULT_TIME_KEYS,
        f,
        &mut scaled,
    );
    scaled
}

/// A duration string multiplied by `f`, to the millisecond; false when `v` is not one.
fn scale_value(v: &mut Value, f: f64) -> bool {
    let Some(d) = v
        .as_str()
        .and_then(|s| humantime::parse_duration(s.trim()).ok())
    else {
        return false;
    };
    let ms = (d.as_secs_f64() * 1000.0 * f).round();
    // Beyond u64 milliseconds: left as a duration too long, which the bounds report.
    let scaled = Duration::from_millis(if ms >= u64::MAX as f64 {
        u64::MAX
    } else {
        ms as u64
    });
    let decor = v.decor().clone();
    *v = Value::from(humantime::format_duration(scaled).to_string());
    *v.decor_mut() = decor;
    true
}

/// `--scale-time F`, checked: `0 < F <= MAX_SCALE_TIME`.
pub fn parse_scale_time(s: &str) -> Result<f64, String> {
    let max = super::bounds::MAX_SCALE_TIME;
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= max => Ok(f),
        _ => Err(format!(
            "`{s}`: --scale-time is a factor above 0 and at most {max}, e.g. 0.1 or 2"
        )),
    }
}

fn set(root: &mut Item, steps: &[Step], value: Value) -> Result<(), String> {
    set_item(root, steps, value, "")
}

fn joined(at: &str, step: &Step) -> String {
    match step {
        Step::Key(k) if at.is_empty() => k.clone(),
        Step::Key(k) => format!("{at}.{k}"),
        Step::Index(n) => format!("{at}[{n}]"),
    }
}

/// Into a table (top level, `[table]`, `[[array]]` entry or inline): the next step is a key.
fn set_in_table(
    t: &mut dyn toml_edit::TableLike,
    steps: &[Step],
    value: Value,
    at: &str,
) -> Result<(), String> {
    let Some(Step::Key(k)) = steps.first() else {
        return Err(format!("`{at}` is a table: name one of its keys"));
    };
    let here = joined(at, &steps[0]);
    if steps.len() == 1 {
        // A key may be added: `--set load.model=open` on a file that left it default.
        t.insert(k, Item::Value(value));
        return Ok(());
    }
    let child = t
        .get_mut(k)
        .ok_or_else(|| format!("the scenario has no `{here}`"))?;
    set_item(child, &steps[1..], value, &here)
}

fn set_item(item: &mut Item, steps: &[Step], value: Value, at: &str) -> Result<(), String> {
    match &steps[0] {
        Step::Key(_) => match item.as_table_like_mut() {
            Some(t) => set_in_table(t, steps, value, at),
            None => Err(format!("`{at}` is not a table")),
        },
        Step::Index(n) => {
            let here = joined(at, &steps[0]);
            if let Some(aot) = item.as_array_of_tables_mut() {
                let len = aot.len();
                let t = aot
                    .get_mut(*n)
                    .ok_or_else(|| format!("`{here}`: `{at}` has {len} entries"))?;
                return set_in_table(t, &steps[1..], value, &here);
            }
            match item.as_value_mut() {
                Some(v) => set_value(v, steps, value, at),
                None => Err(format!("`{at}` is not an array")),
            }
        }
    }
}

fn set_value(v: &mut Value, steps: &[Step], value: Value, at: &str) -> Result<(), String> {
    match &steps[0] {
        Step::Key(_) => match v.as_inline_table_mut() {
            Some(t) => set_in_table(t, steps, value, at),
            None => Err(format!("`{at}` is not a table")),
        },
        Step::Index(n) => {
            let here = joined(at, &steps[0]);
            let arr = v
                .as_array_mut()
                .ok_or_else(|| format!("`{at}` is not an array"))?;
            let len = arr.len();
            let slot = arr
                .get_mut(*n)
                .ok_or_else(|| format!("`{here}`: `{at}` has {len} items"))?;
            if steps.len() == 1 {
                *slot = value;
                Ok(())
            } else {
                set_value(slot, &steps[1..], value, &here)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "x"
[target]
base_url = "http://127.0.0.1:8080"
[load]
stages = [{ duration = "2s", users = 8 }, { duration = "10s", users = 8 }]
[[services]]
name = "api"
command = ["gauntlet", "demo", "api"]
"#;

    fn sets(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn sets_reach_tables_inline_arrays_and_arrays_of_tables() {
        let out = apply_sets(
            Path::new("f.toml"),
            FILE,
            &sets(&[
                ("load.stages[1].users", "5000"),
                ("target.base_url", "https://staging.example.com"),
                ("services[0].command[2]", "pipeline"),
                ("load.model", "\"open\""),
                ("seed", "7"),
            ]),
        )
        .unwrap();
        let v: toml::Table = out.parse().unwrap();
        assert_eq!(v["load"]["stages"][1]["users"].as_integer(), Some(5000));
        assert_eq!(
            v["target"]["base_url"].as_str(),
            Some("https://staging.example.com")
        );
        assert_eq!(v["services"][0]["command"][2].as_str(), Some("pipeline"));
        assert_eq!(v["load"]["model"].as_str(), Some("open"));
        assert_eq!(v["seed"].as_integer(), Some(7));
        // Changing a value keeps every line where it was (later messages keep their
        // positions); only an added key adds a line.
        let same = apply_sets(
            Path::new("f.toml"),
            FILE,
            &sets(&[("load.stages[0].users", "9")]),
        )
        .unwrap();
        assert_eq!(same.lines().count(), FILE.lines().count());
    }

    #[test]
    fn wrong_paths_are_named() {
        let e = apply_sets(
            Path::new("f.toml"),
            FILE,
            &sets(&[
                ("load.stages[5].users", "1"),
                ("taget.base_url", "x"),
                ("load..x", "1"),
                ("services[3].name", "x"),
            ]),
        )
        .unwrap_err();
        let m: Vec<String> = e
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        assert!(
            m[0].contains("load.stages[5]") && m[0].contains("2 items"),
            "{m:?}"
        );
        assert!(m[1].contains("no `taget`"), "{m:?}");
        assert!(m[2].contains("not a key path"), "{m:?}");
        assert!(m[3].contains("has 1 entries"), "{m:?}");
    }

    #[test]
    fn environment_variables_with_defaults_and_positions() {
        let env = |n: &str| (n == "HOST").then(|| "staging\"x".to_string());
        let out = interpolate(
            Path::new("f.toml"),
            "a = \"${HOST}\"\nb = \"${PORT:-8080}\"\nc = \"$${LITERAL}\"\n",
            env,
        )
        .unwrap();
        assert_eq!(
            out,
            "a = \"staging\\\"x\"\nb = \"8080\"\nc = \"${LITERAL}\"\n"
        );
        let e = interpolate(Path::new("f.toml"), "a = 1\nb = \"${NOPE}\"\n", env).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 6));
        assert!(e[0].message.contains("`NOPE` is not set"));
    }

    #[test]
    fn scale_time_reaches_arrays_of_tables_and_leaves_the_rest() {
        let text = r#"duration = "1m"
cooldown = "oops"
[load]
think_time = "100ms"
timeout = "2s"
[[load.stages]]
duration = "10s"
users = 1
[[load.stages]]
duration = "1m 30s"
users = 1
[[services]]
name = "api"
health = { tcp = "127.0.0.1:1", interval = "1s" }
[[faults]]
kind = "kill"
at = "5s"
every = "2s"
times = 3
"#;
        let mut doc: DocumentMut = text.parse().unwrap();
        let scaled = scale_time(&mut doc, 0.5);
        assert_eq!(
            scaled,
            [
                "duration",
                "load.stages[0].duration",
                "load.stages[1].duration",
                "faults[0].at",
                "faults[0].every"
            ]
        );
        let v: toml::Table = doc.to_string().parse().unwrap();
        assert_eq!(v["duration"].as_str(), Some("30s"));
        assert_eq!(v["cooldown"].as_str(), Some("oops"), "left for the parser");
        assert_eq!(v["load"]["stages"][1]["duration"].as_str(), Some("45s"));
        assert_eq!(v["load"]["think_time"].as_str(), Some("100ms"));
        assert_eq!(v["load"]["timeout"].as_str(), Some("2s"));
        assert_eq!(v["faults"][0]["at"].as_str(), Some("2s 500ms"));
        assert_eq!(v["faults"][0]["times"].as_integer(), Some(3));
        assert_eq!(v["services"][0]["health"]["interval"].as_str(), Some("1s"));
    }
}
