//! The JSON Schema of scenario files, generated from the model types (their doc comments
//! are the descriptions): `gauntlet schema`, checked in as `schemas/scenario.schema.json`
//! for editors (`#:schema ../schemas/scenario.schema.json` on a file's first line).

use super::Scenario;

/// The schema, pretty JSON with a final newline.
pub fn json() -> String {
    // An unknown key is an error of the parser (with a "did you mean"), so the schema
    // closes every table it describes: the editor flags the same keys.
    fn closed(s: &mut schemars::Schema) {
        let open = s.get("additionalProperties").is_none() && s.get("$ref").is_none();
        if s.get("properties").is_some() && open {
            s.insert("additionalProperties".into(), false.into());
        }
    }
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(schemars::transform::RecursiveTransform(closed))
        .into_generator()
        .into_root_schema_for::<Scenario>();
    schema.insert("title".into(), "gauntlet scenario".into());
    schema.insert(
        "$id".into(),
        "https://github.com/gauntlet/gauntlet/schemas/scenario.schema.json".into(),
    );
    let mut value = schema.to_value();
    inline_tagged(&mut value);
    let mut out = serde_json::to_string_pretty(&value).expect("a schema always serializes");
    out.push('\n');
    out
}

/// A fault is a table tagged by `kind`: schemars writes each variant as `{ properties:
/// { kind }, $ref: <its struct> }`, where a closed struct would refuse `kind` and the
/// variant could not be closed. Each such variant gets its struct's keys inlined (and
/// is closed), and the struct's own definition goes.
fn inline_tagged(root: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(defs) = root.get("$defs").cloned() else {
        return;
    };
    let mut inlined = Vec::new();
    fn walk(v: &mut Value, defs: &Value, inlined: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                let target = o
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .map(String::from);
                if let (Some(name), true) = (target, o.contains_key("properties")) {
                    if let Some(def) = defs.get(&name).and_then(Value::as_object) {
                        o.remove("$ref");
                        for (k, dv) in def {
                            match (k.as_str(), o.get_mut(k)) {
                                ("properties", Some(Value::Object(p))) => {
                                    if let Value::Object(dp) = dv {
                                        p.extend(dp.clone());
                                    }
                                }
                                ("required", Some(Value::Array(r))) => {
                                    if let Value::Array(dr) = dv {
                                        r.extend(dr.iter().cloned());
                                    }
                                }
                                (_, Some(_)) => {}
                                (_, None) => {
                                    o.insert(k.clone(), dv.clone());
                                }
                            }
                        }
                        inlined.push(name);
                    }
                }
                for (_, child) in o.iter_mut() {
                    walk(child, defs, inlined);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, defs, inlined)),
            _ => {}
        }
    }
    walk(root, &defs, &mut inlined);
    if let Some(Value::Object(d)) = root.get_mut("$defs") {
        for name in inlined {
            d.remove(&name);
        }
    }
}
