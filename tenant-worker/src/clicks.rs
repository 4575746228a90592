//! Clicks: the click router (`GET /r/<slug>/<linkKey>`) and server-side click ingest
//! (`POST /clicks`). Both go through [`record_click`], so a click is recorded, flagged and
//! shaped the same way whichever door it came through.
//!
//! The router is the hottest path of the product (every partner link, many per conversion),
//! so clicks are group-committed ([`crate::group_commit`]): the clicks of a tenant that
//! arrive together are written by [`write_clicks`] with one lookup of their links (campaign
//! and the partner's live status), one multi-row insert of the clicks (enriched before they
//! joined the lane: [`crate::enrichment`]) and one upsert of their per-day rollups
//! ([`crate::reporting::rollups`]), pipelined in one transaction. A click's `302`
//! is sent only after that commit, so it is never sent for a click that could still be lost.
//! Plain `VALUES` (no writable CTE, no `INSERT … SELECT`) keeps it plannable by Citus.
//!
//! The statements name their tables schema-qualified instead of going through a
//! `Ctx::tx` transaction (its `BEGIN; SET LOCAL search_path` and `COMMIT` would be round
//! trips of their own). The schema name is still derived only from the envelope's
//! tenant id and quoted; nothing of the request reaches the SQL text.
//!
//! Flags: `revoked` when the partner is revoked (from the live partner row read with the
//! batch); `velocity` when one IP clicks one link more than `OP_CLICK_VELOCITY_PER_MIN`
//! times within a minute ([`Velocity`], in worker memory: the gateway sends all of a tenant's
//! traffic to the same worker while it is healthy, so one worker sees a tenant's clicks).
//! Flagged clicks still redirect; attribution ignores them. The hard per-IP cap (`429`) is
//! the gateway's (`OP_CLICK_IP_CAP_PER_MIN`), before any worker or database work.

use crate::{
    campaigns::host_allowed,
    context::{truncate, Ctx, Reply, Timestamp},
    enrichment,
    error::{ApiError, ErrorCode},
    group_commit::{BatchResult, Lanes, Turn},
    links::valid_link_key,
    openapi::Op,
    reporting::rollups,
    sql::{pipeline, rollback, val, Rows, Schema},
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};
use tokio_postgres::Row;

/// `Max-Age` of the `_cref` cookie: 90 days.
const COOKIE_MAX_AGE_SECS: u64 = 90 * 24 * 60 * 60;
const MAX_USER_AGENT: usize = 512;
const MAX_REFERER: usize = 2048;

/// What a caller knows about a click before it is recorded.
pub struct ClickInput<'a> {
    pub link_key: &'a str,
    /// The client's IP as text (hashed here, never stored); None or unparsable → no hash.
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
    /// The router request's query: its `utm_*` are kept and it is carried over to the
    /// destination (empty for `POST /clicks`).
    pub query: Vec<(String, String)>,
    /// The visitor's country as a trusted proxy told the gateway (`x-op-country`).
    pub country: Option<&'a str>,
}

/// A recorded click, plus where its link sends the browser.
pub struct Recorded {
    pub click: ClickView,
    pub click_id: String,
    /// Where the browser goes: the destination with the router query carried over and
    /// `cref` added (also stored as the click's `landing_url`).
    pub location: Option<String>,
}

/// A click, as the API shows it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClickView {
    /// The click id: the `cref` the destination receives and the `_cref` cookie.
    id: String,
    link_id: String,
    partner_id: String,
    /// The same as `campaignId` (the original's later name).
    program_id: String,
    campaign_id: String,
    /// The first 32 hex characters of SHA-256 of the visitor's IP address (never stored
    /// raw); null when the address is unknown.
    #[schemars(regex(pattern = "^[0-9a-f]{32}$"))]
    ip_hash: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    /// Why the click is never attributed: `revoked` (the partner is revoked) or `velocity`
    /// (too many clicks of one address on this link within a minute); null for a good click.
    #[schemars(extend("enum" = ["revoked", "velocity", null]))]
    fraud_flag: Option<&'static str>,
    /// When the click was recorded.
    ts: Timestamp,
    /// The URL the click redirected to (its destination with the router query carried
    /// over and `cref` added).
    landing_url: Option<String>,
    /// The router request's `utm_source` (likewise the other `utm_*`); null when absent.
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    /// ISO 3166-1 alpha-2, upper case, from a country header set by a trusted proxy; null
    /// when the request did not come through `OP_TRUSTED_PROXIES` or carried none.
    #[schemars(regex(pattern = "^[A-Z]{2}$"))]
    country: Option<String>,
    /// From the `User-Agent`, parsed when the click was written.
    #[schemars(extend("enum" = ["desktop", "mobile", "bot", "appliance", "other", null]))]
    device: Option<String>,
    browser: Option<String>,
    os: Option<String>,
}

