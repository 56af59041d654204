//! Scenario files: parse (TOML), collect every problem with file, line, column, key path
//! and hint, validate as a whole, and resolve into a [`Plan`] the run executes.

pub mod bounds;
pub mod load_plan;
pub mod model;
mod overrides;
mod parse;
pub mod schema;
mod source;
pub(crate) mod suggest;
pub mod template;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use model::Scenario;

use crate::metric::Criterion;
use load_plan::{Check, Extractor, LoadPlan};
use template::{BodyTemplate, Template};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (e.g. file unreadable).
    pub line: usize,
    /// 1-based, in chars.
    pub column: usize,
    /// Key path, e.g. `load.stages[1].duration`; empty for the whole file.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
    /// The text of the line the problem is on, shown under the header with a caret (a
    /// window of it, marked with `…`, when the line is long).
    pub source_line: Option<String>,
    /// 1-based char column of the caret in `source_line` (`column`, unless cut).
    pub caret: usize,
    /// How many chars the caret underlines (at least 1).
    pub width: usize,
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// tests/fixtures/bad/x.toml:12:1: `load.thinktime`: unknown key
    ///    |
    /// 12 | thinktime = "100ms"
    ///    | ^^^^^^^^^
    ///   hint: did you mean `think_time`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(text), true) = (&self.source_line, self.line > 0) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            write!(f, "\n{pad} |\n{num} | {text}\n{pad} | ")?;
            // Keep tabs so the caret lines up under the column.
            for c in text.chars().take(self.caret.saturating_sub(1)) {
                f.write_str(if c == '\t' { "\t" } else { " " })?;
            }
            write!(f, "{}", "^".repeat(self.width.max(1)))?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file, in file order. Each starts with a header line
/// `error: FILE:LINE:COL: `KEY`: MESSAGE`, followed by the source line and hints.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<Diagnostic>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                if d.source_line.is_some() || d.hint.is_some() {
                    writeln!(f)?;
                }
            }
            write!(f, "error: {d}")?;
        }
        if self.0.len() > 1 {
            let file = self.0[0].file.display();
            write!(
                f,
                "\n\n{} problems in {file}; nothing was started",
                self.0.len()
            )?;
        }
        Ok(())
    }
}

/// The validated scenario, with everything resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: PathBuf,
    /// The scenario's name (reports, run id).
    pub name: String,
    /// Hosts load may go to, as [`crate::units::bare_host`]s.
    pub allow_hosts: Vec<String>,
    /// Which histogram latency criteria read.
    pub latency_basis: model::LatencyBasis,
    pub backend: model::BackendKind,
    /// What a fault that cannot be applied does, unless the fault says otherwise.
    pub on_fault_error: model::OnFaultError,
    /// In file order, health checks resolved.
    pub services: Vec<model::ServicePlan>,
    /// In file order; `FaultEvent::fault` indexes this.
    pub faults: Vec<model::FaultSpec>,
    /// The seed in force (the file's, or a drawn one).
    pub seed: u64,
    /// Hard upper bound on the run.
    pub deadline: Duration,
    /// Watched after the load and faults end (not counted in `deadline`).
    pub cooldown: Duration,
    /// Sum of the load stages.
    pub load_duration: Duration,
    /// The load, typed; `None` without `[load]` (then there are no requests either).
    pub load: Option<LoadPlan>,
    pub criteria: Vec<Criterion>,
    pub base_url: url::Url,
    /// `target.http`: the HTTP version the load speaks.
    pub http: model::HttpVersion,
    /// `Some` for an `https://` target (the defaults when `target.tls` is absent).
    pub tls: Option<TlsPlan>,
    /// `[targets.<name>]`, by name order; `RequestPlan::target` k > 0 is `targets[k - 1]`.
    pub targets: Vec<NamedTargetPlan>,
    /// `[report] show_values`: error reasons may quote values from the exchange (header
    /// values, response values, rendered paths). Off by default: they may be secrets.
    pub show_values: bool,
    /// In the order of the file; `RequestDone::request` indexes this.
    pub requests: Vec<RequestPlan>,
    /// `[[flows]]` in file order; `FlowDone::flow` indexes this.
    pub flows: Vec<FlowPlan>,
    /// `[[ws]]` users, in file order (closed model only).
    pub ws: Vec<WsPlan>,
    /// Metrics scrapes and the data canary, resolved (what `observe` runs).
    pub observers: model::ObserversPlan,
    /// `[gate]`: tolerances against a baseline, by figure key, in file order.
    pub gate: Vec<(String, crate::metric::tolerance::Tolerance)>,
    /// The values of the secret variables: masked in every report, event and message.
    pub secrets: crate::secrets::Secrets,
    /// `[capacity]`, for `gauntlet capacity`; `run` ignores it.
    pub capacity: Option<load_plan::CapacityPlan>,
    /// Requests that end within this long after the load started are not graded (still
    /// in the per-second figures): a capacity level's warmup. Zero for a plain run.
    pub warmup: Duration,
}

