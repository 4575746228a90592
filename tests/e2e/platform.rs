//! Operator endpoints: provisioning and listing tenants with OP_PLATFORM_KEY.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn provisioning_a_tenant() {
    let gw = &shared().stack.base_url;
    let p = platform(gw);
    let slug = unique_slug("acme");
    let r = p
        .post(
            "/platform/tenants",
            json!({"slug": slug, "name": "Acme Inc", "adminEmail": "boss@acme.example"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["tenant"]["slug"], slug.as_str());
    assert_eq!(r.body["tenant"]["name"], "Acme Inc");
    assert_eq!(r.body["tenant"]["status"], "active");
    assert!(r.body["tenant"]["createdAt"].is_string());
    let key = r.body["adminKey"].as_str().unwrap();
    // The new tenant answers at once with its admin key.
    Api::new(format!("{gw}/api/t/{slug}"), Some(key))
        .get("/partners")
        .await
        .expect(200);

    p.post("/platform/tenants", json!({"slug": slug, "name": "Again"}))
        .await
        .expect_error(409, "slug_taken");
    for reserved in ["default", "api", "platform", "metrics"] {
        p.post("/platform/tenants", json!({"slug": reserved, "name": "R"}))
            .await
            .expect_error(400, "slug_reserved");
    }
    for bad in ["A", "Bad_Slug", "-x", ""] {
        let r = p
            .post("/platform/tenants", json!({"slug": bad, "name": "B"}))
            .await;
        assert_eq!(r.code(), 400, "{bad}: {}", r.body);
    }
    p.post("/platform/tenants", json!({"name": "no slug"}))
        .await
        .expect_error(400, "invalid_body");
}

#[tokio::test]
async fn platform_needs_the_platform_key() {
    let gw = &shared().stack.base_url;
    Api::new(gw.clone(), None)
        .get("/platform/tenants")
        .await
        .expect_error(401, "unauthorized");
    Api::new(gw.clone(), Some("opp_wrong_key_wrong_key_wrong"))
        .get("/platform/tenants")
        .await
        .expect_error(401, "unauthorized");
    // A tenant admin key is not a platform key.
    let t = Tenant::new().await;
    Api::new(gw.clone(), Some(&t.admin_key))
        .get("/platform/tenants")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn listing_tenants_is_paginated() {
    let gw = &shared().stack.base_url;
    for _ in 0..3 {
        Tenant::new().await;
    }
    let p = platform(gw);
    let first = p.get("/platform/tenants?limit=2").await.expect(200);
    assert_eq!(first.body["data"], first.body["tenants"]);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    let cursor = first.body["nextCursor"].as_str().expect("more pages");
    let second = p
        .get(&format!("/platform/tenants?limit=2&cursor={cursor}"))
        .await
        .expect(200);
    let a: Vec<&str> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let b: Vec<&str> = second.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(a.iter().all(|id| !b.contains(id)));
    p.post("/platform/tenants/no-such-tenant-x/suspend", json!({}))
        .await
        .expect_error(404, "tenant_not_found");
}
