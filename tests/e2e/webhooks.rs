//! Webhook delivery end to end with a real local receiver: every event type arrives signed
//! (Standard Webhooks signatures checked by the independent `standardwebhooks` crate, the
//! original scheme recomputed here), retries follow the schedule, 410 disables, 429's
//! Retry-After is honoured, a slow receiver blocks nobody else, a killed worker loses
//! nothing, and the delivery log, manual retry and test fires work.

use crate::harness::receiver::{Received, Receiver};
use crate::harness::*;
use openpartner::stack::{Mode, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Polls the delivery log of `ep` every `every` until its newest delivery is `delivered`
/// (up to `secs`); the log. Every answer also names the log `deliveries`.
async fn delivered(t: &Tenant, ep: &str, secs: u64, every: Duration) -> Value {
    poll(secs, every, || async {
        let log = t.deliveries(ep).await;
        assert_eq!(log.body["data"], log.body["deliveries"]);
        if log.body["data"][0]["status"] == "delivered" {
            Ok(log.body)
        } else {
            Err(log.body.to_string())
        }
    })
    .await
}

/// Polls endpoint `ep` until it is disabled (up to 10 s): its `disabledReason`.
async fn disabled(t: &Tenant, ep: &str) -> String {
    poll(10, Duration::from_millis(50), || async {
        let e = t.api.get(&format!("/webhooks/{ep}")).await.expect(200);
        if e.body["endpoint"]["active"] == false {
            Ok(e.body["endpoint"]["disabledReason"]
                .as_str()
                .unwrap()
                .to_string())
        } else {
            Err(e.body.to_string())
        }
    })
    .await
}

/// Once `path` got something and a moment passed for more: the JSON-pointer `field` of
/// every envelope received there.
async fn settled(rx: &Receiver, path: &str, field: &str) -> Vec<String> {
    rx.wait_for(path, 10, |got| !got.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    rx.got
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| {
            let v = r.json();
            v.pointer(field)
                .and_then(|f| f.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn verify(secret: &str, r: &Received) {
    // Standard Webhooks, by an independent implementation.
    standardwebhooks::Webhook::new(secret)
        .expect("secret parses")
        .verify(&r.body, &r.headers)
        .unwrap_or_else(|e| panic!("standard webhooks signature invalid: {e:?}"));
    // The original scheme: hex HMAC-SHA256 over "<ts>.<body>" keyed by the whole secret.
    let ts = r.header("x-openpartner-timestamp");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{ts}.").into_bytes();
    msg.extend_from_slice(&r.body);
    assert_eq!(
        r.header("x-openpartner-signature"),
        hex::encode(ring::hmac::sign(&key, &msg).as_ref())
    );
    let now = now_ms() / 1000;
    assert!((now - ts.parse::<i64>().unwrap()).abs() < 300);
    assert_eq!(r.header("user-agent"), "OpenPartner-Webhooks/1");
    let env = r.json();
    assert_eq!(
        r.header("x-openpartner-event"),
        env["event"].as_str().unwrap()
    );
    assert_eq!(
        r.header("x-openpartner-delivery"),
        env["id"].as_str().unwrap()
    );
    assert_eq!(r.header("webhook-id"), env["id"].as_str().unwrap());
    assert!(env["id"].as_str().unwrap().starts_with("evt_"));
    assert!(env["created"].as_str().unwrap().ends_with('Z'));
    assert!(env["data"].is_object());
}

#[tokio::test]
async fn every_event_type_arrives_signed() {
    let rx = Receiver::start().await;
    let t = Tenant::new().await;
    let (_, secret) = t.webhook(&rx.url("/all"), json!(["*"])).await;
    // partner.created, partner.activated (invite accepted), partner.revoked
    let p = t.invited_partner("hook@example.com", "H").await;
    t.follow_mailed_link("hook@example.com").await;
    // attribution.created, commission.accrued, .approved, .paid, payout.created, .reversed
    let link = t.campaign_link(json!({})).await;
    t.identified_click(&link, "hook-user").await;
    let ev = |v: &str| json!({"userId": "hook-user", "type": "invoice.paid", "value": v});
    let e1 = t.event(ev("100.00")).await.expect(201);
    let e2 = t.event(ev("50.00")).await.expect(201);
    t.approve(&commission_of(&e1.body)).await;
    t.api.post("/payouts/run", json!({})).await.expect(200);
    t.reverse(&commission_of(&e2.body)).await;
    t.revoke_partner_notified(p["id"].as_str().unwrap()).await;

    let want = [
        "partner.created",
        "partner.activated",
        "partner.revoked",
        "attribution.created",
        "commission.accrued",
        "commission.approved",
        "commission.paid",
        "commission.reversed",
        "payout.created",
    ];
    rx.wait_for("/all", 20, |got| {
        want.iter()
            .all(|w| got.iter().any(|r| r.header("x-openpartner-event") == *w))
    })
    .await;
    let got = rx.got.lock().unwrap();
    for r in got.iter().filter(|r| r.path == "/all") {
        verify(&secret, r);
    }
    // Each event once per endpoint (at-least-once, but no failures here to cause repeats).
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[tokio::test]
async fn failures_are_retried_on_schedule_with_a_stable_id() {
    let rx = Receiver::failing_first(2).await;
    let t = Tenant::new().await;
    let (ep, secret) = t
        .webhook(&rx.url("/flaky"), json!(["partner.created"]))
        .await;
    t.partner("retry@example.com").await;
    rx.wait_for("/flaky", 20, |got| got.len() >= 3).await;
    {
        let got = rx.got.lock().unwrap();
        let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "the envelope id is stable across retries"
        );
        // Schedule × 0.001: the 2nd attempt ≥ ~5 ms after the 1st, the 3rd ≥ ~300 ms after the 2nd.
        assert!(got[2].at.duration_since(got[1].at) >= Duration::from_millis(250));
        for r in got.iter() {
            verify(&secret, r);
        }
    }
    // The log shows every attempt.
    let log = delivered(&t, &ep, 10, Duration::from_millis(50)).await;
    let d = &log["data"][0];
    assert_eq!(d["attempts"], 3);
    let statuses: Vec<i64> = d["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["httpStatus"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    assert!(d["deliveredAt"].is_string());
    assert!(d["attemptLog"][0]["latencyMs"].is_number());
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_retry_after_is_honoured() {
    let rx = Receiver::start().await;
    rx.behave(|path, nth| match path {
        "/gone" => (410, vec![], Duration::ZERO),
        _ if nth == 0 => (
            429,
            vec![("retry-after".into(), "1".into())],
            Duration::ZERO,
        ),
        _ => (200, vec![], Duration::ZERO),
    });
    let t = Tenant::new().await;
    let (gone, _) = t
        .webhook(&rx.url("/gone"), json!(["partner.created"]))
        .await;
    t.webhook(&rx.url("/busy"), json!(["partner.created"]))
        .await;
    t.partner("g1@example.com").await;
    rx.wait_for("/busy", 20, |got| got.len() >= 2).await;
    {
        let got = rx.got.lock().unwrap();
        let busy: Vec<&Received> = got.iter().filter(|r| r.path == "/busy").collect();
        assert!(
            busy[1].at.duration_since(busy[0].at) >= Duration::from_millis(950),
            "waited for Retry-After"
        );
    }
    assert!(disabled(&t, &gone).await.contains("410"));
    let before = rx.count("/gone");
    t.partner("g2@example.com").await;
    rx.wait_for("/busy", 20, |got| got.len() >= 3).await;
    assert_eq!(
        rx.count("/gone"),
        before,
        "a disabled endpoint receives nothing"
    );
}

#[tokio::test]
async fn a_slow_receiver_does_not_block_other_endpoints() {
    let rx = Receiver::start().await;
    rx.behave(|path, _| {
        (
            200,
            vec![],
            if path == "/slow" {
                Duration::from_secs(4)
            } else {
                Duration::ZERO
            },
        )
    });
    let t = Tenant::new().await;
    t.webhook(&rx.url("/slow"), json!(["partner.created"]))
        .await;
    t.webhook(&rx.url("/fast"), json!(["partner.created"]))
        .await;
    for i in 0..3 {
        t.partner(&format!("s{i}@example.com")).await;
    }
    let start = std::time::Instant::now();
    rx.wait_for("/fast", 20, |got| got.len() >= 3).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "fast endpoint waited on the slow one"
    );
}

/// The claim on a delivery outlasts the send timeout whatever `OP_WEBHOOK_RETRY_SCALE` is
/// (0.001 here): a receiver slower than the lease used to be at this scale (2 s) gets the
/// delivery once, not a second copy while the first is still in flight.
#[tokio::test]
async fn a_delivery_in_flight_is_not_sent_again() {
    let rx = Receiver::answering(200, Duration::from_secs(3)).await;
    let t = Tenant::new().await;
    let (ep, _) = t
        .webhook(&rx.url("/slow-once"), json!(["partner.created"]))
        .await;
    t.partner("once@example.com").await;
    rx.wait_for("/slow-once", 20, |got| !got.is_empty()).await;
    // The receiver holds the first attempt for 3 s; meanwhile both workers keep polling.
    let log = delivered(&t, &ep, 15, Duration::from_millis(100)).await;
    let d = &log["data"][0];
    assert_eq!(d["attempts"], 1, "{log}");
    assert_eq!(d["attemptLog"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        rx.count("/slow-once"),
        1,
        "the delivery was sent again while the first attempt was in flight"
    );
}

#[tokio::test]
async fn a_worker_killed_with_deliveries_pending_loses_nothing() {
    let rx = Receiver::answering(503, Duration::ZERO).await;
    let db = shared().database_url.clone();
    let mut stack = Stack::start(options(&db, Mode::Multi, 2), None)
        .await
        .expect("private stack");
    let t = Tenant::on(&stack.base_url).await;
    t.webhook(&rx.url("/k"), json!(["partner.created"])).await;
    let mut emails = Vec::new();
    for i in 0..15 {
        let p = t.partner(&format!("k{i}@example.com")).await;
        emails.push(p["email"].as_str().unwrap().to_string());
    }
    rx.wait_for("/k", 20, |got| got.len() >= 5).await;
    stack.kill_worker(0);
    rx.behave(|_, _| (200, vec![], Duration::ZERO));
    // A delivery the killed worker had claimed waits out its lease (45 s, unscaled) first.
    rx.wait_for("/k", 60, |got| {
        emails.iter().all(|e| {
            got.iter()
                .any(|r| r.json()["data"]["partner"]["email"] == e.as_str())
        })
    })
    .await;
    drop(stack);
}

#[tokio::test]
async fn retry_and_test_fires() {
    let rx = Receiver::failing_first(1).await;
    let t = Tenant::new().await;
    let (a, secret) = t.webhook(&rx.url("/a"), json!(["payout.created"])).await;
    let (b, _) = t.webhook(&rx.url("/b"), json!(["payout.created"])).await;
    let fired = t
        .api
        .post(
            &format!("/webhooks/{a}/test?event=commission.paid"),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(fired.body["event"]["event"], "commission.paid");
    assert_eq!(fired.body["event"]["data"]["commission"]["status"], "paid");
    let d = fired.body["delivery"].clone();
    assert_eq!(
        (d["status"].as_str(), d["httpStatus"].as_i64()),
        (Some("pending"), Some(500))
    );
    let did = d["id"].as_str().unwrap();
    let r = t
        .api
        .post(&format!("/webhooks/{a}/deliveries/{did}/retry"), json!({}))
        .await
        .expect(200);
    assert_eq!(r.body["delivery"]["status"], "delivered");
    t.api
        .post(&format!("/webhooks/{b}/deliveries/{did}/retry"), json!({}))
        .await
        .expect_error(400, "endpoint_mismatch");
    let plain = t
        .api
        .post(&format!("/webhooks/{b}/test"), json!({}))
        .await
        .expect(200);
    assert_eq!(plain.body["event"]["event"], "webhook.test");
    t.api
        .post(&format!("/webhooks/{a}/test?event=nope"), json!({}))
        .await
        .expect_error(400, "invalid_body");
    {
        let got = rx.got.lock().unwrap();
        verify(&secret, got.iter().find(|r| r.path == "/a").unwrap());
    }
    t.api
        .raw(Method::DELETE, &format!("/webhooks/{b}"), None, &[])
        .await
        .expect(200);
    t.api
        .post(&format!("/webhooks/{b}/test"), json!({}))
        .await
        .expect_error(400, "endpoint_inactive");
}

#[tokio::test]
async fn rotated_secrets_sign_with_both_for_a_while() {
    let rx = Receiver::start().await;
    let t = Tenant::new().await;
    let (ep, old) = t.webhook(&rx.url("/rot"), json!(["partner.created"])).await;
    let rotated = t
        .api
        .post(&format!("/webhooks/{ep}/rotate-secret"), json!({}))
        .await
        .expect(200);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    t.partner("rot@example.com").await;
    rx.wait_for("/rot", 20, |got| !got.is_empty()).await;
    let got = rx.got.lock().unwrap();
    let r = &got[0];
    standardwebhooks::Webhook::new(&new)
        .unwrap()
        .verify(&r.body, &r.headers)
        .expect("new secret verifies");
    standardwebhooks::Webhook::new(&old)
        .unwrap()
        .verify(&r.body, &r.headers)
        .expect("old secret still verifies");
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let rx = Receiver::answering(500, Duration::ZERO).await;
    let t = Tenant::new().await;
    let (ep, _) = t
        .webhook(&rx.url("/down"), json!(["partner.created"]))
        .await;
    // Five days × OP_WEBHOOK_RETRY_SCALE (0.001) = 7.2 minutes: pretend it started failing 10 minutes ago.
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.execute(
        &format!("UPDATE \"{schema}\".webhook_endpoints SET failing_since = now() - interval '10 minutes' WHERE id = $1"),
        &[&ep],
    )
    .await
    .unwrap();
    t.partner("down@example.com").await;
    assert!(disabled(&t, &ep).await.contains("5 days"));
}

#[tokio::test]
async fn the_outbox_drains_and_an_endpoint_gets_only_later_events() {
    let t = Tenant::new().await;
    for i in 0..3 {
        t.invited_partner(&format!("early{i}@example.com"), "E")
            .await;
    }
    // No endpoint: the pipeline consumes the outbox rows and delivers nothing.
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    let count = |table: &'static str| {
        let (db, sql) = (&db, format!("SELECT count(*) FROM \"{schema}\".{table}"));
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count("outbox").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox was not drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count("webhook_deliveries").await, 0);

    let rx = Receiver::start().await;
    t.webhook(&rx.url("/late"), json!(["partner.created"]))
        .await;
    t.invited_partner("late@example.com", "L").await;
    let emails = settled(&rx, "/late", "/data/partner/email").await;
    assert_eq!(emails, vec!["late@example.com"]);
    assert_eq!(count("outbox").await, 0, "fanned-out rows are deleted");
}

/// Event batches leave out outbox rows while nobody subscribes, and prove it in their own
/// transaction: an endpoint created a moment ago (while the worker still believes nobody
/// listens) gets the very next event.
#[tokio::test]
async fn an_endpoint_gets_the_next_event_even_while_writers_believe_nobody_listens() {
    let t = Tenant::new().await;
    let link = t.campaign_link(json!({})).await;
    t.identified_click(&link, "fence-user").await;
    let ev = |id: &str| json!({"userId": "fence-user", "type": "invoice.paid", "value": "10.00", "eventId": id});
    // Nobody listens: the worker learns so and writes without outbox rows.
    t.event(ev("before")).await.expect(201);
    let rx = Receiver::start().await;
    t.webhook(&rx.url("/fence"), json!(["commission.accrued"]))
        .await;
    t.event(ev("after")).await.expect(201);
    let events = settled(&rx, "/fence", "/data/commission/eventId").await;
    assert_eq!(events, vec!["after"]);
}

/// No worker polls every tenant: a retry is recorded in the pending-work set
/// (`control.pending_work`), and work that no worker was told of — an outbox row written
/// behind the workers' backs — is found by the safety sweep (made due now here instead of
/// waiting `OP_JOB_SWEEP_SECS`) and delivered.
#[tokio::test]
async fn retries_wait_in_the_pending_work_set_and_the_sweep_finds_the_rest() {
    let rx = Receiver::start().await;
    rx.behave(|path, _| {
        if path == "/flaky" {
            (500, vec![], Duration::ZERO)
        } else {
            (200, vec![], Duration::ZERO)
        }
    });
    let t = Tenant::new().await;
    let db = db().await;
    t.webhook(&rx.url("/flaky"), json!(["partner.created"]))
        .await;
    t.partner("flaky@example.com").await;
    rx.wait_for("/flaky", 10, |got| !got.is_empty()).await;
    poll(10, Duration::from_millis(50), || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM control.pending_work WHERE tenant_id = $1 AND job = 'webhooks'",
                &[&t.id],
            )
            .await
            .unwrap()
            .get(0);
        (n == 1).then_some(()).ok_or("no pending-work row for the retry".to_string())
    })
    .await;

    // An event nobody announced (in a tenant without retries, whose passes would find it
    // too): only the sweep can find it.
    let t = Tenant::new().await;
    t.webhook(&rx.url("/swept"), json!(["*"])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let schema = op_control::schema::schema_name(&t.id);
    db.execute(
        &format!(
            "INSERT INTO \"{schema}\".outbox (id, event_type, payload) VALUES ($1, 'partner.updated', '{{\"partner\": {{}}}}')"
        ),
        &[&format!("evt_{}", ulid::Ulid::new())],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count("/swept"), 0, "nothing woke a worker for it yet");
    db.execute(
        "UPDATE control.pending_work SET due_at = now() WHERE tenant_id = '*' AND job = 'sweep'",
        &[],
    )
    .await
    .unwrap();
    rx.wait_for("/swept", 20, |got| !got.is_empty()).await;
}
