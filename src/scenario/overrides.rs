//! One scenario file, every environment: `${VAR}` / `${VAR:-default}` from the
//! environment anywhere in the file, then `--set PATH=VALUE` overrides (dotted key paths
//! with `[n]` indexes, the value read as TOML, else as a string). Both are applied to the
//! text before it is parsed, so every later message still has a line and column.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use super::Diagnostic;

/// What the command line adds to a scenario file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `PATH=VALUE`, in the order given (a later one wins).
    pub sets: Vec<(String, String)>,
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
                format!("environment variable `{name}` is not set"),
                Some(format!("export {name}=..., or give a default: ${{{name}:-value}}")),
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
pub fn apply_sets(
    file: &Path,
    text: &str,
    sets: &[(String, String)],
) -> Result<String, Vec<Diagnostic>> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    // A file that does not parse is reported by the normal pipeline, with positions.
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok(text.to_string());
    };
    let mut problems = Vec::new();
    for (path, value) in sets {
        let key = format!("--set {path}");
        let Some(steps) = path_steps(path) else {
            problems.push(diag(
                file,
                &key,
                format!("`{path}` is not a key path"),
                Some("write it like load.stages[1].users or target.base_url".into()),
            ));
            continue;
        };
        if let Err(why) = set(doc.as_item_mut(), &steps, value_of(value)) {
            problems.push(diag(file, &key, why, None));
        }
    }
    if problems.is_empty() {
        Ok(doc.to_string())
    } else {
        Err(problems)
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
}
