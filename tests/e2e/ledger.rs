//! The commission ledger and payouts: every transition allowed and refused, the database
//! refusing illegal ones on its own, holdback, clawbacks netted across payout runs,
//! carry-forward, minimums, currencies, concurrency and who may see what.

use crate::harness::*;
use serde_json::{json, Value};

/// A tenant with one partner link; `earn` turns a paying event into a commission id.
struct Shop {
    t: Tenant,
    partner: String,
    user: String,
}

impl Shop {
    async fn new(rule: Value, holdback: i64) -> Shop {
        let t = Tenant::new().await;
        let link = t
            .campaign_link(json!({"commissionRule": rule, "holdbackDays": holdback}))
            .await;
        let user = unique_slug("u");
        t.identified_click(&link, &user).await;
        Shop {
            t,
            partner: link.partner,
            user,
        }
    }

    async fn earn(&self, value: &str, currency: &str) -> (String, String) {
        let event_id = unique_slug("inv");
        let r = self
            .t
            .event(json!({"userId": self.user, "type": "invoice.paid", "value": value, "currency": currency, "eventId": event_id}))
            .await
            .expect(201);
        (commission_of(&r.body), event_id)
    }

    async fn approve(&self, id: &str) -> Resp {
        self.t
            .api
            .post(&format!("/commissions/{id}/approve"), json!({}))
            .await
    }

    async fn reverse(&self, id: &str) -> Resp {
        self.t
            .api
            .post(
                &format!("/commissions/{id}/reverse"),
                json!({"reason": "test"}),
            )
            .await
    }

