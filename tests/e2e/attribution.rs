//! The money path end to end through the gateway: click → identify → event → commission,
//! the backlog, multi-touch models, idempotent and concurrent events, refunds, windows,
//! revoked partners, rederive, CORS and input validation.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

/// A link on a campaign paying 5.00 USD on a user's first payment only.
async fn first_payment_link(t: &Tenant) -> Link {
    t.campaign_link(json!({
        "commissionRule": {"type": "fixed", "value": "5.00", "currency": "USD", "recurring": false},
    }))
    .await
}

async fn commissions_of(t: &Tenant, event_server_id: &str) -> Vec<(String, String, String)> {
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.query(
        &format!("SELECT partner_id, amount::text, status FROM \"{schema}\".commissions WHERE event_id = $1 ORDER BY amount, id"),
        &[&event_server_id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test]
async fn click_identify_event_commission_and_idempotent_replay() {
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({"commissionRule": percent("20")}))
        .await;
    let cref = t.click(&link).await;
    let id = t.identify(&cref, "user-1").await.expect(200);
    assert_eq!(id.body["firstStitch"], true);
    assert_eq!(id.body["backfilledAttributions"], 0);

    let body = json!({"userId": "user-1", "type": "invoice.paid", "value": "100.00", "currency": "USD", "eventId": "inv_1"});
    let r = t.event(body.clone()).await.expect(201);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["eventId"], "inv_1");
    assert!(r.body["id"].as_str().unwrap().starts_with("evt_"));
    let a = &r.body["attribution"];
    assert_eq!(
        (a["status"].as_str(), a["model"].as_str()),
        (Some("attributed"), Some("last_click"))
    );
    assert_eq!(a["touches"].as_array().unwrap().len(), 1);
    assert_eq!(a["touches"][0]["clickId"], cref.as_str());
    assert_eq!(a["touches"][0]["partnerId"], link.partner.as_str());
    assert_eq!(a["touches"][0]["weight"], json!(1));
    assert!(a["touches"][0]["commissionId"].is_string());
    let server_id = r.body["id"].as_str().unwrap();
    assert_eq!(
        commissions_of(&t, server_id).await,
        vec![(link.partner.clone(), "20.00".into(), "accrued".into())]
    );

    // The same eventId again: the first result, nothing new.
    let again = t.event(body).await.expect(200);
    assert_eq!(again.body, r.body);
    assert_eq!(commissions_of(&t, server_id).await.len(), 1);
    // The alias.
    let alias = t
        .event(json!({"userId": "user-1", "type": "x", "externalEventId": "inv_1"}))
        .await
        .expect(200);
    assert_eq!(alias.body["id"], r.body["id"]);
}

#[tokio::test]
async fn events_before_identify_are_attributed_by_the_backlog() {
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({
            "commissionRule": {"type": "fixed", "value": "50", "currency": "USD"},
        }))
        .await;
    let cref = t.click(&link).await;
    let r = t
        .event(json!({"userId": "u-late", "type": "signup", "eventId": "su-1"}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "no_identity");
    let id = t.identify(&cref, "u-late").await.expect(200);
    assert_eq!(id.body["backfilledAttributions"], 1);
    assert_eq!(id.body["firstStitch"], true);
    assert_eq!(
        commissions_of(&t, r.body["id"].as_str().unwrap()).await,
        vec![(link.partner, "50.00".into(), "accrued".into())]
    );
    // The same pair again: same identity, nothing new.
    let again = t.identify(&cref, "u-late").await.expect(200);
    assert_eq!(again.body["identityId"], id.body["identityId"]);
    assert_eq!(
        (
            again.body["firstStitch"].as_bool(),
            again.body["backfilledAttributions"].as_u64()
        ),
        (Some(false), Some(0))
    );
    t.identify(&ulid::Ulid::new().to_string(), "u-late")
        .await
        .expect_error(404, "click_not_found");
    t.identify("nonsense", "u-late")
        .await
        .expect_error(404, "click_not_found");
}

#[tokio::test]
async fn concurrent_duplicate_events_make_one_commission() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    t.identified_click(&link, "u-dup").await;
    let body = json!({"userId": "u-dup", "type": "invoice.paid", "value": 42.5, "eventId": "same-invoice"});
    let calls = (0..10).map(|_| {
        let api = t.api.clone();
        let body = body.clone();
        async move { api.post("/attribution/events", body).await }
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.code() == 201).count(), 1);
    assert!(results.iter().all(|r| r.code() == 201 || r.code() == 200));
    assert!(
        results.windows(2).all(|w| w[0].body == w[1].body),
        "every caller sees the first result"
    );
    let id = results[0].body["id"].as_str().unwrap();
    assert_eq!(commissions_of(&t, id).await.len(), 1);
}

