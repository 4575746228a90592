//! SSRF protection for outbound webhooks. A URL is refused (`400 url_not_allowed`) when it is
//! not http(s), carries credentials, or names — literally or through DNS — a loopback,
//! unspecified, private, link-local (cloud metadata), CGNAT, unique-local, multicast or
//! reserved address. It is checked when an endpoint is created or changed, and again at
//! delivery time: the HTTP client resolves names through [`GuardedResolver`], which drops
//! disallowed addresses, so a DNS answer that changed since (rebinding) cannot reach inside.
//! `OP_WEBHOOK_ALLOW_PRIVATE=1` turns the address checks off (tests, local development).

use crate::error::{ApiError, ErrorCode};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

fn refused(why: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCode::UrlNotAllowed, why).with("field", "url")
}

pub fn v4_allowed(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || o[0] >= 240) // reserved
}

pub fn ip_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_allowed(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (incl. fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)) // NAT64 prefix base
        }
    }
}

/// Shape checks that need no network: scheme, credentials, host, length.
pub fn parse_url(raw: &str) -> Result<Url, ApiError> {
    if raw.len() > 2048 {
        return Err(refused("url is longer than 2048 characters"));
    }
    // The URL is stored as sent (trimmed): a control character would reach the database
    // (which refuses NUL) and the receiver's logs.
    if raw.trim().chars().any(char::is_control) {
        return Err(refused("url must not contain control characters"));
    }
    let url = Url::parse(raw.trim()).map_err(|_| refused("url is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("only http and https URLs are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("URLs with credentials are not allowed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refused("url has no host"));
    }
    Ok(url)
}

/// Full check: shape, then every address the host stands for.
pub async fn check(raw: &str, allow_private: bool) -> Result<Url, ApiError> {
    let url = parse_url(raw)?;
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(d)) => {
            if d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
            {
                return Err(refused("loopback hosts are not allowed"));
            }
            tokio::net::lookup_host((d, port))
                .await
                .map_err(|_| refused("the host does not resolve"))?
                .map(|a| a.ip())
                .collect()
        }
        None => vec![],
    };
    if addrs.is_empty() {
        return Err(refused("the host does not resolve"));
    }
    if let Some(bad) = addrs.iter().find(|ip| !ip_allowed(**ip)) {
        return Err(refused(format!(
            "the host resolves to a non-public address ({bad})"
        )));
    }
    Ok(url)
}

/// The send-time check: shape and literal addresses. Host names need no lookup here — the
/// delivery client resolves them through [`GuardedResolver`], which drops private answers.
pub fn check_for_send(raw: &str, allow_private: bool) -> Result<Url, ApiError> {
    let url = parse_url(raw)?;
    if allow_private {
        return Ok(url);
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal.filter(|ip| !ip_allowed(*ip)) {
        return Err(refused(format!(
            "the URL names a non-public address ({ip})"
        )));
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(refused("loopback hosts are not allowed"));
    }
    Ok(url)
}

/// The delivery client's resolver: public addresses only (unless allowed).
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || ip_allowed(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for bad in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!ip_allowed(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(ip_allowed(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn shapes() {
        assert!(parse_url("https://hooks.example.com/x").is_ok());
        for bad in [
            "ftp://x.example.com",
            "https://u:p@x.example.com",
            "not a url",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://x.example.com/a\u{0}b",
            "https://x.example.com/a\tb",
        ] {
            assert_eq!(
                parse_url(bad).unwrap_err().code,
                ErrorCode::UrlNotAllowed,
                "{bad}"
            );
        }
    }

    #[test]
    fn send_time_check_needs_no_dns_for_literals() {
        assert!(check_for_send("http://10.0.0.1/x", false).is_err());
        assert!(check_for_send("http://[fd00:ec2::254]/", false).is_err());
        assert!(check_for_send("http://localhost:8080/", false).is_err());
        assert!(check_for_send("https://hooks.example.com/x", false).is_ok());
        assert!(check_for_send("http://127.0.0.1/x", true).is_ok());
    }

    #[tokio::test]
    async fn literal_and_local_hosts_are_refused() {
        for bad in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://localhost/",
            "http://169.254.169.254/latest",
            "http://0.0.0.0/",
        ] {
            assert!(check(bad, false).await.is_err(), "{bad}");
            assert!(
                check(bad, true).await.is_ok(),
                "{bad} allowed with OP_WEBHOOK_ALLOW_PRIVATE"
            );
        }
    }
}