/// `POST /clicks` answers the click with its id once more as `clickId`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RecordedClick {
    #[serde(flatten)]
    click: ClickView,
    click_id: String,
}

pub fn record_doc() -> Op {
    Op::new("Record a click (server-side)")
        .describe("For merchants that track clicks on their own servers: records the click the click router would, flagged the same way. `ip` is the visitor's address (not the caller's); without it the click has no `ipHash` and no velocity check.")
        .body::<RecordClick>()
        .ok::<RecordedClick>(201, "The recorded click.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn redirect_doc() -> Op {
    Op::new("Follow a partner link (the click router)")
        .describe("Records a click, sets the `_cref` cookie and redirects to the link's destination (its deep link while the campaign still allows its host, else the campaign's destination) with `cref=<click id>` added to the query. A revoked partner's link still redirects (the click is flagged). Public; the router's own per-address cap answers `429`.")
        .empty(302, "To the destination.")
        .text(404, "text/html", "No link with this key in this tenant: a small page for people.")
        .header("Location", "On a `302`: the destination, with `cref=<click id>` added to its query.")
        .header("Set-Cookie", "On a `302`: `_cref=<click id>; Path=/; Max-Age=7776000; SameSite=Lax` (plus `Domain` when configured).")
        .header("Cache-Control", "`no-store`: every click must reach the router.")
        .errors(403, &[ErrorCode::TenantSuspended])
}

/// `hex(SHA-256(ip))`, first 32 characters. IPv4-mapped IPv6 addresses hash as their IPv4
/// form, so one client has one hash whichever socket family saw it.
pub fn ip_hash(raw: &str) -> Option<String> {
    let ip: IpAddr = raw.trim().parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let digest = Sha256::digest(ip.to_string().as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(32);
    Some(hex)
}

/// Records a click through the tenant's click lane ([`crate::group_commit`]): concurrent
/// clicks of a tenant are resolved with one lookup and inserted with one multi-row insert
/// and one commit. Returns once the click is committed. `Ok(None)`: no link with this key in
/// this tenant.
pub async fn record_click(ctx: &Ctx, input: ClickInput<'_>) -> Result<Option<Recorded>, ApiError> {
    if !valid_link_key(input.link_key) {
        return Ok(None); // cannot exist: no database work for scanners
    }
    let tenant = ctx.tenant()?;
    let ip_hash = input.ip.and_then(ip_hash);
    let velocity = ip_hash
        .as_ref()
        .is_some_and(|h| ctx.app.velocity.exceeded(&tenant.id, input.link_key, h));
    let user_agent = clean(input.user_agent, MAX_USER_AGENT);
    let job = ClickJob {
        id: ulid::Ulid::new().to_string(),
        link_key: input.link_key.to_string(),
        ip_hash,
        device: enrichment::device(user_agent.as_deref()),
        user_agent,
        referer: clean(input.referer, MAX_REFERER),
        velocity,
        utm: enrichment::utm(&input.query),
        country: enrichment::country(input.country),
        query: input.query,
    };
    ctx.app.click_lane.submit(&tenant.schema, job).await
}

/// A click waiting in its tenant's lane.
pub struct ClickJob {
    id: String,
    link_key: String,
    ip_hash: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    /// Over the per-IP velocity allowance (decided in memory before queueing).
    velocity: bool,
    utm: [Option<String>; 5],
    country: Option<String>,
    device: enrichment::Device,
    /// Carried over to the destination.
    query: Vec<(String, String)>,
}

/// The click lanes of a worker, one per tenant: batches written by [`write_clicks`].
pub type Lane = Lanes<ClickJob, Option<Recorded>>;

/// Builds the click lanes (batches of clicks are independent: no turn to wait for).
pub fn lane(pool: Pool) -> Lane {
    Lanes::new("clicks", 2, pool, write_clicks)
}

/// Writes a batch of clicks: one lookup of every link the batch names (with its campaign
/// and its partner's live status), then every click in one multi-row insert.
pub fn write_clicks<'a>(
    pool: &'a Pool,
    schema: &'a Schema,
    jobs: &'a [ClickJob],
    _independent: &'a Turn<()>,
) -> BoxFuture<'a, BatchResult<Option<Recorded>>> {
    Box::pin(async move {
        let lookup = format!(
            "SELECT l.link_key, l.id, l.partner_id, l.campaign_id, l.destination_url AS override,
                    c.destination_url AS campaign_destination,
                    CASE WHEN l.destination_url IS NOT NULL THEN c.deep_link_allowed_domains END AS allowed,
                    p.status = 'revoked' AS revoked
               FROM {schema}.links l
               JOIN {schema}.campaigns c ON c.id = l.campaign_id
               JOIN {schema}.partners p ON p.id = l.partner_id
              WHERE l.link_key = ANY($1::text[])"
        );
        let mut keys: Vec<&str> = jobs.iter().map(|j| j.link_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let conn = pool.get().await?;
        let stmt = conn.prepare_cached(&lookup).await?;
        let links: HashMap<String, Row> = conn
            .query(&stmt, &[&keys])
            .await?
            .into_iter()
            .map(|r| (r.get("link_key"), r))
            .collect();
        // One time for the batch: the clicks' `ts` and the day of their rollup rows agree.
        let at = Utc::now();
        let mut rows = Rows::new(
            schema,
            "clicks",
            "id, link_id, partner_id, campaign_id, ip_hash, user_agent, referer, fraud_flag, ts, \
             landing_url, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, device, browser, os",
            &[
                "text", "text", "text", "text", "text", "text", "text", "text", "timestamptz",
                "text", "text", "text", "text", "text", "text", "text", "text", "text", "text",
            ],
            "RETURNING id, ts",
        );
        let mut rollup = rollups::ClickCounts::default();
        let mut locations: HashMap<&str, Option<String>> = HashMap::with_capacity(jobs.len());
        for job in jobs {
            let Some(link) = links.get(&job.link_key) else {
                continue;
            };
            let location = with_cref(
                &enrichment::carry_query(&destination(link), &job.query),
                &job.id,
            );
            let partner: String = link.get("partner_id");
            let link_id: String = link.get("id");
            let campaign: String = link.get("campaign_id");
            let flag = fraud_flag(job, link);
            rollup.add(
                &partner,
                &link_id,
                &campaign,
                at.date_naive(),
                flag.is_some(),
            );
            let [s, m, c, t, ct] = job.utm.clone();
            rows.push(vec![
                val(job.id.clone()),
                val(link_id),
                val(partner),
                val(campaign),
                val(job.ip_hash.clone()),
                val(job.user_agent.clone()),
                val(job.referer.clone()),
                val(flag),
                val(at),
                val(location.clone()),
                val(s),
                val(m),
                val(c),
                val(t),
                val(ct),
                val(job.country.clone()),
                val(job.device.device.clone()),
                val(job.device.browser.clone()),
                val(job.device.os.clone()),
            ]);
            locations.insert(job.id.as_str(), location);
        }
        let upserts = rollup.upserts(schema);
        let mut stmts = rows.statements();
        stmts.extend(upserts.statements());
        let many = stmts.len() > 1;
        let written = match pipeline(&conn, &stmts, many, many).await {
            Ok(w) => w,
            Err(e) => {
                rollback(&conn).await;
                return Err(e);
            }
        };
        let times: HashMap<String, DateTime<Utc>> = written
            .iter()
            .flatten()
            .filter(|r| r.len() == 2)
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(jobs
            .iter()
            .map(|job| {
                let Some(link) = links.get(&job.link_key) else {
                    return Ok(None);
                };
                let at = times.get(&job.id).ok_or_else(ApiError::internal)?;
                let location = locations.get(job.id.as_str()).cloned().flatten();
                Ok(Some(recorded(job, link, *at, location)))
            })
            .collect())
    })
}

/// `revoked` wins over `velocity`: it says more about the click.
fn fraud_flag(job: &ClickJob, link: &Row) -> Option<&'static str> {
    match (link.get::<_, bool>("revoked"), job.velocity) {
        (true, _) => Some("revoked"),
        (false, true) => Some("velocity"),
        (false, false) => None,
    }
}

