//! HTTPS and HTTP/2 with real parts: a test CA and certificates made here with rcgen, a
//! tokio-rustls + hyper server on 127.0.0.1 (HTTP/1.1 and h2 by ALPN, or h2c on plain
//! TCP) that records the protocol version, the client certificate and the TLS resumption
//! it saw, and the real `gauntlet` binary run against it.

mod common;

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use common::*;

/// A CA, and what it signed.
struct Pki {
    ca_pem: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
        }
    }

    /// A leaf certificate for `names` (DNS names or IPs): (cert DER, cert PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (CertificateDer<'static>, String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "gauntlet test");
        let cert = p.signed_by(&key, &self.ca).unwrap();
        (cert.der().clone(), cert.pem(), key.serialize_pem())
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    h1: AtomicU64,
    h2: AtomicU64,
    handshakes: AtomicU64,
    resumed: AtomicU64,
    client_certs: AtomicU64,
    alpn: Mutex<Vec<Option<String>>>,
}

struct Server {
    port: u16,
    seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How the server speaks.
#[derive(Clone)]
enum Mode {
    /// TLS with this config (its ALPN list decides h2 or HTTP/1.1).
    Tls(Arc<ServerConfig>),
    /// Plain TCP, HTTP/2 only (prior knowledge).
    H2c,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server config for `pki`'s certificate of 127.0.0.1 and localhost; `alpn` in
/// order of preference; `client_ca`: require a client certificate signed by it.
fn tls_config(pki: &Pki, alpn: &[&str], client_ca: Option<&Pki>) -> Arc<ServerConfig> {
    let (cert, _, key_pem) = pki.leaf(&["localhost", "127.0.0.1"]);
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.ca.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(vec![cert], key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// Serve `mode` on 127.0.0.1 (own thread, own runtime). `close`: answer every request
/// with `Connection: close` (HTTP/1.1), so each request is a new connection.
fn serve(mode: Mode, close: bool) -> Server {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let s = seen.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let tcp = tokio::select! {
                    a = listener.accept() => match a {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                    _ = &mut stop_rx => break,
                };
                let seen = s.clone();
                let mode = mode.clone();
                tokio::spawn(async move {
                    match mode {
                        Mode::H2c => serve_conn(tcp, true, close, seen).await,
                        Mode::Tls(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            // A refused client (unknown CA, no client certificate) ends here.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let conn = tls.get_ref().1;
                            seen.handshakes.fetch_add(1, Ordering::SeqCst);
                            if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                                seen.resumed.fetch_add(1, Ordering::SeqCst);
                            }
                            if conn.peer_certificates().is_some_and(|c| !c.is_empty()) {
                                seen.client_certs.fetch_add(1, Ordering::SeqCst);
                            }
                            let alpn = conn
                                .alpn_protocol()
                                .map(|p| String::from_utf8_lossy(p).into_owned());
                            let h2 = alpn.as_deref() == Some("h2");
                            seen.alpn.lock().unwrap().push(alpn);
                            serve_conn(tls, h2, close, seen).await
                        }
                    }
                });
            }
        });
    });
    Server {
        port,
        seen,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

async fn serve_conn<I>(io: I, h2: bool, close: bool, seen: Arc<Seen>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            seen.requests.fetch_add(1, Ordering::SeqCst);
            match req.version() {
                Version::HTTP_2 => seen.h2.fetch_add(1, Ordering::SeqCst),
                _ => seen.h1.fetch_add(1, Ordering::SeqCst),
            };
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                b"{\"ok\":true}",
            ))))
        }
    });
    let io = TokioIo::new(io);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, svc)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(!close)
            .serve_connection(io, svc)
            .await;
    }
}

/// A scenario against `url`, with `target_extra` lines under [target] (and its own
/// tables after). 2 users for 1.5s, a short think time.
fn scenario(url: &str, target_extra: &str, criteria: &str) -> String {
    format!(
        r#"
name = "tls"
seed = 1
duration = "20s"
criteria = [{criteria}]

[target]
base_url = "{url}"
allow_hosts = ["127.0.0.1", "localhost"]
{target_extra}

[load]
think_time = "20ms"
timeout = "5s"
stages = [{{ duration = "1500ms", users = 2 }}]

[[requests]]
name = "ok"
path = "/ok"
checks = [{{ status = 200 }}, {{ json = "/ok", equals = true }}]
"#
    )
}

