//! Abuse limits: who the client is (IP, honouring `X-Forwarded-For` only from trusted
//! proxies) and how fast it may go.
//!
//! Two GCRA buckets per minute (`OP_RATE_LIMIT_PER_MIN`, default 6000):
//! - per credential (key id or session id): the full rate;
//! - per client IP for everything that is not an authenticated request — public routes
//!   *and failed authentication attempts* — a tenth of it. Brute-forcing keys or cookies from
//!   one address therefore hits `429` quickly, before any more database work is done.
//!
//! The click router (`/r/...`) is public and hot, so it has its own per-IP bucket
//! (`OP_CLICK_IP_CAP_PER_MIN`, default 300, `0` off) instead of the API's: a hard cap on one
//! address hammering links, checked before the tenant lookup. (Softer abuse, one address
//! clicking one link too often, is flagged `velocity` by the worker, not refused.)
//!
//! Answers carry the IETF `RateLimit-Policy` / `RateLimit` headers; `429 rate_limited` adds
//! `Retry-After`.

use governor::{
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    Quota, RateLimiter,
};
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct Limits {
    per_credential: Option<(Keyed<String>, u32)>,
    per_ip: Option<(Keyed<IpAddr>, u32)>,
    per_click_ip: Option<(Keyed<IpAddr>, u32)>,
    trusted_proxies: Vec<IpNet>,
    /// IPs that exhausted their budget, until when: checked before any credential lookup,
    /// so a blocked brute-forcer costs no database work at all.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

fn bucket<K: Clone + std::hash::Hash + Eq>(per_min: u32) -> Option<(Keyed<K>, u32)> {
    let n = NonZeroU32::new(per_min)?;
    let limiter =
        RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>();
    Some((limiter, per_min))
}

/// The verdict for one request, with what to tell the client.
#[derive(Debug)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's name in the headers: `per-key`, `per-ip` or `per-ip-click`.
    pub name: &'static str,
    pub policy: String,
    pub remaining: u32,
    pub retry_after_secs: u64,
}

impl Decision {
    /// Writes `RateLimit-Policy` and `RateLimit` (`t` is at least 1 s once refused, so a
    /// client never retries at once).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let name = self.name;
        if let Ok(v) = HeaderValue::from_str(&self.policy) {
            headers.insert("ratelimit-policy", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "\"{name}\";r={};t={}",
            self.remaining,
            self.retry_after_secs.max(if self.allowed { 0 } else { 1 })
        )) {
            headers.insert("ratelimit", v);
        }
    }
}

