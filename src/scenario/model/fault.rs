//! `[[faults]]`: faults on the timeline.
//!
//! One table per fault, its `kind` says which struct it is. Every kind's struct repeats
//! the common keys (`fault_kinds!` writes them), so each is a plain serde struct: a key
//! that does not apply to a kind is an unknown key of that struct, reported by the
//! parser with its line, and type errors keep their exact key path.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::*;
use crate::units::ByteSize;

/// A POSIX signal, written "SIGKILL", "KILL" or "term".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub nix::sys::signal::Signal);

impl FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Signal, String> {
        let up = s.trim().to_ascii_uppercase();
        let name = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        nix::sys::signal::Signal::from_str(&name)
            .map(Signal)
            .map_err(|_| {
                format!(
                    "unknown signal `{s}`; write one like \"SIGKILL\", \"SIGTERM\" or \"SIGINT\""
                )
            })
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl schemars::JsonSchema for Signal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Signal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A POSIX signal, with or without SIG, in any case: \"SIGKILL\", \"KILL\", \"term\"."
        })
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The keys every fault takes, borrowed from whichever kind it is.
#[derive(Debug, Clone, Copy)]
pub struct FaultCommon<'a> {
    /// Label in reports. Default "<kind> <target>".
    pub name: Option<&'a str>,
    /// The service it hits, by name.
    pub target: Option<&'a str>,
    /// Or a random pick (scenario seed) among these.
    pub targets: &'a [String],
    /// When, from the start of the load.
    pub at: HumanDuration,
    /// Repeat every this long ...
    pub every: Option<HumanDuration>,
    /// ... this many times in all. Default 1.
    pub times: Option<u32>,
    /// Per fault: overrides the scenario's `on_fault_error`.
    pub on_error: Option<OnFaultError>,
}

/// The common keys, as the parser lists them (own keys of a kind are the others).
pub const COMMON_FAULT_KEYS: [&str; 8] = [
    "kind", "name", "target", "targets", "at", "every", "times", "on_error",
];

