//! Programs, part 3 (programs.md): versioned per-partner terms — per campaign or for all
//! campaigns — pricing each touch by the version in force at the event's time (never
//! re-pricing, rederive and refunds included), and campaign `autoApprove` with its worker
//! sweep.

use crate::harness::receiver::Receiver;
use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn put(t: &Tenant, path: &str, body: Value) -> Resp {
    t.api
        .raw(Method::PUT, path, Some(body.to_string().into_bytes()), &[])
        .await
}

/// The amount and holdback of an event's only commission.
fn priced(r: &Resp) -> (String, String) {
    let touch = &r.body["attribution"]["touches"][0];
    (
        touch["amount"].as_str().unwrap_or("none").to_string(),
        touch["commissionId"].as_str().unwrap_or("").to_string(),
    )
}

async fn holdback_of(t: &Tenant, commission: &str) -> i64 {
    let c = t
        .api
        .get(&format!("/commissions/{commission}"))
        .await
        .expect(200);
    c.body["commission"]["holdbackDays"].as_i64().unwrap()
}

/// Dates every click of the tenant `days` ago (so events may be dated before the terms
/// were set and still find their click). The time is bound, not computed in the UPDATE
/// (CITUS rule 16).
async fn clicks_back(t: &Tenant, days: u64) {
    let schema = op_control::schema::schema_name(&t.id);
    let then = std::time::SystemTime::now() - Duration::from_secs(days * 86_400);
    db().await
        .execute(&format!("UPDATE \"{schema}\".clicks SET ts = $1"), &[&then])
        .await
        .unwrap();
}

