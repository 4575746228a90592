//! Gateway configuration, from environment variables (names in shared API.md and deploy/CONFIG.md).

use op_control::env::{parse, var};
pub use op_control::Mode;
use std::{net::SocketAddr, time::Duration};

#[derive(Clone)]
pub struct Config {
    pub mode: Mode,
    /// `OP_GATEWAY_LISTEN`, default `127.0.0.1:8080`
    pub listen: SocketAddr,
    pub database_url: String,
    /// `OP_WORKERS`: where the worker set comes from (static URLs, `dns:<name>:<port>`,
    /// `registry`).
    pub workers: Vec<crate::workers::Entry>,
    /// `OP_WORKER_REFRESH_SECS`, default 5: how often DNS names and the registry are re-read.
    pub worker_refresh: Duration,
    /// `OP_DRAIN_SECS`, default 30: how long in-flight requests may take after SIGTERM.
    pub drain: Duration,
    /// `OP_PLATFORM_KEY`: bearer of `/platform/*`; unset means the platform API is closed.
    pub platform_key: Option<String>,
    /// `ADMIN_API_KEY`: bootstrap admin bearer in single-tenant mode.
    pub admin_api_key: Option<String>,
    /// `OP_MAX_BODY_BYTES`, default 1 MiB.
    pub max_body_bytes: usize,
    /// `OP_REQUEST_TIMEOUT_MS`, default 30 s: the deadline handed to the worker.
    pub request_timeout: Duration,
    /// `OP_DB_POOL_SIZE` for the gateway's control-plane reads, default 8.
    pub pool_size: usize,
    /// `OP_RATE_LIMIT_PER_MIN`, default 6000 per credential (a tenth per IP); 0 disables.
    pub rate_limit_per_min: u32,
    /// `OP_CLICK_IP_CAP_PER_MIN`, default 300 clicks per IP on the click router; 0 disables.
    pub click_ip_cap_per_min: u32,
    /// `OP_TRUSTED_PROXIES`, default loopback: whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `OP_COUNTRY_HEADERS`: the headers (lower case, first present wins) a trusted proxy
    /// names the visitor's country in; read only from `OP_TRUSTED_PROXIES` peers.
    pub country_headers: Vec<String>,
    /// `METRICS_TOKEN`: if set, `GET /metrics` requires `Bearer <token>`.
    pub metrics_token: Option<String>,
    /// `OP_WORKER_TOKEN`: sent to the workers with every call.
    pub worker_token: Option<String>,
    /// `OP_PORTAL_DIR`: the portal's built files (`portal/dist`), served at `/t/<slug>/`
    /// (hosted) or `/` (self-hosted). Unset: no portal (those paths are `404`).
    pub portal_dir: Option<std::path::PathBuf>,
    /// `OP_PUBLIC_URL`: the service's public origin (`https://partners.example.com`). Magic
    /// links point at it; unset, at the origin the request came to (its `Host`).
    pub public_url: Option<String>,
}

