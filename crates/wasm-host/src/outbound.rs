//! `allowed_outbound_hosts` as Spin reads it: `scheme://host[:port]`, where scheme, host and port
//! may be `*`, a host may be `*.suffix`, and a missing port means the scheme's default.

use anyhow::{bail, Result};

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Suffix(String),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry such as `http://model-service.spin.internal` or `https://*.example.com:8443`.
    pub fn parse(entry: &str) -> Result<AllowedHost> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("allowed outbound host `{entry}` lacks a scheme (write e.g. `http://{entry}`)");
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("allowed outbound host `{entry}` must not contain a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let port =
            match port {
                Some("*") => None,
                Some(p) => Some(
                    p.parse()
                        .map_err(|_| anyhow::anyhow!("invalid port `{p}` in `{entry}`"))?,
                ),
                None if scheme == "*" => None,
                None => Some(default_port(scheme).ok_or_else(|| {
                    anyhow::anyhow!("scheme `{scheme}` in `{entry}` needs a port")
                })?),
            };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(s) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{}", s.to_ascii_lowercase()))
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        Ok(AllowedHost {
            scheme: (scheme != "*").then(|| scheme.to_string()),
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let port = port.or_else(|| default_port(scheme));
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => *h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            }
            && self.port.is_none_or(|p| Some(p) == port)
    }
}

/// Whether any entry allows the destination.
pub fn is_allowed(allowed: &[AllowedHost], scheme: &str, host: &str, port: Option<u16>) -> bool {
    allowed.iter().any(|a| a.allows(scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_host_with_default_port() -> Result<()> {
        let a = AllowedHost::parse("http://model-service.spin.internal")?;
        assert!(a.allows("http", "model-service.spin.internal", None));
        assert!(a.allows("http", "model-service.spin.internal", Some(80)));
        assert!(!a.allows("https", "model-service.spin.internal", None));
        assert!(!a.allows("http", "app.spin.internal", None));
        assert!(!a.allows("http", "model-service.spin.internal", Some(8080)));
        Ok(())
    }

    #[test]
    fn wildcards_for_host_scheme_and_port() -> Result<()> {
        assert!(AllowedHost::parse("http://*.spin.internal")?.allows(
            "http",
            "x.spin.internal",
            None
        ));
        assert!(!AllowedHost::parse("http://*.spin.internal")?.allows("http", "evil.com", None));
        assert!(AllowedHost::parse("*://*:*")?.allows("https", "anything.org", Some(1234)));
        assert!(AllowedHost::parse("http://127.0.0.1:*")?.allows("http", "127.0.0.1", Some(39999)));
        Ok(())
    }

    #[test]
    fn entries_without_scheme_or_with_path_are_rejected() {
        assert!(AllowedHost::parse("example.com").is_err());
        assert!(AllowedHost::parse("http://example.com/path").is_err());
    }
}