fn recorded(job: &ClickJob, link: &Row, at: DateTime<Utc>, location: Option<String>) -> Recorded {
    let campaign: String = link.get("campaign_id");
    let [utm_source, utm_medium, utm_campaign, utm_term, utm_content] = job.utm.clone();
    Recorded {
        location: location.clone(),
        click: ClickView {
            id: job.id.clone(),
            link_id: link.get("id"),
            partner_id: link.get("partner_id"),
            program_id: campaign.clone(),
            campaign_id: campaign,
            ip_hash: job.ip_hash.clone(),
            user_agent: job.user_agent.clone(),
            referer: job.referer.clone(),
            fraud_flag: fraud_flag(job, link),
            ts: Timestamp(at),
            landing_url: location,
            utm_source,
            utm_medium,
            utm_campaign,
            utm_term,
            utm_content,
            country: job.country.clone(),
            device: job.device.device.clone(),
            browser: job.device.browser.clone(),
            os: job.device.os.clone(),
        },
        click_id: job.id.clone(),
    }
}

/// The link's override while its host is still on the campaign's allowlist (the merchant may
/// have narrowed it since the link was made), else the campaign's destination.
fn destination(row: &Row) -> String {
    let campaign: String = row.get("campaign_destination");
    let over: Option<String> = row.get("override");
    let allowed: Option<Vec<String>> = row.get("allowed");
    match (over, allowed) {
        (Some(o), Some(domains))
            if url::Url::parse(&o)
                .ok()
                .and_then(|u| u.host_str().map(|h| host_allowed(h, &domains)))
                .unwrap_or(false) =>
        {
            o
        }
        _ => campaign,
    }
}

