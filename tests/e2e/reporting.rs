//! Reporting (specs/reporting.md): click enrichment (landing URL, `utm_*`, a country
//! believed only from trusted proxies, device / browser / OS), the reporting routes' shapes
//! and access, window validation, and the recompute: after clicks, flagged clicks, events
//! in two currencies, refunds, a clawback, commissions approved, paid and reversed,
//! identify's backlog and a rederive, every figure the routes answer (and every rollup row)
//! is computed again from the raw rows and compared; and concurrent event batches and
//! approvals on the same rollup rows add up.

use crate::harness::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use std::{collections::BTreeMap, str::FromStr};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

/// A browser's click on `url` with `headers` (behind a trusted proxy at an address of its
/// own): the router's answer, and the click it stored (its enriched columns).
async fn click_with(url: &str, headers: &[(&str, &str)], t: &Tenant) -> (Click, Value) {
    let ip = ip();
    let mut all = vec![("x-forwarded-for", ip.as_str())];
    all.extend_from_slice(headers);
    let click = browse(url, &all).await;
    let stored = stored_click(t, &click.cref()).await;
    (click, stored)
}

/// The enriched columns of a stored click.
async fn stored_click(t: &Tenant, id: &str) -> Value {
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    let r = db
        .query_one(
            &format!(
                "SELECT landing_url, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                        country, device, browser, os FROM \"{schema}\".clicks WHERE id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap();
    let names = [
        "landingUrl",
        "utmSource",
        "utmMedium",
        "utmCampaign",
        "utmTerm",
        "utmContent",
        "country",
        "device",
        "browser",
        "os",
    ];
    let mut out = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        out.insert(n.to_string(), json!(r.get::<_, Option<String>>(i)));
    }
    Value::Object(out)
}

#[tokio::test]
async fn clicks_are_enriched_when_written() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    let url = format!(
        "{}?utm_source=news%20letter&utm_medium=email&utm_campaign=spring&other=1",
        t.link_url(&link.key)
    );
    let (click, c) = click_with(
        &url,
        &[
            ("user-agent", CHROME),
            ("cf-ipcountry", "de"),
            ("x-country-code", "FR"),
        ],
        &t,
    )
    .await;
    assert_eq!(click.status, 302);
    let loc = click.location();
    // The router's query is carried over to the destination, cref added after it.
    let u = url::Url::parse(loc).unwrap();
    let q: BTreeMap<String, String> = u.query_pairs().into_owned().collect();
    assert_eq!(q["src"], "op", "the destination's own query stays");
    assert_eq!(q["utm_source"], "news letter");
    assert_eq!(q["utm_medium"], "email");
    assert_eq!(q["other"], "1");
    assert_eq!(u.fragment(), Some("top"));
    assert_eq!(c["landingUrl"], loc, "landing URL = where it redirected");
    assert_eq!(c["utmSource"], "news letter");
    assert_eq!(c["utmMedium"], "email");
    assert_eq!(c["utmCampaign"], "spring");
    assert_eq!(c["utmTerm"], Value::Null);
    assert_eq!(
        c["country"], "DE",
        "the first present header wins, upper-cased"
    );
    assert_eq!(c["device"], "desktop");
    assert_eq!(c["browser"], "Chrome");
    assert_eq!(c["os"], "Windows 10");

    // Later headers of the list are used when the first are absent; malformed is no country.
    let (_, c) = click_with(
        &t.link_url(&link.key),
        &[("user-agent", IPHONE), ("x-vercel-ip-country", "fr")],
        &t,
    )
    .await;
    assert_eq!(
        (c["country"].clone(), c["device"].clone(), c["os"].clone()),
        (json!("FR"), json!("mobile"), json!("iPhone"))
    );
    assert_eq!(c["utmSource"], Value::Null);
    let (_, c) = click_with(&t.link_url(&link.key), &[("cf-ipcountry", "USA")], &t).await;
    assert_eq!(c["country"], Value::Null, "not two letters");
    assert_eq!(c["browser"], Value::Null, "no User-Agent, nothing parsed");

    // POST /clicks answers the enriched fields too.
    let r = t
        .api
        .post("/clicks", json!({"linkKey": link.key, "userAgent": CHROME}))
        .await
        .expect(201);
    assert_eq!(r.body["browser"], "Chrome");
    assert_eq!(r.body["country"], Value::Null);
    assert!(r.body["landingUrl"]
        .as_str()
        .unwrap()
        .contains(r.body["id"].as_str().unwrap()));

    // The breakdowns read these columns.
    let p = &link.partner;
    let b = t
        .api
        .get(&format!("/partners/{p}/breakdowns?dimension=country"))
        .await
        .expect(200);
    assert_eq!(b.body["dimension"], "country");
    let rows = b.body["rows"].as_array().unwrap();
    let count = |v: Value| {
        rows.iter()
            .find(|r| r["value"] == v)
            .map_or(0, |r| r["count"].as_i64().unwrap())
    };
    assert_eq!(
        (count(json!("DE")), count(json!("FR")), count(Value::Null)),
        (1, 1, 2)
    );
    let b = t
        .api
        .get(&format!(
            "/partners/{p}/breakdowns?dimension=browser&limit=1"
        ))
        .await
        .expect(200);
    assert_eq!(b.body["rows"], json!([{"value": "Chrome", "count": 2}]));
    let b = t
        .api
        .get(&format!("/partners/{p}/breakdowns?dimension=utm_source"))
        .await
        .expect(200);
    assert_eq!(b.body["rows"][0], json!({"value": null, "count": 3}));
    assert_eq!(
        b.body["rows"][1],
        json!({"value": "news letter", "count": 1})
    );
    for bad in ["dimension=ip", "limit=51", "limit=0"] {
        t.api
            .get(&format!("/partners/{p}/breakdowns?{bad}"))
            .await
            .expect_error(400, "invalid_query");
    }
}