/// The TLS settings of an `https://` target, its files read and parsed by validation.
#[derive(Debug, Clone, Default)]
pub struct TlsPlan {
    /// CA certificates trusted besides the system's roots (`tls.ca`).
    pub ca: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// Client certificate chain and its key (mTLS), checked to match.
    pub client: Option<ClientIdentity>,
    /// No verification of the server's certificate (`tls.insecure = true`).
    pub insecure: bool,
    /// SNI and the name verified (`tls.server_name`); `None`: the URL's host.
    pub server_name: Option<rustls_pki_types::ServerName<'static>>,
}

#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// Shared: a private key is not `Clone` (it is zeroed on drop).
    pub key: std::sync::Arc<rustls_pki_types::PrivateKeyDer<'static>>,
}

#[derive(Debug, Clone)]
pub struct RequestPlan {
    pub name: String,
    pub weight: u32,
    pub method: http::Method,
    pub path: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Option<BodyTemplate>,
    /// Run in order after the checks passed.
    pub extract: Vec<Extractor>,
    /// Run in order; the first that fails makes the request an error.
    pub checks: Vec<Check>,
    /// Variables its templates use, and for each the index of the request that extracts
    /// it (run first when the user does not have the value yet).
    pub needs: Vec<(String, usize)>,
    /// Redirects followed at most (0: a 3xx is the response), each only to a host on the
    /// allow list.
    pub redirects: u32,
    /// Where it goes: 0 the default `[target]`, k > 0 `Plan::targets[k - 1]`.
    pub target: usize,
}

/// One `[targets.<name>]` table, resolved.
#[derive(Debug, Clone)]
pub struct NamedTargetPlan {
    pub name: String,
    pub base_url: url::Url,
    pub http: model::HttpVersion,
    pub tls: Option<TlsPlan>,
}
/// One `[[ws]]` entry, resolved: what each of its WebSocket users does per connection.
#[derive(Debug, Clone)]
pub struct WsPlan {
    pub name: String,
    /// `ws://` or `wss://`, its host on the allow list.
    pub url: url::Url,
    pub weight: u32,
    /// Sent with the upgrade request.
    pub headers: Vec<(http::HeaderName, Template)>,
    pub subprotocol: Option<String>,
    pub messages: Vec<WsMessagePlan>,
    /// Open time after the messages.
    pub hold: Duration,
    pub ping_interval: Option<Duration>,
}

/// One message of a `[[ws]]` user.
#[derive(Debug, Clone)]
pub struct WsMessagePlan {
    pub send: Template,
    /// The first text reply passing it ends the wait; `None`: only sent.
    pub expect: Option<Check>,
    /// How long to wait for the matching reply (never zero).
    pub timeout: Duration,
    /// From the matching reply (JSON pointers only).
    pub extract: Vec<Extractor>,
}

impl Plan {
    /// The weights users are split by: the HTTP mix first (the sum of the request and
    /// flow weights), then each `[[ws]]` entry.
    pub fn user_weights(&self) -> Vec<u64> {
        let http: u64 = self
            .requests
            .iter()
            .map(|r| u64::from(r.weight))
            .sum::<u64>()
            + self.flows.iter().map(|f| u64::from(f.weight)).sum::<u64>();
        std::iter::once(http)
            .chain(self.ws.iter().map(|w| u64::from(w.weight)))
            .collect()
    }
}

/// One `[[flows]]` table, resolved: its steps as indexes into `Plan::requests`.
#[derive(Debug, Clone)]
pub struct FlowPlan {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<usize>,
}

pub use overrides::{parse_scale_time, Overrides};

