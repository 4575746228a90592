//! Single-tenant (self-host) mode, HTTP/2, and a second gateway learning about changes
//! through LISTEN/NOTIFY.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

/// What the other gateway waits for (cross-process notification is asynchronous by nature).
const NOTIFIED: &str = "the other gateway is notified";

#[tokio::test]
async fn single_tenant_mode_serves_api_without_slug() {
    let admin = "single-mode-admin-key-0123456789";
    let stack = single_tenant_stack(admin).await;
    let gw = Api::new(stack.base_url.clone(), None);
    assert_eq!(gw.get_ok("/health").await["mode"], "single");

    let api = Api::new(format!("{}/api", stack.base_url), Some(admin));
    let email = format!("{}@single.example", unique_slug("s"));
    api.post("/partners", json!({"email": email, "name": "Solo"}))
        .await
        .expect(201);
    let list = api
        .get(&format!("/partners?email={email}"))
        .await
        .expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    api.with_key(Some("not-the-admin-key-0123456789"))
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    // No tenant prefix and no platform API in single mode.
    api.get("/t/acme/partners")
        .await
        .expect_error(404, "not_found");
    Api::new(stack.base_url.clone(), Some(PLATFORM_KEY))
        .get("/platform/tenants")
        .await
        .expect_error(404, "not_found");
    // Minted keys work too.
    let k = api
        .post("/api-keys", json!({"label": "rotation"}))
        .await
        .expect(201)
        .body;
    api.with_key(k["key"].as_str())
        .get("/partners")
        .await
        .expect(200);
}

#[tokio::test]
async fn the_gateway_speaks_http2() {
    let t = Tenant::new().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/partners", t.api.base))
        .bearer_auth(&t.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn another_gateway_sees_revocations_and_suspensions_via_notify() {
    let other = private_stack(&[]).await;
    let t = Tenant::new().await;
    let key = t.api.post("/api-keys", json!({})).await.expect(201).body;
    let via_other = t.api_via(&other.base_url).with_key(key["key"].as_str());
    // Warm the other gateway's caches.
    via_other.get("/partners").await.expect(200);

    t.api
        .delete(&format!("/api-keys/{}", key["id"].as_str().unwrap()))
        .await
        .expect(200);
    wait_until(NOTIFIED, 3, || async {
        via_other.get("/partners").await.code() == 401
    })
    .await;

    let admin_other = via_other.with_key(Some(&t.admin_key));
    admin_other.get("/partners").await.expect(200);
    platform(&shared().stack.base_url)
        .post(&format!("/platform/tenants/{}/suspend", t.slug), json!({}))
        .await
        .expect(200);
    wait_until(NOTIFIED, 3, || async {
        admin_other.get("/partners").await.error() == "tenant_suspended"
    })
    .await;
}

#[tokio::test]
async fn sessions_end_on_every_gateway_signed_out_or_revoked() {
    let other = private_stack(&[]).await;
    let t = Tenant::new().await;
    let p = t.partner("two-gateways@example.com").await;
    let pid = p["id"].as_str().unwrap();
    let me = |api: &Api, cookie: &str| {
        let (api, cookie) = (api.clone(), cookie.to_string());
        async move { api.get_with_cookie("/auth/me", &cookie).await.code() }
    };
    let here = t.api.clone();
    let there = t.api_via(&other.base_url);

    // Sign-out through this gateway: refused here on the very next request, and on the
    // other gateway (which had the session cached as live) once the NOTIFY arrives.
    let (cookie, _) = t.sign_in("two-gateways@example.com").await;
    assert_eq!(me(&here, &cookie).await, 200);
    assert_eq!(me(&there, &cookie).await, 200);
    here.with_cookie(Method::POST, "/auth/signout", &cookie, None)
        .await
        .expect(200);
    assert_eq!(me(&here, &cookie).await, 401);
    wait_until(NOTIFIED, 3, || async { me(&there, &cookie).await == 401 }).await;

    // Revoking the partner ends its other sessions the same way.
    let (cookie, _) = t.sign_in("two-gateways@example.com").await;
    assert_eq!(me(&here, &cookie).await, 200);
    assert_eq!(me(&there, &cookie).await, 200);
    t.revoke_partner(pid).await;
    assert_eq!(me(&here, &cookie).await, 401);
    wait_until(NOTIFIED, 3, || async { me(&there, &cookie).await == 401 }).await;
}

#[tokio::test]
async fn metrics_keep_the_originals_names_and_honour_the_token() {
    let t = Tenant::new().await;
    t.partner("m@example.com").await;
    let r = reqwest::get(format!("{}/metrics", shared().stack.base_url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for series in [
        "op_gateway_requests_total{",
        "op_gateway_request_duration_seconds_bucket{",
        "op_gateway_workers_healthy 2",
        "openpartner_clicks_total ",
        "openpartner_clicks_flagged_total ",
        "openpartner_identities_total ",
        "openpartner_events_total ",
        "openpartner_attributions_total ",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(
        !text.contains(&t.slug) && !text.contains(&t.id),
        "never labelled by tenant"
    );

    let stack = private_stack(&[("METRICS_TOKEN", "scrape-token-123")]).await;
    let url = format!("{}/metrics", stack.base_url);
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(&url)
            .bearer_auth("scrape-token-123")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
