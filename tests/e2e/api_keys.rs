//! Admin API keys: mint, list (never plaintext), revoke with immediate effect.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn minted_admin_keys_work_and_revocation_is_immediate() {
    let t = Tenant::new().await;
    let r = t
        .api
        .post("/api-keys", json!({"label": "ci"}))
        .await
        .expect(201);
    let key = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(r.body["plaintext"], r.body["key"]);
    assert!(key.starts_with("op_") && key.len() == 51);
    assert_eq!(r.body["prefix"], &key[3..11]);
    assert_eq!(r.body["label"], "ci");
    let id = r.body["id"].as_str().unwrap().to_string();

    let k = t.api.with_key(Some(&key));
    k.get("/partners").await.expect(200);

    let list = t.api.get("/api-keys").await.expect(200);
    assert_eq!(list.body["data"], list.body["apiKeys"]);
    let text = list.body.to_string();
    assert!(text.contains(&id));
    assert!(!text.contains(&key), "plaintext is shown once only");
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        2,
        "provisioning key + this one"
    );

    t.api.delete(&format!("/api-keys/{id}")).await.expect(200);
    // The very next request with it fails.
    k.get("/partners").await.expect_error(401, "unauthorized");
    t.api
        .delete(&format!("/api-keys/{id}"))
        .await
        .expect_error(404, "not_found");
    t.api.get("/partners").await.expect(200);
}

#[tokio::test]
async fn scoped_keys_reach_only_their_scopes() {
    let t = Tenant::new().await;
    let r = t
        .api
        .post("/api-keys", json!({"scopes": ["partners:read"]}))
        .await
        .expect(201);
    assert_eq!(r.body["scopes"], json!(["partners:read"]));
    let k = t.api.with_key(Some(r.body["key"].as_str().unwrap()));
    k.get("/partners").await.expect(200);
    let e = k
        .post("/partners", json!({"email": "s@example.com", "name": "S"}))
        .await
        .expect_error(403, "forbidden_scope");
    assert_eq!(e.body["required"], "partners:write");
    k.get("/api-keys").await.expect_error(403, "forbidden");
    t.api
        .post("/api-keys", json!({"scopes": ["root"]}))
        .await
        .expect_error(400, "invalid_scope");
}

#[tokio::test]
async fn keys_of_one_tenant_are_not_listed_or_revocable_by_another() {
    let a = Tenant::new().await;
    let b = Tenant::new().await;
    let bk = b.api.post("/api-keys", json!({})).await.expect(201).body;
    let bid = bk["id"].as_str().unwrap();
    let list = a.api.get("/api-keys").await.expect(200);
    assert!(!list.body.to_string().contains(bid));
    a.api
        .delete(&format!("/api-keys/{bid}"))
        .await
        .expect_error(404, "not_found");
    b.api
        .with_key(bk["key"].as_str())
        .get("/partners")
        .await
        .expect(200);
}
