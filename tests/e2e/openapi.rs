//! The OpenAPI document (`GET /openapi.json`, `GET /api/t/<slug>/openapi.json`): public,
//! naming where the API lives, and describing what the API really answers — every answer
//! of a money path through the API is checked against the document's schema for its
//! operation and status.

use crate::harness::{
    commission_of, fixtures::percent, gateway, single_tenant_stack, Api, Resp, Tenant,
};
use serde_json::{json, Value};

/// The operation of `pattern` (`/partners/{id}`) and `method` in `doc`.
fn operation<'d>(doc: &'d Value, method: &str, pattern: &str) -> &'d Value {
    let op = &doc["paths"][pattern][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {pattern} is not in the document");
    op
}

/// Fails unless `r` is a documented answer of the operation and its body has the schema
/// the document gives it.
#[track_caller]
fn conforms(doc: &Value, method: &str, pattern: &str, r: &Resp) {
    let op = operation(doc, method, pattern);
    let status = r.code().to_string();
    let answer = &op["responses"][&status];
    assert!(
        answer.is_object(),
        "{method} {pattern} answered {status}, which it does not document: {}",
        r.body
    );
    let Some(schema) = answer["content"]["application/json"]["schema"].as_object() else {
        return;
    };
    // The response schema inside a document holding the components its refs name.
    let mut root = json!({"components": doc["components"].clone()});
    for (k, v) in schema {
        root[k] = v.clone();
    }
    let validator = jsonschema::draft202012::new(&root).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&r.body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {pattern} {status}: the body does not conform:\n  {}\nbody: {}",
        errors.join("\n  "),
        r.body
    );
}