/// Write the PEM files and the scenario in `dir`; run it (env: `SSL_CERT_FILE` set to
/// `trust_file` so the machine's own roots never decide a test).
fn run(dir: &Path, id: &str, body: &str, trust_file: &Path) -> std::process::Output {
    let file = dir.join(format!("{id}.toml"));
    std::fs::write(&file, body).unwrap();
    std::process::Command::new(gauntlet_bin())
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(dir.join("reports"))
        .arg("--run-id")
        .arg(id)
        .arg("--quiet")
        .env("SSL_CERT_FILE", trust_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    pki: Pki,
    /// A trust file holding an unrelated CA (the "system roots" of these tests).
    other_ca: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("gauntlet test CA");
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ca.pem"), &pki.ca_pem).unwrap();
    let other_ca = dir.path().join("certs/other-ca.pem");
    std::fs::write(&other_ca, Pki::new("some other CA").ca_pem).unwrap();
    Setup { dir, pki, other_ca }
}

fn summary(dir: &Path, id: &str) -> serde_json::Value {
    read_json(&report_dir(dir, id).join("summary.json"))
}

#[test]
fn trusted_ca_passes_over_http1_and_records_handshakes() {
    let s = setup();
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), false);
    let body = scenario(
        &format!("https://127.0.0.1:{}", server.port),
        r#"tls = { ca = "certs/ca.pem" }"#,
        r#""errors.count == 0", "requests.count > 5", "connect.p95 < 5s""#,
    );
    let out = run(s.dir.path(), "trusted", &body, &s.other_ca);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(server.seen.h1.load(Ordering::SeqCst) > 5);
    assert_eq!(server.seen.h2.load(Ordering::SeqCst), 0);
    let sum = summary(s.dir.path(), "trusted");
    assert_eq!(sum["target"]["tls"], true, "{sum}");
    assert_eq!(sum["target"]["tls_insecure"], false);
    let c = &sum["connections"];
    // One keep-alive connection per user.
    assert_eq!(c["count"], 2, "{c}");
    assert_eq!(c["tls"], 2, "{c}");
    assert_eq!(c["h2"], 0, "{c}");
    let hs = &c["handshake_us"];
    assert!(hs["p50"].as_u64().unwrap() > 0, "{c}");
    assert!(hs["max"].as_u64().unwrap() >= hs["p50"].as_u64().unwrap());
    // The criterion reads the same histogram.
    let crit = &sum["criteria"][2];
    assert_eq!(crit["metric"], "connect.p95", "{crit}");
    assert!(crit["measured"]["value"].as_f64().unwrap() > 0.0, "{crit}");
}

#[test]
fn the_system_trust_store_is_read_from_ssl_cert_file() {
    let s = setup();
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), false);
    // No tls.ca: the CA comes from SSL_CERT_FILE, as for OpenSSL tools.
    let body = scenario(
        &format!("https://localhost:{}", server.port),
        "",
        r#""errors.count == 0""#,
    );
    let out = run(
        s.dir.path(),
        "system",
        &body,
        &s.dir.path().join("certs/ca.pem"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn an_unknown_ca_ends_the_run_with_exit_3_naming_the_certificate_problem() {
    let s = setup();
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), false);
    let body = scenario(
        &format!("https://127.0.0.1:{}", server.port),
        "",
        r#""errors.count == 0""#,
    );
    let out = run(s.dir.path(), "unknown", &body, &s.other_ca);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate is not accepted")
            && err.contains("UnknownIssuer")
            && err.contains("target.tls.ca"),
        "{err}"
    );
    assert_eq!(server.seen.requests.load(Ordering::SeqCst), 0);
    let sum = summary(s.dir.path(), "unknown");
    assert_eq!(sum["run"]["ended_by"], "error", "{sum}");
}

#[test]
fn insecure_skips_verification_and_every_report_says_so() {
    let s = setup();
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), false);
    let body = scenario(
        &format!("https://127.0.0.1:{}", server.port),
        r#"tls = { insecure = true }"#,
        r#""errors.count == 0""#,
    );
    let out = run(s.dir.path(), "insecure", &body, &s.other_ca);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let sum = summary(s.dir.path(), "insecure");
    assert_eq!(sum["target"]["tls_insecure"], true, "{sum}");
    let notices = sum["notices"].to_string();
    assert!(notices.contains("TLS verification is OFF"), "{notices}");
    let html =
        std::fs::read_to_string(report_dir(s.dir.path(), "insecure").join("report.html")).unwrap();
    assert!(html.contains("TLS verification is OFF"));
}