/// Read one scenario file, fill in its variables (`${VAR}`: `--set vars.VAR=...`, the
/// environment, `--vars FILE`, `[vars]`, `:-default`), apply the key paths of `--vars
/// FILE` then of `--set`, scale the timeline by `--scale-time`, then parse and validate
/// it. All problems come back together, secret values masked.
pub fn load_with(path: &Path, over: &Overrides) -> Result<Plan, ScenarioErrors> {
    load_with_text(path, over).map(|(plan, _)| plan)
}

/// [`load_with`], and the text that was validated (variables filled in, overrides
/// applied): what the run folder keeps so its reports can be rebuilt.
pub fn load_with_text(path: &Path, over: &Overrides) -> Result<(Plan, String), ScenarioErrors> {
    let bytes = std::fs::read(path);
    let text = match bytes.as_deref().map(std::str::from_utf8) {
        Ok(Ok(t)) => t.to_string(),
        // Unreadable or not UTF-8: the plain path says where.
        _ => {
            return load(path).map(|p| {
                (
                    p,
                    String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned(),
                )
            })
        }
    };
    let file_vars = match &over.vars_file {
        Some(f) => overrides::read_vars_file(f).map_err(ScenarioErrors)?,
        None => overrides::VarsFile::default(),
    };
    let scenario_vars = overrides::scenario_vars(&text);
    // `--set vars.NAME=VALUE` sets a variable (over the environment); other paths edit
    // the file, after those of --vars.
    let mut set_vars = std::collections::BTreeMap::new();
    let mut ops: Vec<overrides::SetOp> = file_vars
        .sets
        .iter()
        .map(|(p, v)| overrides::SetOp {
            origin: overrides::Origin::VarsFile(file_vars.path.clone()),
            path: p.clone(),
            value: v.clone(),
        })
        .collect();
    for (p, v) in &over.sets {
        let op = overrides::SetOp::command_line(p, v);
        match p.strip_prefix("vars.") {
            Some(name) if !name.contains(['.', '[']) => {
                set_vars.insert(name.to_string(), op.text().unwrap_or_else(|| v.clone()));
            }
            _ => ops.push(op),
        }
    }
    let lookup = |n: &str| {
        set_vars
            .get(n)
            .cloned()
            .or_else(|| std::env::var(n).ok())
            .or_else(|| file_vars.vars.get(n).and_then(|v| v.value.clone()))
            .or_else(|| scenario_vars.get(n).and_then(|v| v.value.clone()))
    };
    let secret_names = scenario_vars
        .iter()
        .chain(&file_vars.vars)
        .filter(|(_, v)| v.secret)
        .map(|(n, _)| n.clone())
        .chain(overrides::scenario_secret_names(&text));
    let secrets = crate::secrets::Secrets::new(secret_names.filter_map(|n| lookup(&n)));
    let masked =
        |e: Vec<Diagnostic>| ScenarioErrors(e.into_iter().map(|d| mask(d, &secrets)).collect());
    let text = overrides::interpolate(path, &text, lookup).map_err(masked)?;
    let (text, scaled) = overrides::edit(path, &text, &ops, over.scale_time).map_err(masked)?;
    match load_str(path, &text) {
        Ok(mut plan) => {
            // What the run folder keeps holds no secret either.
            let text = secrets.mask(&text);
            plan.secrets = secrets;
            Ok((plan, text))
        }
        Err(ScenarioErrors(diags)) => Err(masked(
            diags
                .into_iter()
                .map(|d| explain(d, &ops, &scaled, over.scale_time))
                .collect(),
        )),
    }
}

/// A problem at a value the command line put there says so.
fn explain(
    mut d: Diagnostic,
    ops: &[overrides::SetOp],
    scaled: &[String],
    scale: Option<f64>,
) -> Diagnostic {
    let under = |p: &str| {
        d.key == p || d.key.starts_with(&format!("{p}.")) || d.key.starts_with(&format!("{p}["))
    };
    let mut notes = Vec::new();
    if let Some(op) = ops.iter().rev().find(|op| under(&op.path)) {
        notes.push(match &op.origin {
            overrides::Origin::CommandLine => format!("the value comes from --set {}", op.path),
            overrides::Origin::VarsFile(f) => {
                format!(
                    "the value comes from --vars {} (`{}`)",
                    f.display(),
                    op.path
                )
            }
        });
    }
    if let (Some(f), true) = (scale, scaled.contains(&d.key)) {
        notes.push(format!("the duration was scaled by --scale-time {f}"));
    }
    if !notes.is_empty() {
        let note = notes.join("; ");
        d.hint = Some(match d.hint.take() {
            Some(h) => format!("{h}; {note}"),
            None => note,
        });
    }
    d
}

