//! Worker configuration, from environment variables (see deploy/CONFIG.md).

use op_control::env;
use std::net::SocketAddr;

#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`
    pub database_url: String,
    /// `OP_WORKER_LISTEN`, default `127.0.0.1:7001`
    pub listen: Listen,
    /// `OP_WORKER_ID`, default `worker-<pid>`; reported by the health RPC.
    pub worker_id: String,
    /// `OP_DB_POOL_SIZE`, default 16
    pub pool_size: usize,
    /// `OP_SESSION_SECRET` (+ `OP_SESSION_SECRET_PREVIOUS`): signs `op_session` cookies.
    pub session_secret: Option<(String, Option<String>)>,
    /// `OP_COOKIE_SECURE`: `0` drops `Secure` from cookies (plain-http local use).
    pub cookie_secure: bool,
    /// `OP_PORTAL_URL`: where magic links point (`<portal>/login?token=...`) when the
    /// portal lives elsewhere. Unset: the portal on the origin the request came to (the
    /// gateway names it in `x-op-portal`).
    pub portal_url: Option<String>,
    /// `SMTP_URL` (e.g. `smtp://user:pass@host:587`, `smtps://...`); None = no real mail.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM`
    pub mail_from: String,
    /// `OP_DEV_MAILBOX=1` without `SMTP_URL`: keep mail readable at `GET /dev/mailbox`.
    pub dev_mailbox: bool,
    /// `OP_CLICK_VELOCITY_PER_MIN`, default 20: clicks per minute from one IP on one link
    /// before further clicks are flagged `velocity`; 0 disables the flag.
    pub click_velocity_per_min: u32,
    /// `OP_CLICK_COOKIE_DOMAIN`: `Domain` attribute of the `_cref` cookie (unset: host-only).
    pub click_cookie_domain: Option<String>,
    /// `OP_SECRETS_KEY`: seals webhook secrets at rest. Unset: webhooks cannot be created.
    pub secrets_key: Option<String>,
    /// `OP_WEBHOOK_ALLOW_PRIVATE=1`: webhook URLs may point at loopback/private addresses.
    pub webhook_allow_private: bool,
    /// `OP_WEBHOOK_RETRY_SCALE` (default 1): multiplier on the retry schedule.
    pub webhook_retry_scale: f64,
    /// `OP_WEBHOOK_CONCURRENCY` (default 8): webhook requests in flight per worker.
    pub webhook_concurrency: usize,
    /// `OP_AUTO_APPROVE_INTERVAL_SECS` (default 900): seconds between two auto-approve
    /// sweeps of this worker.
    pub auto_approve_interval_secs: u64,
    /// `OP_CAMPAIGN_REMINDER_INTERVAL_SECS` (default 86400): how often the end-of-campaign
    /// reminder job looks for campaigns ending within 7 days.
    pub campaign_reminder_interval_secs: u64,
    /// `OP_JOB_SWEEP_SECS` (default 300): how often one worker asks every tenant schema
    /// whether a background job has work there (the safety net of the pending-work set).
    pub job_sweep_secs: u64,
    /// `OP_WORKER_TOKEN` (+ `OP_WORKER_TOKEN_PREVIOUS`): gRPC calls must carry one of them.
    pub worker_tokens: Option<op_control::worker_token::AcceptedTokens>,
    /// `OP_WORKER_ADVERTISE`: the gRPC URL gateways reach this worker at; set, the worker
    /// registers in the worker registry and heartbeats.
    pub advertise: Option<String>,
    /// `OP_DRAIN_SECS` (default 30): the bound of the drain after SIGTERM.
    pub drain: std::time::Duration,
}

impl std::fmt::Debug for Config {
    // Hand-written so secrets (session secret, SMTP credentials) never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("worker_id", &self.worker_id)
            .field("pool_size", &self.pool_size)
            .field("sessions", &self.session_secret.is_some())
            .field("worker_token", &self.worker_tokens.is_some())
            .field("cookie_secure", &self.cookie_secure)
            .field("smtp", &self.smtp_url.is_some())
            .field("dev_mailbox", &self.dev_mailbox)
            .field("click_velocity_per_min", &self.click_velocity_per_min)
            .field("click_cookie_domain", &self.click_cookie_domain)
            .field("secrets_key", &self.secrets_key.is_some())
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("webhook_retry_scale", &self.webhook_retry_scale)
            .field(
                "auto_approve_interval_secs",
                &self.auto_approve_interval_secs,
            )
            .finish_non_exhaustive()
    }
}

