//! Program access and the campaign schedule (issue 16), through the gateway: grants on
//! partner create (`campaignIds`/`programIds`), the grant listing, adding and removing
//! grants, `campaign_not_granted` for partners and `links:write` keys (admins bypass),
//! `/me/programs`, `startsAt`/`endsAt` with `campaign_not_active`, clicks outside the window
//! earning nothing, and the end-of-campaign reminder mail.

use crate::harness::*;
use serde_json::{json, Value};

/// A time `ms` milliseconds from now, as the API writes times (`2026-11-24T10:00:00.000Z`).
fn at(ms: i64) -> String {
    let t = now_ms() + ms;
    let (days, ms_of_day) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

const DAY: i64 = 86_400_000;

async fn new_partner(t: &Tenant, fields: Value) -> Resp {
    let mut body = json!({
        "email": format!("{}@example.com", unique_slug("p")),
        "name": "P",
        "sendInvite": false,
    });
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.api.post("/partners", body).await
}

async fn partner_id(t: &Tenant, fields: Value) -> String {
    new_partner(t, fields).await.expect(201).body["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `(campaign id → (granted, grantSource))` of `GET /partners/:id/campaigns`.
async fn access(api: &Api, partner: &str) -> Vec<(String, bool, Value)> {
    let r = api
        .get(&format!("/partners/{partner}/campaigns"))
        .await
        .expect(200);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["granted"].as_bool().unwrap(),
                c["grantSource"].clone(),
            )
        })
        .collect()
}

fn granted(list: &[(String, bool, Value)], campaign: &str) -> bool {
    list.iter()
        .find(|(id, _, _)| id == campaign)
        .unwrap_or_else(|| panic!("{campaign} is listed"))
        .1
}

async fn link(api: &Api, partner: &str, campaign: &str) -> Resp {
    api.post(
        &format!("/partners/{partner}/links"),
        json!({"linkKey": unique_slug("lk"), "campaignId": campaign}),
    )
    .await
}

