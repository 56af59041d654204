//! Validation of [target]: the allow list, the base URL, the HTTP version and the TLS
//! files (read and parsed here, so `run` never meets a bad one).

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::super::source::Ctx;
use super::super::{ClientIdentity, TlsPlan};
use super::*;

/// Check `[target]`; returns the allow list as bare hosts, the base URL when valid, and
/// the TLS plan of an https target.
pub(super) fn check_target(
    ctx: &mut Ctx<'_>,
    s: &Scenario,
) -> (Vec<String>, Option<url::Url>, Option<TlsPlan>) {
    let allow: Vec<String> = s
        .target
        .allow_hosts
        .iter()
        .map(|h| crate::units::bare_host(h))
        .collect();
    if allow.is_empty() {
        ctx.at_value(
            "target.allow_hosts",
            "target.allow_hosts is empty, so load may not be sent anywhere",
            Some("list the hosts load may be sent to, e.g. allow_hosts = [\"127.0.0.1\", \"localhost\"]".into()),
        );
    }
    for (i, h) in s.target.allow_hosts.iter().enumerate() {
        if h.trim().is_empty()
            || h.contains('/')
            || (h.contains(':') && !h.contains("::") && !h.starts_with('['))
        {
            ctx.at_value(
                &format!("target.allow_hosts[{i}]"),
                format!("`{h}` is not a host name"),
                Some("write the host alone, without scheme or port, like \"127.0.0.1\"".into()),
            );
        }
    }
    let allowed_hint = |host: &str| {
        Some(format!(
            "allowed: {}; add \"{host}\" to target.allow_hosts only if load may be sent there",
            quoted_list(s.target.allow_hosts.iter().map(String::as_str))
        ))
    };
    let base_url = match url::Url::parse(&s.target.base_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            let host = url_host(&u).unwrap_or_default();
            if !allow.is_empty() && !allow.contains(&host) {
                ctx.at_value(
                    "target.base_url",
                    format!("target host `{host}` is not in target.allow_hosts"),
                    allowed_hint(&host),
                );
            }
            Some(u)
        }
        Ok(u) => {
            ctx.at_value(
                "target.base_url",
                format!(
                    "target.base_url must be an http:// or https:// URL; found scheme `{}`",
                    u.scheme()
                ),
                Some(
                    "write it like \"http://127.0.0.1:8080\" or \"https://api.example.com\"".into(),
                ),
            );
            None
        }
        Err(e) => {
            ctx.at_value(
                "target.base_url",
                format!(
                    "target.base_url is not a valid URL ({e}): \"{}\"",
                    s.target.base_url
                ),
                Some("write it like \"http://127.0.0.1:8080\"".into()),
            );
            None
        }
    };
    let https = base_url.as_ref().is_some_and(|u| u.scheme() == "https");
    let tls = match (&s.target.tls, https) {
        (Some(_), false) if base_url.is_some() => {
            ctx.at_key(
                "target.tls",
                "target.tls applies only to an https:// target",
                Some("remove target.tls, or aim at the service's https:// URL".into()),
            );
            None
        }
        (spec, true) => Some(check_tls(ctx, spec.as_ref(), "target")),
        _ => None,
    };
    (allow, base_url, tls)
}

/// Check `[targets.<name>]`: each base URL is http(s) with its host on the allow list,
/// and its TLS files are read as `target.tls`'s are.
pub(super) fn check_named_targets(
    ctx: &mut Ctx<'_>,
    s: &Scenario,
    allow: &[String],
) -> Vec<super::super::NamedTargetPlan> {
    let mut out = Vec::new();
    for (name, t) in &s.targets {
        let pre = sub("targets", name);
        let at = format!("{pre}.base_url");
        let url = match url::Url::parse(&t.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            Ok(_) | Err(_) => {
                ctx.at_value(
                    &at,
                    format!(
                        "{at} must be an http:// or https:// URL; found \"{}\"",
                        t.base_url
                    ),
                    Some("write it like \"http://127.0.0.1:8081\"".into()),
                );
                continue;
            }
        };
        let host = url_host(&url).unwrap_or_default();
        if !allow.is_empty() && !allow.contains(&host) {
            ctx.at_value(
                &at,
                format!("target host `{host}` is not in target.allow_hosts"),
                Some(format!(
                    "allowed: {}; add \"{host}\" to target.allow_hosts only if load may be sent there",
                    quoted_list(allow.iter().map(String::as_str))
                )),
            );
        }
        let tls = match (&t.tls, url.scheme() == "https") {
            (Some(_), false) => {
                ctx.at_key(
                    &format!("{pre}.tls"),
                    format!("{pre}.tls applies only to an https:// target"),
                    None,
                );
                None
            }
            (spec, true) => Some(check_tls(ctx, spec.as_ref(), &pre)),
            (None, false) => None,
        };
        out.push(super::super::NamedTargetPlan {
            name: name.clone(),
            base_url: url,
            http: t.http,
            tls,
        });
    }
    out
}

