//! Compound commission rules through the gateway (programs.md, "Compound commission
//! rules"): write-time validation naming each field, the object and array forms on GET,
//! one commission per applying sub-rule (`first`, `subsequent`, `every`, per event type,
//! `recurringMonths` in calendar months), exact per-sub-rule splits, "first" under
//! concurrency, refunds that never move the anchor, and rederive replaying in `ts` order.

use crate::harness::*;
use serde_json::{json, Value};

/// A first signup pays 10.00 USD, later `invoice.paid` events 10 % (within a calendar month
/// of the first invoice), every event 1 %.
fn compound() -> Value {
    json!([
        {"trigger": "first", "eventType": "signup", "type": "fixed", "value": 10, "currency": "USD"},
        {"trigger": "subsequent", "eventType": "invoice.paid", "type": "percent", "value": "10", "recurringMonths": 1},
        {"type": "percent", "value": 1},
    ])
}

/// A link on a campaign paying [`compound`].
async fn compound_link(t: &Tenant) -> Link {
    t.campaign_link(json!({"commissionRule": compound()})).await
}

/// A link on a campaign paying [`compound`], and a click on it identified as `user`.
async fn compound_user(t: &Tenant, user: &str) -> Link {
    let link = compound_link(t).await;
    t.identified_click(&link, user).await;
    link
}