/// Trimmed, bounded, control characters dropped; empty → None.
fn clean(v: Option<&str>, max: usize) -> Option<String> {
    let s: String = truncate(v?.trim(), max)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!s.is_empty()).then_some(s)
}

/// `destination` with `cref=<click id>` added to its query; the existing query and fragment
/// are kept (a `cref` already there is replaced, so the merchant's SDK reads only ours).
pub fn with_cref(destination: &str, click_id: &str) -> Option<String> {
    let mut url = url::Url::parse(destination).ok()?;
    if url.query_pairs().any(|(k, _)| k == "cref") {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "cref")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    url.query_pairs_mut().append_pair("cref", click_id);
    Some(url.into())
}

/// `GET /:linkKey` on the router surface: record the click, set `_cref`, `302` onwards.
pub async fn redirect(ctx: Ctx) -> Result<Reply, ApiError> {
    let input = ClickInput {
        link_key: ctx.param("linkKey"),
        ip: Some(ctx.client_ip.as_str()),
        user_agent: ctx.header("user-agent"),
        referer: ctx.header("referer"),
        query: ctx.query_pairs(),
        country: ctx.header(enrichment::COUNTRY_HEADER),
    };
    let Some(rec) = record_click(&ctx, input).await? else {
        return Ok(not_found_page());
    };
    let Some(location) = rec.location else {
        // Destinations are validated on the way in; a stored one that no longer parses is ours.
        tracing::error!(click_id = %rec.click_id, "stored destination is not a URL");
        return Err(ApiError::internal());
    };
    let mut cookie = format!(
        "_cref={}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; SameSite=Lax",
        rec.click_id
    );
    if let Some(d) = &ctx.app.config.click_cookie_domain {
        cookie.push_str("; Domain=");
        cookie.push_str(d);
    }
    Ok(Reply {
        status: 302,
        headers: vec![
            ("location".into(), location),
            ("set-cookie".into(), cookie),
            // Every click must reach us: no browser or CDN may replay a cached redirect.
            ("cache-control".into(), "no-store".into()),
        ],
        ..Default::default()
    })
}

/// Humans follow links: an unknown one gets a small page, not JSON.
fn not_found_page() -> Reply {
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Link not found</title></head><body><h1>Link not found</h1>\
<p>This link does not exist or is no longer available.</p></body></html>\n";
    Reply {
        status: 404,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: PAGE.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RecordClick {
    /// The link clicked (an unknown key is `404`).
    link_key: String,
    /// The visitor's IPv4 or IPv6 address (blank is none).
    ip: Option<String>,
    /// The visitor's `User-Agent` (kept to 512 characters).
    user_agent: Option<String>,
    /// The visitor's `Referer` (kept to 2,048 characters).
    referer: Option<String>,
}

/// `POST /clicks {linkKey, ip?, userAgent?, referer?}`: a merchant that tracks clicks on its
/// own servers reports one. `ip` is the visitor's address (not the caller's), hashed like
/// the router does; without it the click has no `ipHash` and no velocity check.
pub async fn record(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RecordClick = ctx.json()?;
    let ip = match body.ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) if raw.parse::<IpAddr>().is_ok() => Some(raw),
        Some(_) => {
            return Err(
                ApiError::invalid_body("ip must be an IPv4 or IPv6 address").with("field", "ip")
            )
        }
    };
    let input = ClickInput {
        link_key: &body.link_key,
        ip,
        user_agent: body.user_agent.as_deref(),
        referer: body.referer.as_deref(),
        query: Vec::new(),
        country: None,
    };
    let rec = record_click(&ctx, input).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no link with key `{}`",
            truncate(&body.link_key, 64)
        ))
    })?;
    Ok(Reply::typed(
        201,
        &RecordedClick {
            click: rec.click,
            click_id: rec.click_id,
        },
    ))
}