fn mask(mut d: Diagnostic, secrets: &crate::secrets::Secrets) -> Diagnostic {
    if secrets.is_empty() {
        return d;
    }
    d.message = secrets.mask(&d.message);
    d.key = secrets.mask(&d.key);
    d.hint = d.hint.map(|h| secrets.mask(&h));
    if let Some(line) = &d.source_line {
        let m = secrets.mask(line);
        if m != *line {
            // The caret no longer lines up with the masked text.
            d.caret = d.caret.min(m.chars().count() + 1);
            d.source_line = Some(m);
        }
    }
    d
}

/// Read, parse and validate one scenario file. All problems come back together.
pub fn load(path: &Path) -> Result<Plan, ScenarioErrors> {
    let src = std::fs::read(path).map_err(|e| {
        ScenarioErrors(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
            hint: None,
            source_line: None,
            caret: 0,
            width: 1,
        }])
    })?;
    load_bytes(path, &src)
}

/// At most this many invalid UTF-8 sequences are reported one by one.
const MAX_UTF8_PROBLEMS: usize = 20;

/// Parse and validate scenario bytes: text that is not UTF-8 is reported at each bad
/// sequence (line and column), and the rest of the file is still checked, with each bad
/// sequence read as U+FFFD.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Plan, ScenarioErrors> {
    let text = String::from_utf8_lossy(bytes);
    if matches!(text, std::borrow::Cow::Borrowed(_)) {
        return load_str(path, &text);
    }
    // Where each bad sequence sits in the lossy text (one U+FFFD for each).
    let mut bad = Vec::new();
    let (mut rest, mut at) = (bytes, 0usize);
    while let Err(e) = std::str::from_utf8(rest) {
        let ok = e.valid_up_to();
        at += ok;
        bad.push(at);
        at += '\u{FFFD}'.len_utf8();
        let skip = ok + e.error_len().unwrap_or(rest.len() - ok);
        rest = &rest[skip..];
    }
    let mut ctx = source::Ctx::new(path, &text);
    let n = bad.len();
    for (i, at) in bad.into_iter().enumerate() {
        if i == MAX_UTF8_PROBLEMS {
            ctx.at_span(
                at..at + 3,
                "",
                format!("{} more bytes that are not UTF-8 (not shown)", n - i),
                None,
            );
            break;
        }
        ctx.at_span(
            at..at + 3,
            "",
            "invalid UTF-8: a scenario file is UTF-8 text",
            Some("save the file as UTF-8; the bad bytes show as \u{FFFD} above".into()),
        );
    }
    check(ctx)
}

/// Parse and validate scenario text; `path` is used in messages and to resolve relative
/// paths.
pub fn load_str(path: &Path, src: &str) -> Result<Plan, ScenarioErrors> {
    check(source::Ctx::new(path, src))
}

fn check(mut ctx: source::Ctx<'_>) -> Result<Plan, ScenarioErrors> {
    let plan = parse::parse(&mut ctx).and_then(|parsed| {
        let before = ctx.diags.len();
        let plan = validate::validate(&mut ctx, parsed.scenario);
        if parsed.cut.0.is_empty() {
            return plan;
        }
        // What was left after a type error was validated too: keep its own problems,
        // not those the cut values would explain.
        let mut i = before;
        while i < ctx.diags.len() {
            if parsed.cut.hides(&ctx.diags[i].key, &ctx.diags[i].message) {
                ctx.diags.swap_remove(i);
            } else {
                i += 1;
            }
        }
        None
    });
    let mut diags = ctx.finish();
    match plan {
        Some(plan) if diags.is_empty() => Ok(plan),
        _ => {
            if diags.is_empty() {
                // Unreachable in practice: a failure always says why.
                diags.push(ctx.diagnostic(0..0, "", "the scenario is invalid".into(), None));
            }
            Err(ScenarioErrors(diags))
        }
    }
}
