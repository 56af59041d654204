//! The JSON Schema of scenario files, generated from the model types (their doc comments
//! are the descriptions): `gauntlet schema`, checked in as `schemas/scenario.schema.json`
//! for editors (`#:schema ../schemas/scenario.schema.json` on a file's first line).

use super::Scenario;

/// The schema, pretty JSON with a final newline.
pub fn json() -> String {
    // An unknown key is an error of the parser (with a "did you mean"), so the schema
    // closes every table it describes: the editor flags the same keys.
    fn closed(s: &mut schemars::Schema) {
        if s.get("properties").is_some() && s.get("additionalProperties").is_none() {
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
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    out.push('\n');
    out
}