/// Read and check `target.tls`: every file exists and parses, `cert` comes with its
/// `key` and they match, `server_name` is a DNS name or an IP address.
fn check_tls(ctx: &mut Ctx<'_>, spec: Option<&TlsSpec>, pre: &str) -> TlsPlan {
    let Some(spec) = spec else {
        return TlsPlan::default();
    };
    let dir = scenario_dir(ctx.file);
    let mut plan = TlsPlan {
        insecure: spec.insecure,
        ..TlsPlan::default()
    };
    if let Some(ca) = &spec.ca {
        plan.ca = read_certs(ctx, &format!("{pre}.tls.ca"), ca, &dir.join(ca)).unwrap_or_default();
    }
    match (&spec.cert, &spec.key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(ctx, &format!("{pre}.tls.cert"), cert, &dir.join(cert));
            let key = read_key(ctx, key, &dir.join(key), &format!("{pre}.tls.key"));
            if let (Some(certs), Some(key)) = (certs, key) {
                let provider = rustls::crypto::ring::default_provider();
                match rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider)
                {
                    Ok(_) => {
                        plan.client = Some(ClientIdentity {
                            certs,
                            key: std::sync::Arc::new(key),
                        })
                    }
                    Err(rustls::Error::InconsistentKeys(_)) => ctx.at_value(
                        &format!("{pre}.tls.key"),
                        format!("{pre}.tls.key is not the private key of {pre}.tls.cert (their public keys differ)"),
                        Some("give the private key of the client certificate's first (leaf) certificate".into()),
                    ),
                    Err(e) => ctx.at_value(
                        &format!("{pre}.tls.cert"),
                        format!("{pre}.tls.cert cannot be used as a client certificate: {e}"),
                        Some(format!("give an X.509 v3 certificate chain, leaf first, with its key in {pre}.tls.key")),
                    ),
                }
            }
        }
        (Some(_), None) => ctx.at_key(
            &format!("{pre}.tls.cert"),
            format!("{pre}.tls.cert is given without {pre}.tls.key"),
            Some("add key = \"client.key\" (the certificate's private key, PEM)".into()),
        ),
        (None, Some(_)) => ctx.at_key(
            &format!("{pre}.tls.key"),
            format!("{pre}.tls.key is given without {pre}.tls.cert"),
            Some("add cert = \"client.pem\" (the client certificate chain, PEM)".into()),
        ),
        (None, None) => {}
    }
    if let Some(name) = &spec.server_name {
        match ServerName::try_from(name.as_str()) {
            Ok(n) => plan.server_name = Some(n.to_owned()),
            Err(_) => ctx.at_value(
                &format!("{pre}.tls.server_name"),
                format!("`{name}` is not a DNS name or an IP address"),
                Some("write the host name the certificate is for, e.g. \"api.example.com\"".into()),
            ),
        }
    }
    plan
}

/// `written` is the path as the scenario gives it (messages show it, not the absolute one).
fn unreadable(ctx: &mut Ctx<'_>, path: &str, written: &Path, e: &std::io::Error) {
    ctx.at_value(
        path,
        format!("cannot read {}: {}", written.display(), io_text(e)),
        Some("a relative path is relative to the scenario file's folder".into()),
    );
}

/// An I/O error without its "(os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// Every certificate of a PEM file; at least one.
pub(super) fn read_certs(
    ctx: &mut Ctx<'_>,
    path: &str,
    written: &Path,
    file: &Path,
) -> Option<Vec<CertificateDer<'static>>> {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            unreadable(ctx, path, written, &e);
            return None;
        }
    };
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&text).collect();
    match certs {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => {
            ctx.at_value(
                path,
                format!("{} holds no PEM certificate", written.display()),
                Some("give a PEM file with -----BEGIN CERTIFICATE----- blocks".into()),
            );
            None
        }
        Err(e) => {
            ctx.at_value(
                path,
                format!("{} is not valid PEM: {e}", written.display()),
                Some("give a PEM file with -----BEGIN CERTIFICATE----- blocks".into()),
            );
            None
        }
    }
}

