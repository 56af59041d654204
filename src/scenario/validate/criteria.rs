//! Validation of `criteria`: each parsed by the metric grammar, and the requests and
//! services it names checked against the scenario.

use super::super::source::Ctx;
use super::super::suggest::closest;
use super::*;
use crate::metric::{self, Criterion};

pub(super) fn check_criteria(
    ctx: &mut Ctx<'_>,
    criteria: &[String],
    request_names: &[&str],
    flow_names: &[&str],
    service_names: &[String],
    fault_names: &[String],
) -> Vec<Criterion> {
    let mut parsed = Vec::new();
    for (i, text) in criteria.iter().enumerate() {
        let path = format!("criteria[{i}]");
        match metric::parse(text) {
            Err(e) => ctx.in_string(&path, e.column, e.width, e.message, e.hint),
            Ok(c) => {
                if let Some(n) = c.metric.request_name() {
                    let by_flow = c
                        .metric
                        .def()
                        .selectors
                        .iter()
                        .any(|d| d.selects == metric::Selects::Flow);
                    let (names, what) = if by_flow {
                        (flow_names, ("flow", "flows"))
                    } else {
                        (request_names, ("request", "requests"))
                    };
                    if !names.contains(&n) {
                        let hint = match closest(n, names.iter().copied()) {
                            Some(m) => format!(
                                "did you mean \"{m}\"? {}: {}",
                                what.1,
                                quoted_list(names.iter().copied())
                            ),
                            None => {
                                format!("{}: {}", what.1, quoted_list(names.iter().copied()))
                            }
                        };
                        ctx.in_string(
                            &path,
                            column_of(text, n),
                            n.chars().count(),
                            format!("no {} is named \"{n}\"", what.0),
                            Some(hint),
                        );
                    }
                }
                if let Some(svc) = c.metric.service() {
                    if !service_names.iter().any(|n| n == svc) {
                        let hint = match closest(svc, service_names.iter().map(String::as_str)) {
                            Some(m) => format!(
                                "did you mean `{m}`? services: {}",
                                quoted_list(service_names.iter().map(String::as_str))
                            ),
                            None if service_names.is_empty() => {
                                "declare it in a [[services]] table".into()
                            }
                            None => format!(
                                "services: {}",
                                quoted_list(service_names.iter().map(String::as_str))
                            ),
                        };
                        ctx.in_string(
                            &path,
                            column_of(text, svc),
                            svc.chars().count(),
                            format!("no service is named `{svc}`"),
                            Some(hint),
                        );
                    }
                }
                if let Some(f) = c.metric.fault.as_deref() {
                    if !fault_names.iter().any(|n| n == f) {
                        let names = || fault_names.iter().map(String::as_str);
                        let hint = match closest(f, names()) {
                            Some(m) => {
                                format!("did you mean \"{m}\"? faults: {}", quoted_list(names()))
                            }
                            None if fault_names.is_empty() => {
                                "declare it in a [[faults]] table".into()
                            }
                            None => format!("fault names and kinds: {}", quoted_list(names())),
                        };
                        ctx.in_string(
                            &path,
                            column_of(text, f),
                            f.chars().count(),
                            format!("no fault is named (or of kind) \"{f}\""),
                            Some(hint),
                        );
                    }
                }
                parsed.push(c);
            }
        }
    }
    parsed
}

/// What `recovery{fault="..."}` may name: each fault's name (its `name`, else
/// `<kind> <target>` as the run names it) and each kind the scenario uses.
pub(super) fn fault_selectors(faults: &[crate::scenario::model::FaultSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for f in faults {
        let c = f.common();
        match (c.name, c.target) {
            (Some(n), _) => push(n.to_string()),
            (None, Some(t)) => push(format!("{} {t}", f.kind().as_str())),
            // With `targets`, the name depends on the pick; the kind still selects it.
            (None, None) => {}
        }
        push(f.kind().as_str().to_string());
    }
    out
}