#[tokio::test]
async fn multi_touch_models_split_exactly() {
    let t = Tenant::new().await;
    let campaign = t.campaign(json!({"attributionModel": "linear"})).await.id;
    for _ in 0..3 {
        let link = t.partner_link(&campaign).await;
        t.identified_click(&link, "u-multi").await;
    }
    let buy = json!({"userId": "u-multi", "type": "invoice.paid", "value": "100.00"});
    let r = t.event(buy.clone()).await.expect(201);
    let touches = r.body["attribution"]["touches"].as_array().unwrap();
    assert_eq!(touches.len(), 3);
    let amounts: Vec<&str> = touches
        .iter()
        .map(|t| t["amount"].as_str().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec!["3.33", "3.33", "3.34"],
        "the remainder goes to the last touch"
    );
    // Switch to position: 3 touches = 0.4 / 0.2 / 0.4.
    t.patch_campaign(&campaign, json!({"attributionModel": "position"}))
        .await;
    let r = t.event(buy).await.expect(201);
    let weights: Vec<String> = r.body["attribution"]["touches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["weight"].to_string())
        .collect();
    assert_eq!(weights, vec!["0.4", "0.2", "0.4"]);
    assert_eq!(r.body["attribution"]["model"], "position");
}

#[tokio::test]
async fn refunds_reverse_or_claw_back_and_never_exceed_the_event() {
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({"commissionRule": percent("20")}))
        .await;
    t.identified_click(&link, "u-ref").await;
    let buy = |id: &'static str| json!({"userId": "u-ref", "type": "invoice.paid", "value": "100.00", "eventId": id});
    let e1 = t.event(buy("inv-a")).await.expect(201);
    let refund = |of: &str, value: Option<&str>, id: &str| {
        let mut b = json!({"userId": "u-ref", "type": "refund", "eventId": id, "metadata": {"refundOf": of}});
        if let Some(v) = value {
            b["value"] = json!(v);
        }
        b
    };
    // Partial: half of it.
    let r = t
        .event(refund("inv-a", Some("50.00"), "ref-a1"))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "refund");
    assert_eq!(r.body["refund"]["adjustments"][0]["amount"], "-10.00");
    t.event(refund("inv-a", Some("60.00"), "ref-a2"))
        .await
        .expect_error(409, "over_refund");
    // The rest: nets to exactly zero.
    t.event(refund("inv-a", None, "ref-a3")).await.expect(201);
    let rows = commissions_of(&t, e1.body["id"].as_str().unwrap()).await;
    let net: f64 = rows.iter().map(|(_, a, _)| a.parse::<f64>().unwrap()).sum();
    assert_eq!(net, 0.0, "{rows:?}");
    t.event(refund("inv-a", None, "ref-a4"))
        .await
        .expect_error(409, "over_refund");

    // Full refund of an unpaid event: its commission is reversed.
    let e2 = t.event(buy("inv-b")).await.expect(201);
    let r = t.event(refund("inv-b", None, "ref-b")).await.expect(201);
    assert_eq!(r.body["refund"]["reversed"][0]["status"], "reversed");
    assert_eq!(
        commissions_of(&t, e2.body["id"].as_str().unwrap()).await[0].2,
        "reversed"
    );
    // Retrying the refund replays it.
    let again = t.event(refund("inv-b", None, "ref-b")).await.expect(200);
    assert_eq!(again.body, r.body);

    // A paid commission is never mutated: the refund claws it back.
    let e3 = t.event(buy("inv-c")).await.expect(201);
    let cid = commission_of(&e3.body);
    t.approve(&cid).await;
    let run = t.api.post("/payouts/run", json!({})).await.expect(200);
    assert!(run.body["payouts"][0]["commissionIds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == cid.as_str()));
    let r = t.event(refund("inv-c", None, "ref-c")).await.expect(201);
    assert_eq!(r.body["refund"]["adjustments"][0]["amount"], "-20.00");
    assert_eq!(r.body["refund"]["adjustments"][0]["refundOf"], "inv-c");
    let rows = commissions_of(&t, e3.body["id"].as_str().unwrap()).await;
    assert_eq!(
        rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        vec!["approved", "paid"]
    );

    t.event(refund("nope", None, "ref-x"))
        .await
        .expect_error(404, "not_found");
    t.event(json!({"userId": "u-ref", "type": "refund"}))
        .await
        .expect_error(400, "invalid_body");
}

#[tokio::test]
async fn windows_flags_and_revoked_partners_are_respected() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({"attributionWindowDays": 1})).await;
    t.identified_click(&link, "u-win").await;
    let later = (now_ms() + 2 * 86_400_000) as u64;
    let r = t
        .event(json!({"userId": "u-win", "type": "x", "value": 10, "ts": later}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "outside_window");
    let r = t
        .event(json!({"userId": "nobody-knows", "type": "x", "value": 10}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "no_identity");
    // Revoked partner: new clicks are flagged, old clicks stop earning.
    t.revoke_partner(&link.partner).await;
    let r = t
        .event(json!({"userId": "u-win", "type": "x", "value": 10}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "no_click");
}

#[tokio::test]
async fn rederive_after_a_model_change_without_double_paying() {
    let t = Tenant::new().await;
    let first = t.campaign_link(json!({})).await;
    let last = t.partner_link(&first.campaign).await;
    for link in [&first, &last] {
        t.identified_click(link, "u-re").await;
    }
    let campaign = &first.campaign;
    let e1 = t
        .event(json!({"userId": "u-re", "type": "x", "value": "50.00"}))
        .await
        .expect(201);
    let e2 = t
        .event(json!({"userId": "u-re", "type": "x", "value": "70.00"}))
        .await
        .expect(201);
    assert_eq!(
        e1.body["attribution"]["touches"][0]["partnerId"],
        last.partner.as_str()
    );
    // e2's commission is approved: rederive must leave it alone.
    let c2 = commission_of(&e2.body);
    t.approve(&c2).await;

    t.patch_campaign(campaign, json!({"attributionModel": "first_click"}))
        .await;
    let r = t.rederive(campaign).await;
    assert_eq!(
        r.body,
        json!({"ok": true, "events": 2, "reversed": 1, "created": 1, "skipped": 1})
    );
    let rows = commissions_of(&t, e1.body["id"].as_str().unwrap()).await;
    let live: Vec<_> = rows.iter().filter(|r| r.2 == "accrued").collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0, first.partner);
    // Twice: nothing changes.
    let r = t
        .api
        .post("/attribution/rederive", json!({"programId": campaign}))
        .await
        .expect(200);
    assert_eq!(
        (r.body["reversed"].as_u64(), r.body["created"].as_u64()),
        (Some(0), Some(0))
    );
    t.api
        .post(
            "/attribution/rederive",
            json!({"campaignId": ulid::Ulid::new().to_string()}),
        )
        .await
        .expect_error(404, "not_found");
    // An id that is no ULID names no campaign (and never reaches the database).
    for bad in ["nope", "", "Z1ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        t.api
            .post("/attribution/rederive", json!({"campaignId": bad}))
            .await
            .expect_error(404, "not_found");
    }
}

#[tokio::test]
async fn identify_refuses_user_ids_no_event_could_name() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    let cref = t.click(&link).await;
    // Events refuse control characters in `userId`, so identify does too (NUL was a 500).
    for bad in ["a\u{0}b", "a\u{1b}b", " ", ""] {
        let r = t.identify(&cref, bad).await;
        assert_eq!((r.code(), r.error()), (400, "invalid_body"), "{bad:?}");
    }
    let r = t.identify(&cref, " u-trimmed\n").await.expect(200);
    assert_eq!(r.body["firstStitch"], true);
}