#[tokio::test]
async fn partner_create_grants_open_campaigns_unless_told_otherwise() {
    let t = Tenant::new().await;
    let open = t.campaign(json!({})).await;
    assert_eq!(open.body["grantToAllPartners"], true);
    let private = t.campaign(json!({"grantToAllPartners": false})).await;
    assert_eq!(private.body["grantToAllPartners"], false);

    // Left out: every open campaign.
    let p1 = partner_id(&t, json!({})).await;
    let r = t
        .api
        .get(&format!("/partners/{p1}/campaigns"))
        .await
        .expect(200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["programs"], r.body["data"]);
    assert_eq!(r.body["campaigns"], r.body["data"]);
    let row = |id: &str| {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    let o = row(&open.id);
    assert_eq!(
        (&o["granted"], &o["grantSource"]),
        (&json!(true), &json!("admin"))
    );
    assert!(o["grantedAt"].as_str().unwrap().ends_with('Z'));
    let p = row(&private.id);
    assert_eq!(
        (&p["granted"], &p["grantSource"], &p["grantedAt"]),
        (&json!(false), &Value::Null, &Value::Null)
    );
    // The alias.
    let alias = t
        .api
        .get(&format!("/partners/{p1}/programs"))
        .await
        .expect(200);
    assert_eq!(alias.body, r.body);

    // `[]`: none; a list: exactly those (private ones included).
    let p2 = partner_id(&t, json!({"programIds": []})).await;
    let l2 = access(&t.api, &p2).await;
    assert!(!granted(&l2, &open.id) && !granted(&l2, &private.id));
    let p3 = partner_id(&t, json!({"campaignIds": [private.id]})).await;
    let l3 = access(&t.api, &p3).await;
    assert!(!granted(&l3, &open.id) && granted(&l3, &private.id));

    // An open campaign made later reaches every existing partner; a private one none.
    let later = t.campaign(json!({})).await;
    let later_private = t.campaign(json!({"grantToAllPartners": false})).await;
    for p in [&p1, &p2, &p3] {
        let l = access(&t.api, p).await;
        assert!(granted(&l, &later.id), "{p}");
        assert!(!granted(&l, &later_private.id), "{p}");
    }
    // Opening a private campaign later reaches everyone too; closing it keeps only explicit
    // grants.
    t.patch_campaign(&later_private.id, json!({"grantToAllPartners": true}))
        .await;
    assert!(granted(&access(&t.api, &p2).await, &later_private.id));
    t.patch_campaign(&private.id, json!({"grantToAllPartners": true}))
        .await;
    t.patch_campaign(&open.id, json!({"grantToAllPartners": false}))
        .await;
    assert!(!granted(&access(&t.api, &p1).await, &open.id));
    assert!(granted(&access(&t.api, &p3).await, &private.id));

    // Unknown ids: 400 with the missing ones, and no partner is made.
    let ghost = ulid::Ulid::new().to_string();
    let email = format!("{}@example.com", unique_slug("p"));
    let e = t
        .api
        .post(
            "/partners",
            json!({"email": email, "name": "P", "campaignIds": [open.id, ghost, "nope"]}),
        )
        .await
        .expect_error(400, "unknown_campaign_ids");
    assert_eq!(e.body["field"], "campaignIds");
    let mut missing: Vec<String> = serde_json::from_value(e.body["missing"].clone()).unwrap();
    missing.sort();
    let mut want = vec![ghost.clone(), "nope".to_string()];
    want.sort();
    assert_eq!(missing, want);
    let none = t
        .api
        .get(&format!("/partners?email={}", email.replace('@', "%40")))
        .await
        .expect(200);
    assert_eq!(none.body["data"], json!([]));
    // Both names must agree.
    new_partner(
        &t,
        json!({"campaignIds": [open.id], "programIds": [private.id]}),
    )
    .await
    .expect_error(400, "invalid_body");
    // Unknown partner.
    t.api
        .get(&format!("/partners/{ghost}/campaigns"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn grants_decide_who_may_link_and_admins_bypass_them() {
    let t = Tenant::new().await;
    let open = t.campaign(json!({})).await;
    let private = t.campaign(json!({"grantToAllPartners": false})).await;
    let p = partner_id(&t, json!({})).await;
    let me = t.partner_api(&p).await;
    let scoped = t.scoped_api(&["links:write"]).await;

    // Not granted: the partner and a links:write key are refused, an admin is not.
    let e = link(&me, &p, &private.id)
        .await
        .expect_error(403, "campaign_not_granted");
    assert_eq!(e.body["field"], "campaignId");
    link(&scoped, &p, &private.id)
        .await
        .expect_error(403, "campaign_not_granted");
    link(&t.api, &p, &private.id).await.expect(201);
    link(&me, &p, &open.id).await.expect(201);
    link(&scoped, &p, &open.id).await.expect(201);

    // Granting: only admins; `added` lists what is new; unknown ids are ignored.
    let ghost = ulid::Ulid::new().to_string();
    me.post(
        &format!("/partners/{p}/campaigns"),
        json!({"campaignIds": [private.id]}),
    )
    .await
    .expect_error(403, "forbidden");
    let r = t
        .api
        .post(
            &format!("/partners/{p}/campaigns"),
            json!({"campaignIds": [private.id, ghost, open.id], "source": "offering"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body, json!({"added": [private.id]}));
    let again = t
        .api
        .post(
            &format!("/partners/{p}/programs"),
            json!({"programIds": [private.id]}),
        )
        .await
        .expect(201);
    assert_eq!(again.body, json!({"added": []}));
    t.api
        .post(
            &format!("/partners/{p}/campaigns"),
            json!({"campaignIds": [ghost, "nope"]}),
        )
        .await
        .expect_error(404, "no_valid_campaigns");
    t.api
        .post(
            &format!("/partners/{p}/campaigns"),
            json!({"campaignIds": []}),
        )
        .await
        .expect_error(400, "invalid_body");
    t.api
        .post(
            &format!("/partners/{ghost}/campaigns"),
            json!({"campaignIds": [private.id]}),
        )
        .await
        .expect_error(404, "not_found");
    let l = access(&t.api, &p).await;
    let row = l.iter().find(|(id, _, _)| *id == private.id).unwrap();
    assert_eq!((row.1, &row.2), (true, &json!("offering")));
    let granted_link = link(&me, &p, &private.id).await.expect(201);
    let key = granted_link.body["linkKey"].as_str().unwrap().to_string();

    // Removing a grant blocks new links only: the existing link still redirects.
    let r = t
        .api
        .delete(&format!("/partners/{p}/programs/{}", private.id))
        .await
        .expect(200);
    assert_eq!(r.body, json!({"ok": true}));
    t.api
        .delete(&format!("/partners/{p}/programs/{}", private.id))
        .await
        .expect_error(404, "grant_not_found");
    link(&me, &p, &private.id)
        .await
        .expect_error(403, "campaign_not_granted");
    let click = visit(&t.link_url(&key), &ip()).await;
    assert_eq!(click.status, 302);

    // An open campaign's grant can be removed too (alias path), and given back.
    t.api
        .delete(&format!("/partners/{p}/campaigns/{}", open.id))
        .await
        .expect(200);
    assert!(!granted(&access(&t.api, &p).await, &open.id));
    link(&me, &p, &open.id)
        .await
        .expect_error(403, "campaign_not_granted");
    t.api
        .delete(&format!("/partners/{p}/campaigns/{ghost}"))
        .await
        .expect_error(404, "grant_not_found");
    let back = t
        .api
        .post(
            &format!("/partners/{p}/programs"),
            json!({"programIds": [open.id]}),
        )
        .await
        .expect(201);
    assert_eq!(back.body, json!({"added": [open.id]}));
    link(&me, &p, &open.id).await.expect(201);

    // A partner reads its own list (without private campaigns it is not granted), not
    // another's; it cannot remove grants.
    let other = partner_id(&t, json!({})).await;
    let mine = access(&me, &p).await;
    assert!(mine.iter().all(|(id, _, _)| *id != private.id));
    assert!(granted(&mine, &open.id));
    me.get(&format!("/partners/{other}/campaigns"))
        .await
        .expect_error(403, "forbidden");
    me.delete(&format!("/partners/{p}/programs/{}", open.id))
        .await
        .expect_error(403, "forbidden");
}

#[tokio::test]
async fn schedules_are_validated_returned_and_close_link_creation_for_everyone() {
    let t = Tenant::new().await;
    // End before (or at) start: 400 naming endsAt.
    for (s, e) in [(at(DAY), at(0)), (at(DAY), at(DAY))] {
        let r = t
            .api
            .post(
                "/campaigns",
                json!({"name": "C", "destinationUrl": "https://shop.example/", "commissionRule": {"type": "percent", "value": 10}, "startsAt": s, "endsAt": e}),
            )
            .await
            .expect_error(400, "invalid_body");
        assert_eq!(r.body["field"], "endsAt");
    }
    let r = t
        .api
        .post(
            "/campaigns",
            json!({"name": "C", "destinationUrl": "https://shop.example/", "commissionRule": {"type": "percent", "value": 10}, "startsAt": "tomorrow"}),
        )
        .await
        .expect_error(400, "invalid_body");
    assert_eq!(r.body["field"], "startsAt");

    // Not started yet: nobody links, admins included.
    let starts = at(DAY);
    let future = t.campaign(json!({"startsAt": starts})).await;
    assert_eq!(future.body["startsAt"], starts.as_str());
    assert_eq!(future.body["endsAt"], Value::Null);
    let p = partner_id(&t, json!({})).await;
    let e = link(&t.api, &p, &future.id)
        .await
        .expect_error(409, "campaign_not_active");
    assert_eq!(e.body["startsAt"], starts.as_str());
    let me = t.partner_api(&p).await;
    link(&me, &p, &future.id)
        .await
        .expect_error(409, "campaign_not_active");
    // PATCH checks the end against the stored start.
    let r = t
        .api
        .patch(
            &format!("/campaigns/{}", future.id),
            json!({"endsAt": at(0)}),
        )
        .await
        .expect_error(400, "invalid_body");
    assert_eq!(r.body["field"], "endsAt");
    // Opened now: links work.
    let c = t
        .patch_campaign(
            &future.id,
            json!({"startsAt": null, "endsAt": at(30 * DAY)}),
        )
        .await;
    assert_eq!(c.body["startsAt"], Value::Null);
    assert!(c.body["endsAt"].is_string());
    link(&me, &p, &future.id).await.expect(201);
    let got = t
        .api
        .get(&format!("/campaigns/{}", future.id))
        .await
        .expect(200);
    assert_eq!(got.body["endsAt"], c.body["endsAt"]);

    // Ended: nobody links.
    let ended = t
        .campaign(json!({"startsAt": at(-2 * DAY), "endsAt": at(-DAY)}))
        .await;
    link(&t.api, &p, &ended.id)
        .await
        .expect_error(409, "campaign_not_active");
}

#[tokio::test]
async fn clicks_outside_the_window_redirect_but_never_attribute() {
    let t = Tenant::new().await;
    // A click inside the window still earns for an event after the end.
    let link = t.campaign_link(json!({})).await;
    t.identified_click(&link, "u-inside").await;
    t.patch_campaign(&link.campaign, json!({"endsAt": at(1_500)}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let r = t
        .event(json!({"userId": "u-inside", "type": "sale", "value": "100.00", "currency": "USD"}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "attributed");
    assert_eq!(r.body["attribution"]["touches"][0]["amount"], "10.00");

    // A click after the end redirects, and earns nothing.
    let click = visit(&t.link_url(&link.key), &ip()).await;
    assert_eq!(click.status, 302);
    t.identify(&click.cref(), "u-after").await.expect(200);
    let r = t
        .event(json!({"userId": "u-after", "type": "sale", "value": "100.00", "currency": "USD"}))
        .await
        .expect(201);
    assert_ne!(r.body["attribution"]["status"], "attributed", "{}", r.body);
    assert_eq!(r.body["attribution"]["touches"], json!([]));

    // A click before the start likewise.
    let early = t.campaign_link(json!({})).await;
    t.patch_campaign(&early.campaign, json!({"startsAt": at(DAY)}))
        .await;
    t.identified_click(&early, "u-early").await;
    let r = t
        .event(json!({"userId": "u-early", "type": "sale", "value": "100.00", "currency": "USD"}))
        .await
        .expect(201);
    assert_ne!(r.body["attribution"]["status"], "attributed", "{}", r.body);
    // Once the window covers it again (start moved back), the same click earns.
    t.patch_campaign(&early.campaign, json!({"startsAt": at(-DAY)}))
        .await;
    let r = t
        .event(json!({"userId": "u-early", "type": "sale", "value": "100.00", "currency": "USD"}))
        .await
        .expect(201);
    assert_eq!(r.body["attribution"]["status"], "attributed", "{}", r.body);
}

#[tokio::test]
async fn me_programs_shows_a_partner_its_active_grants_and_an_admin_everything() {
    let t = Tenant::new().await;
    let open = t
        .campaign(json!({"deepLinkAllowedDomains": ["shop.example"]}))
        .await;
    let granted_private = t.campaign(json!({"grantToAllPartners": false})).await;
    let other_private = t.campaign(json!({"grantToAllPartners": false})).await;
    let ended = t
        .campaign(json!({"startsAt": at(-2 * DAY), "endsAt": at(-DAY)}))
        .await;
    let future = t.campaign(json!({"startsAt": at(DAY)})).await;
    let p = partner_id(&t, json!({})).await;
    t.api
        .post(
            &format!("/partners/{p}/campaigns"),
            json!({"campaignIds": [granted_private.id], "source": "signup"}),
        )
        .await
        .expect(201);
    let me = t.partner_api(&p).await;

    let r = me.get("/me/programs").await.expect(200);
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![granted_private.id.as_str(), open.id.as_str()]);
    assert_eq!(r.body["programs"], r.body["data"]);
    assert_eq!(r.body["campaigns"], r.body["data"]);
    let first = &r.body["data"][0];
    assert_eq!(first["source"], "signup");
    assert_eq!(first["terms"], Value::Null);
    assert_eq!(first["name"], "C");
    assert_eq!(first["startsAt"], Value::Null);
    assert_eq!(first["endsAt"], Value::Null);
    let o = &r.body["data"][1];
    assert_eq!(o["source"], "admin");
    assert_eq!(o["deepLinkAllowedDomains"], json!(["shop.example"]));
    assert_eq!(
        o["destinationUrl"],
        "https://shop.example/landing?src=op#top"
    );
    let alias = me.get("/me/campaigns").await.expect(200);
    assert_eq!(alias.body, r.body);

    // Terms in force: per-campaign terms for one campaign, all-campaign terms for the rest.
    t.api
        .put(
            &format!("/partners/{p}/commission-snapshot"),
            json!({"commissionType": "percent", "commissionValue": "15"}),
        )
        .await
        .expect(200);
    t.api
        .put(
            &format!("/partners/{p}/terms/{}", open.id),
            json!({"commissionType": "fixed", "commissionValue": "5.00", "currency": "EUR", "holdbackDays": 3}),
        )
        .await
        .expect(200);
    let r = me.get("/me/programs").await.expect(200);
    let terms_of = |id: &str| {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["terms"]
            .clone()
    };
    let own = terms_of(&open.id);
    assert_eq!(
        (
            own["commissionType"].as_str(),
            own["commissionValue"].as_str(),
            own["currency"].as_str()
        ),
        (Some("fixed"), Some("5.00"), Some("EUR"))
    );
    assert_eq!(own["holdbackDays"], 3);
    assert_eq!(own["campaignId"], open.id.as_str());
    let all = terms_of(&granted_private.id);
    assert_eq!(
        (
            all["commissionType"].as_str(),
            all["commissionValue"].as_str()
        ),
        (Some("percent"), Some("15"))
    );
    assert_eq!(all["campaignId"], Value::Null);
    // Ending the per-campaign terms brings back the all-campaign ones.
    t.api
        .delete(&format!("/partners/{p}/terms/{}", open.id))
        .await
        .expect(200);
    let r = me.get("/me/programs").await.expect(200);
    let back = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == open.id.as_str())
        .unwrap()["terms"]
        .clone();
    assert_eq!(back["commissionValue"], "15");

    // Admins see every campaign, ended and future ones included.
    let all = t.api.get("/me/programs").await.expect(200);
    let mut ids: Vec<String> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want = vec![
        open.id.clone(),
        granted_private.id.clone(),
        other_private.id.clone(),
        ended.id.clone(),
        future.id.clone(),
    ];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(all.body["data"][0]["source"], Value::Null);

    // Scoped keys have no "me".
    t.scoped_api(&["links:write"])
        .await
        .get("/me/programs")
        .await
        .expect_error(403, "forbidden");
}

/// The mails of `purpose` in the tenant's dev mailbox to `to`.
async fn mails(t: &Tenant, to: &str, purpose: &str) -> Vec<Value> {
    let r = t
        .api
        .get(&format!("/dev/mailbox?to={}", to.replace('@', "%40")))
        .await
        .expect(200);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metadata"]["purpose"] == purpose)
        .cloned()
        .collect()
}

async fn wait_for_mails(t: &Tenant, to: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let got = mails(t, to, "campaign_ending").await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("no {n} campaign_ending mails to {to}");
}

#[tokio::test]
async fn campaign_end_reminder_mails_admins_once_per_end_date() {
    let stack = private_stack(&[("OP_CAMPAIGN_REMINDER_INTERVAL_SECS", "1")]).await;
    let t = Tenant::on(&stack.base_url).await;
    let admin = format!("{}@example.com", unique_slug("admin"));
    t.api
        .post("/admins", json!({"email": admin, "sendInvite": false}))
        .await
        .expect(201);
    let ending = t
        .campaign(json!({"name": "Summer", "endsAt": at(3 * DAY)}))
        .await;
    let _far = t
        .campaign(json!({"name": "Far", "endsAt": at(30 * DAY)}))
        .await;
    let got = wait_for_mails(&t, &admin, 1).await;
    assert_eq!(got.len(), 1);
    let subject = got[0]["subject"].as_str().unwrap();
    assert!(subject.contains("Summer"), "{subject}");
    assert!(got[0]["body"].as_str().unwrap().contains(&ending.id));

    // Several passes later: still one (once per end date), and none for the far one.
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    let all = mails(&t, &admin, "campaign_ending").await;
    assert_eq!(all.len(), 1, "{all:?}");

    // A new end date mails again.
    t.patch_campaign(&ending.id, json!({"endsAt": at(5 * DAY)}))
        .await;
    let got = wait_for_mails(&t, &admin, 2).await;
    assert_eq!(got.len(), 2);
    drop(stack);
}
