//! Prometheus scrapes of one service, every `interval`, each kept sample a
//! `EventKind::Metric`; and freshness computed here, from a timestamp gauge.
//!
//! - Kept samples: every series of each `keep` name (all names when `keep` is absent). An
//!   unlabelled sample is recorded as its name, a labelled one as `name{labels}` (labels in
//!   the order the service writes them), one recorded metric per series, not summed, so
//!   nothing is hidden. At most [`MAX_SERIES`] distinct series per service are recorded
//!   (the recorder keeps one entry per series); past that, new series are dropped and a
//!   notice says so once.
//! - Freshness: with `freshness = "<timestamp gauge>"`, after every scrape attempt, failed
//!   or not, [`FRESHNESS_METRIC`] = now (Unix) - the last value of that gauge seen. A
//!   stalled or stopped service cannot answer, and its data keeps getting older: the
//!   figure keeps growing. Until a positive value was seen (the service never answered,
//!   never synced, or does not export the gauge), it counts from the first scrape.
//!   A sample of the service's own named [`FRESHNESS_METRIC`] is then not recorded: the
//!   observer's figure is the one that also covers failed scrapes.
//! - Errors: `scrape_errors` (failed scrapes so far, recorded after each attempt) and a
//!   notice when scrapes start failing and when they answer again (bounded).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, Level};
use crate::scenario::model::ScrapePlan;

use super::prom;

/// The metric freshness is recorded as (the grader's `pipeline.freshness.max` reads it).
pub const FRESHNESS_METRIC: &str = "pipeline_freshness_seconds";
/// Failed scrapes so far, recorded under the service.
pub const SCRAPE_ERRORS_METRIC: &str = "scrape_errors";
/// Distinct series recorded per service.
pub const MAX_SERIES: usize = 200;
/// Largest `/metrics` body read.
pub const MAX_BODY: usize = 4 << 20;
/// Notices about failing/answering-again scrapes, per service; then one saying so.
const MAX_STATE_NOTICES: u32 = 6;

/// Why one scrape got no metrics page.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("connect {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("http handshake: {0}")]
    Handshake(hyper::Error),
    #[error("request: {0}")]
    Request(http::Error),
    #[error("GET {path}: {source}")]
    Send { path: String, source: hyper::Error },
    #[error("GET {path}: status {status}")]
    Status { path: String, status: u16 },
    #[error("GET {path}: reading the body: {source}")]
    Body {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("GET {path}: the body is larger than {}", crate::units::ByteSize(MAX_BODY as u64))]
    TooLarge { path: String },
    #[error("GET {path}: the body is not UTF-8 text")]
    NotText { path: String },
}

/// One GET of the metrics page, bounded by the scrape's timeout. Ok(body text).
pub async fn fetch(scrape: &ScrapePlan) -> Result<String, ScrapeError> {
    tokio::time::timeout(scrape.timeout, fetch_inner(scrape))
        .await
        .unwrap_or(Err(ScrapeError::Timeout(scrape.timeout)))
}

async fn fetch_inner(scrape: &ScrapePlan) -> Result<String, ScrapeError> {
    let stream = TcpStream::connect((scrape.host.as_str(), scrape.port))
        .await
        .map_err(|source| ScrapeError::Connect {
            host: scrape.host.clone(),
            port: scrape.port,
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        // The head within 64 KiB; the body is limited below.
        hyper::client::conn::http1::Builder::new()
            .max_buf_size(64 << 10)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(ScrapeError::Handshake)?;
    let conn = tokio::spawn(conn);
    let path = || scrape.path.clone();
    let result = async {
        let req = http::Request::get(scrape.path.as_str())
            .header(http::header::HOST, scrape.authority.as_str())
            .header(http::header::ACCEPT, "text/plain;version=0.0.4")
            .header(http::header::USER_AGENT, "gauntlet-scrape")
            .body(Empty::<Bytes>::new())
            .map_err(ScrapeError::Request)?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|source| ScrapeError::Send {
                path: path(),
                source,
            })?;
        let status = res.status();
        if !status.is_success() {
            return Err(ScrapeError::Status {
                path: path(),
                status: status.as_u16(),
            });
        }
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|source| {
                if source.is::<http_body_util::LengthLimitError>() {
                    ScrapeError::TooLarge { path: path() }
                } else {
                    ScrapeError::Body {
                        path: path(),
                        source,
                    }
                }
            })?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| ScrapeError::NotText { path: path() })
    }
    .await;
    conn.abort();
    result
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What a scraper remembers between two scrapes.
pub struct ScrapeState {
    pub scrape: ScrapePlan,
    /// The timestamp gauge's last positive value.
    pub last_sync: Option<f64>,
    /// When scraping started (Unix seconds): freshness counts from here until a timestamp
    /// was seen.
    pub started_unix: f64,
    pub errors: u64,
    failing: bool,
    state_notices: u32,
    series: HashSet<String>,
    told_series_cap: bool,
    told_no_stamp: bool,
    told_bad_lines: bool,
}