#[tokio::test]
async fn event_input_is_validated() {
    let t = Tenant::new().await;
    let bad = [
        (
            json!({"userId": "u", "type": "x", "value": "1.005"}),
            "invalid_amount",
        ),
        (
            json!({"userId": "u", "type": "x", "value": "1000.5", "currency": "JPY"}),
            "invalid_amount",
        ),
        (
            json!({"userId": "u", "type": "x", "value": "-5"}),
            "invalid_amount",
        ),
        (
            json!({"userId": "u", "type": "x", "value": true}),
            "invalid_amount",
        ),
        (
            json!({"userId": "u", "type": "x", "currency": "usd"}),
            "invalid_currency",
        ),
        (
            json!({"userId": "u", "type": "x", "currency": "ZZZ"}),
            "invalid_currency",
        ),
        (json!({"type": "x"}), "invalid_body"),
        (json!({"userId": "", "type": "x"}), "invalid_body"),
        (
            json!({"userId": "u", "type": "x", "bogus": 1}),
            "invalid_body",
        ),
        (
            json!({"userId": "u", "type": "x", "ts": "yesterday"}),
            "invalid_body",
        ),
        (
            json!({"userId": "u", "type": "x", "metadata": "m"}),
            "invalid_body",
        ),
        // What the database cannot store is refused up front (these were 500s, and failed
        // the other events of their batch with them).
        (
            json!({"userId": "u", "type": "x", "metadata": {"note": "a\u{0}b"}}),
            "invalid_body",
        ),
        (
            json!({"userId": "u", "type": "x", "metadata": {"a\u{0}": [1]}}),
            "invalid_body",
        ),
        (
            json!({"userId": "u", "type": "x", "ts": -8_000_000_000_000_000i64}),
            "invalid_body",
        ),
        (
            json!({"userId": "u", "type": "x", "ts": 253_402_300_800_000i64}),
            "invalid_body",
        ),
    ];
    for (body, code) in bad {
        let r = t.event(body.clone()).await;
        assert_eq!((r.code(), r.error()), (400, code), "{body}: {}", r.body);
    }
    // The years an RFC 3339 time can name are accepted in epoch milliseconds too.
    for ms in [-62_167_219_200_000i64, 253_402_300_799_999] {
        t.event(json!({"userId": "u", "type": "x", "ts": ms}))
            .await
            .expect(201);
    }
    let ok = t
        .event(json!({"userId": "u", "type": "x", "value": "1000.00", "currency": "JPY"}))
        .await
        .expect(201);
    assert_eq!(ok.body["attribution"]["status"], "no_identity");
}

