//! Tenant prefix handling, tenant isolation and the gateway's own answers.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn api_without_slug_is_tenant_slug_missing() {
    let gw = gateway();
    let r = gw
        .get("/api/partners")
        .await
        .expect_error(400, "tenant_slug_missing");
    assert!(r.body["detail"].as_str().unwrap().contains("/t/"));
    gw.post("/api/partners", json!({}))
        .await
        .expect_error(400, "tenant_slug_missing");
}

#[tokio::test]
async fn unknown_or_malformed_slug_is_tenant_not_found() {
    let gw = gateway();
    for slug in [
        "no-such-tenant-here",
        "UPPER",
        "a",
        "bad_slug",
        &"x".repeat(41),
        "-lead",
    ] {
        gw.get(&format!("/api/t/{slug}/partners"))
            .await
            .expect_error(404, "tenant_not_found");
    }
}

#[tokio::test]
async fn health_and_ready() {
    let gw = gateway();
    let h = gw.get("/health").await.expect(200);
    assert_eq!(
        h.body,
        json!({"ok": true, "service": "gateway", "mode": "multi"})
    );
    let r = gw.get("/ready").await.expect(200);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["workers"], 2);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let t = Tenant::new().await;
    t.api
        .get("/no-such-route")
        .await
        .expect_error(404, "not_found");
    let r = t
        .api
        .raw(Method::PUT, "/partners", None, &[])
        .await
        .expect_error(405, "method_not_allowed");
    assert!(r.headers["allow"].to_str().unwrap().contains("GET"));
    gateway()
        .get("/nowhere")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let t = Tenant::new().await;
    let r = t
        .api
        .get_with("/partners", &[("x-request-id", "trace-abc-123")])
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-abc-123");
    let long = "x".repeat(129);
    let r = t
        .api
        .get_with("/partners", &[("x-request-id", &long)])
        .await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 26, "a fresh ULID replaces an over-long id");
    assert!(ulid::Ulid::from_string(id).is_ok());
    // Errors produced by the gateway itself carry one too.
    let r = gateway().get("/api/partners").await;
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let t = Tenant::new().await;
    t.api
        .with_key(None)
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    t.api
        .with_key(Some("nonsense"))
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    let well_formed_unknown = format!("op_{}", "ab".repeat(24));
    t.api
        .with_key(Some(&well_formed_unknown))
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    let r = t
        .api
        .with_key(None)
        .get_with("/partners", &[("authorization", "Basic dXNlcjpwYXNz")])
        .await;
    r.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn a_key_of_tenant_a_is_401_on_tenant_b_and_sees_nothing() {
    let a = Tenant::new().await;
    let b = Tenant::new().await;
    let secret = b.partner("only-in-b@example.com").await;
    let a_on_b = b.api.with_key(Some(&a.admin_key));
    for path in [
        "/partners",
        &format!("/partners/{}", secret["id"].as_str().unwrap()),
        "/api-keys",
    ] {
        let r = a_on_b.get(path).await.expect_error(401, "unauthorized");
        assert!(!r.body.to_string().contains("only-in-b"));
    }
    a_on_b
        .post("/partners", json!({"email": "x@example.com", "name": "X"}))
        .await
        .expect_error(401, "unauthorized");
    // And A's own view has none of B's partners.
    let list = a.api.get("/partners").await.expect(200);
    assert_eq!(list.body["data"], json!([]));
    a.api
        .get(&format!("/partners/{}", secret["id"].as_str().unwrap()))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn suspended_tenants_are_refused_until_resumed() {
    let t = Tenant::new().await;
    t.api.get("/partners").await.expect(200);
    let p = platform(&shared().stack.base_url);
    p.post(&format!("/platform/tenants/{}/suspend", t.slug), json!({}))
        .await
        .expect(200);
    // Effective on the very next request: the worker's reply invalidated the gateway cache.
    t.api
        .get("/partners")
        .await
        .expect_error(403, "tenant_suspended");
    p.post(&format!("/platform/tenants/{}/resume", t.slug), json!({}))
        .await
        .expect(200);
    t.api.get("/partners").await.expect(200);
}

#[tokio::test]
async fn body_limit_is_413() {
    let t = Tenant::new().await;
    let big = format!(
        "{{\"email\":\"a@b.co\",\"name\":\"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    t.api
        .raw(Method::POST, "/partners", Some(big.into_bytes()), &[])
        .await
        .expect_error(413, "payload_too_large");
}