#[tokio::test]
async fn terms_price_events_from_their_time_on_and_never_reprice() {
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({"commissionRule": percent("10"), "holdbackDays": 7}))
        .await;
    let (partner, campaign) = (&link.partner, &link.campaign);
    t.identified_click(&link, "u-terms").await;
    clicks_back(&t, 3).await;
    let event = |value: &str, ts: i64| json!({"userId": "u-terms", "type": "sale", "value": value, "eventId": unique_slug("e"), "ts": ts});
    let day_ms = 86_400_000;

    // No terms: the campaign's own rule and holdback.
    let snapshot = format!("/partners/{partner}/commission-snapshot");
    let per_campaign = format!("/partners/{partner}/terms/{campaign}");
    assert_eq!(t.api.get_ok(&snapshot).await, json!({"terms": []}));
    let r = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&r).0, "10.00");
    assert_eq!(holdback_of(&t, &priced(&r).1).await, 7);

    // All-campaign terms: read back in the shape written, the version in force first.
    let set = put(
        &t,
        &snapshot,
        json!({"commissionType": "percent", "commissionValue": 20}),
    )
    .await
    .expect(200);
    let v = &set.body["terms"][0];
    assert_eq!(
        (
            &v["campaignId"],
            &v["commissionType"],
            &v["commissionValue"],
            &v["recurring"],
            &v["holdbackDays"],
            &v["source"]
        ),
        (
            &Value::Null,
            &json!("percent"),
            &json!("20"),
            &json!(true),
            &Value::Null,
            &json!("amendment")
        )
    );
    assert!(v.get("commissionRules").is_none());
    assert!(v["validFrom"].as_str().unwrap().ends_with('Z'));
    assert_eq!(t.api.get_ok(&snapshot).await, set.body);
    let at20 = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&at20).0, "20.00");
    assert_eq!(holdback_of(&t, &priced(&at20).1).await, 7);
    // An event dated before the terms: the rule in force at its time, the campaign's.
    let earlier = t
        .event(event("100.00", now_ms() - day_ms))
        .await
        .expect(201);
    assert_eq!(priced(&earlier).0, "10.00");

    // Per-campaign terms beat them, fixed in their own currency, with a holdback.
    let set = put(
        &t,
        &per_campaign,
        json!({"commissionType": "fixed", "commissionValue": "5", "currency": "EUR", "holdbackDays": 0}),
    )
    .await
    .expect(200);
    assert_eq!(set.body["terms"][0]["campaignId"], campaign.as_str());
    assert_eq!(set.body["terms"][0]["commissionValue"], "5.00");
    assert_eq!(set.body["terms"][0]["currency"], "EUR");
    assert_eq!(set.body["terms"][0]["holdbackDays"], 0);
    let fixed = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&fixed).0, "5.00");
    assert_eq!(
        fixed.body["attribution"]["touches"][0]["currency"],
        json!("EUR")
    );
    assert_eq!(holdback_of(&t, &priced(&fixed).1).await, 0);
    // The all-campaign list is untouched by per-campaign terms.
    assert_eq!(
        t.api.get_ok(&snapshot).await["terms"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Written as commissionRules: read back with commissionRules too.
    let set = put(
        &t,
        &per_campaign,
        json!({"commissionRules": [{"type": "percent", "value": "30"}]}),
    )
    .await
    .expect(200);
    let versions = set.body["terms"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]["commissionRules"],
        json!({"type": "percent", "value": "30", "recurring": true})
    );
    assert_eq!(versions[0]["commissionValue"], "30");
    assert_eq!(versions[1]["commissionValue"], "5.00");
    let at30 = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&at30).0, "30.00");

    // Ending the per-campaign terms: the all-campaign terms again; ending those: the
    // campaign's own rule. The history stays.
    assert_eq!(
        t.api.delete(&per_campaign).await.expect(200).body,
        json!({"ok": true})
    );
    let r = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&r).0, "20.00");
    let history = t.api.get_ok(&per_campaign).await;
    assert_eq!(history["terms"].as_array().unwrap().len(), 3);
    assert_eq!(history["terms"][0]["commissionType"], Value::Null);
    assert_eq!(history["terms"][1]["commissionValue"], "30");
    t.api.delete(&snapshot).await.expect(200);
    // Nothing in force: nothing to end, no new version.
    t.api.delete(&snapshot).await.expect(200);
    assert_eq!(
        t.api.get_ok(&snapshot).await["terms"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = t.event(event("100.00", now_ms())).await.expect(201);
    assert_eq!(priced(&r).0, "10.00");

    // Nothing was re-priced.
    for (e, amount) in [(&at20, "20.00"), (&fixed, "5.00"), (&at30, "30.00")] {
        let c = t
            .api
            .get(&format!("/commissions/{}", priced(e).1))
            .await
            .expect(200);
        assert_eq!(c.body["commission"]["amount"], amount);
    }
}

#[tokio::test]
async fn rederive_and_refunds_use_the_terms_of_the_event_time() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    t.identified_click(&link, "u-rt").await;
    let snapshot = format!("/partners/{}/commission-snapshot", link.partner);
    put(
        &t,
        &snapshot,
        json!({"commissionType": "percent", "commissionValue": "25"}),
    )
    .await
    .expect(200);
    let sale = unique_slug("sale");
    let e = t
        .event(json!({"userId": "u-rt", "type": "sale", "value": "80.00", "eventId": sale}))
        .await
        .expect(201);
    assert_eq!(priced(&e).0, "20.00");
    // New terms for later events; rederive prices the old event as it was.
    put(
        &t,
        &snapshot,
        json!({"commissionType": "percent", "commissionValue": "50"}),
    )
    .await
    .expect(200);
    let r = t.rederive(&link.campaign).await;
    assert_eq!(
        r.body,
        json!({"ok": true, "events": 1, "reversed": 0, "created": 0, "skipped": 0})
    );
    // A refund of half the sale takes back half of what the event paid (not half of what
    // the new terms would pay).
    let refund = t
        .event(json!({"userId": "u-rt", "type": "refund", "value": "40.00", "eventId": unique_slug("rf"), "metadata": {"refundOf": sale}}))
        .await
        .expect(201);
    assert_eq!(refund.body["refund"]["adjustments"][0]["amount"], "-10.00");
}

#[tokio::test]
async fn terms_input_is_checked_and_admin_only() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    let path = format!("/partners/{}/terms/{}", link.partner, link.campaign);
    for (body, status, code, field) in [
        (
            json!({"commissionType": "percent", "commissionValue": 5, "commissionRules": percent("5")}),
            400,
            "invalid_body",
            "commissionType",
        ),
        (
            json!({"commissionType": "fixed", "commissionValue": 5}),
            400,
            "invalid_body",
            "currency",
        ),
        (
            json!({"commissionType": "fixed", "commissionValue": "5.001", "currency": "USD"}),
            400,
            "invalid_amount",
            "commissionValue",
        ),
        (
            json!({"commissionType": "percent", "commissionValue": "101"}),
            400,
            "invalid_amount",
            "commissionValue",
        ),
        (
            json!({"commissionType": "fixed", "commissionValue": "5", "currency": "ABC"}),
            400,
            "invalid_currency",
            "currency",
        ),
        (
            json!({"commissionRules": {"type": "percent", "value": "1", "bogus": 1}}),
            400,
            "invalid_body",
            "commissionRules.bogus",
        ),
        (
            json!({"commissionRules": [{"type": "percent", "value": "1"}, {"trigger": "subsequent", "type": "percent", "value": "1"}]}),
            400,
            "invalid_rule",
            "commissionRules[1].eventType",
        ),
        (
            json!({"commissionType": "percent", "commissionValue": "5", "holdbackDays": -1}),
            400,
            "invalid_body",
            "holdbackDays",
        ),
    ] {
        let r = put(&t, &path, body.clone())
            .await
            .expect_error(status, code);
        assert_eq!(r.body["field"], field, "{body}");
    }
    put(
        &t,
        &path,
        json!({"commissionType": "percent", "commissionValue": 5, "bogus": 1}),
    )
    .await
    .expect_error(400, "invalid_body");
    // Nothing was stored by any of them.
    assert_eq!(t.api.get_ok(&path).await, json!({"terms": []}));
    let ok = json!({"commissionType": "percent", "commissionValue": 5});
    let nobody = ulid::Ulid::new().to_string();
    put(
        &t,
        &format!("/partners/{nobody}/commission-snapshot"),
        ok.clone(),
    )
    .await
    .expect_error(404, "not_found");
    put(
        &t,
        &format!("/partners/{}/terms/{nobody}", link.partner),
        ok.clone(),
    )
    .await
    .expect_error(404, "not_found");
    t.api
        .get(&format!("/partners/{}/terms/not-an-id", link.partner))
        .await
        .expect_error(404, "not_found");
    // Admins only: not even the partner itself.
    let key = t.partner_key(&link.partner).await;
    let partner = t.api.with_key(Some(&key));
    partner.get(&path).await.expect_error(403, "forbidden");
}

