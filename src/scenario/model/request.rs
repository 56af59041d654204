//! `[[requests]]`: the weighted request mix, extraction and checks.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One entry of the weighted request mix.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct RequestSpec {
    /// Unique; criteria and reports refer to it (`latency.p95{name="create item"}`).
    pub name: String,
    /// Relative weight in the mix. Default 1. 0 = only run when another request needs a
    /// value it extracts.
    pub weight: Option<u32>,
    /// Default GET.
    pub method: Option<String>,
    /// Joined to `target.base_url`; may hold placeholders (`/api/items/{{item_id}}`).
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body (placeholders allowed).
    pub body: Option<String>,
    /// JSON body (placeholders allowed in strings); sets content-type.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<toml::Value>,
    /// Values taken from the response for this user's later requests.
    #[serde(default)]
    pub extract: Vec<ExtractSpec>,
    /// Response checks; a failed check counts as an error, with its reason. Without a
    /// `status` check, any status outside 200..=399 is an error.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Follow 3xx responses (`true`: up to 10; a number: up to that many), only to hosts
    /// on `target.allow_hosts`. Default: not followed, the 3xx is the response.
    pub follow_redirects: Option<FollowRedirects>,
    /// The name of a `[targets.<name>]` table this request goes to (default: `[target]`).
    pub target: Option<String>,
}

/// `follow_redirects = true` or a maximum count.
#[derive(Debug, Clone, Copy)]
pub enum FollowRedirects {
    On(bool),
    Max(u32),
}

impl<'de> Deserialize<'de> for FollowRedirects {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FollowRedirects;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or the most redirects to follow, like 5")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<FollowRedirects, E> {
                Ok(FollowRedirects::On(b))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<FollowRedirects, E> {
                u32::try_from(n).map(FollowRedirects::Max).map_err(|_| {
                    E::custom(format!(
                        "follow_redirects is true, false or a count from 0; found {n}"
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<FollowRedirects, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for FollowRedirects {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FollowRedirects".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "true, false or the most redirects to follow (at most 20)",
            "oneOf": [{ "type": "boolean" }, { "type": "integer", "minimum": 0 }]
        })
    }
}

/// `[[flows]]`: an ordered user journey made of named requests (log in, create, read,
/// delete). A user that picks a flow runs its steps in order, thinking between them;
/// values extracted by one step are `{{var}}`s of the later ones.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct FlowSpec {
    /// Unique among flows; criteria and reports refer to it
    /// (`flow.latency.p95{name="checkout"}`).
    pub name: String,
    /// Relative weight, in the same mix as the requests' weights. Default 1.
    pub weight: Option<u32>,
    /// The names of the `[[requests]]` run, in order. A request named here has weight 0
    /// unless it says otherwise (it runs only in its flows).
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ExtractSpec {
    /// Variable name, used as `{{var}}` in later requests of the same user.
    pub var: String,
    /// JSON pointer into the response body, e.g. "/id".
    pub json: Option<String>,
    /// Response header name, e.g. "location".
    pub header: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct CheckSpec {
    /// 201, [200, 201], or "2xx".
    pub status: Option<StatusCheck>,
    pub body_contains: Option<String>,
    /// JSON pointer; with `equals` or `exists`.
    pub json: Option<String>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub equals: Option<toml::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum StatusCheck {
    One(u16),
    Any(Vec<u16>),
    Class(String),
}
