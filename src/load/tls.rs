//! The TLS client of an https target (rustls, ring provider): one `ClientConfig` for the
//! whole run, shared by every connection, so rustls' in-memory session store resumes
//! sessions when a user reconnects (as a browser would).
//!
//! Trust: the system's roots (`rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` like OpenSSL tools) plus `target.tls.ca`; or nothing at all with
//! `insecure = true`. ALPN follows `target.http`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::client::Failure;
use crate::scenario::model::HttpVersion;
use crate::scenario::TlsPlan;

/// Why the TLS client cannot be built (the load does not start).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: {0}")]
    Config(#[from] rustls::Error),
    #[error("tls: target host `{0}` is not a valid TLS server name; set target.tls.server_name")]
    ServerName(String),
    #[error(
        "tls: no trusted CA: the system has no root certificates ({0}) and target.tls.ca is not set"
    )]
    NoRoots(String),
}

/// A connector with the name it sends (SNI) and verifies.
pub(crate) struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Tls {
    pub(crate) fn new(plan: &TlsPlan, http: HttpVersion, base: &url::Url) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if plan.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            builder.with_root_certificates(roots(plan)?)
        };
        let mut config = match &plan.client {
            Some(id) => builder.with_client_auth_cert(id.certs.clone(), id.key.clone_key())?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = match http {
            HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2 => vec![b"h2".to_vec()],
            HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        let name = match &plan.server_name {
            Some(n) => n.clone(),
            None => {
                let host = crate::units::bare_host(base.host_str().unwrap_or_default());
                ServerName::try_from(host.clone()).map_err(|_| TlsError::ServerName(host))?
            }
        };
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The client of an `https://` health check (HTTP/1.1): it trusts the check's CA
    /// certificates only (a loopback service has its own CA), the system's roots when it
    /// has none (read once per process), or nothing with `insecure`.
    pub(crate) fn for_health(
        t: &crate::scenario::model::HealthTls,
        host: &str,
    ) -> Result<Tls, TlsError> {
        static NATIVE: std::sync::OnceLock<Vec<CertificateDer<'static>>> =
            std::sync::OnceLock::new();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if t.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            let certs = if t.ca.is_empty() {
                NATIVE.get_or_init(|| rustls_native_certs::load_native_certs().certs)
            } else {
                &t.ca
            };
            roots.add_parsable_certificates(certs.iter().cloned());
            if roots.is_empty() {
                return Err(TlsError::NoRoots("none found".into()));
            }
            builder.with_root_certificates(roots)
        };
        let mut config = builder.with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host = crate::units::bare_host(host);
        let name = ServerName::try_from(host.clone()).map_err(|_| TlsError::ServerName(host))?;
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS handshake on a fresh TCP connection.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Failure> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| {
                let tls = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                match tls {
                    Some(t) => Failure::Tls {
                        reason: t.to_string(),
                        certificate: matches!(
                            t,
                            rustls::Error::InvalidCertificate(_)
                                | rustls::Error::NoCertificatesPresented
                        ),
                    },
                    None => Failure::Tls {
                        reason: super::client::io_reason(&e),
                        certificate: false,
                    },
                }
            })
    }
}

/// The system's roots and `tls.ca`. System certificates that do not parse are skipped
/// (a trust store commonly holds a few); no root at all is an error.
fn roots(plan: &TlsPlan) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    for ca in &plan.ca {
        roots.add(ca.clone())?;
    }
    if roots.is_empty() {
        let why = native
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "none found".into());
        return Err(TlsError::NoRoots(why));
    }
    Ok(roots)
}

/// `insecure = true`: any certificate is accepted, but the handshake's signatures are
/// still checked with the provider's algorithms.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