#[tokio::test]
async fn a_country_header_is_believed_only_from_trusted_proxies() {
    // Loopback (the test client) is not a trusted proxy here.
    let untrusted = private_stack(&[("OP_TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let t = Tenant::on(&untrusted.base_url).await;
    let link = t.campaign_link(json!({})).await;
    let (click, c) = click_with(&t.link_url(&link.key), &[("cf-ipcountry", "DE")], &t).await;
    assert_eq!(click.status, 302);
    assert_eq!(c["country"], Value::Null);

    // OP_COUNTRY_HEADERS replaces the list.
    let custom = private_stack(&[("OP_COUNTRY_HEADERS", "X-Geo-Country")]).await;
    let t = Tenant::on(&custom.base_url).await;
    let link = t.campaign_link(json!({})).await;
    let (_, c) = click_with(
        &t.link_url(&link.key),
        &[("cf-ipcountry", "DE"), ("x-geo-country", "jp")],
        &t,
    )
    .await;
    assert_eq!(c["country"], "JP");
    let (_, c) = click_with(&t.link_url(&link.key), &[("cf-ipcountry", "DE")], &t).await;
    assert_eq!(c["country"], Value::Null);
}

/// The partner routes of the reporting spec, with a query each answers `200` to.
const PARTNER_ROUTES: &[&str] = &[
    "dashboard?includeLinks=true",
    "timeseries",
    "events",
    "customers",
    "breakdowns?dimension=device",
    "funnel",
    "payouts",
];

#[tokio::test]
async fn reporting_routes_answer_their_shapes_to_those_allowed() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    let other = t.partner_link(&link.campaign).await;
    let p = link.partner.clone();
    t.identified_click(&link, "u-shape").await;
    t.event(
        json!({"userId": "u-shape", "type": "purchase", "value": "80.00", "eventId": "inv-shape"}),
    )
    .await
    .expect(201);

    let own_key = t.partner_key(&p).await;
    let other_key = t.partner_key(&other.partner).await;
    let reader = t.scoped_key(&["partners:read"]).await;
    let events_key = t.scoped_key(&["events:write"]).await;
    for route in PARTNER_ROUTES {
        let path = format!("/partners/{p}/{route}");
        for key in [&t.admin_key, &own_key, &reader] {
            t.api.with_key(Some(key)).get(&path).await.expect(200);
        }
        t.api
            .with_key(Some(&other_key))
            .get(&path)
            .await
            .expect_error(403, "forbidden");
        t.api
            .with_key(Some(&events_key))
            .get(&path)
            .await
            .expect_error(403, "forbidden_scope");
        t.api.with_key(None).get(&path).await.expect(401);
        let unknown = format!("/partners/{}/{route}", ulid::Ulid::new());
        t.api.get(&unknown).await.expect_error(404, "not_found");
    }
    t.api
        .with_key(Some(&reader))
        .get("/admin/overview")
        .await
        .expect(200);
    t.api
        .with_key(Some(&own_key))
        .get("/admin/overview")
        .await
        .expect_error(403, "forbidden");

    // The partner signed in on the portal (a session cookie) sees its own dashboard only.
    let email = t.api.get_ok(&format!("/partners/{p}")).await["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (cookie, _) = t.sign_in(&email).await;
    let mine = t
        .api
        .get_with_cookie(&format!("/partners/{p}/dashboard"), &cookie)
        .await
        .expect(200);
    assert_eq!(mine.body["attributedRevenue"], "80.00");
    t.api
        .get_with_cookie(&format!("/partners/{}/dashboard", other.partner), &cookie)
        .await
        .expect_error(403, "forbidden");

    // Shapes.
    let d = t
        .api
        .get_ok(&format!("/partners/{p}/dashboard?includeLinks=1"))
        .await;
    assert_eq!(d["partnerId"], p.as_str());
    assert_eq!(
        (
            d["clicks"].as_i64(),
            d["flaggedClicks"].as_i64(),
            d["attributedEvents"].as_i64()
        ),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(
        d["revenueByCurrency"],
        json!([{"currency": "USD", "amount": "80.00"}])
    );
    assert_eq!(d["refunded"], json!([]));
    assert_eq!(
        d["commissionByStatus"]["accrued"],
        json!([{"currency": "USD", "amount": "8.00"}])
    );
    assert_eq!(d["commissionByStatus"]["paid"], json!([]));
    assert_eq!(d["links"][0]["linkKey"], link.key.as_str());
    assert_eq!(d["links"][0]["clicks"], 1);
    assert_eq!(d["links"][0]["attributedEvents"], 1);
    let without = t.api.get_ok(&format!("/partners/{p}/dashboard")).await;
    assert!(without.get("links").is_none());

    let ev = t.api.get_ok(&format!("/partners/{p}/events")).await;
    assert_eq!(ev["data"], ev["events"]);
    let e = &ev["data"][0];
    assert_eq!(e["eventId"], "inv-shape");
    assert_eq!(
        (
            e["type"].clone(),
            e["value"].clone(),
            e["currency"].clone(),
            e["weight"].clone()
        ),
        (json!("purchase"), json!("80.00"), json!("USD"), json!("1"))
    );
    assert_eq!(e["model"], "last_click");
    assert_eq!(e["userId"], "u-shape");
    assert_eq!(e["click"]["linkKey"], link.key.as_str());
    assert!(e["click"]["landingUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://shop.example/landing"));
    let none = t
        .api
        .get_ok(&format!("/partners/{p}/events?type=signup"))
        .await;
    assert_eq!(none["data"], json!([]));

    let cu = t
        .api
        .get(&format!(
            "/partners/{p}/customers?sort=revenue&currency=USD"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(cu["data"], cu["customers"]);
    assert_eq!(cu["data"][0]["userId"], "u-shape");
    assert_eq!(cu["data"][0]["eventCount"], 1);
    assert_eq!(
        cu["data"][0]["revenue"],
        json!([{"currency": "USD", "amount": "80.00"}])
    );
    assert_eq!(cu["nextCursor"], Value::Null);

    let f = t.api.get_ok(&format!("/partners/{p}/funnel")).await;
    assert_eq!(
        f["stages"],
        json!({"clicks": 1, "identities": 1, "signups": 0, "paid": 1})
    );
    assert_eq!(
        f["rates"],
        json!({"stitchRate": 1.0, "signupRate": 0.0, "paidRate": null, "overall": 1.0})
    );

    // A window entirely in the future answers zeros; bad windows are invalid queries.
    let future = t
        .api
        .get(&format!(
            "/partners/{p}/dashboard?since=2999-01-01&until=2999-01-31"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(
        (
            future["clicks"].as_i64(),
            future["attributedEvents"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(future["revenueByCurrency"], json!([]));
    assert_eq!(future["attributedRevenue"], Value::Null);
    for q in [
        "since=2026-02-01&until=2026-01-01",
        "since=2020-01-01&until=2026-01-01",
        "since=last-week",
        "until=2026-02-30",
    ] {
        for route in ["dashboard", "timeseries", "funnel", "events", "breakdowns"] {
            t.api
                .get(&format!("/partners/{p}/{route}?{q}"))
                .await
                .expect_error(400, "invalid_query");
        }
        t.api
            .get(&format!("/admin/overview?{q}"))
            .await
            .expect_error(400, "invalid_query");
    }
    for q in [
        "timeseries?bucket=month",
        "customers?sort=name",
        "customers?currency=usd",
        "dashboard?includeLinks=maybe",
    ] {
        t.api
            .get(&format!("/partners/{p}/{q}"))
            .await
            .expect_error(400, "invalid_query");
    }
    t.api
        .get(&format!("/partners/{p}/customers?cursor=forged"))
        .await
        .expect_error(400, "invalid_cursor");

    // Payouts: the partner's own.
    let c = t.api.get_ok(&format!("/partners/{p}/commissions")).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.approve(&c).await;
    t.api.post("/payouts/run", json!({})).await.expect(200);
    let mine = t
        .api
        .with_key(Some(&own_key))
        .get_ok(&format!("/partners/{p}/payouts"))
        .await;
    assert_eq!(mine["data"], mine["payouts"]);
    assert_eq!(mine["data"][0]["amount"], "8.00");
    assert_eq!(mine["data"][0]["partnerId"], p.as_str());
    let theirs = t
        .api
        .get_ok(&format!("/partners/{}/payouts", other.partner))
        .await;
    assert_eq!(theirs["data"], json!([]));
}

#[tokio::test]
async fn a_year_by_week_is_dense_iso_weeks() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    t.click(&link).await;
    let today = chrono::Utc::now().date_naive();
    let since = today - chrono::Duration::days(364);
    let ts = t
        .api
        .get(&format!(
            "/partners/{}/timeseries?since={since}",
            link.partner
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(ts["bucket"], "week", "week by default over 90 days");
    let buckets = ts["buckets"].as_array().unwrap();
    assert!((53..=54).contains(&buckets.len()), "{}", buckets.len());
    for b in buckets {
        let d =
            chrono::NaiveDate::parse_from_str(b["bucket"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(chrono::Datelike::weekday(&d), chrono::Weekday::Mon);
    }
    let clicks: i64 = buckets.iter().map(|b| b["clicks"].as_i64().unwrap()).sum();
    assert_eq!(clicks, 1);
    assert_eq!(buckets.last().unwrap()["clicks"], 1);
    let daily = t
        .api
        .get_ok(&format!("/partners/{}/timeseries", link.partner))
        .await;
    assert_eq!(daily["bucket"], "day");
    assert_eq!(daily["buckets"].as_array().unwrap().len(), 30);
    assert_eq!(daily["buckets"][29]["bucket"], today.to_string());
}

// ------------------------------------------------------------ the recompute

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// `{currency: amount}` rounded half-even to 2 decimals (the currencies used here), as the
/// API's `[{currency, amount}]`.
fn money(m: &BTreeMap<String, Decimal>) -> Value {
    Value::Array(
        m.iter()
            .filter(|(_, d)| !d.is_zero())
            .map(|(c, d)| {
                let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
                r.rescale(2);
                json!({"currency": c, "amount": r.to_string()})
            })
            .collect(),
    )
}

/// What the raw rows say about one partner (or every partner with `None`) over the
/// default window (the 30 days ending today).
#[derive(Debug, Default)]
struct Raw {
    clicks: i64,
    flagged: i64,
    identities: i64,
    events: i64,
    revenue: BTreeMap<String, Decimal>,
    refunded: BTreeMap<String, Decimal>,
    commissions: BTreeMap<String, BTreeMap<String, Decimal>>,
    earnings: BTreeMap<String, Decimal>,
    signups: i64,
    paid: i64,
    leads: i64,
    sales: i64,
}

async fn raw(t: &Tenant, partner: Option<&str>) -> Raw {
    let db = db().await;
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(29))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let end = (today + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let p = partner.map(str::to_string);
    let mut out = Raw::default();
    let r = db
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE fraud_flag IS NULL), count(*) FILTER (WHERE fraud_flag IS NOT NULL),
                        (SELECT count(*) FROM {s}.identities i JOIN {s}.clicks c2 ON c2.id = i.click_id
                          WHERE ($1::text IS NULL OR c2.partner_id = $1) AND c2.fraud_flag IS NULL AND c2.ts >= $2 AND c2.ts < $3)
                   FROM {s}.clicks WHERE ($1::text IS NULL OR partner_id = $1) AND ts >= $2 AND ts < $3"
            ),
            &[&p, &start, &end],
        )
        .await
        .unwrap();
    (out.clicks, out.flagged, out.identities) = (r.get(0), r.get(1), r.get(2));
    let r = db
        .query_one(
            &format!(
                "SELECT count(DISTINCT e.id),
                        count(DISTINCT e.user_id) FILTER (WHERE e.type IN ('signup', 'trial_started')),
                        count(DISTINCT e.user_id) FILTER (WHERE e.value > 0),
                        count(DISTINCT e.id) FILTER (WHERE e.type IN ('signup', 'trial_started')),
                        count(DISTINCT e.id) FILTER (WHERE e.value > 0)
                   FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                  WHERE ($1::text IS NULL OR a.partner_id = $1) AND a.superseded_at IS NULL AND e.ts >= $2 AND e.ts < $3"
            ),
            &[&p, &start, &end],
        )
        .await
        .unwrap();
    (out.events, out.signups, out.paid, out.leads, out.sales) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    out.revenue = per_currency(
        &db,
        &format!(
            "SELECT e.currency, sum(e.value * a.weight)::text
                   FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                  WHERE ($1::text IS NULL OR a.partner_id = $1) AND a.superseded_at IS NULL
                    AND e.ts >= $2 AND e.ts < $3 AND e.value IS NOT NULL
                  GROUP BY 1"
        ),
        &[&p, &start, &end],
    )
    .await;
    out.refunded = per_currency(
        &db,
        &format!(
            "SELECT r.currency, sum(r.value * a.weight)::text
                   FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                   JOIN {s}.events r ON r.refund_of = e.event_id
                  WHERE ($1::text IS NULL OR a.partner_id = $1) AND a.superseded_at IS NULL
                    AND e.ts >= $2 AND e.ts < $3 AND r.value IS NOT NULL
                  GROUP BY 1"
        ),
        &[&p, &start, &end],
    )
    .await;
    for r in db
        .query(
            &format!(
                "SELECT status, currency, sum(amount)::text FROM {s}.commissions
                  WHERE ($1::text IS NULL OR partner_id = $1) AND accrued_at >= $2 AND accrued_at < $3
                  GROUP BY 1, 2"
            ),
            &[&p, &start, &end],
        )
        .await
        .unwrap()
    {
        let (status, currency, amount): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        out.commissions
            .entry(status.clone())
            .or_default()
            .insert(currency.clone(), dec(&amount));
        if status != "reversed" {
            *out.earnings.entry(currency).or_default() += dec(&amount);
        }
    }
    out
}

/// The amount per currency of `sql`, whose rows are `(currency, amount as text)`.
async fn per_currency(
    db: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> BTreeMap<String, Decimal> {
    db.query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), dec(r.get(1))))
        .collect()
}

/// The default window's `[start, end)` as times.
fn window_times() -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let today = chrono::Utc::now().date_naive();
    let at = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc();
    (
        at(today - chrono::Duration::days(29)),
        at(today + chrono::Duration::days(1)),
    )
}

/// One campaign's figures of a partner from the raw rows: (leads, sales, revenue,
/// earnings) — what `timeseries?campaignId=` sums to.
async fn raw_campaign(
    t: &Tenant,
    partner: &str,
    campaign: &str,
) -> (
    i64,
    i64,
    BTreeMap<String, Decimal>,
    BTreeMap<String, Decimal>,
) {
    let db = db().await;
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let (start, end) = window_times();
    let r = db
        .query_one(
            &format!(
                "SELECT count(DISTINCT e.id) FILTER (WHERE e.type IN ('signup', 'trial_started')),
                        count(DISTINCT e.id) FILTER (WHERE e.value > 0)
                   FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                  WHERE a.partner_id = $1 AND a.campaign_id = $2 AND a.superseded_at IS NULL
                    AND e.ts >= $3 AND e.ts < $4"
            ),
            &[&partner, &campaign, &start, &end],
        )
        .await
        .unwrap();
    let (leads, sales) = (r.get(0), r.get(1));
    let revenue = per_currency(
        &db,
        &format!(
            "SELECT e.currency, sum(e.value * a.weight)::text
                   FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                  WHERE a.partner_id = $1 AND a.campaign_id = $2 AND a.superseded_at IS NULL
                    AND e.ts >= $3 AND e.ts < $4 AND e.value IS NOT NULL
                  GROUP BY 1"
        ),
        &[&partner, &campaign, &start, &end],
    )
    .await;
    let earnings = per_currency(
        &db,
        &format!(
            "SELECT currency, sum(amount)::text FROM {s}.commissions
                  WHERE partner_id = $1 AND campaign_id = $2 AND status <> 'reversed'
                    AND accrued_at >= $3 AND accrued_at < $4
                  GROUP BY 1"
        ),
        &[&partner, &campaign, &start, &end],
    )
    .await;
    (leads, sales, revenue, earnings)
}

/// Per link of a partner from the raw rows: (link id, distinct events, revenue).
async fn raw_links(t: &Tenant, partner: &str) -> Vec<(String, i64, BTreeMap<String, Decimal>)> {
    let db = db().await;
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let (start, end) = window_times();
    let links: Vec<String> = column(
        &db,
        &format!("SELECT id FROM {s}.links WHERE partner_id = $1 ORDER BY created_at, id"),
        &[&partner],
    )
    .await;
    let mut out = Vec::new();
    for link in links {
        let n: i64 = db
            .query_one(
                &format!(
                    "SELECT count(DISTINCT e.id) FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                       JOIN {s}.clicks c ON c.id = a.click_id
                      WHERE a.partner_id = $1 AND c.link_id = $2 AND a.superseded_at IS NULL
                        AND e.ts >= $3 AND e.ts < $4"
                ),
                &[&partner, &link, &start, &end],
            )
            .await
            .unwrap()
            .get(0);
        let revenue = per_currency(
            &db,
            &format!(
                "SELECT e.currency, sum(e.value * a.weight)::text
                       FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
                       JOIN {s}.clicks c ON c.id = a.click_id
                      WHERE a.partner_id = $1 AND c.link_id = $2 AND a.superseded_at IS NULL
                        AND e.ts >= $3 AND e.ts < $4 AND e.value IS NOT NULL
                      GROUP BY 1"
            ),
            &[&partner, &link, &start, &end],
        )
        .await;
        out.push((link, n, revenue));
    }
    out
}

fn by_status(raw: &Raw) -> Value {
    let mut m = serde_json::Map::new();
    for s in ["accrued", "approved", "paid", "reversed"] {
        m.insert(
            s.to_string(),
            money(&raw.commissions.get(s).cloned().unwrap_or_default()),
        );
    }
    Value::Object(m)
}

/// Compares every figure of every reporting route with [`raw`], for each partner and for
/// the overview's totals; and the click rollups row by row with the raw clicks.
async fn every_figure_matches_the_raw_rows(t: &Tenant, partners: &[&str], campaigns: &[&str]) {
    for p in partners {
        // Per link (an event counts once on each link it touched) and per campaign.
        let d = t
            .api
            .get_ok(&format!("/partners/{p}/dashboard?includeLinks=true"))
            .await;
        let got: Vec<(String, i64, Value)> = d["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["linkId"].as_str().unwrap().to_string(),
                    l["attributedEvents"].as_i64().unwrap(),
                    l["revenueByCurrency"].clone(),
                )
            })
            .collect();
        let want: Vec<(String, i64, Value)> = raw_links(t, p)
            .await
            .into_iter()
            .map(|(l, n, r)| (l, n, money(&r)))
            .collect();
        assert_eq!(got, want, "links of {p}: {d}");
        for c in campaigns {
            let (leads, sales, revenue, earnings) = raw_campaign(t, p, c).await;
            let ts = t
                .api
                .get_ok(&format!("/partners/{p}/timeseries?campaignId={c}"))
                .await;
            let buckets = ts["buckets"].as_array().unwrap();
            let sum = |k: &str| buckets.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
            assert_eq!(
                (sum("leads"), sum("sales")),
                (leads, sales),
                "{p} {c}: {ts}"
            );
            let last = buckets.last().unwrap();
            assert_eq!(last["revenue"], money(&revenue), "{p} {c}: {ts}");
            assert_eq!(last["earnings"], money(&earnings), "{p} {c}: {ts}");
        }
    }
    for p in partners {
        let want = raw(t, Some(p)).await;
        let d = t.api.get_ok(&format!("/partners/{p}/dashboard")).await;
        let ctx = format!("partner {p}: {d}\nraw: {want:?}");
        assert_eq!(d["clicks"], want.clicks, "{ctx}");
        assert_eq!(d["flaggedClicks"], want.flagged, "{ctx}");
        assert_eq!(d["attributedEvents"], want.events, "{ctx}");
        assert_eq!(d["revenueByCurrency"], money(&want.revenue), "{ctx}");
        assert_eq!(d["refunded"], money(&want.refunded), "{ctx}");
        assert_eq!(d["commissionByStatus"], by_status(&want), "{ctx}");
        let scalar = match money(&want.revenue).as_array().unwrap().as_slice() {
            [one] => one["amount"].clone(),
            _ => Value::Null,
        };
        assert_eq!(d["attributedRevenue"], scalar, "{ctx}");

        let ts = t.api.get_ok(&format!("/partners/{p}/timeseries")).await;
        let buckets = ts["buckets"].as_array().unwrap();
        let sum = |k: &str| buckets.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
        assert_eq!(
            (sum("clicks"), sum("leads"), sum("sales")),
            (want.clicks, want.leads, want.sales),
            "{ctx}\n{ts}"
        );
        // Everything happened today: the last bucket holds the money.
        let last = buckets.last().unwrap();
        assert_eq!(last["revenue"], money(&want.revenue), "{ctx}\n{ts}");
        assert_eq!(last["earnings"], money(&want.earnings), "{ctx}\n{ts}");

        let f = t.api.get_ok(&format!("/partners/{p}/funnel")).await;
        assert_eq!(
            f["stages"],
            json!({"clicks": want.clicks, "identities": want.identities, "signups": want.signups, "paid": want.paid}),
            "{ctx}\n{f}"
        );
        assert_eq!(f["revenue"], money(&want.revenue), "{ctx}");
        let rate = |a: i64, b: i64| match b {
            0 => Value::Null,
            _ => json!(((a as f64 / b as f64).min(1.0) * 10_000.0).round() / 10_000.0),
        };
        assert_eq!(
            f["rates"]["stitchRate"],
            rate(want.identities, want.clicks),
            "{f}"
        );
        assert_eq!(
            f["rates"]["signupRate"],
            rate(want.signups, want.identities),
            "{f}"
        );
        assert_eq!(f["rates"]["paidRate"], rate(want.paid, want.signups), "{f}");
        assert_eq!(f["rates"]["overall"], rate(want.paid, want.clicks), "{f}");
    }

    let all = raw(t, None).await;
    let o = t.api.get_ok("/admin/overview").await;
    let tot = &o["totals"];
    assert_eq!(tot["clicks"], all.clicks, "{o}");
    assert_eq!(tot["flaggedClicks"], all.flagged, "{o}");
    assert_eq!(tot["attributedEvents"], all.events, "{o}");
    assert_eq!(tot["revenueByCurrency"], money(&all.revenue), "{o}");
    assert_eq!(tot["refunded"], money(&all.refunded), "{o}");
    assert_eq!(tot["commissionByStatus"], by_status(&all), "{o}");
    assert_eq!(o["data"], o["partners"]);
    for row in o["data"].as_array().unwrap() {
        let p = row["partnerId"].as_str().unwrap();
        let want = raw(t, Some(p)).await;
        assert_eq!(
            (
                row["clicks"].as_i64(),
                row["flaggedClicks"].as_i64(),
                row["attributedEvents"].as_i64()
            ),
            (Some(want.clicks), Some(want.flagged), Some(want.events)),
            "{row}"
        );
        assert_eq!(row["revenueByCurrency"], money(&want.revenue), "{row}");
        assert_eq!(row["commissionByStatus"], by_status(&want), "{row}");
    }

    // The rollups themselves, row by row.
    let db = db().await;
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let rollups: Vec<(String, String, String, i64, i64, i64)> = db
        .query(
            &format!(
                "SELECT partner_id, day::text, link_id, sum(clicks)::int8, sum(flagged_clicks)::int8, sum(identities)::int8
                   FROM {s}.click_rollups GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let recomputed: Vec<(String, String, String, i64, i64, i64)> = db
        .query(
            &format!(
                "SELECT c.partner_id, (c.ts AT TIME ZONE 'UTC')::date::text, c.link_id,
                        count(*) FILTER (WHERE c.fraud_flag IS NULL),
                        count(*) FILTER (WHERE c.fraud_flag IS NOT NULL),
                        coalesce(sum((SELECT count(*) FROM {s}.identities i WHERE i.click_id = c.id)) FILTER (WHERE c.fraud_flag IS NULL), 0)::int8
                   FROM {s}.clicks c GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(rollups, recomputed);
    money_rollups_match_the_raw_rows(t).await;
}

/// Rows of `sql` as text, numbers normalised (`100.00` and `100` are one amount).
async fn rows_as_text(sql: &str) -> Vec<Vec<String>> {
    let db = db().await;
    db.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let v: Option<String> = r.get(i);
                    let v = v.unwrap_or_default();
                    match Decimal::from_str(&v) {
                        Ok(d) => d.normalize().to_string(),
                        Err(_) => v,
                    }
                })
                .collect()
        })
        .collect()
}

/// The event, user and commission rollups, row by row, against the same figures recomputed
/// from the live attributions, events and commissions (the rules of migration 0017).
pub(crate) async fn money_rollups_match_the_raw_rows(t: &Tenant) {
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let stored = rows_as_text(&format!(
        "SELECT partner_id, day::text, link_id, campaign_id, currency, sum(events)::text, sum(leads)::text,
                sum(sales)::text, sum(campaign_leads)::text, sum(campaign_sales)::text, sum(link_events)::text,
                sum(tenant_events)::text, sum(revenue)::text, sum(refunded)::text
           FROM {s}.event_rollups
          WHERE (events, leads, sales, campaign_leads, campaign_sales, link_events, tenant_events) <> (0, 0, 0, 0, 0, 0, 0)
             OR revenue <> 0 OR refunded <> 0
          GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    ))
    .await;
    let recomputed = rows_as_text(&format!(
        "SELECT x.partner_id, x.day::text, x.link_id, x.campaign_id, x.currency,
                (count(*) FILTER (WHERE x.p1))::text, (count(*) FILTER (WHERE x.p1 AND x.lead))::text,
                (count(*) FILTER (WHERE x.p1 AND x.sale))::text, (count(*) FILTER (WHERE x.c1 AND x.lead))::text,
                (count(*) FILTER (WHERE x.c1 AND x.sale))::text, count(*)::text,
                (count(*) FILTER (WHERE x.t1))::text,
                coalesce(sum(x.value * x.weight), 0)::text, coalesce(sum(x.refunded * x.weight), 0)::text
           FROM (SELECT t.partner_id, t.link_id, t.campaign_id, t.weight, e.currency, e.value,
                        (e.ts AT TIME ZONE 'UTC')::date AS day,
                        e.type IN ('signup', 'trial_started') AS lead,
                        (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE AS sale,
                        (SELECT sum(r.value) FROM {s}.events r WHERE r.refund_of = e.event_id AND r.value IS NOT NULL) AS refunded,
                        row_number() OVER (PARTITION BY t.event_id, t.partner_id ORDER BY t.link_id COLLATE \"C\", t.campaign_id COLLATE \"C\") = 1 AS p1,
                        row_number() OVER (PARTITION BY t.event_id, t.partner_id, t.campaign_id ORDER BY t.link_id COLLATE \"C\") = 1 AS c1,
                        row_number() OVER (PARTITION BY t.event_id ORDER BY t.partner_id COLLATE \"C\", t.link_id COLLATE \"C\", t.campaign_id COLLATE \"C\") = 1 AS t1
                   FROM (SELECT a.event_id, a.partner_id, a.campaign_id, c.link_id, sum(a.weight) AS weight
                           FROM {s}.attributions a JOIN {s}.clicks c ON c.id = a.click_id
                          WHERE a.superseded_at IS NULL
                          GROUP BY a.event_id, a.partner_id, a.campaign_id, c.link_id) t
                   JOIN {s}.events e ON e.id = t.event_id) x
          GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    ))
    .await;
    assert!(!recomputed.is_empty());
    assert_eq!(stored, recomputed, "event_rollups");
    let stored = rows_as_text(&format!(
        "SELECT partner_id, day::text, user_id, leads::text, sales::text FROM {s}.user_rollups
          WHERE (leads, sales) <> (0, 0) ORDER BY 1, 2, 3"
    ))
    .await;
    let recomputed = rows_as_text(&format!(
        "SELECT a.partner_id, (e.ts AT TIME ZONE 'UTC')::date::text, e.user_id,
                (count(*) FILTER (WHERE e.type IN ('signup', 'trial_started')))::text,
                (count(*) FILTER (WHERE (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE))::text
           FROM (SELECT DISTINCT event_id, partner_id FROM {s}.attributions WHERE superseded_at IS NULL) a
           JOIN {s}.events e ON e.id = a.event_id
          WHERE e.type IN ('signup', 'trial_started') OR (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE
          GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ))
    .await;
    assert_eq!(stored, recomputed, "user_rollups");
    let stored = rows_as_text(&format!(
        "SELECT partner_id, day::text, campaign_id, currency, accrued::text, approved::text, paid::text, reversed::text
           FROM {s}.commission_rollups WHERE (accrued, approved, paid, reversed) <> (0, 0, 0, 0)
          ORDER BY 1, 2, 3, 4"
    ))
    .await;
    let recomputed = rows_as_text(&format!(
        "SELECT partner_id, (accrued_at AT TIME ZONE 'UTC')::date::text, campaign_id, currency,
                coalesce(sum(amount) FILTER (WHERE status = 'accrued'), 0)::text,
                coalesce(sum(amount) FILTER (WHERE status = 'approved'), 0)::text,
                coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0)::text,
                coalesce(sum(amount) FILTER (WHERE status = 'reversed'), 0)::text
           FROM {s}.commissions GROUP BY 1, 2, 3, 4
         HAVING (coalesce(sum(amount) FILTER (WHERE status = 'accrued'), 0), coalesce(sum(amount) FILTER (WHERE status = 'approved'), 0),
                 coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0), coalesce(sum(amount) FILTER (WHERE status = 'reversed'), 0)) <> (0, 0, 0, 0)
          ORDER BY 1, 2, 3, 4"
    ))
    .await;
    assert_eq!(stored, recomputed, "commission_rollups");
}

/// The rollup rows that count something, all three tables.
pub(crate) async fn money_rollups(t: &Tenant) -> Vec<Vec<String>> {
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    let mut out = rows_as_text(&format!(
        "SELECT partner_id, day::text, link_id, campaign_id, currency, events::text, leads::text, sales::text,
                campaign_leads::text, campaign_sales::text, link_events::text, tenant_events::text, revenue::text, refunded::text
           FROM {s}.event_rollups
          WHERE (events, leads, sales, campaign_leads, campaign_sales, link_events, tenant_events) <> (0, 0, 0, 0, 0, 0, 0)
             OR revenue <> 0 OR refunded <> 0
          ORDER BY 1, 2, 3, 4, 5"
    ))
    .await;
    out.extend(
        rows_as_text(&format!(
            "SELECT partner_id, day::text, user_id, leads::text, sales::text FROM {s}.user_rollups
              WHERE (leads, sales) <> (0, 0) ORDER BY 1, 2, 3"
        ))
        .await,
    );
    out.extend(
        rows_as_text(&format!(
            "SELECT partner_id, day::text, campaign_id, currency, accrued::text, approved::text, paid::text, reversed::text
               FROM {s}.commission_rollups WHERE (accrued, approved, paid, reversed) <> (0, 0, 0, 0)
              ORDER BY 1, 2, 3, 4"
        ))
        .await,
    );
    out
}

/// Migration 0017 (the backfill of tenants that had events before the rollups) run again
/// on empty rollups gives exactly the rows the writers kept.
async fn the_backfill_gives_the_same_rollups(t: &Tenant) {
    let kept = money_rollups(t).await;
    let s = format!("\"{}\"", op_control::schema::schema_name(&t.id));
    // One statement per query, in one transaction (CITUS rule 7), as migrations run.
    let mut db = db().await;
    let tx = db.transaction().await.unwrap();
    tx.batch_execute(&format!("SET LOCAL search_path TO {s}"))
        .await
        .unwrap();
    tx.batch_execute("TRUNCATE event_rollups, user_rollups, commission_rollups")
        .await
        .unwrap();
    for stmt in op_control::migrations::split_statements(include_str!(
        "../../migrations/tenant/0017_reporting_money_backfill.sql"
    )) {
        tx.batch_execute(&stmt).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(money_rollups(t).await, kept);
}

/// The id of `partner`'s commission on the event `event_id`.
async fn commission_of_event(t: &Tenant, partner: &str, event_id: &str) -> String {
    let list = t
        .api
        .get_ok(&format!("/partners/{partner}/commissions"))
        .await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["eventId"] == event_id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_reported_figure_equals_a_recompute_from_the_raw_rows() {
    let t = Tenant::new().await;
    let a = t.campaign(json!({"commissionRule": percent("10")})).await;
    let b = t
        .campaign(json!({"commissionRule": {"type": "fixed", "value": "5.00", "currency": "USD"}}))
        .await;
    let p1a = t.partner_link(&a.id).await;
    let p2a = t.partner_link(&a.id).await;
    // P1's second link, on campaign B.
    let p1b = t.link(&p1a.partner, &b.id).await;
    // A revoked partner: its clicks are flagged.
    let p3 = t.partner_link(&a.id).await;
    t.revoke_partner(&p3.partner).await;

    // Clicks: u1 through P1 then P2 (two touches), u2 and u3 through P1, u4 through P2,
    // anonymous clicks, a flagged one.
    t.identified_click(&p1a, "u1").await;
    t.identified_click(&p2a, "u1").await;
    t.identified_click(&p1a, "u2").await;
    t.identified_click(&p1b, "u3").await;
    t.identified_click(&p2a, "u4").await;
    t.click(&p1a).await;
    t.click(&p2a).await;
    let flagged = t.click(&p3).await;
    t.identify(&flagged, "u5").await.expect(200);

    // Events in two currencies, leads and sales.
    for (user, kind, value, currency, id) in [
        ("u1", "signup", None, "USD", "e-u1-signup"),
        ("u1", "purchase", Some("100.00"), "USD", "e-u1-buy"),
        ("u2", "purchase", Some("50.00"), "EUR", "e-u2-buy"),
        ("u3", "trial_started", None, "USD", "e-u3-trial"),
        ("u3", "purchase", Some("30.00"), "USD", "e-u3-buy"),
        ("u4", "purchase", Some("20.00"), "USD", "e-u4-buy"),
        ("u4", "purchase", Some("33.33"), "USD", "e-u4-buy2"),
        ("u5", "purchase", Some("10.00"), "USD", "e-u5-buy"),
    ] {
        let mut body = json!({"userId": user, "type": kind, "currency": currency, "eventId": id});
        if let Some(v) = value {
            body["value"] = json!(v);
        }
        t.event(body).await.expect(201);
    }
    let refund = |of: &str, value: Option<&str>, id: &str, kind: &str| {
        let mut body =
            json!({"userId": "x", "type": kind, "eventId": id, "metadata": {"refundOf": of}});
        if let Some(v) = value {
            body["value"] = json!(v);
        }
        body
    };
    // u8 clicks two links of P1 on campaign A: one touch until the rederive below makes
    // the model linear, then two touches of one partner (the event counts once for P1 and
    // once on each link).
    let p1a2 = t.link(&p1a.partner, &a.id).await;
    t.identified_click(&p1a, "u8").await;
    t.identified_click(&p1a2, "u8").await;
    t.event(json!({"userId": "u8", "type": "purchase", "value": "70.00", "currency": "USD", "eventId": "e-u8-buy"}))
        .await
        .expect(201);
    // identify's backlog: u6 buys (and is refunded a part) before being identified.
    let c6 = t.click(&p2a).await;
    t.event(json!({"userId": "u6", "type": "purchase", "value": "60.00", "currency": "USD", "eventId": "e-u6-buy"}))
        .await
        .expect(201);
    t.event(refund("e-u6-buy", Some("10.00"), "r-u6", "refund"))
        .await
        .expect(201);
    let backlog = t.identify(&c6, "u6").await.expect(200);
    assert_eq!(
        backlog.body["backfilledAttributions"], 1,
        "{}",
        backlog.body
    );
    let partners = [
        p1a.partner.as_str(),
        p2a.partner.as_str(),
        p3.partner.as_str(),
    ];
    let campaigns = [a.id.as_str(), b.id.as_str()];
    every_figure_matches_the_raw_rows(&t, &partners, &campaigns).await;

    // Refunds: a part of u1's purchase, all of u4's first; u3's commission is approved and
    // paid, then refunded: a clawback.
    t.event(refund("e-u1-buy", Some("40.00"), "r-u1", "refund"))
        .await
        .expect(201);
    t.event(refund("e-u4-buy", None, "r-u4", "chargeback"))
        .await
        .expect(201);
    let c3 = commission_of_event(&t, &p1a.partner, "e-u3-buy").await;
    t.approve(&c3).await;
    t.api
        .post("/payouts/run", json!({"partnerId": p1a.partner}))
        .await
        .expect(200);
    t.event(refund("e-u3-buy", None, "r-u3", "refund"))
        .await
        .expect(201);
    // A commission reversed by hand (u2's, in EUR).
    let c2 = commission_of_event(&t, &p1a.partner, "e-u2-buy").await;
    t.reverse(&c2).await;
    every_figure_matches_the_raw_rows(&t, &partners, &campaigns).await;

    // Rederive under another model: u1's purchase is split between P1 and P2.
    t.patch_campaign(&a.id, json!({"attributionModel": "linear"}))
        .await;
    let r = t.rederive(&a.id).await;
    assert!(r.body["events"].as_i64().unwrap() > 0, "{}", r.body);
    // P2 had all of u1's 100.00 (the last click), u4's 53.33 and u6's 60.00; now half of
    // the 100.00.
    let d2 = t
        .api
        .get_ok(&format!("/partners/{}/dashboard", p2a.partner))
        .await;
    assert_eq!(
        d2["revenueByCurrency"],
        json!([{"currency": "USD", "amount": "163.33"}]),
        "{d2}"
    );
    every_figure_matches_the_raw_rows(&t, &partners, &campaigns).await;
    the_backfill_gives_the_same_rollups(&t).await;
}

#[tokio::test]
async fn concurrent_event_batches_and_approvals_of_one_partner_day_add_up() {
    let t = Tenant::new().await;
    let a = t.campaign(json!({"commissionRule": percent("10")})).await;
    let p = t.partner_link(&a.id).await;
    let users: Vec<String> = (0..16).map(|i| format!("cu{i}")).collect();
    for u in &users {
        t.identified_click(&p, u).await;
    }
    // A first round of purchases, whose commissions are approved below while more events
    // arrive: every one of these writes lands on the same rollup rows (one partner, link,
    // campaign, day, currency).
    let purchase = |u: &str, n: usize| json!({"userId": u, "type": "purchase", "value": "12.34", "currency": "USD", "eventId": format!("cc-{u}-{n}")});
    let first = futures::future::join_all(users.iter().map(|u| t.event(purchase(u, 0)))).await;
    for r in first {
        r.expect(201);
    }
    let commissions: Vec<String> = t
        .api
        .get_ok(&format!("/partners/{}/commissions?limit=100", p.partner))
        .await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(commissions.len(), users.len());
    // Concurrently: two events per user (signups and purchases, in as many lane batches as
    // the lanes make of them) and the approval of every first commission.
    let events = users.iter().flat_map(|u| {
        [
            json!({"userId": u, "type": "signup", "currency": "USD", "eventId": format!("cc-{u}-s")}),
            purchase(u, 1),
        ]
    });
    let (written, approved) = futures::join!(
        futures::future::join_all(events.map(|b| t.event(b))),
        futures::future::join_all(commissions.iter().map(|c| {
            let api = &t.api;
            async move {
                api.post(&format!("/commissions/{c}/approve"), json!({}))
                    .await
            }
        })),
    );
    for r in written {
        r.expect(201);
    }
    for r in approved {
        r.expect(200);
    }
    let d = t
        .api
        .get_ok(&format!("/partners/{}/dashboard", p.partner))
        .await;
    assert_eq!(d["attributedEvents"], 48, "{d}");
    assert_eq!(
        d["revenueByCurrency"],
        json!([{"currency": "USD", "amount": "394.88"}]),
        "32 × 12.34: {d}"
    );
    assert_eq!(
        d["commissionByStatus"]["approved"],
        json!([{"currency": "USD", "amount": "19.68"}]),
        "16 × 1.234, each rounded to 1.23 when priced: {d}"
    );
    every_figure_matches_the_raw_rows(&t, &[p.partner.as_str()], &[a.id.as_str()]).await;
}
