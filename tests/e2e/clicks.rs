//! The click router and server-side click ingest through the gateway: the 302 and its
//! `cref`, the `_cref` cookie, durable click rows, fraud flags (revoked partner, velocity),
//! the per-IP cap, unknown links and tenant isolation.

use crate::harness::*;
use serde_json::{json, Value};

fn gw() -> String {
    shared().stack.base_url.clone()
}

/// A partner's link on a campaign that sends clicks to `https://shop.example/`.
async fn shop_link(t: &Tenant) -> Link {
    t.campaign_link(json!({"destinationUrl": "https://shop.example/"}))
        .await
}

/// The stored click row, read straight from the tenant's schema.
async fn click_row(t: &Tenant, id: &str) -> Option<tokio_postgres::Row> {
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.query_opt(
        &format!(
            "SELECT link_id, partner_id, campaign_id, ip_hash, user_agent, referer, fraud_flag,
                    ip_hash = left(encode(sha256($2::text::bytea), 'hex'), 32) AS hash_matches
               FROM {schema}.clicks WHERE id = $1"
        ),
        &[&id, &"203.0.113.7"],
    )
    .await
    .unwrap()
}

async fn flag_of(t: &Tenant, id: &str) -> Option<String> {
    click_row(t, id).await.expect("click row").get("fraud_flag")
}

