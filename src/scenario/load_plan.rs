//! The resolved `[load]` section and each request's checks and extractors: typed values
//! built once by validation, so the load engine never reads the scenario's strings.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default size of the shared pool (`connections = "shared"`).
pub const DEFAULT_POOL_SIZE: NonZeroU32 = NonZeroU32::new(100).unwrap();
/// Default `max_body`: the most of a response body read per request.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// The largest `max_body` a scenario may set: every request in flight may hold this much.
pub const MAX_MAX_BODY: u64 = 1 << 30;
/// Default `max_in_flight` of the open model.
pub const DEFAULT_MAX_IN_FLIGHT: NonZeroU32 = NonZeroU32::new(1000).unwrap();

/// How the load runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub model: Model,
    /// Pause between two iterations of a closed-model user.
    pub think: Think,
    /// One request's timeout (never zero); it covers connect, headers and body.
    pub timeout: Duration,
    /// The most of a response body read per request (at least 1 byte).
    pub max_body: u64,
    /// A larger body is cut at `max_body` (checks see the start) instead of failing.
    pub truncate_body: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Users, each looping: iteration, think, iteration...
    Closed {
        /// Each ramps linearly from the previous stage's users (0 at first).
        stages: Vec<UserStage>,
        connections: Connections,
    },
    /// Iterations started at a rate, whatever the system's speed.
    Open {
        /// Iterations/s at the start of the first stage (finite, >= 0).
        start_rate: f64,
        /// Each ramps linearly from the previous rate (`start_rate` at first).
        stages: Vec<RateStage>,
        /// An iteration due when all slots are busy is dropped.
        max_in_flight: NonZeroU32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStage {
    pub duration: Duration,
    pub users: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    /// Iterations/s at the end of the stage (finite, >= 0).
    pub rate: f64,
}

/// Where closed-model users get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Each user holds its own keep-alive connection.
    PerUser,
    /// Users share at most `pool_size` connections.
    Shared { pool_size: NonZeroU32 },
}

impl LoadPlan {
    pub fn is_open(&self) -> bool {
        matches!(self.model, Model::Open { .. })
    }

    /// The sum of the stages.
    pub fn duration(&self) -> Duration {
        match &self.model {
            Model::Closed { stages, .. } => stages.iter().map(|s| s.duration).sum(),
            Model::Open { stages, .. } => stages.iter().map(|s| s.duration).sum(),
        }
    }
}

/// Which entry of `weights` each of `users` users (1-based user k at index k-1) belongs
/// to, so that every prefix of the users is split as close to the weights as can be
/// (users 1..=n follow the weights at any n): the ramp adds HTTP and WebSocket users in
/// proportion. An entry of weight 0 gets no user.
pub fn split_users(weights: &[u64], users: u32) -> Vec<usize> {
    let total: u64 = weights.iter().sum();
    let mut given = vec![0u64; weights.len()];
    let mut out = Vec::with_capacity(users as usize);
    if total == 0 {
        return out;
    }
    for k in 1..=u64::from(users) {
        // The entry furthest below its share of the first k users.
        let pick = (0..weights.len())
            .filter(|&e| weights[e] > 0)
            .max_by(|&a, &b| {
                let da = (k * weights[a]) as f64 / total as f64 - given[a] as f64;
                let db = (k * weights[b]) as f64 / total as f64 - given[b] as f64;
                da.total_cmp(&db).then(b.cmp(&a))
            })
            .unwrap_or(0);
        given[pick] += 1;
        out.push(pick);
    }
    out
}

/// The think time between two iterations of a closed-model user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Think {
    None,
    Fixed(Duration),
    /// Uniform in `min..=max`, `min < max`.
    Range(Duration, Duration),
}

impl Think {
    /// From the scenario's fixed value or `(min, max)` range; an empty range is fixed.
    pub fn new(min: Duration, max: Duration) -> Think {
        match (min, max) {
            (a, b) if b <= a && a.is_zero() => Think::None,
            (a, b) if b <= a => Think::Fixed(a),
            (a, b) => Think::Range(a, b),
        }
    }

    pub fn mean(self) -> Duration {
        match self {
            Think::None => Duration::ZERO,
            Think::Fixed(d) => d,
            Think::Range(a, b) => (a + b) / 2,
        }
    }

    pub fn sample(self, rng: &mut ChaCha8Rng) -> Duration {
        match self {
            Think::None => Duration::ZERO,
            Think::Fixed(d) => d,
            Think::Range(a, b) => {
                Duration::from_micros(rng.random_range(a.as_micros() as u64..=b.as_micros() as u64))
            }
        }
    }
}

/// A JSON pointer (RFC 6901), known to start with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer(String);