impl ScrapeState {
    pub fn new(scrape: ScrapePlan) -> Self {
        ScrapeState {
            scrape,
            last_sync: None,
            started_unix: now_unix(),
            errors: 0,
            failing: false,
            state_notices: 0,
            series: HashSet::new(),
            told_series_cap: false,
            told_no_stamp: false,
            told_bad_lines: false,
        }
    }

    fn metric(&self, events: &EventSink, name: String, value: f64) {
        events.send(EventKind::Metric {
            service: self.scrape.service.clone(),
            name,
            value,
        });
    }

    fn state_notice(&mut self, events: &EventSink, level: Level, message: String) {
        self.state_notices += 1;
        if self.state_notices < MAX_STATE_NOTICES {
            events.notice(level, message);
        } else if self.state_notices == MAX_STATE_NOTICES {
            events.notice(
                level,
                format!(
                    "{message} (further changes of `{}`'s scrapes are not reported; see the `{SCRAPE_ERRORS_METRIC}` metric)",
                    self.scrape.service
                ),
            );
        }
    }

    /// Fold one scrape attempt's result into events: the kept samples, the error count
    /// and freshness. `now_unix` is the wall clock after the attempt.
    pub fn fold(&mut self, events: &EventSink, result: Result<String, ScrapeError>, now_unix: f64) {
        let svc = self.scrape.service.clone();
        match result {
            Ok(text) => {
                if self.failing {
                    self.failing = false;
                    self.state_notice(
                        events,
                        Level::Info,
                        format!(
                            "metrics of `{svc}` answer again ({} failed scrapes so far)",
                            self.errors
                        ),
                    );
                }
                let parsed = prom::parse(&text);
                if parsed.bad_count > 0 && !self.told_bad_lines {
                    self.told_bad_lines = true;
                    events.notice(
                        Level::Warn,
                        format!(
                            "metrics of `{svc}`: {} lines are not Prometheus samples (lines {:?}); they are skipped",
                            parsed.bad_count, parsed.bad_lines
                        ),
                    );
                }
                let mut stamp_seen = false;
                for s in parsed.samples {
                    if let Some(f) = &self.scrape.freshness {
                        if &s.name == f && s.labels.is_empty() {
                            stamp_seen = true;
                            if s.value.is_finite() && s.value > 0.0 {
                                self.last_sync = Some(match self.last_sync {
                                    // Time does not run backwards: a restarted exporter that
                                    // has not synced yet says 0 (ignored) or its own older
                                    // figure.
                                    Some(prev) => prev.max(s.value),
                                    None => s.value,
                                });
                            }
                        }
                        if s.name == FRESHNESS_METRIC {
                            continue;
                        }
                    }
                    if !self
                        .scrape
                        .keep
                        .as_ref()
                        .is_none_or(|k| k.contains(&s.name))
                    {
                        continue;
                    }
                    let series = s.series();
                    if !self.series.contains(&series) {
                        if self.series.len() >= MAX_SERIES {
                            if !self.told_series_cap {
                                self.told_series_cap = true;
                                events.notice(
                                    Level::Warn,
                                    format!(
                                        "metrics of `{svc}`: more than {MAX_SERIES} series; the others are not recorded (list fewer names in `keep`)"
                                    ),
                                );
                            }
                            continue;
                        }
                        self.series.insert(series.clone());
                    }
                    self.metric(events, series, s.value);
                }
                if let Some(f) = &self.scrape.freshness {
                    if !stamp_seen && !self.told_no_stamp {
                        self.told_no_stamp = true;
                        events.notice(
                            Level::Warn,
                            format!(
                                "metrics of `{svc}` have no unlabelled `{f}` sample; freshness counts from the start of scraping until one appears"
                            ),
                        );
                    }
                }
            }
            Err(e) => {
                self.errors += 1;
                if !self.failing {
                    self.failing = true;
                    let extra = if self.scrape.freshness.is_some() {
                        "; freshness keeps growing from the last sync seen"
                    } else {
                        ""
                    };
                    self.state_notice(
                        events,
                        Level::Warn,
                        format!("scrape of `{svc}` metrics failed: {e}{extra}"),
                    );
                }
            }
        }
        self.metric(events, SCRAPE_ERRORS_METRIC.to_string(), self.errors as f64);
        if self.scrape.freshness.is_some() {
            let since = self.last_sync.unwrap_or(self.started_unix);
            self.metric(
                events,
                FRESHNESS_METRIC.to_string(),
                (now_unix - since).max(0.0),
            );
        }
    }
}