/// The longest interval a job setting may name: the passes add it to the current time, and
/// a value past the calendar's range would end the job's task.
const MAX_INTERVAL_SECS: u64 = 365 * 24 * 3600;

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let database_url = env::var("DATABASE_URL")
            .ok_or("DATABASE_URL is required (postgres://user@host:port/db)")?;
        let listen = Listen::parse(&env::or("OP_WORKER_LISTEN", "127.0.0.1:7001"))?;
        let pool_size = env::parse_valid("OP_DB_POOL_SIZE", 16, "a positive integer", |n| *n > 0)?;
        let smtp_url = env::trimmed("SMTP_URL");
        let click_velocity_per_min = env::parse_valid(
            "OP_CLICK_VELOCITY_PER_MIN",
            20,
            "a non-negative integer",
            |_| true,
        )?;
        let cookie_secure = env::switch("OP_COOKIE_SECURE", true)?;
        let dev_mailbox = env::switch("OP_DEV_MAILBOX", false)?;
        let webhook_allow_private = env::switch("OP_WEBHOOK_ALLOW_PRIVATE", false)?;
        let click_cookie_domain = env::trimmed("OP_CLICK_COOKIE_DOMAIN");
        if let Some(d) = &click_cookie_domain {
            // It is spliced into a Set-Cookie header: host-name characters only.
            let ok = d.len() <= 253
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(format!(
                    "OP_CLICK_COOKIE_DOMAIN must be a host name (e.g. .example.com), not `{d}`"
                ));
            }
        }
        Ok(Config {
            database_url,
            listen,
            worker_id: env::trimmed("OP_WORKER_ID")
                .unwrap_or_else(|| format!("worker-{}", std::process::id())),
            pool_size,
            session_secret: env::trimmed("OP_SESSION_SECRET")
                .map(|s| (s, env::trimmed("OP_SESSION_SECRET_PREVIOUS"))),
            cookie_secure,
            portal_url: env::trimmed("OP_PORTAL_URL").map(|u| u.trim_end_matches('/').to_string()),
            dev_mailbox: smtp_url.is_none() && dev_mailbox,
            smtp_url,
            mail_from: env::or("MAIL_FROM", "OpenPartner <no-reply@openpartner.localhost>"),
            secrets_key: env::trimmed("OP_SECRETS_KEY"),
            webhook_allow_private,
            webhook_concurrency: env::parse_valid(
                "OP_WEBHOOK_CONCURRENCY",
                8,
                "a positive integer",
                |n| *n > 0,
            )?,
            webhook_retry_scale: env::parse_valid(
                "OP_WEBHOOK_RETRY_SCALE",
                1.0,
                "a non-negative number",
                |s: &f64| s.is_finite() && *s >= 0.0,
            )?,
            auto_approve_interval_secs: env::parse_valid(
                "OP_AUTO_APPROVE_INTERVAL_SECS",
                900,
                "a number of seconds from 1 to 31536000 (a year)",
                |n| (1..=MAX_INTERVAL_SECS).contains(n),
            )?,
            campaign_reminder_interval_secs: env::parse_valid(
                "OP_CAMPAIGN_REMINDER_INTERVAL_SECS",
                86_400,
                "a number of seconds from 1 to 31536000 (a year)",
                |n| (1..=MAX_INTERVAL_SECS).contains(n),
            )?,
            job_sweep_secs: env::parse_valid(
                "OP_JOB_SWEEP_SECS",
                300,
                "a number of seconds from 1 to 31536000 (a year)",
                |n| (1..=MAX_INTERVAL_SECS).contains(n),
            )?,
            click_velocity_per_min,
            click_cookie_domain,
            worker_tokens: op_control::worker_token::AcceptedTokens::from_env()?,
            advertise: match env::trimmed("OP_WORKER_ADVERTISE") {
                None => None,
                Some(url) => {
                    op_control::workers::check_url(&url)
                        .map_err(|e| format!("OP_WORKER_ADVERTISE: {e}"))?;
                    Some(url)
                }
            },
            drain: std::time::Duration::from_secs(env::parse_valid(
                "OP_DRAIN_SECS",
                30,
                "a positive number of seconds",
                |n: &u64| *n > 0,
            )?),
        })
    }
}

/// Where the worker serves gRPC (`OP_WORKER_LISTEN`).
#[derive(Debug, Clone, PartialEq)]
pub enum Listen {
    /// `IP:port`.
    Tcp(SocketAddr),
    /// `unix:/path/to/socket`: for gateways on the same host. No TCP stack on the hop, and
    /// the socket's directory permissions decide who may reach the worker.
    Unix(std::path::PathBuf),
}

impl Listen {
    pub fn parse(s: &str) -> Result<Listen, String> {
        match s.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => Ok(Listen::Unix(path.into())),
            Some(_) => Err(format!(
                "OP_WORKER_LISTEN: `{s}` needs an absolute socket path (unix:/path)"
            )),
            None => s
                .parse()
                .map(Listen::Tcp)
                .map_err(|e| format!("OP_WORKER_LISTEN: `{s}`: {e} (IP:port or unix:/path)")),
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(addr) => write!(f, "{addr}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Listen;

    #[test]
    fn listen_is_a_socket_address_or_an_absolute_unix_path() {
        assert_eq!(
            Listen::parse("127.0.0.1:7001"),
            Ok(Listen::Tcp("127.0.0.1:7001".parse().unwrap()))
        );
        assert_eq!(
            Listen::parse("unix:/run/op/w1.sock"),
            Ok(Listen::Unix("/run/op/w1.sock".into()))
        );
        assert!(Listen::parse("unix:relative.sock").is_err());
        assert!(Listen::parse("localhost:7001").is_err());
        assert_eq!(
            Listen::parse("unix:/run/op/w1.sock").unwrap().to_string(),
            "unix:/run/op/w1.sock"
        );
    }
}