impl Limits {
    /// `per_min` 0 disables API rate limiting, `click_cap_per_min` 0 the click router's cap.
    pub fn new(per_min: u32, click_cap_per_min: u32, trusted_proxies: Vec<IpNet>) -> Limits {
        Limits {
            per_click_ip: bucket(click_cap_per_min),
            per_credential: bucket(per_min),
            // A tenth of the per-key rate, but never zero when limiting is on.
            per_ip: if per_min > 0 {
                bucket((per_min / 10).max(1))
            } else {
                None
            },
            trusted_proxies,
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn decide<K: Clone + std::hash::Hash + Eq>(
        limiter: &Keyed<K>,
        quota: u32,
        key: &K,
        name: &'static str,
    ) -> Decision {
        let policy = format!("\"{name}\";q={quota};w=60");
        match limiter.check_key(key) {
            Ok(snapshot) => Decision {
                allowed: true,
                name,
                policy,
                remaining: snapshot.remaining_burst_capacity(),
                retry_after_secs: 0,
            },
            Err(not_until) => Decision {
                allowed: false,
                name,
                policy,
                remaining: 0,
                retry_after_secs: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1),
            },
        }
    }

    /// Counts one authenticated request against its credential.
    pub fn check_credential(&self, credential: &str) -> Option<Decision> {
        let (l, q) = self.per_credential.as_ref()?;
        Some(Self::decide(l, *q, &credential.to_string(), "per-key"))
    }

    /// Counts one anonymous request or failed authentication against the client IP.
    pub fn check_ip(&self, ip: IpAddr) -> Option<Decision> {
        let (l, q) = self.per_ip.as_ref()?;
        let d = Self::decide(l, *q, &ip, "per-ip");
        if !d.allowed {
            let until = Instant::now() + Duration::from_secs(d.retry_after_secs);
            self.blocked.lock().expect("blocked lock").insert(ip, until);
        }
        Some(d)
    }

    /// Counts one click router request against the client IP (`OP_CLICK_IP_CAP_PER_MIN`).
    pub fn check_click_ip(&self, ip: IpAddr) -> Option<Decision> {
        let (l, q) = self.per_click_ip.as_ref()?;
        Some(Self::decide(l, *q, &ip, "per-ip-click"))
    }

    /// Seconds until `ip` may try again, if it is blocked right now.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let mut map = self.blocked.lock().expect("blocked lock");
        let until = *map.get(&ip)?;
        let now = Instant::now();
        if until <= now {
            map.remove(&ip);
            return None;
        }
        Some((until - now).as_secs().max(1))
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
    /// address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(xff) = forwarded_for else {
            return peer;
        };
        let hops: Vec<IpAddr> = xff
            .split(',')
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        for hop in hops.iter().rev() {
            if !self.is_trusted(*hop) {
                return *hop;
            }
        }
        hops.first().copied().unwrap_or(peer)
    }

    /// Whether `ip` is one of `OP_TRUSTED_PROXIES`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Drops idle buckets so memory stays bounded under address scans.
    pub fn spawn_housekeeping(self: &std::sync::Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Some((l, _)) = &me.per_credential {
                    l.retain_recent();
                }
                if let Some((l, _)) = &me.per_ip {
                    l.retain_recent();
                }
                if let Some((l, _)) = &me.per_click_ip {
                    l.retain_recent();
                }
                let now = Instant::now();
                me.blocked
                    .lock()
                    .expect("blocked lock")
                    .retain(|_, until| *until > now);
            }
        });
    }
}

/// Parses `OP_TRUSTED_PROXIES` (comma-separated CIDRs or addresses).
pub fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("OP_TRUSTED_PROXIES: `{s}` is not a CIDR or address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_min: u32) -> Limits {
        Limits::new(per_min, 0, parse_proxies("127.0.0.0/8,::1").unwrap())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let l = limits(100);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            l.client_ip(lo, Some("198.51.100.7")),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            l.client_ip(lo, Some("198.51.100.7, 198.51.100.8, 127.0.0.5")),
            "198.51.100.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            l.client_ip(outside, Some("198.51.100.7")),
            outside,
            "spoofed header from the internet"
        );
        assert_eq!(l.client_ip(lo, None), lo);
        assert_eq!(l.client_ip(lo, Some("garbage")), lo);
    }

    #[test]
    fn per_ip_budget_is_a_tenth_and_exhausts() {
        let l = limits(100);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let allowed = (0..20).filter(|_| l.check_ip(ip).unwrap().allowed).count();
        assert_eq!(allowed, 10);
        let d = l.check_ip(ip).unwrap();
        assert!(!d.allowed && d.retry_after_secs >= 1);
        assert!(
            l.check_ip("198.51.100.2".parse().unwrap()).unwrap().allowed,
            "other addresses unaffected"
        );
        assert!(limits(0).check_ip(ip).is_none(), "0 disables");
    }

    #[test]
    fn click_cap_is_its_own_bucket() {
        let l = Limits::new(100, 5, vec![]);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let allowed = (0..8)
            .filter(|_| l.check_click_ip(ip).unwrap().allowed)
            .count();
        assert_eq!(allowed, 5);
        let d = l.check_click_ip(ip).unwrap();
        assert!(!d.allowed && d.retry_after_secs >= 1);
        assert_eq!(d.name, "per-ip-click");
        assert!(
            l.check_ip(ip).unwrap().allowed,
            "the API budget is separate"
        );
        assert!(
            l.check_click_ip("198.51.100.2".parse().unwrap())
                .unwrap()
                .allowed
        );
        assert!(
            Limits::new(100, 0, vec![]).check_click_ip(ip).is_none(),
            "0 disables"
        );
    }

    #[test]
    fn bad_proxy_lists_are_rejected() {
        assert!(parse_proxies("10.0.0.0/8, 192.168.1.1").is_ok());
        assert!(parse_proxies("nope").is_err());
    }
}