/// Declares the kinds: [`FaultKind`], one struct per kind (common keys first, then its
/// own), the tagged [`FaultSpec`] enum and its accessors.
macro_rules! fault_kinds {
    ($(
        $(#[$vdoc:meta])*
        $variant:ident($spec:ident) = $str:literal {
            $( $(#[$fattr:meta])* $field:ident : $ty:ty, )*
        }
    )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum FaultKind {
            $( $variant, )*
        }

        impl FaultKind {
            pub const ALL: &'static [FaultKind] = &[$( FaultKind::$variant, )*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( FaultKind::$variant => $str, )*
                }
            }

            /// Call `v` with this kind's struct type (the parser deserializes each fault
            /// table as its kind's struct to place every problem on its key).
            pub(crate) fn with_spec_type<V: SpecTypeVisitor>(self, v: &mut V) -> V::Out {
                match self {
                    $( FaultKind::$variant => v.visit::<$spec>(), )*
                }
            }
        }

        $(
            $(#[$vdoc])*
            #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
            pub struct $spec {
                /// Label in reports. Default "<kind> <target>".
                pub name: Option<String>,
                /// The service it hits, by name.
                pub target: Option<String>,
                /// Or a random pick (scenario seed) among these services.
                #[serde(default)]
                pub targets: Vec<String>,
                /// When, from the start of the load.
                pub at: HumanDuration,
                /// Repeat every this long ...
                pub every: Option<HumanDuration>,
                /// ... this many times in all. Default 1.
                pub times: Option<u32>,
                /// Overrides the scenario's `on_fault_error` for this fault.
                pub on_error: Option<OnFaultError>,
                $( $(#[$fattr])* pub $field: $ty, )*
            }
        )*

        /// A fault on the timeline.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum FaultSpec {
            $( $variant($spec), )*
        }

        impl FaultSpec {
            pub fn kind(&self) -> FaultKind {
                match self {
                    $( FaultSpec::$variant(_) => FaultKind::$variant, )*
                }
            }

            pub fn common(&self) -> FaultCommon<'_> {
                match self {
                    $( FaultSpec::$variant(s) => FaultCommon {
                        name: s.name.as_deref(),
                        target: s.target.as_deref(),
                        targets: &s.targets,
                        at: s.at,
                        every: s.every,
                        times: s.times,
                        on_error: s.on_error,
                    }, )*
                }
            }
        }
    };
}

/// Something done with the struct type of one fault kind.
pub(crate) trait SpecTypeVisitor {
    type Out;
    fn visit<T: DeserializeOwned + 'static>(&mut self) -> Self::Out;
}

fault_kinds! {
    /// Send a signal to the service's process (its main process in a container).
    Kill(KillFault) = "kill" {
        /// Default SIGKILL.
        signal: Option<Signal>,
        /// gauntlet itself starts the service again after this delay (otherwise recovery
        /// is left to the restart policy, or to nobody).
        restart_after: Option<HumanDuration>,
    }
    /// Stop a managed service (signal, then SIGKILL after a grace); start it again after
    /// `restart_after`, or at the end of the run.
    Stop(StopFault) = "stop" {
        /// Default SIGTERM.
        signal: Option<Signal>,
        restart_after: Option<HumanDuration>,
    }
    /// Restart a managed service.
    Restart(RestartFault) = "restart" {}
    /// SIGSTOP the service (docker pause) for `duration`.
    Pause(PauseFault) = "pause" {
        duration: Option<HumanDuration>,
    }
    /// A second instance of the service for `duration`.
    Duplicate(DuplicateFault) = "duplicate" {
        duration: Option<HumanDuration>,
    }
    /// Open WebSockets and never close them, for `duration`.
    LeakWebsockets(LeakWebsocketsFault) = "leak_websockets" {
        duration: Option<HumanDuration>,
        url: Option<String>,
        connections: Option<u32>,
        /// Connections opened per second. Default 50.
        rate: Option<f64>,
    }
    /// Through the service's proxy, for `duration`.
    Network(NetworkFault) = "network" {
        duration: Option<HumanDuration>,
        latency: Option<HumanDuration>,
        jitter: Option<HumanDuration>,
        /// Share of connections dropped, percent.
        drop: Option<f64>,
        /// Reset connections instead of forwarding.
        reset: Option<bool>,
        /// Bytes per second, e.g. "64KiB".
        bandwidth: Option<ByteSize>,
        /// Cut all traffic.
        partition: Option<bool>,
    }
    /// CPU pressure next to the service (in its cgroup for docker), for `duration`.
    Cpu(CpuFault) = "cpu" {
        duration: Option<HumanDuration>,
        /// Busy processes. Default 1.
        workers: Option<u32>,
    }
    /// Memory pressure next to the service, for `duration`.
    Memory(MemoryFault) = "memory" {
        duration: Option<HumanDuration>,
        /// e.g. "512MiB". Default 256MiB.
        size: Option<ByteSize>,
    }
}

/// When the target is watched until it is healthy again after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The fault leaves the target up: nothing to watch.
    None,
    /// A crash: from the apply, once the target was seen down or its instance changed.
    FromApply,
    /// A stall: from the undo.
    FromUndo,
}

impl FaultKind {
    /// What recovery means after a fault of this kind: read by the fault scheduler (which
    /// watches it) and by the grader and reports (which expect a figure for it).
    pub fn recovery(self) -> Recovery {
        match self {
            FaultKind::Kill | FaultKind::Restart => Recovery::FromApply,
            FaultKind::Stop
            | FaultKind::Pause
            | FaultKind::Network
            | FaultKind::Cpu
            | FaultKind::Memory => Recovery::FromUndo,
            FaultKind::Duplicate | FaultKind::LeakWebsockets => Recovery::None,
        }
    }

    /// Whether the target is watched for recovery after a fault of this kind.
    pub fn watches_recovery(self) -> bool {
        self.recovery() != Recovery::None
    }

    /// The fault lasts `duration` and is undone after it (`duration` is a key of its own).
    pub fn is_timed(self) -> bool {
        !matches!(self, FaultKind::Kill | FaultKind::Stop | FaultKind::Restart)
    }
}

impl FaultSpec {
    /// How long before the undo, for the timed kinds.
    pub fn duration(&self) -> Option<HumanDuration> {
        match self {
            FaultSpec::Pause(s) => s.duration,
            FaultSpec::Duplicate(s) => s.duration,
            FaultSpec::LeakWebsockets(s) => s.duration,
            FaultSpec::Network(s) => s.duration,
            FaultSpec::Cpu(s) => s.duration,
            FaultSpec::Memory(s) => s.duration,
            FaultSpec::Kill(_) | FaultSpec::Stop(_) | FaultSpec::Restart(_) => None,
        }
    }
}

impl FaultSpec {
    /// How long the fault stays in force before its undo; None: until the end of the run
    /// (or nothing to undo). A `stop` comes back after `restart_after`.
    pub fn in_force_for(&self) -> Option<HumanDuration> {
        match self {
            FaultSpec::Stop(s) => s.restart_after,
            _ => self.duration(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_with_or_without_sig_in_any_case() {
        use nix::sys::signal::Signal as S;
        assert_eq!("SIGKILL".parse::<Signal>().unwrap().0, S::SIGKILL);
        assert_eq!(" term ".parse::<Signal>().unwrap().0, S::SIGTERM);
        assert_eq!("Int".parse::<Signal>().unwrap().0, S::SIGINT);
        let e = "FOO".parse::<Signal>().unwrap_err();
        assert!(e.contains("unknown signal `FOO`"), "{e}");
    }

    #[test]
    fn a_fault_table_is_its_kinds_struct() {
        let f: FaultSpec = toml::from_str(
            "kind = \"network\"\ntarget = \"api\"\nat = \"5s\"\nduration = \"10s\"\nbandwidth = \"64KiB\"",
        )
        .unwrap();
        assert_eq!(f.kind(), FaultKind::Network);
        assert_eq!(f.common().target, Some("api"));
        assert_eq!(f.duration().map(|d| d.0.as_secs()), Some(10));
        match f {
            FaultSpec::Network(n) => assert_eq!(n.bandwidth, Some(ByteSize(64 * 1024))),
            other => panic!("{other:?}"),
        }
        let stop: FaultSpec = toml::from_str(
            "kind = \"stop\"\ntarget = \"api\"\nat = \"1s\"\nrestart_after = \"3s\"",
        )
        .unwrap();
        assert_eq!(stop.duration(), None);
        assert_eq!(stop.in_force_for().map(|d| d.0.as_secs()), Some(3));
        let bad = toml::from_str::<FaultSpec>("kind = \"kill\"\nat = \"1s\"\nsignal = \"NOPE\"");
        assert!(bad.is_err());
    }

    #[test]
    fn every_kind_is_listed_once() {
        for k in FaultKind::ALL {
            let back: FaultKind =
                serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(k.as_str()))
                .unwrap();
            assert_eq!(back, *k);
        }
        assert_eq!(FaultKind::ALL.len(), 9);
    }
}