#[test]
fn mtls_passes_with_the_client_certificate_and_fails_without() {
    let s = setup();
    let clients = Pki::new("client CA");
    let (_, cert_pem, key_pem) = clients.leaf(&["gauntlet-client"]);
    std::fs::write(s.dir.path().join("certs/client.pem"), cert_pem).unwrap();
    std::fs::write(s.dir.path().join("certs/client.key"), key_pem).unwrap();
    let server = serve(
        Mode::Tls(tls_config(&s.pki, &["http/1.1"], Some(&clients))),
        false,
    );
    let url = format!("https://127.0.0.1:{}", server.port);
    let with = scenario(
        &url,
        r#"tls = { ca = "certs/ca.pem", cert = "certs/client.pem", key = "certs/client.key" }"#,
        r#""errors.count == 0""#,
    );
    let out = run(s.dir.path(), "mtls", &with, &s.other_ca);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(server.seen.client_certs.load(Ordering::SeqCst) >= 2);

    let without = scenario(
        &url,
        r#"tls = { ca = "certs/ca.pem" }"#,
        r#""errors.count == 0""#,
    );
    let out = run(s.dir.path(), "no-cert", &without, &s.other_ca);
    // The server refuses after the client's handshake: every request fails with the
    // alert it sent, and the run fails its verdict.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let sum = summary(s.dir.path(), "no-cert");
    let reasons = sum["total"]["top_errors"].to_string();
    assert!(reasons.contains("CertificateRequired"), "{reasons}");
}

#[test]
fn h2_is_negotiated_with_alpn() {
    let s = setup();
    let server = serve(
        Mode::Tls(tls_config(&s.pki, &["h2", "http/1.1"], None)),
        false,
    );
    for (id, http) in [("h2-auto", "auto"), ("h2-only", "2")] {
        let body = scenario(
            &format!("https://localhost:{}", server.port),
            &format!("http = \"{http}\"\ntls = {{ ca = \"certs/ca.pem\" }}"),
            r#""errors.count == 0", "requests.count > 5""#,
        );
        let out = run(s.dir.path(), id, &body, &s.other_ca);
        assert_eq!(out.status.code(), Some(0), "{id}: {}", show(&out));
        let sum = summary(s.dir.path(), id);
        let c = &sum["connections"];
        assert_eq!(c["count"], 2, "{id}: {c}");
        assert_eq!(c["h2"], 2, "{id}: {c}");
    }
    assert!(server.seen.h2.load(Ordering::SeqCst) > 10);
    assert_eq!(server.seen.h1.load(Ordering::SeqCst), 0);
    assert!(server
        .seen
        .alpn
        .lock()
        .unwrap()
        .iter()
        .all(|a| a.as_deref() == Some("h2")));
}

#[test]
fn http2_only_against_a_server_without_h2_fails_with_the_reason() {
    let s = setup();
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), false);
    let body = scenario(
        &format!("https://127.0.0.1:{}", server.port),
        "http = \"2\"\ntls = { ca = \"certs/ca.pem\" }",
        r#""errors.count == 0""#,
    );
    let out = run(s.dir.path(), "no-h2", &body, &s.other_ca);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(server.seen.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn h2c_uses_prior_knowledge_on_plain_http() {
    let s = setup();
    let server = serve(Mode::H2c, false);
    let body = scenario(
        &format!("http://127.0.0.1:{}", server.port),
        "http = \"2\"",
        r#""errors.count == 0", "requests.count > 5""#,
    );
    let out = run(s.dir.path(), "h2c", &body, &s.other_ca);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(server.seen.h2.load(Ordering::SeqCst) > 5);
    assert_eq!(server.seen.h1.load(Ordering::SeqCst), 0);
    let sum = summary(s.dir.path(), "h2c");
    assert_eq!(sum["connections"]["h2"], 2, "{sum}");
    assert_eq!(sum["connections"]["tls"], 0);
    assert_eq!(sum["target"]["tls"], false);
}

#[test]
fn reconnects_resume_the_tls_session() {
    let s = setup();
    // Every answer closes its connection: each request needs a new handshake.
    let server = serve(Mode::Tls(tls_config(&s.pki, &["http/1.1"], None)), true);
    let body = scenario(
        &format!("https://127.0.0.1:{}", server.port),
        r#"tls = { ca = "certs/ca.pem" }"#,
        r#""errors.count == 0", "requests.count > 5""#,
    );
    let out = run(s.dir.path(), "resume", &body, &s.other_ca);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let c = summary(s.dir.path(), "resume")["connections"].clone();
    let count = c["count"].as_u64().unwrap();
    let resumed = c["resumed"].as_u64().unwrap();
    assert!(count > 5, "{c}");
    // All but the first few (before a session ticket arrived) resume.
    assert!(resumed * 2 > count, "{c}");
    assert!(server.seen.resumed.load(Ordering::SeqCst) >= resumed, "{c}");
}
