//! Prometheus scrapes of one service, every `interval`, each kept sample a
//! `RunEvent::Metric`; and freshness computed here, from a timestamp gauge.
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

use crate::event::{EventSink, Level, RunEvent};
use crate::scenario::model::MetricsSpec;

use super::prom;

/// The metric freshness is recorded as (the grader's `pipeline.freshness.max` reads it).
pub const FRESHNESS_METRIC: &str = "pipeline_freshness_seconds";
/// Failed scrapes so far, recorded under the service.
pub const SCRAPE_ERRORS_METRIC: &str = "scrape_errors";
/// Distinct series recorded per service.
pub const MAX_SERIES: usize = 200;
/// Largest `/metrics` body read.
pub const MAX_BODY: usize = 4 << 20;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The default timeout is the interval, capped at this.
pub const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Notices about failing/answering-again scrapes, per service; then one saying so.
const MAX_STATE_NOTICES: u32 = 6;

/// One service's scrape, resolved.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub service: String,
    pub host: String,
    pub port: u16,
    /// Path and query, e.g. "/metrics".
    pub path: String,
    pub authority: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// None: keep every name.
    pub keep: Option<HashSet<String>>,
    pub freshness: Option<String>,
}

impl Scrape {
    /// Resolve a service's `metrics` table; Err says why it cannot be scraped.
    pub fn from_spec(service: &str, spec: &MetricsSpec) -> Result<Scrape, String> {
        let url = url::Url::parse(&spec.url)
            .map_err(|e| format!("metrics.url `{}` is not a URL: {e}", spec.url))?;
        if url.scheme() != "http" {
            return Err(format!(
                "metrics.url `{}`: only http:// is supported",
                spec.url
            ));
        }
        let raw_host = url
            .host_str()
            .ok_or_else(|| format!("metrics.url `{}` has no host", spec.url))?;
        let host = raw_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        crate::chaos::require_loopback_host(&host).map_err(|m| format!("metrics.url: {m}"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let authority = match url.port() {
            Some(p) => format!("{raw_host}:{p}"),
            None => raw_host.to_string(),
        };
        let interval = spec
            .interval
            .map(|d| d.as_duration())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = spec
            .timeout
            .map(|d| d.as_duration())
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| interval.min(MAX_DEFAULT_TIMEOUT));
        Ok(Scrape {
            service: service.to_string(),
            host,
            port,
            path,
            authority,
            interval,
            timeout,
            keep: spec.keep.as_ref().map(|k| k.iter().cloned().collect()),
            freshness: spec.freshness.clone(),
        })
    }

    /// One GET of the metrics page, bounded by the timeout. Ok(body text).
    pub async fn fetch(&self) -> Result<String, String> {
        match tokio::time::timeout(self.timeout, self.fetch_inner()).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    async fn fetch_inner(&self) -> Result<String, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("http handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let result = async {
            let req = http::Request::get(self.path.as_str())
                .header(http::header::HOST, self.authority.as_str())
                .header(http::header::ACCEPT, "text/plain;version=0.0.4")
                .header(http::header::USER_AGENT, "gauntlet-scrape")
                .body(Empty::<Bytes>::new())
                .map_err(|e| format!("request: {e}"))?;
            let res = sender
                .send_request(req)
                .await
                .map_err(|e| format!("GET {}: {e}", self.path))?;
            let status = res.status();
            if !status.is_success() {
                return Err(format!("GET {}: status {}", self.path, status.as_u16()));
            }
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("GET {}: reading the body: {e}", self.path))?
                .to_bytes();
            String::from_utf8(body.to_vec())
                .map_err(|_| format!("GET {}: the body is not UTF-8 text", self.path))
        }
        .await;
        conn.abort();
        result
    }
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
    pub scrape: Scrape,
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
    pub fn new(scrape: Scrape) -> Self {
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
        events.send(RunEvent::Metric {
            at: events.now(),
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
    pub fn fold(&mut self, events: &EventSink, result: Result<String, String>, now_unix: f64) {
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
    scrape: Scrape,
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
            r = st.scrape.fetch() => r,
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

    fn spec(url: &str, keep: Option<&[&str]>, freshness: Option<&str>) -> MetricsSpec {
        MetricsSpec {
            url: url.into(),
            interval: None,
            timeout: None,
            keep: keep.map(|k| k.iter().map(|s| s.to_string()).collect()),
            freshness: freshness.map(Into::into),
        }
    }

    fn drain(rx: &mut crate::event::EventStream) -> (Vec<(String, f64)>, Vec<String>) {
        let mut m = vec![];
        let mut n = vec![];
        while let Ok(ev) = rx.try_recv() {
            match ev {
                RunEvent::Metric { name, value, .. } => m.push((name, value)),
                RunEvent::Notice { message, .. } => n.push(message),
                _ => {}
            }
        }
        (m, n)
    }

    #[test]
    fn resolves_urls_and_defaults() {
        let s =
            Scrape::from_spec("p", &spec("http://127.0.0.1:9100/metrics?x=1", None, None)).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 9100));
        assert_eq!(s.path, "/metrics?x=1");
        assert_eq!(s.authority, "127.0.0.1:9100");
        assert_eq!(s.interval, DEFAULT_INTERVAL);
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert!(
            Scrape::from_spec("p", &spec("http://10.1.2.3/metrics", None, None))
                .unwrap_err()
                .contains("loopback")
        );
        assert!(Scrape::from_spec("p", &spec("https://127.0.0.1/m", None, None)).is_err());
        let s = Scrape::from_spec("p", &spec("http://[::1]:9/m", None, None)).unwrap();
        assert_eq!((s.host.as_str(), s.authority.as_str()), ("::1", "[::1]:9"));
    }

    #[test]
    fn keeps_listed_series_and_computes_freshness_also_on_failure() {
        let (events, mut rx) = EventSink::new(std::time::Instant::now());
        let scrape = Scrape::from_spec(
            "pipe",
            &spec(
                "http://127.0.0.1:1/metrics",
                Some(&["dup", "req"]),
                Some("last_sync"),
            ),
        )
        .unwrap();
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
        st.fold(&events, Err("no answer within 1s".into()), 1010.0);
        st.fold(&events, Err("no answer within 1s".into()), 1020.0);
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
        let scrape = Scrape::from_spec(
            "pipe",
            &spec("http://127.0.0.1:1/metrics", Some(&[]), Some("stamp")),
        )
        .unwrap();
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
        let scrape =
            Scrape::from_spec("api", &spec("http://127.0.0.1:1/metrics", None, None)).unwrap();
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
