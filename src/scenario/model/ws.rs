//! `[[ws]]`: WebSocket virtual users. A share of the closed model's users (by weight,
//! against the HTTP mix) connect, send templated messages, wait for matching replies,
//! hold the connection open, close, and start again.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::HumanDuration;

/// One kind of WebSocket user.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct WsSpec {
    /// Unique among `[[ws]]`; reports refer to it.
    pub name: String,
    /// `ws://` or `wss://` (wss uses `target.tls`); its host must be on `target.allow_hosts`.
    pub url: String,
    /// Relative weight against the HTTP mix (whose weight is the sum of the request
    /// weights) and the other `[[ws]]` entries. Default 1.
    pub weight: Option<u32>,
    /// Sent with the upgrade request; values may hold placeholders.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Offered in `Sec-WebSocket-Protocol`; the server must accept it.
    pub subprotocol: Option<String>,
    /// Sent in order on each connection; each waits for its matching reply.
    #[serde(default)]
    pub messages: Vec<WsMessageSpec>,
    /// How long the connection stays open after the messages (reading, answering pings)
    /// before it closes normally and the user connects again. Default 0.
    pub hold: Option<HumanDuration>,
    /// Send a ping this often while the connection is open. Default: never.
    pub ping_interval: Option<HumanDuration>,
}

/// One message of a `[[ws]]` user.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct WsMessageSpec {
    /// A text frame; placeholders allowed (`{{fake.word}}`, `{{user.id}}`, `{{var}}`).
    pub send: String,
    /// The reply that answers it: the first text frame matching it ends the wait (others
    /// are skipped). Absent: the message is only sent (no round trip measured).
    pub expect: Option<WsExpectSpec>,
    /// How long to wait for the matching reply. Default: `load.timeout` (10s).
    pub timeout: Option<HumanDuration>,
    /// Values taken from the matching reply, for the next messages of the same user.
    #[serde(default)]
    pub extract: Vec<WsExtractSpec>,
}

/// `expect = { json = "/ptr", equals = ... }`, `{ json = "/ptr" }` or `{ contains = "..." }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct WsExpectSpec {
    /// JSON pointer into the reply; with `equals`, or alone (it must exist).
    pub json: Option<String>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub equals: Option<toml::Value>,
    /// The reply's text contains this.
    pub contains: Option<String>,
}

/// `extract = [{ var = "room", json = "/room" }]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct WsExtractSpec {
    pub var: String,
    pub json: String,
}