    async fn status(&self, id: &str) -> String {
        self.t.api.get_ok(&format!("/commissions/{id}")).await["commission"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn every_transition_allowed_and_refused() {
    let s = Shop::new(percent("10"), 0).await;
    // accrued -> reversed; then nothing leaves reversed.
    let (a, _) = s.earn("100.00", "USD").await;
    let r = s.reverse(&a).await.expect(200);
    assert_eq!(r.body["commission"]["status"], "reversed");
    assert_eq!(r.body["commission"]["reverseReason"], "test");
    s.approve(&a).await.expect_error(409, "not_approvable");
    s.reverse(&a).await.expect_error(409, "not_reversible");
    // accrued -> approved -> reversed.
    let (b, _) = s.earn("100.00", "USD").await;
    let r = s.approve(&b).await.expect(200);
    assert!(r.body["commission"]["approvedAt"].is_string());
    s.approve(&b).await.expect_error(409, "not_approvable");
    s.reverse(&b).await.expect(200);
    // accrued -> approved -> paid; paid is terminal.
    let (c, _) = s.earn("100.00", "USD").await;
    s.approve(&c).await.expect(200);
    s.t.api.post("/payouts/run", json!({})).await.expect(200);
    assert_eq!(s.status(&c).await, "paid");
    s.approve(&c).await.expect_error(409, "not_approvable");
    s.reverse(&c).await.expect_error(409, "not_reversible");
    s.approve(&ulid::Ulid::new().to_string())
        .await
        .expect_error(404, "not_found");
    // Every step is in the append-only history, with who did it.
    let h = s.t.api.get_ok(&format!("/commissions/{c}")).await["commission"]["history"].clone();
    let steps: Vec<(String, String)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("new", "accrued"),
        ("accrued", "approved"),
        ("approved", "paid"),
    ];
    assert_eq!(
        steps,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(h[1]["by"]["kind"], "admin");
}

#[tokio::test]
async fn the_database_refuses_illegal_transitions_by_itself() {
    let s = Shop::new(percent("10"), 0).await;
    let (c, _) = s.earn("100.00", "USD").await;
    s.approve(&c).await.expect(200);
    s.t.api.post("/payouts/run", json!({})).await.expect(200);
    let db = db().await;
    let schema = op_control::schema::schema_name(&s.t.id);
    // The SQLSTATE each refusal comes with (so a statement refused for another reason, e.g.
    // one a distributed database cannot run, does not pass for a refusal).
    let q = |sql: String| {
        let db = &db;
        async move {
            db.batch_execute(&sql)
                .await
                .err()
                .and_then(|e| e.code().cloned())
        }
    };
    // Changing the status without a ledger entry.
    assert_eq!(q(format!("UPDATE \"{schema}\".commissions SET status = 'accrued', paid_at = NULL, approved_at = NULL WHERE id = '{c}'")).await, Some(tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION));
    // A ledger entry for a transition that does not exist (paid -> accrued).
    let last: String = db
        .query_one(
            &format!("SELECT last_transition_id FROM \"{schema}\".commissions WHERE id = $1"),
            &[&c],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        q(format!(
        "INSERT INTO \"{schema}\".commission_ledger (id, commission_id, from_status, to_status, prev_id, amount, principal_kind)
         VALUES ('x1', '{c}', 'paid', 'accrued', '{last}', 10, 'test')"
    ))
    .await,
        Some(tokio_postgres::error::SqlState::CHECK_VIOLATION)
    );
    // Forking the history (a second successor of the same entry). A copy of the last entry
    // under another id, as plain VALUES (Citus cannot run this INSERT ... SELECT).
    let e = db
        .query_one(
            &format!("SELECT from_status, to_status, prev_id, amount::text FROM \"{schema}\".commission_ledger WHERE id = $1"),
            &[&last],
        )
        .await
        .unwrap();
    let (from, to, prev, amount): (String, String, String, String) =
        (e.get(0), e.get(1), e.get(2), e.get(3));
    assert_eq!(
        q(format!(
        "INSERT INTO \"{schema}\".commission_ledger (id, commission_id, from_status, to_status, prev_id, amount, principal_kind)
         VALUES ('x2', '{c}', '{from}', '{to}', '{prev}', {amount}, 'test')"
    ))
    .await,
        Some(tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    assert_eq!(s.status(&c).await, "paid");
}

#[tokio::test]
async fn holdback_blocks_approval_until_maturity() {
    let s = Shop::new(percent("10"), 10).await;
    let (c, _) = s.earn("100.00", "USD").await;
    let e = s.approve(&c).await.expect_error(409, "holdback_active");
    assert_eq!(e.body["holdbackDays"], 10);
    let mature = e.body["matureAt"].as_str().unwrap().to_string();
    let got = s.t.api.get(&format!("/commissions/{c}")).await.body["commission"].clone();
    assert_eq!(got["matureAt"], mature.as_str());
    assert_eq!(got["holdbackDays"], 10);
    // Time passes (maturity is data, not state: moving it is not a transition).
    let db = db().await;
    let schema = op_control::schema::schema_name(&s.t.id);
    db.execute(&format!("UPDATE \"{schema}\".commissions SET mature_at = now() - interval '1 second' WHERE id = $1"), &[&c])
        .await
        .unwrap();
    s.approve(&c).await.expect(200);
}

#[tokio::test]
async fn clawbacks_are_netted_across_payout_runs_and_negative_balances_carry_forward() {
    let s = Shop::new(percent("20"), 0).await;
    let (c1, inv1) = s.earn("100.00", "USD").await; // 20.00
    s.approve(&c1).await.expect(200);
    let run1 = s.t.api.post("/payouts/run", json!({})).await.expect(200);
    assert_eq!(run1.body["mode"], "manual");
    assert_eq!(run1.body["payouts"][0]["amount"], "20.00");
    // The customer is refunded after the partner was paid: a -20.00 clawback.
    let refund = json!({"userId": s.user, "type": "refund", "eventId": unique_slug("rf"), "metadata": {"refundOf": inv1}});
    let r = s.t.event(refund).await.expect(201);
    assert_eq!(r.body["refund"]["adjustments"][0]["amount"], "-20.00");
    assert_eq!(r.body["refund"]["adjustments"][0]["status"], "approved");
    let (c2, _) = s.earn("75.00", "USD").await; // 15.00
    s.approve(&c2).await.expect(200);
    let run2 = s.t.api.post("/payouts/run", json!({})).await.expect(200);
    assert_eq!(
        run2.body["payouts"],
        json!([]),
        "15.00 - 20.00 < 0: carried forward, never a negative payout"
    );
    let (c3, _) = s.earn("50.00", "USD").await; // 10.00
    s.approve(&c3).await.expect(200);
    let run3 = s.t.api.post("/payouts/run", json!({})).await.expect(200);
    let p = &run3.body["payouts"][0];
    assert_eq!(
        (p["amount"].as_str(), p["partnerId"].as_str()),
        (Some("5.00"), Some(s.partner.as_str()))
    );
    assert_eq!(p["commissionIds"].as_array().unwrap().len(), 3);
    assert_eq!(p["payoutId"], p["id"]);
    // A payout's amount is the exact sum of its commissions.
    let full =
        s.t.api
            .get(&format!("/payouts/{}", p["id"].as_str().unwrap()))
            .await
            .expect(200);
    let sum: rust_decimal::Decimal = full.body["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(sum.to_string(), "5.00");
}

#[tokio::test]
async fn currencies_minimums_and_mark_paid() {
    let s = Shop::new(percent("10"), 0).await;
    let (u, _) = s.earn("100.00", "USD").await;
    let (e, _) = s.earn("80.00", "EUR").await;
    let (j, _) = s.earn("1000", "JPY").await;
    for c in [&u, &e, &j] {
        s.approve(c).await.expect(200);
    }
    let r =
        s.t.api
            .post(
                "/payouts/run",
                json!({"minimums": {"USD": "100.00", "JPY": "50"}}),
            )
            .await
            .expect(200);
    let mut paid: Vec<(String, String)> = r.body["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["currency"].as_str().unwrap().into(),
                p["amount"].as_str().unwrap().into(),
            )
        })
        .collect();
    paid.sort();
    assert_eq!(
        paid,
        vec![("EUR".into(), "8.00".into()), ("JPY".into(), "100".into())],
        "USD 10.00 is under its minimum"
    );
    s.t.api
        .post("/payouts/run", json!({"minimums": {"USD": "1.005"}}))
        .await
        .expect_error(400, "invalid_amount");
    s.t.api
        .post("/payouts/run", json!({"minimums": {"usd": "1"}}))
        .await
        .expect_error(400, "invalid_currency");
    let r = s.t.api.post("/payouts/run", json!({})).await.expect(200);
    let usd = r.body["payouts"][0].clone();
    assert_eq!(
        (
            usd["currency"].as_str(),
            usd["amount"].as_str(),
            usd["status"].as_str()
        ),
        (Some("USD"), Some("10.00"), Some("pending"))
    );
    let id = usd["id"].as_str().unwrap();
    let m =
        s.t.api
            .post(&format!("/payouts/{id}/mark-paid"), json!({}))
            .await
            .expect(200);
    assert_eq!(m.body["payout"]["status"], "paid");
    s.t.api
        .post(&format!("/payouts/{id}/mark-paid"), json!({}))
        .await
        .expect_error(409, "not_pending");
    let list = s.t.api.get("/payouts").await.expect(200);
    assert_eq!(list.body["data"], list.body["payouts"]);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_payout_runs_never_pay_a_commission_twice() {
    let s = Shop::new(percent("10"), 0).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let (c, _) = s.earn(&format!("{}.00", 10 + i), "USD").await;
        s.approve(&c).await.expect(200);
        ids.push(c);
    }
    let runs = (0..5).map(|_| {
        let api = s.t.api.clone();
        async move { api.post("/payouts/run", json!({})).await }
    });
    let results = futures::future::join_all(runs).await;
    let mut paid_ids: Vec<String> = Vec::new();
    let mut total = rust_decimal::Decimal::ZERO;
    for r in &results {
        assert_eq!(r.code(), 200, "{}", r.body);
        for p in r.body["payouts"].as_array().unwrap() {
            total += p["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap();
            paid_ids.extend(
                p["commissionIds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string()),
            );
        }
    }
    paid_ids.sort();
    ids.sort();
    assert_eq!(paid_ids, ids, "each commission paid exactly once");
    assert_eq!(total.to_string(), "10.80"); // 10% of 10+11+…+17
}

#[tokio::test]
async fn bulk_changes_are_all_or_nothing() {
    let s = Shop::new(percent("10"), 0).await;
    let (a, _) = s.earn("10.00", "USD").await;
    let (b, _) = s.earn("20.00", "USD").await;
    let (c, _) = s.earn("30.00", "USD").await;
    s.approve(&c).await.expect(200);
    let ghost = ulid::Ulid::new().to_string();
    let r =
        s.t.api
            .post("/commissions/approve", json!({"ids": [a, b, c, ghost]}))
            .await
            .expect_error(409, "bulk_failed");
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(s.status(&a).await, "accrued", "nothing changed");
    let ok =
        s.t.api
            .post("/commissions/approve", json!({"ids": [a, b]}))
            .await
            .expect(200);
    assert_eq!(ok.body["commissions"].as_array().unwrap().len(), 2);
    let rev =
        s.t.api
            .post(
                "/commissions/reverse",
                json!({"ids": [a, c], "reason": "fraud"}),
            )
            .await
            .expect(200);
    assert!(rev.body["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "reversed"));
    let ids: Vec<String> = (0..101).map(|_| ulid::Ulid::new().to_string()).collect();
    s.t.api
        .post("/commissions/approve", json!({"ids": ids}))
        .await
        .expect_error(400, "invalid_body");
    s.t.api
        .post("/commissions/approve", json!({"ids": []}))
        .await
        .expect_error(400, "invalid_body");
}

#[tokio::test]
async fn partners_see_only_their_own_commissions() {
    let s = Shop::new(percent("10"), 0).await;
    let (mine, _) = s.earn("10.00", "USD").await;
    let other =
        s.t.partner(&format!("{}@example.com", unique_slug("o")))
            .await;
    let pk = s.t.partner_api(&s.partner).await;
    let own = pk
        .get(&format!("/partners/{}/commissions", s.partner))
        .await
        .expect(200);
    assert_eq!(own.body["data"], own.body["commissions"]);
    assert_eq!(own.body["data"][0]["id"], mine.as_str());
    assert_eq!(
        own.body["data"][0]["campaignId"],
        own.body["data"][0]["programId"]
    );
    pk.get(&format!(
        "/partners/{}/commissions",
        other["id"].as_str().unwrap()
    ))
    .await
    .expect_error(403, "forbidden");
    pk.get("/commissions").await.expect_error(403, "forbidden");
    pk.post(&format!("/commissions/{mine}/approve"), json!({}))
        .await
        .expect_error(403, "forbidden");
    let rk = s.t.scoped_api(&["commissions:read"]).await;
    let listed = rk
        .get(&format!(
            "/commissions?status=accrued&partnerId={}",
            s.partner
        ))
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    rk.get("/commissions?status=bogus")
        .await
        .expect_error(400, "invalid_query");
    rk.post(&format!("/commissions/{mine}/approve"), json!({}))
        .await
        .expect_error(403, "forbidden");
}

#[tokio::test]
async fn reasons_and_list_filters_are_validated_before_the_database() {
    let s = Shop::new(percent("10"), 0).await;
    let (a, _) = s.earn("10.00", "USD").await;
    let (b, _) = s.earn("20.00", "USD").await;
    // PostgreSQL text cannot hold NUL: refused as input, not a 500.
    s.t.api
        .post(
            &format!("/commissions/{a}/reverse"),
            json!({"reason": "a\u{0}b"}),
        )
        .await
        .expect_error(400, "invalid_body");
    s.t.api
        .post(
            "/commissions/reverse",
            json!({"ids": [a], "reason": "a\u{0}b"}),
        )
        .await
        .expect_error(400, "invalid_body");
    for path in [
        "/commissions?partnerId=%00",
        "/commissions?campaignId=x%00",
        "/commissions?programId=%00",
        "/payouts?partnerId=%00",
        "/payouts?status=bogus",
    ] {
        s.t.api.get(path).await.expect_error(400, "invalid_query");
    }
    // A bulk reversal's reason follows the single one's rules: at most 1,000 characters,
    // trimmed.
    s.t.api
        .post(
            "/commissions/reverse",
            json!({"ids": [a], "reason": "x".repeat(1001)}),
        )
        .await
        .expect_error(400, "invalid_body");
    let r =
        s.t.api
            .post(
                "/commissions/reverse",
                json!({"ids": [a, b], "reason": "  fraud  "}),
            )
            .await
            .expect(200);
    for c in r.body["commissions"].as_array().unwrap() {
        assert_eq!(c["reverseReason"], "fraud");
    }
    let got = s.t.api.get(&format!("/commissions/{a}")).await.expect(200);
    assert_eq!(got.body["commission"]["history"][1]["reason"], "fraud");
    let paid = s.t.api.get("/payouts?status=paid").await.expect(200);
    assert_eq!(paid.body["data"], json!([]));
}
