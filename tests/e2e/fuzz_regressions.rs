//! Defects `scripts/fuzz-api` (Schemathesis) found, one test each, so they stay fixed.

use crate::harness::Tenant;
use serde_json::json;

/// PostgreSQL's `text` and `jsonb` cannot hold NUL: a `\u0000` anywhere in a JSON body
/// was a database error (`22P05`/`22021`, a `500`); now it is refused before any statement.
#[tokio::test]
async fn nul_in_a_body_or_a_query_is_a_400_not_a_database_error() {
    let t = Tenant::new().await;
    for body in [
        json!({"email": "nul@example.com", "name": "a\u{0}b"}),
        json!({"email": "nul@example.com", "name": "N", "metadata": {"k": "v\u{0}"}}),
        json!({"email": "nul@example.com", "name": "N", "metadata": {"k\u{0}": 1}}),
    ] {
        t.api
            .post("/partners", body)
            .await
            .expect_error(400, "invalid_body");
    }
    t.api
        .post("/campaigns", json!({"name": "x\u{0}", "destinationUrl": "https://a.example/", "commissionRule": {"type": "percent", "value": "1"}}))
        .await
        .expect_error(400, "invalid_body");
    t.api
        .post(
            "/attribution/events",
            json!({"userId": "u\u{0}", "type": "signup"}),
        )
        .await
        .expect_error(400, "invalid_body");
    t.api
        .post(
            "/webhooks",
            json!({"url": "http://example.com/a\u{0}b", "events": ["*"]}),
        )
        .await
        .expect_error(400, "invalid_body");
    t.api
        .post("/attribution/rederive", json!({"campaignId": "a\u{0}b"}))
        .await
        .expect_error(400, "invalid_body");
    t.api
        .get("/partners?email=a%00b")
        .await
        .expect_error(400, "invalid_query");
    t.api
        .get("/commissions?status=%00")
        .await
        .expect_error(400, "invalid_query");
    // Nothing was written, and a backslash followed by `u0000` as text is fine.
    let ok = t
        .api
        .post(
            "/partners",
            json!({"email": "nul@example.com", "name": "back\\u0000slash"}),
        )
        .await
        .expect(201);
    assert_eq!(ok.body["name"], "back\\u0000slash");
    let all = t.api.get("/partners").await.expect(200);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
}

/// A well-formed cursor naming a time PostgreSQL cannot hold (long before 4713 BC) reached
/// the database as a parameter: a `500` instead of `400 invalid_cursor`.
#[tokio::test]
async fn a_forged_cursor_far_in_the_past_is_an_invalid_cursor() {
    use base64::Engine;
    let t = Tenant::new().await;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode("v1.-8000000000000000000.01ARZ3NDEKTSV4RRFFQ69G5FAV");
    for list in [
        "/partners",
        "/commissions",
        "/campaigns",
        "/payouts",
        "/webhooks",
    ] {
        t.api
            .get(&format!("{list}?cursor={forged}"))
            .await
            .expect_error(400, "invalid_cursor");
    }
}
