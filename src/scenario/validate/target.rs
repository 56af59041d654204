//! Validation of [target]: the allow list and the base URL.

use super::super::source::Ctx;
use super::*;

/// Check `[target]`; returns the allow list as bare hosts and the base URL when valid.
pub(super) fn check_target(ctx: &mut Ctx<'_>, s: &Scenario) -> (Vec<String>, Option<url::Url>) {
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
        // What `run` refuses, validate refuses first: the load engine has no TLS client yet.
        Ok(u) if u.scheme() == "https" => {
            ctx.at_value(
                "target.base_url",
                "https:// targets are not supported yet: the load engine speaks plain HTTP/1.1 only",
                Some("aim at an http:// endpoint (e.g. a plaintext port of the service on 127.0.0.1)".into()),
            );
            None
        }
        Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {
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
                    "target.base_url must be an http:// URL; found scheme `{}`",
                    u.scheme()
                ),
                Some("write it like \"http://127.0.0.1:8080\"".into()),
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
    (allow, base_url)
}
