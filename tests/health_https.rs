//! HTTPS health checks against a real tokio-rustls + hyper server on 127.0.0.1 with a
//! certificate of a test CA made here (rcgen): trusted through the check's `ca`, through
//! `target.tls.ca`, or not checked with `insecure`; refused when not trusted.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;

/// A CA (its PEM) and a server config with its certificate for 127.0.0.1 and localhost.
fn pki() -> (String, Arc<ServerConfig>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "health test CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "health");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca.pem(), Arc::new(config))
}

/// HTTPS on 127.0.0.1: `GET /health` → 200 "ok"; counts requests served (after a
/// handshake the client accepted).
fn serve(config: Arc<ServerConfig>) -> (u16, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let s = served.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let s = s.clone();
                        async move {
                            s.fetch_add(1, Ordering::SeqCst);
                            let (code, body) = if req.uri().path() == "/health" {
                                (200, "ok")
                            } else {
                                (404, "no")
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(code)
                                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    (port, served)
}

/// The health plan of the one service in a scenario written to `dir`.
fn health(
    dir: &std::path::Path,
    target: &str,
    health: &str,
) -> Result<gauntlet::scenario::model::HealthPlan, String> {
    let src = format!(
        r#"
name = "https health"
[target]
{target}
allow_hosts = ["127.0.0.1"]
[[services]]
name = "api"
command = ["sleep", "1000"]
health = {health}
"#
    );
    let file = dir.join("s.toml");
    std::fs::write(&file, &src).unwrap();
    gauntlet::scenario::load(&file)
        .map(|p| p.services[0].health.clone().expect("a health plan"))
        .map_err(|e| e.to_string())
}

fn probe(h: &gauntlet::scenario::model::HealthPlan) -> Result<std::time::Duration, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(h.probe())
}

#[test]
fn https_health_checks_trust_what_the_scenario_says() {
    let (ca_pem, config) = pki();
    let (port, served) = serve(config);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}/health");
    let http_target = r#"base_url = "http://127.0.0.1:9""#;

    // The check's own CA.
    let h = health(
        dir.path(),
        http_target,
        &format!(r#"{{ http = "{url}", ca = "ca.pem", body = "ok", process_state = false }}"#),
    )
    .unwrap();
    let r = probe(&h);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // The https target's CA, by default.
    let h = health(
        dir.path(),
        &format!("base_url = \"https://127.0.0.1:{port}\"\ntls = {{ ca = \"ca.pem\" }}"),
        &format!(r#"{{ http = "{url}", process_state = false }}"#),
    )
    .unwrap();
    let r = probe(&h);
    assert!(r.is_ok(), "{r:?}");

    // Not verified at all.
    let h = health(
        dir.path(),
        http_target,
        &format!(r#"{{ http = "{url}", insecure = true, process_state = false }}"#),
    )
    .unwrap();
    let r = probe(&h);
    assert!(r.is_ok(), "{r:?}");
    let before = served.load(Ordering::SeqCst);

    // Another CA: the handshake is refused, and nothing is served.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("ca.pem"), pki().0).unwrap();
    let h = health(
        &other,
        http_target,
        &format!(r#"{{ http = "{url}", ca = "ca.pem", process_state = false }}"#),
    )
    .unwrap();
    let e = probe(&h).unwrap_err();
    assert!(e.contains("tls") && e.contains("certificate"), "{e}");
    // A wrong path is still a failed check, over TLS.
    let h = health(
        dir.path(),
        http_target,
        &format!(
            r#"{{ http = "https://127.0.0.1:{port}/nope", ca = "ca.pem", process_state = false }}"#
        ),
    )
    .unwrap();
    assert_eq!(probe(&h).unwrap_err(), "GET /nope: status 404");
    assert_eq!(served.load(Ordering::SeqCst), before + 1);
}

#[test]
fn https_health_options_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let t = r#"base_url = "http://127.0.0.1:9""#;
    let e = health(
        dir.path(),
        t,
        r#"{ http = "http://127.0.0.1:1/h", insecure = true }"#,
    )
    .unwrap_err();
    assert!(
        e.contains(
            "services[0].health.insecure`: `insecure` applies only to an https:// health check"
        ),
        "{e}"
    );
    let e = health(dir.path(), t, r#"{ tcp = "127.0.0.1:1", ca = "ca.pem" }"#).unwrap_err();
    assert!(
        e.contains("`ca` applies only to an https:// health check"),
        "{e}"
    );
    let e = health(
        dir.path(),
        t,
        r#"{ http = "https://127.0.0.1:1/h", ca = "missing.pem" }"#,
    )
    .unwrap_err();
    assert!(e.contains("services[0].health.ca"), "{e}");
    assert!(e.contains("missing.pem"), "{e}");
}