#[tokio::test]
async fn the_documents_are_public_and_name_where_the_api_lives() {
    let t = Tenant::new().await;
    let whole = gateway().get_ok("/openapi.json").await;
    assert_eq!(whole["openapi"], "3.1.0");
    let gw = gateway().base;
    assert_eq!(whole["servers"][0]["url"], format!("{gw}/api/t/{{slug}}"));
    assert!(whole["servers"][0]["variables"]["slug"].is_object());
    assert_eq!(
        whole["paths"]["/platform/tenants"]["servers"][0]["url"],
        gw.as_str()
    );
    assert_eq!(
        operation(&whole, "GET", "/platform/tenants")["security"],
        json!([{"platformKey": []}])
    );

    let mine = t.api.with_key(None).get_ok("/openapi.json").await;
    assert_eq!(mine["servers"][0]["url"], t.api.base.as_str());
    assert!(mine["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.starts_with("/platform")));
    assert_eq!(
        mine["paths"]["/{linkKey}"]["servers"][0]["url"],
        format!("{gw}/r/{}", t.slug)
    );
    assert_eq!(
        operation(&mine, "POST", "/attribution/identify")["security"],
        json!([])
    );
    assert_eq!(
        operation(&mine, "POST", "/attribution/events")["security"],
        json!([{"bearerKey": ["events:write"]}, {"session": []}])
    );
    // The same routes as the whole document, but for the operator's.
    let without_platform = |d: &Value| -> Vec<String> {
        let mut p: Vec<String> = d["paths"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|p| !p.starts_with("/platform"))
            .cloned()
            .collect();
        p.sort();
        p
    };
    assert_eq!(without_platform(&whole), without_platform(&mine));

    Api::new(format!("{gw}/api/t/no-such-tenant-x"), None)
        .get("/openapi.json")
        .await
        .expect_error(404, "tenant_not_found");

    // Self-hosted: the API is at /api and there is no operator API.
    let single = single_tenant_stack("op_0123456789abcdef0123456789abcdef0123456789abcdef").await;
    let api = Api::new(single.base_url.clone(), None);
    let doc = api.get_ok("/openapi.json").await;
    assert_eq!(doc["servers"][0]["url"], format!("{}/api", single.base_url));
    assert!(doc["paths"]["/platform/tenants"].is_null());
    let again = api.get_ok("/api/openapi.json").await;
    assert_eq!(again["paths"], doc["paths"]);
}

/// The money path, each answer checked against the document.
#[tokio::test]
async fn real_answers_conform_to_the_document() {
    let t = Tenant::new().await;
    let doc = t.api.get_ok("/openapi.json").await;
    let api = &t.api;

    let r = api
        .post(
            "/partners",
            json!({"email": "doc@example.com", "name": "Doc", "metadata": {"tier": 1}}),
        )
        .await
        .expect(201);
    conforms(&doc, "POST", "/partners", &r);
    let partner = r.body["id"].as_str().unwrap().to_string();
    conforms(
        &doc,
        "GET",
        "/partners/{id}",
        &api.get(&format!("/partners/{partner}")).await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/partners",
        &api.get("/partners?limit=1").await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/partners",
        &api.get("/partners?limit=0").await.expect(400),
    );
    conforms(
        &doc,
        "GET",
        "/partners/{id}",
        &api.get("/partners/01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .await
            .expect(404),
    );
    conforms(
        &doc,
        "POST",
        "/partners",
        &api.post(
            "/partners",
            json!({"email": "doc@example.com", "name": "Again"}),
        )
        .await
        .expect(409),
    );
    conforms(
        &doc,
        "POST",
        "/partners",
        &api.post("/partners", json!({"email": 5})).await.expect(400),
    );
    conforms(
        &doc,
        "GET",
        "/partners",
        &api.with_key(None).get("/partners").await.expect(401),
    );

    let r = api
        .post("/campaigns", json!({"name": "Doc", "destinationUrl": "https://shop.example/", "commissionRule": percent("20")}))
        .await
        .expect(201);
    conforms(&doc, "POST", "/campaigns", &r);
    let campaign = r.body["id"].as_str().unwrap().to_string();
    conforms(
        &doc,
        "GET",
        "/campaigns/{id}",
        &api.get(&format!("/campaigns/{campaign}")).await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/campaigns",
        &api.get("/campaigns").await.expect(200),
    );
    let r = api
        .post(
            &format!("/partners/{partner}/links"),
            json!({"campaignId": campaign, "linkKey": "doc-link"}),
        )
        .await
        .expect(201);
    conforms(&doc, "POST", "/partners/{id}/links", &r);
    conforms(
        &doc,
        "GET",
        "/partners/{id}/links",
        &api.get(&format!("/partners/{partner}/links"))
            .await
            .expect(200),
    );

    let r = api
        .post(
            "/clicks",
            json!({"linkKey": "doc-link", "ip": "198.51.100.7"}),
        )
        .await
        .expect(201);
    conforms(&doc, "POST", "/clicks", &r);
    let click = r.body["clickId"].as_str().unwrap().to_string();
    let r = t.identify(&click, "doc-user").await.expect(200);
    conforms(&doc, "POST", "/attribution/identify", &r);
    let r = t
        .event(json!({"userId": "doc-user", "type": "invoice.paid", "value": "100.00", "eventId": "inv-doc"}))
        .await
        .expect(201);
    conforms(&doc, "POST", "/attribution/events", &r);
    let r = t
        .event(json!({"userId": "doc-user", "type": "invoice.paid", "value": "100.00", "eventId": "inv-doc"}))
        .await
        .expect(200);
    conforms(&doc, "POST", "/attribution/events", &r);
    let commission = commission_of(&r.body);

    conforms(
        &doc,
        "GET",
        "/commissions",
        &api.get("/commissions").await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/commissions/{id}",
        &api.get(&format!("/commissions/{commission}"))
            .await
            .expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/partners/{id}/commissions",
        &api.get(&format!("/partners/{partner}/commissions"))
            .await
            .expect(200),
    );
    let r = api
        .post(
            &format!("/commissions/{commission}/approve"),
            json!({"force": true}),
        )
        .await;
    conforms(&doc, "POST", "/commissions/{id}/approve", &r);
    let r = t
        .event(json!({"userId": "doc-user", "type": "refund", "value": "10.00", "metadata": {"refundOf": "inv-doc"}}))
        .await;
    conforms(&doc, "POST", "/attribution/events", &r);
    conforms(
        &doc,
        "POST",
        "/payouts/run",
        &api.post("/payouts/run", json!({})).await,
    );
    conforms(
        &doc,
        "GET",
        "/payouts",
        &api.get("/payouts").await.expect(200),
    );

    conforms(
        &doc,
        "GET",
        "/api-keys",
        &api.get("/api-keys").await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/auth/introspect",
        &api.get("/auth/introspect").await.expect(200),
    );
    conforms(
        &doc,
        "GET",
        "/webhooks",
        &api.get("/webhooks").await.expect(200),
    );
    conforms(
        &doc,
        "POST",
        "/attribution/rederive",
        &api.post("/attribution/rederive", json!({}))
            .await
            .expect(200),
    );
}