/// `(ruleIndex, amount)` of every live, non-adjustment commission of an event (by its
/// server id), ordered by rule index then amount.
async fn commissions_of(t: &Tenant, event: &str) -> Vec<(i32, String)> {
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.query(
        &format!(
            "SELECT rule_index, amount::text FROM \"{schema}\".commissions
              WHERE event_id = $1 AND adjusts_commission_id IS NULL AND status <> 'reversed'
              ORDER BY rule_index, amount"
        ),
        &[&event],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn ms(days_from_now: i64) -> i64 {
    now_ms() + days_from_now * 86_400_000
}

async fn event(t: &Tenant, user: &str, kind: &str, value: &str, ts: i64) -> Resp {
    t.event(json!({"userId": user, "type": kind, "value": value, "ts": ts}))
        .await
        .expect(201)
}

fn id(r: &Resp) -> String {
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rules_that_cannot_be_evaluated_are_refused_at_write_time_naming_the_field() {
    let t = Tenant::new().await;
    let c = t.campaign(json!({"commissionRule": compound()})).await;
    let cases = [
        (
            json!([{"trigger": "subsequent", "type": "percent", "value": 1}]),
            "invalid_rule",
            "commissionRule[0].eventType",
        ),
        (
            json!([{"type": "percent", "value": 1}, {"type": "percent", "value": 1, "currency": "USD"}]),
            "invalid_rule",
            "commissionRule[1].currency",
        ),
        (
            json!({"type": "percent", "value": 1, "currency": "EUR"}),
            "invalid_rule",
            "commissionRule.currency",
        ),
        (
            json!([{"type": "percent", "value": 1, "recurringMonths": 601}]),
            "invalid_rule",
            "commissionRule[0].recurringMonths",
        ),
        (
            json!([{"type": "percent", "value": 1, "recurringMonths": 0}]),
            "invalid_rule",
            "commissionRule[0].recurringMonths",
        ),
        (
            json!([{"type": "percent", "value": 1, "recurringMonths": 3, "recurring": false}]),
            "invalid_rule",
            "commissionRule[0].recurring",
        ),
        (
            json!([{"trigger": "often", "type": "percent", "value": 1}]),
            "invalid_rule",
            "commissionRule[0].trigger",
        ),
        (json!([]), "invalid_rule", "commissionRule"),
        (
            Value::Array(vec![json!({"type": "percent", "value": 1}); 11]),
            "invalid_rule",
            "commissionRule",
        ),
        (
            json!([{"type": "percent", "value": 1}, {"type": "percent", "value": 1}, {"type": "percent", "value": "100.5"}]),
            "invalid_amount",
            "commissionRule[2].value",
        ),
        (
            json!([{"type": "fixed", "value": 1, "currency": "usd"}]),
            "invalid_currency",
            "commissionRule[0].currency",
        ),
        (
            json!([{"type": "fixed", "value": 1, "currency": "USD", "extra": true}]),
            "invalid_body",
            "commissionRule[0].extra",
        ),
    ];
    for (rule, code, field) in cases {
        let r = t
            .api
            .post(
                "/campaigns",
                json!({"name": "X", "destinationUrl": "https://shop.example/", "commissionRule": rule}),
            )
            .await
            .expect_error(400, code);
        assert_eq!(r.body["field"], field, "{rule}: {}", r.body);
        let r = t
            .api
            .patch(
                &format!("/campaigns/{}", c.id),
                json!({"commissionRule": rule}),
            )
            .await
            .expect_error(400, code);
        assert_eq!(r.body["field"], field, "{rule}: {}", r.body);
    }
    // Nothing was written: the campaign kept its rule, and no other campaign exists.
    let got = t.api.get(&format!("/campaigns/{}", c.id)).await.expect(200);
    assert_eq!(got.body["commissionRule"], c.body["commissionRule"]);
    let list = t.api.get("/campaigns").await.expect(200);
    assert_eq!(list.body["campaigns"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn get_shows_the_object_for_a_single_every_rule_and_the_array_otherwise() {
    let t = Tenant::new().await;
    let c = t.campaign(json!({"commissionRule": compound()})).await;
    let stored = json!([
        {"trigger": "first", "eventType": "signup", "type": "fixed", "value": "10.00", "currency": "USD", "recurring": true},
        {"trigger": "subsequent", "eventType": "invoice.paid", "type": "percent", "value": "10", "recurring": true, "recurringMonths": 1},
        {"trigger": "every", "type": "percent", "value": "1", "recurring": true},
    ]);
    assert_eq!(c.body["commissionRule"], stored);
    let got = t.api.get(&format!("/programs/{}", c.id)).await.expect(200);
    assert_eq!(got.body["commissionRule"], stored);
    // What GET shows is accepted back unchanged.
    let back = t
        .patch_campaign(&c.id, json!({"commissionRule": stored}))
        .await;
    assert_eq!(back.body["commissionRule"], stored);
    // One `every` rule without eventType, even sent as an array: the object.
    let one = t.patch_campaign(&c.id, json!({"commissionRule": [{"trigger": "every", "type": "percent", "value": 5, "recurringMonths": 12}]})).await;
    assert_eq!(
        one.body["commissionRule"],
        json!({"type": "percent", "value": "5", "recurring": true, "recurringMonths": 12})
    );
    // One typed rule: still the array.
    let typed = t
        .patch_campaign(
            &c.id,
            json!({"commissionRule": [{"eventType": "sale", "type": "percent", "value": 5}]}),
        )
        .await;
    assert_eq!(
        typed.body["commissionRule"],
        json!([{"trigger": "every", "eventType": "sale", "type": "percent", "value": "5", "recurring": true}])
    );
}

#[tokio::test]
async fn each_applying_sub_rule_makes_one_commission() {
    let t = Tenant::new().await;
    let link = compound_user(&t, "cr-1").await;
    let start = ms(1);
    // The first signup: the `first` rule and the 1 % rule.
    let s1 = event(&t, "cr-1", "signup", "50.00", start).await;
    assert_eq!(
        commissions_of(&t, &id(&s1)).await,
        vec![(0, "10.00".into()), (2, "0.50".into())]
    );
    let touch = &s1.body["attribution"]["touches"][0];
    assert_eq!(touch["commissions"].as_array().unwrap().len(), 2);
    assert_eq!(touch["commissions"][0]["ruleIndex"], 0);
    assert_eq!(touch["commissions"][0]["amount"], "10.00");
    assert_eq!(touch["commissions"][1]["ruleIndex"], 2);
    assert_eq!(
        touch["commissionId"],
        touch["commissions"][0]["commissionId"]
    );
    // A second signup is not first: 1 % only.
    let s2 = event(&t, "cr-1", "signup", "50.00", start + 1000).await;
    assert_eq!(commissions_of(&t, &id(&s2)).await, vec![(2, "0.50".into())]);
    // The first invoice is the anchor, not "subsequent": 1 % only.
    let i1 = event(&t, "cr-1", "invoice.paid", "100.00", start + 2000).await;
    assert_eq!(commissions_of(&t, &id(&i1)).await, vec![(2, "1.00".into())]);
    // Later invoices within a calendar month of it: 10 % + 1 %.
    let i2 = event(
        &t,
        "cr-1",
        "invoice.paid",
        "100.00",
        start + 20 * 86_400_000,
    )
    .await;
    assert_eq!(
        commissions_of(&t, &id(&i2)).await,
        vec![(1, "10.00".into()), (2, "1.00".into())]
    );
    // Past the month (and still inside the 60-day attribution window): 1 % only.
    let i3 = event(
        &t,
        "cr-1",
        "invoice.paid",
        "100.00",
        start + 40 * 86_400_000,
    )
    .await;
    assert_eq!(commissions_of(&t, &id(&i3)).await, vec![(2, "1.00".into())]);
    // The commission API shows the sub-rule.
    let list = t
        .api
        .get(&format!("/commissions?campaignId={}", link.campaign))
        .await
        .expect(200);
    let mut indexes: Vec<i64> = list.body["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ruleIndex"].as_i64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2, 2, 2, 2, 2]);
}

#[tokio::test]
async fn a_refund_never_moves_the_anchor() {
    let t = Tenant::new().await;
    compound_user(&t, "cr-refund").await;
    let s1 = t
        .event(
            json!({"userId": "cr-refund", "type": "signup", "value": "20.00", "eventId": "cr-s1"}),
        )
        .await
        .expect(201);
    assert_eq!(commissions_of(&t, &id(&s1)).await[0], (0, "10.00".into()));
    t.event(json!({"userId": "cr-refund", "type": "refund", "metadata": {"refundOf": "cr-s1"}}))
        .await
        .expect(201);
    // The refunded signup stays the first: a new signup earns the 1 % only.
    let s2 = t
        .event(json!({"userId": "cr-refund", "type": "signup", "value": "20.00"}))
        .await
        .expect(201);
    assert_eq!(commissions_of(&t, &id(&s2)).await, vec![(2, "0.20".into())]);
}

#[tokio::test]
async fn each_sub_rule_splits_exactly_over_the_touches() {
    let t = Tenant::new().await;
    let c = t
        .campaign(json!({
            "attributionModel": "linear",
            "commissionRule": [
                {"type": "percent", "value": "10"},
                {"trigger": "first", "eventType": "sale", "type": "fixed", "value": "1.00", "currency": "USD"},
            ],
        }))
        .await;
    for _ in 0..3 {
        let link = t.partner_link(&c.id).await;
        t.identified_click(&link, "cr-split").await;
    }
    let r = event(&t, "cr-split", "sale", "100.00", ms(1)).await;
    let touches = r.body["attribution"]["touches"].as_array().unwrap();
    assert_eq!(touches.len(), 3);
    let mut by_rule: [Vec<String>; 2] = [vec![], vec![]];
    for touch in touches {
        for c in touch["commissions"].as_array().unwrap() {
            by_rule[c["ruleIndex"].as_u64().unwrap() as usize]
                .push(c["amount"].as_str().unwrap().to_string());
        }
    }
    // 10.00 and 1.00, each split on its own: the last touch takes each remainder.
    assert_eq!(by_rule[0], vec!["3.33", "3.33", "3.34"]);
    assert_eq!(by_rule[1], vec!["0.33", "0.33", "0.34"]);
}

/// Twenty simultaneous first events for one user: exactly one `first` commission (three
/// users in turn, so that overlapping batches get several chances to both price a first).
#[tokio::test]
async fn twenty_simultaneous_first_events_pay_one_first_commission() {
    let t = Tenant::new().await;
    let link = compound_link(&t).await;
    for user in ["cr-race-a", "cr-race-b", "cr-race-c"] {
        t.identified_click(&link, user).await;
        let ts = ms(1);
        let results = futures::future::join_all((0..20).map(|i| {
            let api = t.api.clone();
            async move {
                api.post(
                    "/attribution/events",
                    json!({"userId": user, "type": "signup", "value": "10.00",
                           "eventId": format!("{user}-{i}"), "ts": ts + i}),
                )
                .await
            }
        }))
        .await;
        let mut firsts = 0;
        for r in &results {
            assert_eq!(r.code(), 201, "{}", r.body);
            let mine = commissions_of(&t, r.body["id"].as_str().unwrap()).await;
            assert!(
                mine.contains(&(2, "0.10".into())),
                "every event earns the 1 %"
            );
            firsts += mine.iter().filter(|(i, _)| *i == 0).count();
        }
        assert_eq!(firsts, 1, "exactly one event is {user}'s first signup");
    }
}

/// "First" is decided when an event is processed; rederive replays in `ts` order and
/// gives it to the earliest.
#[tokio::test]
async fn a_late_earlier_event_is_not_first_until_rederive() {
    let t = Tenant::new().await;
    let link = compound_user(&t, "cr-late").await;
    let later = event(&t, "cr-late", "signup", "30.00", ms(2)).await;
    let earlier = event(&t, "cr-late", "signup", "40.00", ms(1)).await;
    assert_eq!(
        commissions_of(&t, &id(&later)).await,
        vec![(0, "10.00".into()), (2, "0.30".into())]
    );
    assert_eq!(
        commissions_of(&t, &id(&earlier)).await,
        vec![(2, "0.40".into())]
    );
    let r = t.rederive(&link.campaign).await;
    assert_eq!(r.body["created"], 3, "{}", r.body);
    assert_eq!(
        commissions_of(&t, &id(&earlier)).await,
        vec![(0, "10.00".into()), (2, "0.40".into())]
    );
    assert_eq!(
        commissions_of(&t, &id(&later)).await,
        vec![(2, "0.30".into())]
    );
    // A second run changes nothing.
    let again = t.rederive(&link.campaign).await;
    assert_eq!(
        (
            again.body["created"].clone(),
            again.body["reversed"].clone()
        ),
        (json!(0), json!(0))
    );
}

/// The anchor of `recurringMonths` is the event priced as the first: a late event with an
/// earlier `ts` does not move it (programs.md: "that first event").
#[tokio::test]
async fn a_late_earlier_event_does_not_move_the_anchor() {
    let t = Tenant::new().await;
    let rule = json!([{"trigger": "every", "eventType": "invoice.paid", "type": "percent", "value": "10", "recurringMonths": 1}]);
    let link = t
        .campaign_link(json!({"commissionRule": rule, "attributionWindowDays": 120}))
        .await;
    t.identified_click(&link, "cr-anchor").await;
    let first = event(&t, "cr-anchor", "invoice.paid", "100.00", ms(40)).await;
    assert_eq!(
        commissions_of(&t, &id(&first)).await,
        vec![(0, "10.00".into())]
    );
    // Late, with an earlier `ts`: inside the month of the anchor (it is before it), paid.
    let late = event(&t, "cr-anchor", "invoice.paid", "50.00", ms(1)).await;
    assert_eq!(
        commissions_of(&t, &id(&late)).await,
        vec![(0, "5.00".into())]
    );
    // 10 days after the first: inside its month. Had the late event moved the anchor, this
    // would be 49 days after it, outside.
    let later = event(&t, "cr-anchor", "invoice.paid", "20.00", ms(50)).await;
    assert_eq!(
        commissions_of(&t, &id(&later)).await,
        vec![(0, "2.00".into())]
    );
    // More than a calendar month after the first: nothing.
    let outside = event(&t, "cr-anchor", "invoice.paid", "20.00", ms(75)).await;
    assert!(commissions_of(&t, &id(&outside)).await.is_empty());
}

/// Identify's backlog prices a user's earlier events in `ts` order under the compound rule:
/// the earliest signup is the first.
#[tokio::test]
async fn the_identify_backlog_prices_compound_rules_in_ts_order() {
    let t = Tenant::new().await;
    let link = compound_link(&t).await;
    let cref = t.click(&link).await;
    let later = event(&t, "cr-backlog", "signup", "30.00", ms(2)).await;
    let earlier = event(&t, "cr-backlog", "signup", "40.00", ms(1)).await;
    assert_eq!(earlier.body["attribution"]["status"], "no_identity");
    let id_reply = t.identify(&cref, "cr-backlog").await.expect(200);
    assert_eq!(
        id_reply.body["backfilledAttributions"], 2,
        "{}",
        id_reply.body
    );
    assert_eq!(
        commissions_of(&t, &id(&earlier)).await,
        vec![(0, "10.00".into()), (2, "0.40".into())]
    );
    assert_eq!(
        commissions_of(&t, &id(&later)).await,
        vec![(2, "0.30".into())]
    );
}

/// The first event's record is `first_events`: an event of a key whose row names a first
/// (here written by hand, as another writer would have) is not priced as a first, even
/// with no attribution of that first in sight; without the row (and with the earlier
/// event's attribution superseded, as rederive leaves it) it is, and its own row is
/// written. (A row committed after an event's reads makes its write fail and the event is
/// written again from fresh reads: `an_event_waits_for_the_users_lock_…` below.)
#[tokio::test]
async fn the_first_events_row_is_the_record_of_the_first() {
    let t = Tenant::new().await;
    let link = compound_user(&t, "cr-guard").await;
    let other = t
        .event(json!({"userId": "cr-guard-other", "type": "signup"}))
        .await
        .expect(201);
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.execute(
        &format!(
            "INSERT INTO \"{schema}\".first_events (user_id, campaign_id, partner_id, event_type, event_id)
             VALUES ('cr-guard', $1, $2, 'signup', $3)"
        ),
        &[&link.campaign, &link.partner, &id(&other)],
    )
    .await
    .unwrap();
    let r = t
        .event(json!({"userId": "cr-guard", "type": "signup", "value": "10.00", "eventId": "cr-guard-1"}))
        .await
        .expect(201);
    assert_eq!(
        commissions_of(&t, &id(&r)).await,
        vec![(2, "0.10".into())],
        "not a first: only the 1 % of every event"
    );
    db.execute(
        &format!("DELETE FROM \"{schema}\".first_events WHERE user_id = 'cr-guard'"),
        &[],
    )
    .await
    .unwrap();
    db.execute(
        &format!("UPDATE \"{schema}\".attributions SET superseded_at = now() WHERE event_id = $1"),
        &[&id(&r)],
    )
    .await
    .unwrap();
    let r = t
        .event(json!({"userId": "cr-guard", "type": "signup", "value": "10.00", "eventId": "cr-guard-2"}))
        .await
        .expect(201);
    assert_eq!(
        commissions_of(&t, &id(&r)).await,
        vec![(0, "10.00".into()), (2, "0.10".into())]
    );
    let keys: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".first_events WHERE user_id = 'cr-guard' AND event_id = $1"),
            &[&id(&r)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "its first is recorded (signup)");
}

/// A user's attribution is serialised (programs.md: an advisory lock on tenant + user): an
/// event whose write finds the user's lock held (here by the test, as identify's backlog or
/// rederive would hold it) waits; when the holder commits a first event the event's reads
/// missed, the event is written again from fresh reads and is not priced as a second first.
#[tokio::test]
async fn an_event_waits_for_the_users_lock_and_is_repriced_after_a_first_it_missed() {
    let t = Tenant::new().await;
    let link = compound_user(&t, "cr-lock").await;
    let schema = op_control::schema::Schema::of_tenant(&t.id).unwrap();
    let keys = op_worker::user_lock_keys(&schema, ["cr-lock"]);
    let mut holder = db().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(op_worker::LOCK_USERS, &[&keys]).await.unwrap();
    let api = t.api.clone();
    let late = tokio::spawn(async move {
        api.post(
            "/attribution/events",
            json!({"userId": "cr-lock", "type": "signup", "value": "20.00", "eventId": "cr-lock-late", "ts": ms(2)}),
        )
        .await
    });
    // The event has read (no first yet) and waits for the lock.
    let watcher = db().await;
    let mut waited = false;
    for _ in 0..200 {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(waited, "the event's write waits for the user's lock");
    // Meanwhile the holder commits an attributed first signup of the same key.
    let click: String = tx
        .query_one(
            &format!("SELECT click_id FROM {schema}.identities WHERE user_id = 'cr-lock'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let first = "01KLOCKFIRSTEVENT000000000".to_string();
    tx.execute(
        &format!(
            "INSERT INTO {schema}.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response)
             VALUES ($1, $1, 'cr-lock', 'signup', 10, 'USD', '{{}}', now(), 'attributed', '{{}}')"
        ),
        &[&first],
    )
    .await
    .unwrap();
    tx.execute(
        &format!(
            "INSERT INTO {schema}.attributions (id, event_id, model, click_id, partner_id, campaign_id, weight)
             VALUES ($1, $1, 'last_click', $2, $3, $4, 1)"
        ),
        &[&first, &click, &link.partner, &link.campaign],
    )
    .await
    .unwrap();
    tx.execute(
        &format!(
            "INSERT INTO {schema}.first_events (user_id, campaign_id, partner_id, event_type, event_id)
             VALUES ('cr-lock', $1, $2, 'signup', $3)"
        ),
        &[&link.campaign, &link.partner, &first],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let late = late.await.unwrap().expect(201);
    assert_eq!(
        commissions_of(&t, &id(&late)).await,
        vec![(2, "0.20".into())],
        "not a second first: only the 1 % of every event"
    );
}

/// A partner's terms may carry a compound rule: it prices that partner's touches (and its
/// first events are read for the types it names) while the campaign keeps a single rule.
#[tokio::test]
async fn compound_terms_price_a_partners_touches() {
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({"commissionRule": percent("5")}))
        .await;
    t.api
        .raw(
            reqwest::Method::PUT,
            &format!("/partners/{}/terms/{}", link.partner, link.campaign),
            Some(
                json!({"commissionRules": compound()})
                    .to_string()
                    .into_bytes(),
            ),
            &[],
        )
        .await
        .expect(200);
    t.identified_click(&link, "cr-terms").await;
    let s1 = event(&t, "cr-terms", "signup", "50.00", ms(1)).await;
    assert_eq!(
        commissions_of(&t, &id(&s1)).await,
        vec![(0, "10.00".into()), (2, "0.50".into())]
    );
    let s2 = event(&t, "cr-terms", "signup", "50.00", ms(1) + 1000).await;
    assert_eq!(commissions_of(&t, &id(&s2)).await, vec![(2, "0.50".into())]);
}