/// Per `(tenant, link, IP hash)` click counts over a minute, in this worker's memory.
///
/// Keyed by link *key*, not link id: keys are unique per tenant and never change, and
/// knowing the key up front lets the flag go into the one insert statement. Each key counts
/// in a window that opens at its first click and lasts a minute. Memory is bounded: past
/// [`Velocity::MAX_ENTRIES`] keys, expired windows are dropped, and if most are still live
/// (an address scan), all are (flags fail open rather than the worker running out of memory).
pub struct Velocity {
    per_min: u32,
    windows: Mutex<HashMap<WindowKey, (Instant, u32)>>,
}

/// `(tenant id, link key, IP hash)`
type WindowKey = (String, String, String);

impl Velocity {
    pub const MAX_ENTRIES: usize = 100_000;
    const WINDOW: Duration = Duration::from_secs(60);

    /// `per_min` 0 disables the flag.
    pub fn new(per_min: u32) -> Velocity {
        Velocity {
            per_min,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one click; true when it is beyond the allowance of its window.
    pub fn exceeded(&self, tenant: &str, link_key: &str, ip_hash: &str) -> bool {
        self.exceeded_at(tenant, link_key, ip_hash, Instant::now())
    }

    fn exceeded_at(&self, tenant: &str, link_key: &str, ip_hash: &str, now: Instant) -> bool {
        if self.per_min == 0 {
            return false;
        }
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES {
            map.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
            if map.len() >= Self::MAX_ENTRIES * 3 / 4 {
                map.clear();
            }
        }
        let key = (
            tenant.to_string(),
            link_key.to_string(),
            ip_hash.to_string(),
        );
        let entry = map.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= Self::WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > self.per_min
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hashes_are_truncated_sha256_of_the_canonical_address() {
        let h = ip_hash("198.51.100.7").unwrap();
        assert_eq!(h.len(), 32);
        assert_eq!(
            h,
            &hex::encode(Sha256::digest(b"198.51.100.7"))[..32],
            "plain SHA-256 of the text form"
        );
        assert_eq!(ip_hash("::ffff:198.51.100.7"), Some(h));
        assert_ne!(ip_hash("198.51.100.8"), ip_hash("198.51.100.7"));
        assert_eq!(ip_hash(""), None);
        assert_eq!(ip_hash("not an ip"), None);
    }

    #[test]
    fn cref_is_added_keeping_query_and_fragment() {
        assert_eq!(
            with_cref("https://shop.example/p?a=1&b=x%20y#top", "C1").unwrap(),
            "https://shop.example/p?a=1&b=x%20y&cref=C1#top"
        );
        assert_eq!(
            with_cref("https://shop.example", "C1").unwrap(),
            "https://shop.example/?cref=C1"
        );
        assert_eq!(
            with_cref("https://shop.example/?cref=old&a=1", "C2").unwrap(),
            "https://shop.example/?a=1&cref=C2"
        );
        assert!(with_cref("not a url", "C").is_none());
    }

    #[test]
    fn velocity_flags_clicks_beyond_the_allowance_per_window() {
        let v = Velocity::new(3);
        let t0 = Instant::now();
        let flags: Vec<bool> = (0..5).map(|_| v.exceeded_at("t", "k", "ip", t0)).collect();
        assert_eq!(flags, [false, false, false, true, true]);
        assert!(!v.exceeded_at("t", "k", "other-ip", t0), "per IP");
        assert!(!v.exceeded_at("t", "k2", "ip", t0), "per link");
        assert!(!v.exceeded_at("t2", "k", "ip", t0), "per tenant");
        let later = t0 + Duration::from_secs(61);
        assert!(!v.exceeded_at("t", "k", "ip", later), "a new window");
        assert!(
            !Velocity::new(0).exceeded_at("t", "k", "ip", t0),
            "0 disables"
        );
    }

    #[test]
    fn velocity_memory_is_bounded() {
        let v = Velocity::new(5);
        let t0 = Instant::now();
        for i in 0..Velocity::MAX_ENTRIES + 10 {
            v.exceeded_at("t", "k", &i.to_string(), t0);
        }
        assert!(v.len() <= Velocity::MAX_ENTRIES);
        // Expired windows are what goes first.
        let later = t0 + Duration::from_secs(120);
        for i in 0..Velocity::MAX_ENTRIES {
            v.exceeded_at("t", "k", &format!("n{i}"), later);
        }
        assert!(v.len() <= Velocity::MAX_ENTRIES);
    }
}