async fn click_count(t: &Tenant, link_id: &str) -> i64 {
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.query_one(
        &format!("SELECT count(*) FROM {schema}.clicks WHERE link_id = $1"),
        &[&link_id],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn a_click_redirects_with_cref_sets_the_cookie_and_is_durable() {
    let t = Tenant::new().await;
    let f = t
        .campaign_link(
            json!({"destinationUrl": "https://shop.example/landing?utm=op&q=a%20b#hero"}),
        )
        .await;
    let c = visit(&t.link_url(&f.key), "203.0.113.7").await;
    assert_eq!(c.status, 302, "{}", c.body);
    let id = c.cref();
    assert!(ulid::Ulid::from_string(&id).is_ok(), "click ids are ULIDs");
    assert_eq!(
        c.location(),
        format!("https://shop.example/landing?utm=op&q=a%20b&cref={id}#hero"),
        "cref appended; the query and fragment kept as they were"
    );
    assert_eq!(
        c.headers["set-cookie"].to_str().unwrap(),
        format!("_cref={id}; Path=/; Max-Age=7776000; SameSite=Lax")
    );
    assert_eq!(c.headers["cache-control"], "no-store");
    assert!(c.headers.contains_key("x-request-id"));

    // Committed before the 302 left: readable at once, no waiting.
    let row = click_row(&t, &id).await.expect("the click row exists");
    assert_eq!(row.get::<_, String>("link_id"), f.id);
    assert_eq!(row.get::<_, String>("partner_id"), f.partner);
    assert_eq!(row.get::<_, String>("campaign_id"), f.campaign);
    assert!(
        row.get::<_, bool>("hash_matches"),
        "ip_hash = first 32 hex chars of SHA-256 of the client IP (from X-Forwarded-For)"
    );
    assert_eq!(
        row.get::<_, Option<String>>("user_agent").as_deref(),
        Some("Mozilla/5.0 (e2e)")
    );
    assert_eq!(
        row.get::<_, Option<String>>("referer").as_deref(),
        Some("https://blog.example/post")
    );
    assert_eq!(row.get::<_, Option<String>>("fraud_flag"), None);

    // Every click is its own row, with its own id.
    let again = visit(&t.link_url(&f.key), "203.0.113.7").await;
    assert_ne!(again.cref(), id);
    assert_eq!(click_count(&t, &f.id).await, 2);
}

#[tokio::test]
async fn overridden_links_redirect_to_their_own_destination_while_allowed() {
    let t = Tenant::new().await;
    let f = t.campaign_link(json!({"destinationUrl": "https://shop.example/", "deepLinkAllowedDomains": ["shop.example"]})).await;
    let key = unique_slug("deep");
    t.api
        .post(
            &format!("/partners/{}/links", f.partner),
            json!({"linkKey": key, "campaignId": f.campaign,
                   "destinationUrl": "https://sale.shop.example/p/1?cref=stale&x=1#buy"}),
        )
        .await
        .expect(201);
    let c = visit(&t.link_url(&key), &ip()).await;
    assert_eq!(c.status, 302);
    assert_eq!(
        c.location(),
        format!("https://sale.shop.example/p/1?x=1&cref={}#buy", c.cref()),
        "a cref already in the destination is replaced, not duplicated"
    );
    // The campaign's destination moves: links without an override follow at once.
    let patch = |body: Value| {
        let api = t.api.clone();
        let path = format!("/campaigns/{}", f.campaign);
        async move { api.patch(&path, body).await.expect(200) }
    };
    patch(json!({"destinationUrl": "https://shop.example/new"})).await;
    let plain = visit(&t.link_url(&f.key), &ip()).await;
    assert!(plain
        .location()
        .starts_with("https://shop.example/new?cref="));
    // The merchant narrows the allowlist: the override is no longer followed.
    patch(json!({"deepLinkAllowedDomains": ["other.example"]})).await;
    let c = visit(&t.link_url(&key), &ip()).await;
    assert_eq!(
        c.location(),
        format!("https://shop.example/new?cref={}", c.cref())
    );
}

#[tokio::test]
async fn revoked_partners_clicks_still_redirect_but_are_flagged() {
    let t = Tenant::new().await;
    let f = shop_link(&t).await;
    t.revoke_partner(&f.partner).await;
    let c = visit(&t.link_url(&f.key), &ip()).await;
    assert_eq!(c.status, 302);
    assert!(c.headers.contains_key("set-cookie"));
    assert_eq!(flag_of(&t, &c.cref()).await.as_deref(), Some("revoked"));
    t.api
        .post(&format!("/partners/{}/reinstate", f.partner), json!({}))
        .await
        .expect(200);
    let c = visit(&t.link_url(&f.key), &ip()).await;
    assert_eq!(flag_of(&t, &c.cref()).await, None, "decided per click");
}

#[tokio::test]
async fn unknown_links_and_other_tenants_links_are_a_404_page() {
    let a = Tenant::new().await;
    let b = Tenant::new().await;
    let f = shop_link(&a).await;
    for (slug, key, what) in [
        (a.slug.as_str(), "no-such-link", "unknown key"),
        (a.slug.as_str(), "ab", "malformed key"),
        (a.slug.as_str(), "%3Cscript%3E", "markup"),
        (b.slug.as_str(), f.key.as_str(), "A's key under B's slug"),
    ] {
        let c = visit(&format!("{}/r/{slug}/{key}", gw()), &ip()).await;
        assert_eq!(c.status, 404, "{what}");
        assert!(
            c.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}: a page for humans"
        );
        assert!(c.body.contains("Link not found"), "{what}");
        assert!(!c.body.contains("<script"), "{what}: nothing echoed");
        assert!(!c.headers.contains_key("set-cookie"), "{what}");
        assert!(!c.headers.contains_key("location"), "{what}");
    }
    assert_eq!(click_count(&a, &f.id).await, 0, "nothing recorded");
    // Unknown tenant: the gateway's own JSON 404.
    let c = visit(&format!("{}/r/no-such-tenant-x/{}", gw(), f.key), &ip()).await;
    assert_eq!(c.status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&c.body).unwrap()["error"],
        "tenant_not_found"
    );
    // The link still works under its own tenant.
    assert_eq!(visit(&a.link_url(&f.key), &ip()).await.status, 302);
    // And B's key ingest cannot reach A's link either.
    b.api
        .post("/clicks", json!({"linkKey": f.key}))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn server_side_click_ingest_records_the_same_click() {
    let t = Tenant::new().await;
    let f = shop_link(&t).await;
    let r = t
        .api
        .post(
            "/clicks",
            json!({"linkKey": f.key, "ip": "203.0.113.7", "userAgent": "Merchant/1", "referer": "https://ref.example/"}),
        )
        .await
        .expect(201)
        .body;
    let id = r["clickId"].as_str().unwrap();
    assert_eq!(r["id"], id);
    assert_eq!(r["linkId"], f.id);
    assert_eq!(r["partnerId"], f.partner);
    assert_eq!(r["campaignId"], f.campaign);
    assert_eq!(r["programId"], f.campaign);
    assert_eq!(r["userAgent"], "Merchant/1");
    assert_eq!(r["referer"], "https://ref.example/");
    assert_eq!(r["fraudFlag"], Value::Null);
    assert!(r["ts"].as_str().unwrap().ends_with('Z'));
    let row = click_row(&t, id).await.expect("durable");
    assert!(row.get::<_, bool>("hash_matches"));
    assert_eq!(r["ipHash"], row.get::<_, String>("ip_hash"));
    assert_eq!(r["ipHash"].as_str().unwrap().len(), 32);

    // Without an IP: no hash.
    let bare = t
        .api
        .post("/clicks", json!({"linkKey": f.key}))
        .await
        .expect(201)
        .body;
    assert_eq!(bare["ipHash"], Value::Null);
    assert_eq!(bare["userAgent"], Value::Null);

    // clicks:write keys may, other keys may not.
    t.scoped_api(&["clicks:write"])
        .await
        .post("/clicks", json!({"linkKey": f.key}))
        .await
        .expect(201);
    t.partner_api(&f.partner)
        .await
        .post("/clicks", json!({"linkKey": f.key}))
        .await
        .expect_error(403, "forbidden");

    // Bad input.
    t.api
        .post("/clicks", json!({"linkKey": "no-such-link"}))
        .await
        .expect_error(404, "not_found");
    for body in [
        json!({"linkKey": f.key, "ip": "999.1.1.1"}),
        json!({"linkKey": f.key, "ip": 5}),
        json!({"linkKey": f.key, "bogus": 1}),
        json!({}),
    ] {
        t.api
            .post("/clicks", body)
            .await
            .expect_error(400, "invalid_body");
    }
    assert_eq!(click_count(&t, &f.id).await, 3);
}

#[tokio::test]
async fn one_ip_clicking_one_link_too_fast_is_flagged_velocity_and_the_cookie_domain_applies() {
    let stack = private_stack(&[
        ("OP_CLICK_VELOCITY_PER_MIN", "3"),
        ("OP_CLICK_COOKIE_DOMAIN", ".shop.example"),
    ])
    .await;
    let t = Tenant::on(&stack.base_url).await;
    let f = shop_link(&t).await;
    let g = shop_link(&t).await;
    let fast = ip();
    let mut flags = Vec::new();
    for _ in 0..5 {
        let c = visit(&t.link_url(&f.key), &fast).await;
        assert_eq!(c.status, 302, "flagged clicks still redirect");
        assert_eq!(
            c.headers["set-cookie"].to_str().unwrap(),
            format!(
                "_cref={}; Path=/; Max-Age=7776000; SameSite=Lax; Domain=.shop.example",
                c.cref()
            ),
            "OP_CLICK_COOKIE_DOMAIN"
        );
        flags.push(flag_of(&t, &c.cref()).await);
    }
    let v = Some("velocity".to_string());
    assert_eq!(flags, vec![None, None, None, v.clone(), v.clone()]);
    // Another address on the same link, and the same address on another link, are fine.
    let c = visit(&t.link_url(&f.key), &ip()).await;
    assert_eq!(flag_of(&t, &c.cref()).await, None);
    let c = visit(&t.link_url(&g.key), &fast).await;
    assert_eq!(flag_of(&t, &c.cref()).await, None);
    // Server-side ingest with the visitor's IP counts the same way.
    let r = t
        .api
        .post("/clicks", json!({"linkKey": f.key, "ip": fast}))
        .await
        .expect(201);
    assert_eq!(r.body["fraudFlag"], "velocity");
}

#[tokio::test]
async fn an_ip_over_the_click_cap_gets_429() {
    let stack = private_stack(&[("OP_CLICK_IP_CAP_PER_MIN", "5")]).await;
    let t = Tenant::on(&stack.base_url).await;
    let f = shop_link(&t).await;
    let g = shop_link(&t).await;
    let hot = ip();
    let mut codes = Vec::new();
    for i in 0..7 {
        let key = if i % 2 == 0 { &f.key } else { &g.key };
        codes.push(visit(&t.link_url(key), &hot).await.status);
    }
    assert_eq!(
        codes,
        [302, 302, 302, 302, 302, 429, 429],
        "the cap counts all links"
    );
    let c = visit(&t.link_url(&f.key), &hot).await;
    assert_eq!(c.status, 429);
    let body: Value = serde_json::from_str(&c.body).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["detail"].is_string());
    let retry: u64 = c.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(!c.headers.contains_key("set-cookie"));
    // Refused clicks were never recorded.
    assert_eq!(
        click_count(&t, &f.id).await + click_count(&t, &g.id).await,
        5
    );
    // Other addresses, and the API for the same address, are unaffected.
    assert_eq!(visit(&t.link_url(&f.key), &ip()).await.status, 302);
    t.api
        .get_with("/campaigns", &[("x-forwarded-for", hot.as_str())])
        .await
        .expect(200);
}

