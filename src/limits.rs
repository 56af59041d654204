//! Resource limits checked before anything starts. Today: the open-files limit
//! (RLIMIT_NOFILE) against what the scenario needs. The soft limit is raised to the hard
//! one when that is enough; when even the hard limit is too low the run is refused with
//! the limit and the need, instead of failing later (no runtime, or every connection
//! failing with "too many open files").

use crate::scenario::load_plan::{Connections, Model};
use crate::scenario::model::FaultSpec;
use crate::scenario::Plan;

/// Descriptors for everything that is not a connection of the load, a proxy or a leak:
/// standard streams, the async runtime, report and log files, the canary.
pub const BASE_FDS: u64 = 64;
/// Per service: its output pipes and log files, its health probe and metrics scrape.
pub const FDS_PER_SERVICE: u64 = 8;
/// `leak_websockets` opens this many connections when the fault does not say.
const DEFAULT_LEAKED: u64 = 100;

/// What a scenario needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdNeed {
    pub total: u64,
    /// e.g. "50 users, 2 services, 64 for the rest".
    pub parts: String,
}

/// The open-files limit is too low even when raised to the hard limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "the open-files limit (RLIMIT_NOFILE) is {soft} and its hard limit {hard}, but this \
     scenario needs about {} open files ({}); raise it (e.g. `ulimit -n {}`, which \
     needs the hard limit to allow it) and run again",
    .need.total, .need.parts, .need.total
)]
pub struct LimitError {
    pub soft: u64,
    pub hard: u64,
    pub need: FdNeed,
}

/// How the check went: the limit in force, and whether it was raised to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdCheck {
    pub limit: u64,
    pub raised_from: Option<u64>,
    pub need: FdNeed,
}

/// The open files `plan` needs: one per load connection (three when a service has a
/// network proxy: the proxy holds both sides), every leaked WebSocket, each service's
/// share, and a base.
pub fn open_files_needed(plan: &Plan) -> FdNeed {
    let mut parts = Vec::new();
    let mut total = BASE_FDS;
    let has_users = !plan.requests.is_empty() || !plan.ws.is_empty();
    if let (Some(load), true) = (&plan.load, has_users) {
        let (conns, what) = match &load.model {
            Model::Closed {
                stages,
                connections,
            } => {
                let max = stages.iter().map(|s| s.users).max().unwrap_or(0);
                // Each WebSocket user holds one connection of its own.
                let ws = crate::scenario::load_plan::split_users(&plan.user_weights(), max)
                    .iter()
                    .filter(|&&e| e > 0)
                    .count() as u64;
                let users = u64::from(max) - ws;
                let ws_part = if ws > 0 {
                    format!(" and {ws} WebSocket users")
                } else {
                    String::new()
                };
                match connections {
                    Connections::PerUser => (users + ws, format!("{users} users{ws_part}")),
                    Connections::Shared { pool_size } => {
                        let n = u64::from(pool_size.get()).min(users);
                        (n + ws, format!("{n} shared connections{ws_part}"))
                    }
                }
            }
            Model::Open { max_in_flight, .. } => {
                let n = u64::from(max_in_flight.get());
                (n, format!("{n} iterations in flight"))
            }
        };
        let proxied = plan.services.iter().any(|s| s.proxy.is_some());
        total += if proxied { conns * 3 } else { conns };
        parts.push(if proxied {
            format!("{what}, each through a proxy")
        } else {
            what
        });
    }
    let leaked: u64 = plan
        .faults
        .iter()
        .map(|f| match f {
            FaultSpec::LeakWebsockets(l) => l.connections.map_or(DEFAULT_LEAKED, u64::from),
            _ => 0,
        })
        .sum();
    if leaked > 0 {
        total += leaked;
        parts.push(format!("{leaked} leaked WebSockets"));
    }
    let services = plan.services.len() as u64;
    if services > 0 {
        total += services * FDS_PER_SERVICE;
        parts.push(format!(
            "{services} service{}",
            if services == 1 { "" } else { "s" }
        ));
    }
    parts.push(format!("{BASE_FDS} for the rest"));
    FdNeed {
        total,
        parts: parts.join(", "),
    }
}

/// Make sure `plan` can open the files it needs: raise the soft limit to the hard one if
/// needed (and possible), refuse when the hard limit is too low. A platform without the
/// limit passes.
pub fn ensure_open_files(plan: &Plan) -> Result<FdCheck, LimitError> {
    let need = open_files_needed(plan);
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return Ok(FdCheck {
            limit: u64::MAX,
            raised_from: None,
            need,
        });
    };
    if soft >= need.total {
        return Ok(FdCheck {
            limit: soft,
            raised_from: None,
            need,
        });
    }
    let raised = if hard > soft {
        rlimit::increase_nofile_limit(hard).unwrap_or(soft)
    } else {
        soft
    };
    if raised < need.total {
        return Err(LimitError {
            soft: raised,
            hard,
            need,
        });
    }
    Ok(FdCheck {
        limit: raised,
        raised_from: (raised > soft).then_some(soft),
        need,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra: &str) -> Plan {
        crate::scenario::load_str(
            std::path::Path::new("l.toml"),
            &format!(
                r#"
name = "l"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{{ duration = "1s", users = 50 }}, {{ duration = "1s", users = 20 }}]
{extra}
[[requests]]
name = "r"
path = "/"
"#
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_need_counts_users_and_the_rest() {
        let need = open_files_needed(&plan(""));
        assert_eq!(need.total, 50 + BASE_FDS);
        assert_eq!(need.parts, "50 users, 64 for the rest");
        let need = open_files_needed(&plan("connections = \"shared\"\npool_size = 10"));
        assert_eq!(need.total, 10 + BASE_FDS);
    }

    #[test]
    fn websocket_users_hold_a_connection_each() {
        let ws = "[[ws]]\nname = \"w\"\nurl = \"ws://127.0.0.1:9/ws\"\nweight = 4\nhold = \"1s\"";
        let need = open_files_needed(&plan(&format!(
            "connections = \"shared\"\npool_size = 5\n{ws}"
        )));
        assert_eq!(need.total, 5 + 40 + BASE_FDS);
        assert_eq!(
            need.parts,
            "5 shared connections and 40 WebSocket users, 64 for the rest"
        );
        let need = open_files_needed(&plan(ws));
        assert_eq!(need.total, 50 + BASE_FDS);
        assert_eq!(
            need.parts,
            "10 users and 40 WebSocket users, 64 for the rest"
        );
    }

    #[test]
    fn the_message_names_the_limit_and_the_need() {
        let e = LimitError {
            soft: 8,
            hard: 8,
            need: open_files_needed(&plan("")),
        };
        assert_eq!(
            e.to_string(),
            "the open-files limit (RLIMIT_NOFILE) is 8 and its hard limit 8, but this scenario \
             needs about 114 open files (50 users, 64 for the rest); raise it (e.g. `ulimit -n \
             114`, which needs the hard limit to allow it) and run again"
        );
    }
}