/// Scrape until `stop` (then return at once) or `finish` (then one last scrape, so the
/// record holds the end state, and return).
pub async fn run(
    scrape: ScrapePlan,
    events: EventSink,
    finish: CancellationToken,
    stop: CancellationToken,
) {
    let mut st = ScrapeState::new(scrape);
    let mut tick = tokio::time::interval(st.scrape.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = stop.cancelled() => return,
            _ = finish.cancelled() => true,
            _ = tick.tick() => false,
        };
        let r = tokio::select! {
            _ = stop.cancelled() => return,
            r = fetch(&st.scrape) => r,
        };
        st.fold(&events, r, now_unix());
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventSink;

    /// A scrape of a port nothing is asked on (these tests fold given results).
    fn plan(service: &str, keep: Option<&[&str]>, freshness: Option<&str>) -> ScrapePlan {
        ScrapePlan {
            service: service.into(),
            host: "127.0.0.1".into(),
            port: 1,
            path: "/metrics".into(),
            authority: "127.0.0.1:1".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            keep: keep.map(|k| k.iter().map(|s| s.to_string()).collect()),
            freshness: freshness.map(Into::into),
        }
    }

    fn timeout() -> Result<String, ScrapeError> {
        Err(ScrapeError::Timeout(Duration::from_secs(1)))
    }

    fn drain(rx: &mut crate::event::EventStream) -> (Vec<(String, f64)>, Vec<String>) {
        let mut m = vec![];
        let mut n = vec![];
        while let Ok(ev) = rx.try_recv() {
            match ev.kind {
                EventKind::Metric { name, value, .. } => m.push((name, value)),
                EventKind::Notice { message, .. } => n.push(message),
                _ => {}
            }
        }
        (m, n)
    }

    #[test]
    fn keeps_listed_series_and_computes_freshness_also_on_failure() {
        let (events, mut rx) = EventSink::new(std::time::Instant::now());
        let scrape = plan("pipe", Some(&["dup", "req"]), Some("last_sync"));
        let mut st = ScrapeState::new(scrape);
        st.started_unix = 900.0;
        let text = "last_sync 1000\ndup 2\nreq{a=\"1\"} 5\nreq{a=\"2\"} 6\nother 1\npipeline_freshness_seconds 0.1\n";
        st.fold(&events, Ok(text.into()), 1000.5);
        let (m, n) = drain(&mut rx);
        assert_eq!(
            m,
            vec![
                ("dup".to_string(), 2.0),
                ("req{a=\"1\"}".to_string(), 5.0),
                ("req{a=\"2\"}".to_string(), 6.0),
                (SCRAPE_ERRORS_METRIC.to_string(), 0.0),
                (FRESHNESS_METRIC.to_string(), 0.5),
            ]
        );
        assert!(n.is_empty(), "{n:?}");
        // The service stalls: scrapes fail, freshness keeps growing, one notice.
        st.fold(&events, timeout(), 1010.0);
        st.fold(&events, timeout(), 1020.0);
        let (m, n) = drain(&mut rx);
        assert_eq!(
            m,
            vec![
                (SCRAPE_ERRORS_METRIC.to_string(), 1.0),
                (FRESHNESS_METRIC.to_string(), 10.0),
                (SCRAPE_ERRORS_METRIC.to_string(), 2.0),
                (FRESHNESS_METRIC.to_string(), 20.0),
            ]
        );
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("freshness keeps growing"), "{n:?}");
        // It answers again with a newer stamp; an older or zero one never moves it back.
        st.fold(&events, Ok("last_sync 1019\n".into()), 1020.0);
        st.fold(&events, Ok("last_sync 0\n".into()), 1021.0);
        let (m, n) = drain(&mut rx);
        let fresh: Vec<f64> = m
            .iter()
            .filter(|(k, _)| k == FRESHNESS_METRIC)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(fresh, vec![1.0, 2.0]);
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("answer again"), "{n:?}");
    }

    #[test]
    fn freshness_counts_from_the_start_without_a_stamp() {
        let (events, mut rx) = EventSink::new(std::time::Instant::now());
        let scrape = plan("pipe", Some(&[]), Some("stamp"));
        let mut st = ScrapeState::new(scrape);
        st.started_unix = 100.0;
        st.fold(&events, Ok("other 1\n".into()), 103.0);
        st.fold(&events, Ok("other 1\n".into()), 104.0);
        let (m, n) = drain(&mut rx);
        assert_eq!(
            m.iter()
                .filter(|(k, _)| k == FRESHNESS_METRIC)
                .map(|(_, v)| *v)
                .collect::<Vec<_>>(),
            vec![3.0, 4.0]
        );
        assert_eq!(n.len(), 1, "one notice: {n:?}");
        assert!(n[0].contains("no unlabelled `stamp`"));
    }

    #[test]
    fn series_are_bounded() {
        let (events, mut rx) = EventSink::new(std::time::Instant::now());
        let scrape = plan("api", None, None);
        let mut st = ScrapeState::new(scrape);
        let text: String = (0..MAX_SERIES + 50)
            .map(|i| format!("m{{i=\"{i}\"}} {i}\n"))
            .collect();
        st.fold(&events, Ok(text.clone()), 1.0);
        st.fold(&events, Ok(text), 2.0);
        let (m, n) = drain(&mut rx);
        // Two scrapes of MAX_SERIES series, plus the error count twice.
        assert_eq!(m.len(), 2 * MAX_SERIES + 2);
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("more than"));
    }
}