#[tokio::test]
async fn single_tenant_router_has_no_slug() {
    let admin = "single-click-admin-key-0123456789";
    let stack = single_tenant_stack(admin).await;
    let api = Api::new(format!("{}/api", stack.base_url), Some(admin));
    let c = api
        .post(
            "/campaigns",
            json!({"name": "Solo", "destinationUrl": "https://solo.example/?a=1",
                   "commissionRule": {"type": "percent", "value": 5}}),
        )
        .await
        .expect(201)
        .body;
    let p = api
        .post(
            "/partners",
            json!({"email": format!("{}@solo.example", unique_slug("s")), "name": "S", "sendInvite": false}),
        )
        .await
        .expect(201)
        .body;
    let key = unique_slug("solo");
    api.post(
        &format!("/partners/{}/links", p["id"].as_str().unwrap()),
        json!({"linkKey": key, "campaignId": c["id"]}),
    )
    .await
    .expect(201);
    let c = visit(&format!("{}/r/{key}", stack.base_url), &ip()).await;
    assert_eq!(c.status, 302);
    let location = c.location();
    assert!(
        location.starts_with("https://solo.example/?a=1&cref="),
        "{location}"
    );
    let c = visit(&format!("{}/r/no-such-link", stack.base_url), &ip()).await;
    assert_eq!(c.status, 404);
}

