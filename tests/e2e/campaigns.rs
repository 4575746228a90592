//! Campaigns (and their `programs` aliases) and partner links through the gateway: create,
//! read, list, patch, validation, link keys unique per tenant, the deep-link allowlist, and
//! partner self-service.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};

fn campaign_body() -> Value {
    json!({
        "name": "Spring sale",
        "destinationUrl": "https://shop.example/landing?utm=op#top",
        "commissionRule": {"type": "percent", "value": 20},
    })
}

#[tokio::test]
async fn create_get_list_and_patch_campaigns_with_program_aliases() {
    let t = Tenant::new().await;
    let c = t
        .api
        .post(
            "/campaigns",
            json!({
                "name": "  Spring sale ",
                "destinationUrl": "https://shop.example/landing?utm=op#top",
                "commissionRule": [{"type": "fixed", "value": 12.5, "currency": "USD", "recurring": false}],
                "attributionModel": "linear",
                "attributionWindowDays": 30,
                "holdbackDays": 14,
                "deepLinkAllowedDomains": "Shop.Example, blog.example.org",
            }),
        )
        .await
        .expect(201)
        .body;
    let id = c["id"].as_str().unwrap().to_string();
    assert!(ulid::Ulid::from_string(&id).is_ok());
    assert_eq!(c["programId"], id);
    assert_eq!(c["name"], "Spring sale");
    assert_eq!(
        c["destinationUrl"],
        "https://shop.example/landing?utm=op#top"
    );
    assert_eq!(
        c["commissionRule"],
        json!({"type": "fixed", "value": "12.50", "currency": "USD", "recurring": false}),
        "the rule is stored canonically: one object, exact money string"
    );
    assert_eq!(c["attributionModel"], "linear");
    assert_eq!(c["attributionWindowDays"], 30);
    assert_eq!(c["holdbackDays"], 14);
    assert_eq!(
        c["deepLinkAllowedDomains"],
        json!(["shop.example", "blog.example.org"])
    );
    assert!(c["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(c["createdAt"], c["updatedAt"]);

    // Defaults.
    let d = t.campaign(campaign_body()).await.body;
    assert_eq!(d["attributionModel"], "last_click");
    assert_eq!(d["attributionWindowDays"], 60);
    assert_eq!(d["holdbackDays"], 0);
    assert_eq!(d["deepLinkAllowedDomains"], json!([]));
    assert_eq!(
        d["commissionRule"],
        json!({"type": "percent", "value": "20", "recurring": true})
    );

    // Read, through both names.
    assert_eq!(t.api.get_ok(&format!("/campaigns/{id}")).await, c);
    assert_eq!(t.api.get_ok(&format!("/programs/{id}")).await, c);
    t.api
        .get(&format!("/campaigns/{}", ulid::Ulid::new()))
        .await
        .expect_error(404, "not_found");
    t.api
        .get("/campaigns/not-a-ulid")
        .await
        .expect_error(404, "not_found");

    // List: newest first, three keys for one list, cursor pages.
    let third = t.campaign(campaign_body()).await.body;
    let all = t.api.get_ok("/programs").await;
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            third["id"].as_str().unwrap(),
            d["id"].as_str().unwrap(),
            id.as_str()
        ]
    );
    assert_eq!(all["campaigns"], all["data"]);
    assert_eq!(all["programs"], all["data"]);
    assert_eq!(all["nextCursor"], Value::Null);
    let p1 = t.api.get_ok("/campaigns?limit=2").await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let cursor = p1["nextCursor"].as_str().expect("a second page");
    let p2 = t
        .api
        .get_ok(&format!("/campaigns?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(p2["data"][0]["id"], id);
    assert_eq!(p2["nextCursor"], Value::Null);
    t.api
        .get("/campaigns?limit=0")
        .await
        .expect_error(400, "invalid_query");
    t.api
        .get("/campaigns?cursor=bogus!")
        .await
        .expect_error(400, "invalid_cursor");

    // Patch changes only what it is given.
    let p = t.patch_campaign(&id, json!({"name": "Summer sale", "holdbackDays": 0, "deepLinkAllowedDomains": ["new.example"]})).await
        .body;
    assert_eq!(p["name"], "Summer sale");
    assert_eq!(p["holdbackDays"], 0);
    assert_eq!(p["deepLinkAllowedDomains"], json!(["new.example"]));
    for unchanged in [
        "destinationUrl",
        "commissionRule",
        "attributionModel",
        "attributionWindowDays",
        "createdAt",
    ] {
        assert_eq!(p[unchanged], c[unchanged], "{unchanged}");
    }
    assert_ne!(p["updatedAt"], c["updatedAt"]);
    let p = t
        .api
        .patch(
            &format!("/programs/{id}"),
            json!({"commissionRule": {"type": "percent", "value": "7.5"}, "attributionModel": "position"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        p["commissionRule"],
        json!({"type": "percent", "value": "7.5", "recurring": true})
    );
    assert_eq!(p["attributionModel"], "position");
    assert_eq!(p["name"], "Summer sale");
    assert_eq!(t.api.get(&format!("/campaigns/{id}")).await.body, p);
    // An empty patch changes nothing.
    assert_eq!(
        t.api
            .patch(&format!("/campaigns/{id}"), json!({}))
            .await
            .expect(200)
            .body,
        p
    );
    t.api
        .patch(
            &format!("/campaigns/{}", ulid::Ulid::new()),
            json!({"name": "x"}),
        )
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn invalid_campaigns_are_4xx_and_write_nothing() {
    let t = Tenant::new().await;
    let with = |k: &str, v: Value| {
        let mut b = campaign_body();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = campaign_body();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (without("name"), "invalid_body", "missing name"),
        (with("name", json!("  ")), "invalid_body", "blank name"),
        (with("name", json!(null)), "invalid_body", "null name"),
        (without("destinationUrl"), "invalid_body", "missing url"),
        (
            with("destinationUrl", json!("/landing")),
            "invalid_body",
            "relative url",
        ),
        (
            with("destinationUrl", json!("ftp://shop.example/")),
            "invalid_body",
            "ftp url",
        ),
        (
            with("destinationUrl", json!("javascript:alert(1)")),
            "invalid_body",
            "js url",
        ),
        (
            with("destinationUrl", json!(5)),
            "invalid_body",
            "url not a string",
        ),
        (without("commissionRule"), "invalid_body", "missing rule"),
        (
            with("commissionRule", json!({"type": "percent", "value": "120"})),
            "invalid_amount",
            "percent > 100",
        ),
        (
            with(
                "commissionRule",
                json!({"type": "fixed", "value": "5.001", "currency": "USD"}),
            ),
            "invalid_amount",
            "sub-cent",
        ),
        (
            with(
                "commissionRule",
                json!({"type": "fixed", "value": "1000.5", "currency": "JPY"}),
            ),
            "invalid_amount",
            "sub-yen",
        ),
        (
            with(
                "commissionRule",
                json!({"type": "fixed", "value": "5", "currency": "usd"}),
            ),
            "invalid_currency",
            "lower-case currency",
        ),
        (
            with(
                "commissionRule",
                json!({"type": "fixed", "value": "5", "currency": "ZZZ"}),
            ),
            "invalid_currency",
            "unknown currency",
        ),
        (
            with("commissionRule", json!({"type": "bogus", "value": "5"})),
            "invalid_body",
            "rule type",
        ),
        (
            with("commissionRule", json!("20%")),
            "invalid_body",
            "rule not an object",
        ),
        (
            with("attributionModel", json!("data_driven")),
            "invalid_body",
            "model",
        ),
        (
            with("attributionWindowDays", json!(0)),
            "invalid_body",
            "window 0",
        ),
        (
            with("attributionWindowDays", json!(366)),
            "invalid_body",
            "window 366",
        ),
        (
            with("attributionWindowDays", json!(1.5)),
            "invalid_body",
            "window fraction",
        ),
        (
            with("holdbackDays", json!(-1)),
            "invalid_body",
            "negative holdback",
        ),
        (
            with("holdbackDays", json!(400)),
            "invalid_body",
            "holdback 400",
        ),
        (
            with("deepLinkAllowedDomains", json!("not a host")),
            "invalid_body",
            "domain with space",
        ),
        (
            with("deepLinkAllowedDomains", json!(["https://shop.example/"])),
            "invalid_body",
            "url as domain",
        ),
        (
            with("deepLinkAllowedDomains", json!({"a": 1})),
            "invalid_body",
            "domains object",
        ),
        (with("bogus", json!(1)), "invalid_body", "unknown field"),
    ];
    for (body, code, what) in cases {
        let r = t.api.post("/campaigns", body).await;
        assert_eq!((r.code(), r.error()), (400, code), "{what}: {}", r.body);
        assert!(r.body["detail"].is_string(), "{what}");
    }
    for (raw, what) in [
        (&b"{not json"[..], "malformed"),
        (b"[]", "array"),
        (b"", "empty"),
    ] {
        let r = t
            .api
            .raw(Method::POST, "/campaigns", Some(raw.to_vec()), &[])
            .await;
        assert_eq!((r.code(), r.error()), (400, "invalid_body"), "{what}");
    }
    let listed = t.api.get("/campaigns").await.expect(200);
    assert_eq!(listed.body["data"], json!([]), "nothing was written");

    // Money in a rule is exact, never floating point: trailing zeros normalise.
    let c = t
        .campaign(with(
            "commissionRule",
            json!({"type": "fixed", "value": "1000.00", "currency": "JPY"}),
        ))
        .await
        .body;
    assert_eq!(c["commissionRule"]["value"], "1000");

    // A bad patch changes nothing.
    let id = c["id"].as_str().unwrap();
    for (body, code) in [
        (json!({"name": null}), "invalid_body"),
        (json!({"holdbackDays": 366}), "invalid_body"),
        (json!({"destinationUrl": "nope"}), "invalid_body"),
        (
            json!({"commissionRule": {"type": "percent", "value": "-3"}}),
            "invalid_amount",
        ),
        (json!({"name": "ok", "bogus": true}), "invalid_body"),
    ] {
        t.api
            .patch(&format!("/campaigns/{id}"), body)
            .await
            .expect_error(400, code);
    }
    assert_eq!(t.api.get(&format!("/campaigns/{id}")).await.body, c);
    // Null resets an optional field to its default.
    let p = t
        .patch_campaign(
            id,
            json!({"attributionWindowDays": null, "deepLinkAllowedDomains": null}),
        )
        .await
        .body;
    assert_eq!(p["attributionWindowDays"], 60);
    assert_eq!(p["deepLinkAllowedDomains"], json!([]));
}

#[tokio::test]
async fn campaigns_are_admin_only() {
    let t = Tenant::new().await;
    let p = t.partner("camp-pk@example.com").await;
    let pk = t
        .api
        .post(
            &format!("/partners/{}/api-keys", p["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .expect(201)
        .body;
    let partner = t.api.with_key(pk["key"].as_str());
    partner
        .get("/campaigns")
        .await
        .expect_error(403, "forbidden");
    partner
        .post("/programs", campaign_body())
        .await
        .expect_error(403, "forbidden");
    t.api
        .with_key(None)
        .get("/campaigns")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn links_are_created_listed_and_unique_per_tenant() {
    let t = Tenant::new().await;
    let c = t.campaign(campaign_body()).await.body;
    let cid = c["id"].as_str().unwrap();
    let p = t.partner("linker@example.com").await;
    let pid = p["id"].as_str().unwrap();
    let l = t
        .api
        .post(
            &format!("/partners/{pid}/links"),
            json!({"linkKey": "spring_Sale-1", "campaignId": cid}),
        )
        .await
        .expect(201)
        .body;
    assert!(ulid::Ulid::from_string(l["id"].as_str().unwrap()).is_ok());
    assert_eq!(l["linkKey"], "spring_Sale-1");
    assert_eq!(l["partnerId"], pid);
    assert_eq!(l["campaignId"], cid);
    assert_eq!(l["programId"], cid);
    assert_eq!(l["destinationUrl"], Value::Null);
    assert!(l["createdAt"].as_str().unwrap().ends_with('Z'));
    // programId is accepted wherever campaignId is.
    let l2 = t
        .api
        .post(
            &format!("/partners/{pid}/links"),
            json!({"linkKey": "via-program", "programId": cid}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(l2["campaignId"], cid);

    // Taken, also by another partner, also under concurrency.
    let other = t.partner("linker2@example.com").await;
    let oid = other["id"].as_str().unwrap();
    t.api
        .post(
            &format!("/partners/{oid}/links"),
            json!({"linkKey": "spring_Sale-1", "campaignId": cid}),
        )
        .await
        .expect_error(409, "linkKey_taken");
    let attempts = (0..8).map(|i| {
        let api = t.api.clone();
        let path = format!("/partners/{}/links", if i % 2 == 0 { pid } else { oid });
        let body = json!({"linkKey": "race-key", "campaignId": cid});
        async move { api.post(&path, body).await }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.code() == 201).count();
    let taken = results
        .iter()
        .filter(|r| r.code() == 409 && r.error() == "linkKey_taken")
        .count();
    assert_eq!((created, taken), (1, 7));
    // Keys are per tenant: another tenant may use the same one.
    let t2 = Tenant::new().await;
    let c2 = t2.campaign(campaign_body()).await.body;
    let p2 = t2.partner("linker@example.com").await;
    t2.api
        .post(
            &format!("/partners/{}/links", p2["id"].as_str().unwrap()),
            json!({"linkKey": "spring_Sale-1", "campaignId": c2["id"]}),
        )
        .await
        .expect(201);

    // List: newest first, keys `data` and `links`, cursor pages, only this partner's.
    let list = t.api.get_ok(&format!("/partners/{pid}/links")).await;
    let keys: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["linkKey"].as_str().unwrap())
        .collect();
    let raced_here = results[0].code() == 201
        || results[2].code() == 201
        || results[4].code() == 201
        || results[6].code() == 201;
    let mut want = vec![];
    if raced_here {
        want.push("race-key");
    }
    want.extend(["via-program", "spring_Sale-1"]);
    assert_eq!(keys, want);
    assert_eq!(list["links"], list["data"]);
    let page = t
        .api
        .get_ok(&format!("/partners/{pid}/links?limit=1"))
        .await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = t
        .api
        .get_ok(&format!("/partners/{pid}/links?limit=5&cursor={cursor}"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), want.len() - 1);
    let filtered = t
        .api
        .get(&format!(
            "/partners/{pid}/links?campaignId={}",
            ulid::Ulid::new()
        ))
        .await
        .expect(200);
    assert_eq!(filtered.body["data"], json!([]));
    t.api
        .get(&format!("/partners/{}/links", ulid::Ulid::new()))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn invalid_links_are_refused() {
    let t = Tenant::new().await;
    let c = t.campaign(campaign_body()).await.body;
    let cid = c["id"].as_str().unwrap();
    let p = t.partner("badlinks@example.com").await;
    let pid = p["id"].as_str().unwrap();
    let path = format!("/partners/{pid}/links");
    for (body, status, code, what) in [
        (
            json!({"linkKey": "ab", "campaignId": cid}),
            400,
            "invalid_body",
            "short key",
        ),
        (
            json!({"linkKey": "x".repeat(65), "campaignId": cid}),
            400,
            "invalid_body",
            "long key",
        ),
        (
            json!({"linkKey": "has space", "campaignId": cid}),
            400,
            "invalid_body",
            "space",
        ),
        (
            json!({"linkKey": "a/b/c", "campaignId": cid}),
            400,
            "invalid_body",
            "slash",
        ),
        (
            json!({"linkKey": "abc"}),
            400,
            "invalid_body",
            "no campaign",
        ),
        (json!({"campaignId": cid}), 400, "invalid_body", "no key"),
        (
            json!({"linkKey": "abc", "campaignId": cid, "extra": 1}),
            400,
            "invalid_body",
            "unknown field",
        ),
        (
            json!({"linkKey": "abc", "campaignId": cid, "programId": ulid::Ulid::new().to_string()}),
            400,
            "invalid_body",
            "ids differ",
        ),
        (
            json!({"linkKey": "abc", "campaignId": ulid::Ulid::new().to_string()}),
            404,
            "not_found",
            "unknown campaign",
        ),
        (
            json!({"linkKey": "abc", "campaignId": "nope"}),
            404,
            "not_found",
            "malformed campaign id",
        ),
        (
            json!({"linkKey": "abc", "campaignId": cid, "destinationUrl": "not a url"}),
            400,
            "invalid_body",
            "bad override",
        ),
    ] {
        let r = t.api.post(&path, body).await;
        assert_eq!((r.code(), r.error()), (status, code), "{what}: {}", r.body);
    }
    t.api
        .post(
            &format!("/partners/{}/links", ulid::Ulid::new()),
            json!({"linkKey": "abc", "campaignId": cid}),
        )
        .await
        .expect_error(404, "not_found");
    // A revoked partner gets no new links.
    t.revoke_partner(pid).await;
    t.api
        .post(&path, json!({"linkKey": "abc", "campaignId": cid}))
        .await
        .expect_error(409, "partner_revoked");
    let list = t.api.get(&path).await.expect(200);
    assert_eq!(list.body["data"], json!([]), "nothing was written");
}

#[tokio::test]
async fn destination_overrides_must_stay_on_the_allowlist() {
    let t = Tenant::new().await;
    let open = t.campaign(json!({"name": "Deep", "destinationUrl": "https://shop.example/", "commissionRule": {"type": "percent", "value": 10},
               "deepLinkAllowedDomains": ["shop.example", "Blog.Example.org"]})).await.body;
    let closed = t.campaign(campaign_body()).await.body;
    let p = t.partner("deep@example.com").await;
    let path = format!("/partners/{}/links", p["id"].as_str().unwrap());
    let mut n = 0;
    let mut try_link = |campaign: &Value, url: &str| {
        n += 1;
        let body = json!({"linkKey": format!("deep-{n}"), "campaignId": campaign["id"], "destinationUrl": url});
        let api = t.api.clone();
        let path = path.clone();
        async move { api.post(&path, body).await }
    };
    for ok in [
        "https://shop.example/p/42?color=red#reviews",
        "http://sale.shop.example/",
        "https://blog.example.org/post",
        "https://a.b.blog.example.org/",
    ] {
        let r = try_link(&open, ok).await.expect(201);
        assert_eq!(r.body["destinationUrl"], ok);
    }
    for bad in [
        "https://evil.example/",
        "https://shop.example.evil.net/",
        "https://notshop.example/",
        "https://example.org/",
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://shop.example/",
    ] {
        try_link(&open, bad)
            .await
            .expect_error(400, "destination_override_not_allowed");
    }
    // No allowlist: no overrides at all.
    try_link(&closed, "https://shop.example/other")
        .await
        .expect_error(400, "destination_override_not_allowed");
    // A blank override is no override.
    let r = try_link(&closed, "").await.expect(201);
    assert_eq!(r.body["destinationUrl"], Value::Null);
}

#[tokio::test]
async fn partners_manage_their_own_links_only() {
    let t = Tenant::new().await;
    let c = t.campaign(campaign_body()).await.body;
    let me = t.partner("self@example.com").await;
    let other = t.partner("notme@example.com").await;
    let (mid, oid) = (me["id"].as_str().unwrap(), other["id"].as_str().unwrap());
    let pk = t.partner_api(mid).await;
    let l = pk
        .post(
            &format!("/partners/{mid}/links"),
            json!({"linkKey": "mine-1", "programId": c["id"]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(l["partnerId"], mid);
    let mine = pk.get_ok(&format!("/partners/{mid}/links")).await;
    assert_eq!(mine["data"][0]["linkKey"], "mine-1");
    pk.post(
        &format!("/partners/{oid}/links"),
        json!({"linkKey": "theirs-1", "campaignId": c["id"]}),
    )
    .await
    .expect_error(403, "forbidden");
    pk.get(&format!("/partners/{oid}/links"))
        .await
        .expect_error(403, "forbidden");
    // A links:write key may create links for any partner, but not read them.
    let sk = t.scoped_api(&["links:write"]).await;
    sk.post(
        &format!("/partners/{oid}/links"),
        json!({"linkKey": "theirs-1", "campaignId": c["id"]}),
    )
    .await
    .expect(201);
    sk.get(&format!("/partners/{oid}/links"))
        .await
        .expect_error(403, "forbidden");
    let r = t
        .scoped_api(&["partners:read"])
        .await
        .post(
            &format!("/partners/{oid}/links"),
            json!({"linkKey": "theirs-2", "campaignId": c["id"]}),
        )
        .await
        .expect_error(403, "forbidden_scope");
    assert_eq!(r.body["required"], "links:write");
}