#[tokio::test]
async fn identify_answers_cors_for_the_tenants_own_origins() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    let cref = t.click(&link).await;
    let anon = t.api.with_key(None);
    let pre = anon
        .raw(
            Method::OPTIONS,
            "/attribution/identify",
            None,
            &[
                ("origin", "https://shop.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert_eq!(pre.code(), 204);
    assert_eq!(
        pre.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let r = anon
        .raw(
            Method::POST,
            "/attribution/identify",
            Some(
                json!({"cref": cref, "userId": "u-cors"})
                    .to_string()
                    .into_bytes(),
            ),
            &[("origin", "https://shop.example")],
        )
        .await
        .expect(200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    // Errors are readable by the browser too.
    let missing = anon
        .raw(
            Method::POST,
            "/attribution/identify",
            Some(
                json!({"cref": ulid::Ulid::new().to_string(), "userId": "u"})
                    .to_string()
                    .into_bytes(),
            ),
            &[("origin", "https://shop.example")],
        )
        .await
        .expect_error(404, "click_not_found");
    assert_eq!(
        missing.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let evil = anon
        .raw(
            Method::OPTIONS,
            "/attribution/identify",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(evil.code(), 204);
    assert!(!evil.headers.contains_key("access-control-allow-origin"));
}

/// Concurrent events of a tenant are group-committed. A batch may mix new events, copies of
/// one new event and copies of an event stored earlier (whose derived rows would collide):
/// every caller still gets the first copy's answer and every eventId one set of commissions.
#[tokio::test]
async fn batched_events_with_duplicates_and_stored_copies_stay_exact() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    for u in 0..10 {
        t.identified_click(&link, &format!("gc-u{u}")).await;
    }
    let stored = t
        .event(json!({"userId": "gc-u0", "type": "invoice.paid", "value": "10.00", "eventId": "gc-stored"}))
        .await
        .expect(201)
        .body;
    let mut bodies = Vec::new();
    for i in 0..40 {
        bodies.push(
            json!({"userId": format!("gc-u{}", i % 10), "type": "invoice.paid",
                           "value": "20.00", "eventId": format!("gc-new-{i}")}),
        );
    }
    for _ in 0..6 {
        bodies.push(json!({"userId": "gc-u0", "type": "invoice.paid", "value": "10.00", "eventId": "gc-stored"}));
        bodies.push(json!({"userId": "gc-u1", "type": "invoice.paid", "value": "30.00", "eventId": "gc-twin"}));
        bodies.push(json!({"userId": "gc-nobody", "type": "signup", "eventId": "gc-anon"}));
    }
    let results = futures::future::join_all(bodies.iter().map(|b| {
        let (api, b) = (t.api.clone(), b.clone());
        async move {
            (
                b["eventId"].as_str().unwrap().to_string(),
                api.post("/attribution/events", b).await,
            )
        }
    }))
    .await;
    let by_id = |id: &str| -> Vec<&Resp> {
        results
            .iter()
            .filter(|(e, _)| e == id)
            .map(|(_, r)| r)
            .collect()
    };
    for r in by_id("gc-stored") {
        assert_eq!(
            r.code(),
            200,
            "a copy of a stored event is a replay: {}",
            r.body
        );
        assert_eq!(r.body, stored, "with the stored answer");
    }
    for id in ["gc-twin", "gc-anon"] {
        let rs = by_id(id);
        assert_eq!(
            rs.iter().filter(|r| r.code() == 201).count(),
            1,
            "{id}: one copy is first"
        );
        assert!(rs.iter().all(|r| r.code() == 201 || r.code() == 200));
        assert!(
            rs.windows(2).all(|w| w[0].body == w[1].body),
            "{id}: one answer"
        );
    }
    for i in 0..40 {
        let rs = by_id(&format!("gc-new-{i}"));
        assert_eq!(rs[0].code(), 201, "{}", rs[0].body);
        assert_eq!(rs[0].body["attribution"]["status"], "attributed");
        let id = rs[0].body["id"].as_str().unwrap();
        assert_eq!(
            commissions_of(&t, id).await,
            vec![(
                rs[0].body["attribution"]["touches"][0]["partnerId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                "2.00".to_string(),
                "accrued".to_string()
            )]
        );
    }
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    let counts: (i64, i64) = db
        .query_one(
            &format!("SELECT (SELECT count(*) FROM \"{schema}\".events), (SELECT count(*) FROM \"{schema}\".commissions)"),
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(
        counts,
        (43, 42),
        "events: 40 new + stored + twin + anon; commissions: all but anon"
    );
}

/// A non-recurring rule pays a user's first paying event only, also when several of the
/// user's events arrive at once and are written in one batch.
#[tokio::test]
async fn concurrent_events_of_one_user_pay_a_first_payment_rule_once() {
    let t = Tenant::new().await;
    let link = first_payment_link(&t).await;
    t.identified_click(&link, "gc-first").await;
    let results = futures::future::join_all((0..12).map(|i| {
        let api = t.api.clone();
        async move {
            api.post(
                "/attribution/events",
                json!({"userId": "gc-first", "type": "invoice.paid", "value": "50.00", "eventId": format!("gc-first-{i}")}),
            )
            .await
        }
    }))
    .await;
    let mut paid = 0;
    for r in &results {
        assert_eq!(r.code(), 201, "{}", r.body);
        paid += commissions_of(&t, r.body["id"].as_str().unwrap())
            .await
            .len();
    }
    assert_eq!(
        paid, 1,
        "exactly one of the user's events earns the first-payment commission"
    );
}

#[tokio::test]
async fn overlapping_batches_of_many_users_pay_each_first_payment_once() {
    let t = Tenant::new().await;
    let link = first_payment_link(&t).await;
    let users = 6;
    for u in 0..users {
        t.identified_click(&link, &format!("ob-{u}")).await;
    }
    // Rounds of concurrent events, so later batches plan while earlier ones still write.
    let mut paid = vec![0; users];
    for round in 0..3 {
        let results = futures::future::join_all((0..users * 8).map(|i| {
            let api = t.api.clone();
            let u = i % users;
            async move {
                let r = api
                    .post(
                        "/attribution/events",
                        json!({"userId": format!("ob-{u}"), "type": "invoice.paid", "value": "20.00",
                               "eventId": format!("ob-{round}-{i}")}),
                    )
                    .await;
                (u, r)
            }
        }))
        .await;
        for (u, r) in &results {
            assert_eq!(r.code(), 201, "{}", r.body);
            paid[*u] += commissions_of(&t, r.body["id"].as_str().unwrap())
                .await
                .len();
        }
    }
    assert_eq!(
        paid,
        vec![1; users],
        "each user's first payment is paid exactly once"
    );
}