/// Concurrent clicks of one tenant are group-committed (one lookup, one multi-row insert,
/// one commit per batch); each still gets its own answer, flag and durable row.
#[tokio::test]
async fn concurrent_clicks_are_group_committed_and_each_is_recorded() {
    let t = Tenant::new().await;
    let open = shop_link(&t).await;
    let revoked = shop_link(&t).await;
    t.revoke_partner(&revoked.partner).await;
    let keys = [open.key.as_str(), revoked.key.as_str(), "no-such-link-here"];
    let clicks = futures::future::join_all((0..150).map(|i| {
        let (url, ip) = (t.link_url(keys[i % 3]), ip());
        async move { (i % 3, visit(&url, &ip).await) }
    }))
    .await;
    let mut crefs = std::collections::HashSet::new();
    for (kind, c) in &clicks {
        if *kind == 2 {
            assert_eq!(c.status, 404, "unknown link in a batch: {}", c.body);
            continue;
        }
        assert_eq!(c.status, 302, "{}", c.body);
        let cref = c.cref();
        assert!(crefs.insert(cref.clone()), "every click has its own id");
        let expected = if *kind == 1 { Some("revoked") } else { None };
        assert_eq!(flag_of(&t, &cref).await.as_deref(), expected);
    }
    assert_eq!(click_count(&t, &open.id).await, 50);
    assert_eq!(click_count(&t, &revoked.id).await, 50);
    // Rows written in one transaction share its start time: fewer distinct times than
    // clicks means clicks really shared commits.
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    let commits: i64 = db
        .query_one(
            &format!("SELECT count(DISTINCT ts) FROM {schema}.clicks"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(commits < 100, "{commits} commits for 100 clicks");
}

/// The campaign filter of a partner's links reads a campaign id as a body's `campaignId`
/// does: a ULID in either case (and `programId` is its alias).
#[tokio::test]
async fn the_links_campaign_filter_takes_an_id_in_either_case() {
    let t = Tenant::new().await;
    let link = shop_link(&t).await;
    let path = format!("/partners/{}/links", link.partner);
    for query in [
        format!("campaignId={}", link.campaign),
        format!("campaignId={}", link.campaign.to_lowercase()),
        format!("programId={}", link.campaign.to_lowercase()),
    ] {
        let page = t.api.get_ok(&format!("{path}?{query}")).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1, "{query}");
        assert_eq!(page["data"][0]["id"], link.id.as_str(), "{query}");
    }
}