impl std::fmt::Debug for Config {
    // Hand-written so the keys never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("listen", &self.listen)
            .field("workers", &self.workers)
            .field("platform_key", &self.platform_key.as_ref().map(|_| "<set>"))
            .field(
                "admin_api_key",
                &self.admin_api_key.as_ref().map(|_| "<set>"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let mode = Mode::from_env()?;
        let workers = crate::workers::Entry::parse_list(&var("OP_WORKERS").ok_or(
            "OP_WORKERS is required: comma-separated worker URLs (e.g. http://127.0.0.1:7001), dns:<name>:<port> entries, or registry",
        )?)?;
        let admin_api_key = var("ADMIN_API_KEY");
        if admin_api_key.as_ref().is_some_and(|k| k.len() < 16) {
            tracing::warn!("ADMIN_API_KEY is shorter than 16 characters; use a long random value in production");
        }
        let platform_key = var("OP_PLATFORM_KEY");
        if platform_key.as_ref().is_some_and(|k| k.len() < 16) {
            tracing::warn!("OP_PLATFORM_KEY is shorter than 16 characters; use a long random value in production");
        }
        Ok(Config {
            mode,
            listen: parse(
                "OP_GATEWAY_LISTEN",
                "127.0.0.1:8080".parse().expect("valid"),
            )?,
            database_url: var("DATABASE_URL").ok_or("DATABASE_URL is required")?,
            workers,
            worker_refresh: Duration::from_secs(op_control::env::parse_valid(
                "OP_WORKER_REFRESH_SECS",
                5,
                "a positive number of seconds",
                |n: &u64| *n > 0,
            )?),
            drain: Duration::from_secs(op_control::env::parse_valid(
                "OP_DRAIN_SECS",
                30,
                "a positive number of seconds",
                |n: &u64| *n > 0,
            )?),
            platform_key,
            admin_api_key,
            max_body_bytes: parse("OP_MAX_BODY_BYTES", 1024 * 1024)?,
            request_timeout: Duration::from_millis(parse("OP_REQUEST_TIMEOUT_MS", 30_000)?),
            pool_size: op_control::env::parse_valid(
                "OP_DB_POOL_SIZE",
                8,
                "a positive integer",
                |n: &usize| *n > 0,
            )?,
            rate_limit_per_min: parse("OP_RATE_LIMIT_PER_MIN", 6000)?,
            click_ip_cap_per_min: parse("OP_CLICK_IP_CAP_PER_MIN", 300)?,
            metrics_token: var("METRICS_TOKEN"),
            portal_dir: var("OP_PORTAL_DIR").map(std::path::PathBuf::from),
            public_url: var("OP_PUBLIC_URL")
                .map(|u| public_origin(&u))
                .transpose()?,
            country_headers: country_headers(var("OP_COUNTRY_HEADERS").as_deref())?,
            worker_token: op_control::worker_token::outgoing_from_env(),
            trusted_proxies: crate::limits::parse_proxies(
                &var("OP_TRUSTED_PROXIES").unwrap_or_else(|| "127.0.0.0/8,::1".into()),
            )?,
        })
    }
}

/// `OP_PUBLIC_URL` as an origin: `http(s)://host[:port]`, nothing after it (a trailing `/`
/// is dropped).
fn public_origin(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match rest {
        Some(_) => Ok(u.to_ascii_lowercase()),
        None => Err(format!(
            "OP_PUBLIC_URL must be an origin like https://partners.example.com (scheme and host, no path), not {url:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_public_url_is_an_origin() {
        assert_eq!(
            super::public_origin("https://Partners.Example.com/").unwrap(),
            "https://partners.example.com"
        );
        assert_eq!(
            super::public_origin("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(super::public_origin("https://x.example/portal").is_err());
        assert!(super::public_origin("ftp://x.example").is_err());
        assert!(super::public_origin("https://").is_err());
    }
}

/// The country headers by default (specs/reporting.md), in the order they are tried.
pub const COUNTRY_HEADERS: &[&str] = &[
    "cf-ipcountry",
    "cloudfront-viewer-country",
    "x-vercel-ip-country",
    "x-country-code",
];

/// `OP_COUNTRY_HEADERS`: comma-separated header names; unset means [`COUNTRY_HEADERS`].
pub fn country_headers(raw: Option<&str>) -> Result<Vec<String>, String> {
    let Some(raw) = raw else {
        return Ok(COUNTRY_HEADERS.iter().map(|h| h.to_string()).collect());
    };
    let names: Vec<String> = raw
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if names.is_empty()
        || names
            .iter()
            .any(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return Err(format!(
            "OP_COUNTRY_HEADERS must be comma-separated header names, got `{raw}`"
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod country_tests {
    use super::*;

    #[test]
    fn country_headers_default_and_override() {
        assert_eq!(country_headers(None).unwrap()[0], "cf-ipcountry");
        assert_eq!(
            country_headers(Some("X-Geo, CF-IPCountry")).unwrap(),
            vec!["x-geo".to_string(), "cf-ipcountry".to_string()]
        );
        assert!(country_headers(Some(" , ")).is_err());
        assert!(country_headers(Some("bad header")).is_err());
    }
}