async fn wait_status(t: &Tenant, commission: &str, status: &str, secs: u64) -> Value {
    poll(secs, Duration::from_millis(100), || async {
        let c = t.api.get_ok(&format!("/commissions/{commission}")).await;
        if c["commission"]["status"] == status {
            Ok(c)
        } else {
            Err(format!("commission not {status}: {c}"))
        }
    })
    .await
}

#[tokio::test]
async fn auto_approve_approves_matured_commissions_through_the_ledger() {
    let stack = private_stack(&[("OP_AUTO_APPROVE_INTERVAL_SECS", "1")]).await;
    let t = Tenant::on(&stack.base_url).await;
    let rx = Receiver::start().await;
    t.webhook(&rx.url("/approved"), json!(["commission.approved"]))
        .await;
    let auto = t
        .campaign(json!({"autoApprove": true, "holdbackDays": 0}))
        .await;
    assert_eq!(auto.body["autoApprove"], true);
    let manual = t.campaign(json!({})).await;
    assert_eq!(manual.body["autoApprove"], false);
    let held = t
        .campaign(json!({"autoApprove": true, "holdbackDays": 30}))
        .await;
    let mut commissions = Vec::new();
    let mut partners = Vec::new();
    for (campaign, user) in [(&auto, "u-auto"), (&manual, "u-manual"), (&held, "u-held")] {
        let link = t.partner_link(&campaign.id).await;
        partners.push(link.partner.clone());
        t.identified_click(&link, user).await;
        let e = t
            .event(json!({"userId": user, "type": "sale", "value": "10.00"}))
            .await
            .expect(201);
        commissions.push(priced(&e).1);
    }

    let c = wait_status(&t, &commissions[0], "approved", 15).await;
    // The job's approval moved the amount in the reporting rollups too.
    let d = t
        .api
        .get_ok(&format!("/partners/{}/dashboard", partners[0]))
        .await;
    assert_eq!(
        d["commissionByStatus"],
        json!({"accrued": [], "approved": [{"currency": c["commission"]["currency"], "amount": c["commission"]["amount"]}], "paid": [], "reversed": []}),
        "{d}"
    );
    let history = c["commission"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (&history[1]["from"], &history[1]["to"], &history[1]["by"]),
        (
            &json!("accrued"),
            &json!("approved"),
            &json!({"kind": "system", "id": null})
        )
    );
    rx.wait_for("/approved", 10, |got| {
        got.iter().any(|r| {
            let v = r.json();
            v["event"] == "commission.approved" && v["data"]["commission"]["id"] == commissions[0]
        })
    })
    .await;
    // Two more sweeps: without autoApprove, or still in its holdback, a commission waits.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for id in &commissions[1..] {
        wait_status(&t, id, "accrued", 1).await;
    }
    // Turning autoApprove on later approves what is due.
    let patched = t
        .patch_campaign(&manual.id, json!({"autoApprove": true}))
        .await;
    assert_eq!(patched.body["autoApprove"], true);
    wait_status(&t, &commissions[1], "approved", 15).await;
    t.api
        .patch(
            &format!("/campaigns/{}", manual.id),
            json!({"autoApprove": "yes"}),
        )
        .await
        .expect_error(400, "invalid_body");
    assert_eq!(
        t.api.get_ok(&format!("/campaigns/{}", manual.id)).await["autoApprove"],
        true
    );
}