impl JsonPointer {
    /// `None` unless `s` starts with `/`.
    pub fn new(s: &str) -> Option<JsonPointer> {
        s.starts_with('/').then(|| JsonPointer(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The statuses a `status` check accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    One(StatusCode),
    /// Never empty.
    Any(Vec<StatusCode>),
    /// The hundreds digit, 1 to 5 (`"2xx"` is 2).
    Class(u8),
}

impl StatusSet {
    pub fn contains(&self, status: StatusCode) -> bool {
        match self {
            StatusSet::One(s) => *s == status,
            StatusSet::Any(v) => v.contains(&status),
            StatusSet::Class(c) => status.as_u16() / 100 == u16::from(*c),
        }
    }

    /// `"2xx"` (any case) to its digit; `None` when it is not a class.
    pub fn class(s: &str) -> Option<StatusSet> {
        match s.as_bytes() {
            [d @ b'1'..=b'5', x, y]
                if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') =>
            {
                Some(StatusSet::Class(d - b'0'))
            }
            _ => None,
        }
    }
}

/// What a failed check says it expected: `201`, `one of 200, 201`, `2xx`.
impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSet::One(s) => write!(f, "{}", s.as_u16()),
            StatusSet::Any(v) => {
                f.write_str("one of ")?;
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", s.as_u16())?;
                }
                Ok(())
            }
            StatusSet::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// One response check; a failed one makes the request an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Status(StatusSet),
    BodyContains(String),
    JsonEquals {
        pointer: JsonPointer,
        expected: serde_json::Value,
    },
    JsonExists {
        pointer: JsonPointer,
        exists: bool,
    },
}

/// A value taken from a response, for the same user's later requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extractor {
    Json { var: String, pointer: JsonPointer },
    Header { var: String, name: HeaderName },
}

impl Extractor {
    pub fn var(&self) -> &str {
        match self {
            Extractor::Json { var, .. } | Extractor::Header { var, .. } => var,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn users_split_by_weight_at_every_prefix() {
        // HTTP 1, WebSocket 3: every 4 users, one HTTP.
        let s = split_users(&[1, 3], 8);
        assert_eq!(s.iter().filter(|&&e| e == 0).count(), 2);
        for n in 1..=8 {
            let ws = s[..n].iter().filter(|&&e| e == 1).count() as f64;
            assert!((ws - n as f64 * 0.75).abs() <= 1.0, "{n}: {s:?}");
        }
        assert_eq!(split_users(&[0, 1], 3), vec![1, 1, 1]);
        assert_eq!(split_users(&[5, 0], 2), vec![0, 0]);
        assert!(split_users(&[0, 0], 2).is_empty());
    }

    fn code(c: u16) -> StatusCode {
        StatusCode::from_u16(c).unwrap()
    }

    #[test]
    fn status_sets() {
        let cases: &[(StatusSet, u16, bool, &str)] = &[
            (StatusSet::One(code(201)), 201, true, "201"),
            (StatusSet::One(code(201)), 200, false, "201"),
            (
                StatusSet::Any(vec![code(200), code(201)]),
                201,
                true,
                "one of 200, 201",
            ),
            (
                StatusSet::Any(vec![code(200), code(201)]),
                404,
                false,
                "one of 200, 201",
            ),
            (StatusSet::Class(2), 204, true, "2xx"),
            (StatusSet::Class(2), 500, false, "2xx"),
            (StatusSet::Class(5), 503, true, "5xx"),
        ];
        for (set, status, ok, shown) in cases {
            assert_eq!(set.contains(code(*status)), *ok, "{set:?} {status}");
            assert_eq!(set.to_string(), *shown);
        }
    }

    #[test]
    fn status_classes() {
        let cases: &[(&str, Option<u8>)] = &[
            ("2xx", Some(2)),
            ("2XX", Some(2)),
            ("5xX", Some(5)),
            ("6xx", None),
            ("0xx", None),
            ("2x", None),
            ("20x", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(StatusSet::class(text), want.map(StatusSet::Class), "{text}");
        }
    }

    #[test]
    fn json_pointers() {
        assert_eq!(
            JsonPointer::new("/id").map(|p| p.to_string()),
            Some("/id".into())
        );
        assert_eq!(
            JsonPointer::new("/").map(|p| p.to_string()),
            Some("/".into())
        );
        assert_eq!(JsonPointer::new("id"), None);
        assert_eq!(JsonPointer::new("$.id"), None);
    }

    #[test]
    fn think_times() {
        let ms = Duration::from_millis;
        let cases = [
            ((0, 0), Think::None, 0),
            ((50, 50), Think::Fixed(ms(50)), 50),
            ((80, 20), Think::Fixed(ms(80)), 80),
            ((50, 150), Think::Range(ms(50), ms(150)), 100),
        ];
        for ((min, max), want, mean) in cases {
            let t = Think::new(ms(min), ms(max));
            assert_eq!(t, want);
            assert_eq!(t.mean(), ms(mean));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let d = Think::Range(ms(50), ms(150)).sample(&mut rng);
            assert!(d >= ms(50) && d <= ms(150));
        }
        assert_eq!(Think::None.sample(&mut rng), Duration::ZERO);
    }
}

/// `[capacity]`, resolved: the levels `gauntlet capacity` tries. A level is users
/// (closed model) or iterations/s (open model); in the closed model every figure here is
/// a whole number.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityPlan {
    pub from: f64,
    pub to: f64,
    pub step: f64,
    pub strategy: crate::scenario::model::CapacityStrategy,
    /// Bisect ends when the first fail is at most this far above the last pass.
    pub resolution: f64,
    /// Graded time at each level.
    pub hold: Duration,
    /// The ramp from 0 to the level before the hold; not graded.
    pub warmup: Duration,
    /// The knee must reach this for the search to pass.
    pub require: f64,
    /// Percent: a level above it after its warmup is stopped early.
    pub stop_error_rate: Option<f64>,
}

impl CapacityPlan {
    /// The run's hard cap at each level: warmup + hold + this.
    pub const GRACE: Duration = Duration::from_secs(30);

    /// One level's hard cap.
    pub fn level_deadline(&self) -> Duration {
        self.warmup + self.hold + Self::GRACE
    }
}
