//! Validation of `[[flows]]`: unique names, steps that name requests, weights in bounds.

use super::super::suggest::closest;
use super::super::FlowPlan;
use super::*;

/// Check every flow and resolve its steps to request indexes. Requests named by a step
/// and without their own `weight` get weight 0 in `requests` (they run in their flows).
pub(super) fn check_flows(
    ctx: &mut Ctx<'_>,
    flows: &[FlowSpec],
    request_specs: &[RequestSpec],
    requests: &mut [super::super::RequestPlan],
) -> Vec<FlowPlan> {
    if flows.len() > MAX_FLOWS {
        ctx.at_key(
            &format!("flows[{MAX_FLOWS}]"),
            format!(
                "at most {MAX_FLOWS} [[flows]] per scenario; this file has {}",
                flows.len()
            ),
            Some("each flow keeps its own latency histogram during the run".into()),
        );
    }
    let flows = &flows[..flows.len().min(MAX_FLOWS)];
    let names: Vec<&str> = request_specs.iter().map(|r| r.name.as_str()).collect();
    let mut out = Vec::with_capacity(flows.len());
    for (i, f) in flows.iter().enumerate() {
        let p = format!("flows[{i}]");
        if f.name.trim().is_empty() {
            ctx.at_value(
                &format!("{p}.name"),
                "the flow name is empty",
                Some("criteria and reports refer to flows by name".into()),
            );
        } else if let Some(j) = flows[..i].iter().position(|g| g.name == f.name) {
            ctx.at_value(
                &format!("{p}.name"),
                format!("flow name \"{}\" is used twice", f.name),
                Some(format!(
                    "also flows[{j}]; criteria and reports need unique names"
                )),
            );
        }
        if let Some(w) = f.weight.filter(|w| *w > MAX_WEIGHT) {
            ctx.at_value(
                &format!("{p}.weight"),
                format!("weight is at most {MAX_WEIGHT}; found {w}"),
                Some("weights are relative: divide them all by the same number".into()),
            );
        }
        if f.steps.is_empty() {
            ctx.at_value(
                &format!("{p}.steps"),
                "a flow needs at least one step",
                Some(r#"name the requests it runs in order, e.g. steps = ["create item", "read item"]"#.into()),
            );
        } else if f.steps.len() > MAX_FLOW_STEPS {
            ctx.at_value(
                &format!("{p}.steps"),
                format!(
                    "a flow has at most {MAX_FLOW_STEPS} steps; this one has {}",
                    f.steps.len()
                ),
                None,
            );
        }
        let mut steps = Vec::with_capacity(f.steps.len());
        for (k, step) in f.steps.iter().enumerate().take(MAX_FLOW_STEPS) {
            match names.iter().position(|n| n == step) {
                Some(j) => steps.push(j),
                None => {
                    let hint = match closest(step, names.iter().copied()) {
                        Some(m) => format!(
                            "did you mean \"{m}\"? requests: {}",
                            quoted_list(names.iter().copied())
                        ),
                        None => format!(
                            "a step names a [[requests]] table; requests: {}",
                            quoted_list(names.iter().copied())
                        ),
                    };
                    ctx.at_value(
                        &format!("{p}.steps[{k}]"),
                        format!("no request is named \"{step}\""),
                        Some(hint),
                    );
                }
            }
        }
        for &j in &steps {
            if request_specs[j].weight.is_none() {
                requests[j].weight = 0;
            }
        }
        out.push(FlowPlan {
            name: f.name.clone(),
            weight: f.weight.unwrap_or(1),
            steps,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(flows: &str) -> Vec<String> {
        let src = format!(
            r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{{ duration = "1s", users = 1 }}]
[[requests]]
name = "create item"
method = "POST"
path = "/items"
extract = [{{ var = "id", json = "/id" }}]
[[requests]]
name = "read item"
path = "/items/{{{{id}}}}"
{flows}
"#
        );
        match crate::scenario::load_str(Path::new("t.toml"), &src) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|d| format!("{}:{}: {}", d.line, d.key, d.message))
                    .collect()
            }
        }
    }

    #[test]
    fn flows_resolve_or_say_why() {
        let ok = r#"
[[flows]]
name = "crud"
steps = ["create item", "read item"]
"#;
        assert_eq!(problems(ok), Vec::<String>::new());
        assert_eq!(
            problems("[[flows]]\nname = \"crud\"\nsteps = [\"create item\", \"raed item\"]"),
            vec!["18:flows[0].steps[1]: no request is named \"raed item\""]
        );
        assert_eq!(
            problems("[[flows]]\nname = \"crud\"\nsteps = []"),
            vec!["18:flows[0].steps: a flow needs at least one step"]
        );
        assert_eq!(
            problems(
                "[[flows]]\nname = \"a\"\nsteps = [\"read item\"]\n[[flows]]\nname = \"a\"\nsteps = [\"read item\"]"
            ),
            vec!["20:flows[1].name: flow name \"a\" is used twice"]
        );
        assert_eq!(
            problems("[[flows]]\nname = \"a\"\nweight = 2000000\nsteps = [\"read item\"]"),
            vec!["18:flows[0].weight: weight is at most 1000000; found 2000000"]
        );
        assert_eq!(
            problems("[[flows]]\nname = \"a\"\nstep = [\"read item\"]"),
            vec![
                "16:flows[0]: missing key `steps`",
                "18:flows[0].step: unknown key"
            ]
        );
    }

    /// Flow figures select flows by name; request figures select requests.
    #[test]
    fn criteria_name_flows() {
        let flow = "[[flows]]\nname = \"crud\"\nsteps = [\"a\"]";
        let src = |c: &str| {
            format!(
                r#"
name = "t"
criteria = [{c}]
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{{ duration = "1s", users = 1 }}]
[[requests]]
name = "a"
path = "/a"
{flow}
"#
            )
        };
        let errs = |c: &str| match crate::scenario::load_str(Path::new("t.toml"), &src(c)) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|d| d.message.clone()).collect(),
        };
        assert_eq!(
            errs(r#""flow.latency.p95{name=\"crud\"} < 1s""#),
            Vec::<String>::new()
        );
        assert_eq!(
            errs(r#""flow.errors.rate < 1%", "flow.count > 1""#),
            Vec::<String>::new()
        );
        assert_eq!(
            errs(r#""flow.latency.p95{name=\"crd\"} < 1s""#),
            vec!["no flow is named \"crd\"".to_string()]
        );
        assert_eq!(
            errs(r#""latency.p95{name=\"crud\"} < 1s""#),
            vec!["no request is named \"crud\"".to_string()]
        );
    }

    /// A request named by a step runs only in its flows unless it has its own weight.
    #[test]
    fn steps_default_to_weight_zero() {
        let src = r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{ duration = "1s", users = 1 }]
[[requests]]
name = "a"
path = "/a"
[[requests]]
name = "b"
path = "/b"
weight = 3
[[requests]]
name = "c"
path = "/c"
[[flows]]
name = "f"
weight = 2
steps = ["a", "b"]
"#;
        let plan = crate::scenario::load_str(Path::new("t.toml"), src).unwrap();
        let w: Vec<u32> = plan.requests.iter().map(|r| r.weight).collect();
        assert_eq!(w, vec![0, 3, 1]);
        assert_eq!(plan.flows.len(), 1);
        assert_eq!(plan.flows[0].steps, vec![0, 1]);
        assert_eq!(plan.flows[0].weight, 2);
    }
}