/// The first private key of a PEM file.
fn read_key(
    ctx: &mut Ctx<'_>,
    written: &Path,
    file: &Path,
    key_path: &str,
) -> Option<PrivateKeyDer<'static>> {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            unreadable(ctx, key_path, written, &e);
            return None;
        }
    };
    match PrivateKeyDer::from_pem_slice(&text) {
        Ok(k) => Some(k),
        Err(e) => {
            ctx.at_value(
                key_path,
                format!("{} holds no usable private key: {e}", written.display()),
                Some(
                    "give a PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                        .into(),
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[target]` text checked as if the scenario were `dir/t.toml`: the TLS plan and
    /// the problems ("key: message").
    fn check(dir: &Path, target: &str) -> (Option<TlsPlan>, Vec<String>) {
        let s: Scenario = toml::from_str(&format!("name = \"t\"\n[target]\n{target}")).unwrap();
        let file = dir.join("t.toml");
        let mut ctx = Ctx::new(&file, "");
        let (_, _, tls) = check_target(&mut ctx, &s);
        let diags = ctx
            .diags
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        (tls, diags)
    }

    /// A certificate and its key (PEM), self-signed.
    fn identity() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn tls_files_are_read_checked_and_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = identity();
        let (_, other_key) = identity();
        for (name, text) in [
            ("ca.pem", cert.as_str()),
            ("client.pem", cert.as_str()),
            ("client.key", key.as_str()),
            ("other.key", other_key.as_str()),
            ("junk.pem", "not pem at all"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let head = "base_url = \"https://127.0.0.1:8443\"\nallow_hosts = [\"127.0.0.1\"]\n";
        let ok = |extra: &str| {
            let (tls, diags) = check(dir.path(), &format!("{head}{extra}"));
            assert_eq!(diags, Vec::<String>::new(), "{extra}");
            tls.expect("an https target has a TLS plan")
        };
        // No tls table: the defaults.
        let plain = ok("");
        assert!(plain.ca.is_empty() && plain.client.is_none() && !plain.insecure);
        let full = ok("tls = { ca = \"ca.pem\", cert = \"client.pem\", key = \"client.key\", server_name = \"api.example.com\" }");
        assert_eq!(full.ca.len(), 1);
        assert!(full.client.is_some());
        assert_eq!(
            full.server_name.map(|n| n.to_str().into_owned()),
            Some("api.example.com".to_string())
        );
        assert!(ok("tls = { insecure = true }").insecure);

        for (extra, key, says) in [
            (
                "tls = { ca = \"nope.pem\" }",
                "target.tls.ca",
                "cannot read nope.pem",
            ),
            (
                "tls = { ca = \"junk.pem\" }",
                "target.tls.ca",
                "holds no PEM certificate",
            ),
            (
                "tls = { cert = \"client.pem\" }",
                "target.tls.cert",
                "without target.tls.key",
            ),
            (
                "tls = { key = \"client.key\" }",
                "target.tls.key",
                "without target.tls.cert",
            ),
            (
                "tls = { cert = \"client.pem\", key = \"junk.pem\" }",
                "target.tls.key",
                "no usable private key",
            ),
            (
                "tls = { cert = \"client.pem\", key = \"other.key\" }",
                "target.tls.key",
                "is not the private key of target.tls.cert",
            ),
            (
                "tls = { server_name = \"a b\" }",
                "target.tls.server_name",
                "not a DNS name",
            ),
        ] {
            let (_, diags) = check(dir.path(), &format!("{head}{extra}"));
            assert_eq!(diags.len(), 1, "{extra}: {diags:?}");
            assert!(
                diags[0].starts_with(&format!("{key}: ")) && diags[0].contains(says),
                "{extra}: {diags:?}"
            );
        }
        // TLS settings on a plain http target are refused, not ignored.
        let (tls, diags) = check(
            dir.path(),
            "base_url = \"http://127.0.0.1:8080\"\nallow_hosts = [\"127.0.0.1\"]\ntls = { insecure = true }",
        );
        assert!(tls.is_none());
        assert_eq!(
            diags,
            vec!["target.tls: target.tls applies only to an https:// target"]
        );
    }
}
