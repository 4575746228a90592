//! Webhook endpoint management: the secret is shown once and stored only sealed, event
//! subscriptions are validated, URLs pass the SSRF guard on create and on change, soft and
//! hard deletes, secret rotation, who may manage endpoints, and tenant isolation.

use crate::harness::*;
use op_worker::secrets::SecretsKey;
use reqwest::Method;
use serde_json::{json, Value};

const URL: &str = "http://127.0.0.1:9/hook";

async fn create(api: &Api, body: Value) -> (String, String, Value) {
    let r = api.post("/webhooks", body).await.expect(201);
    let ep = r.body["endpoint"].clone();
    (
        ep["id"].as_str().expect("id").to_string(),
        r.body["secret"].as_str().expect("secret").to_string(),
        ep,
    )
}

/// `whsec_` + standard base64 of 24 bytes: 32 characters of the standard alphabet, no padding.
#[track_caller]
fn assert_secret_shape(s: &str) {
    let b64 = s.strip_prefix("whsec_").unwrap_or_else(|| panic!("{s}"));
    assert_eq!(b64.len(), 32, "{s}");
    assert!(
        b64.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "{s}"
    );
}

/// `(secret_sealed, previous_secret_sealed, seconds until previous_secret_until)`.
async fn sealed(t: &Tenant, id: &str) -> (Vec<u8>, Option<Vec<u8>>, Option<f64>) {
    let schema = op_control::schema::schema_name(&t.id);
    let row = db()
        .await
        .query_one(
            &format!(
                "SELECT secret_sealed, previous_secret_sealed,
                        extract(epoch FROM previous_secret_until - now())::float8
                   FROM \"{schema}\".webhook_endpoints WHERE id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn create_shows_the_secret_once_and_stores_it_only_sealed() {
    let t = Tenant::new().await;
    let (id, secret, ep) = create(
        &t.api,
        json!({"url": URL, "events": ["partner.created", "commission.accrued"], "label": " prod "}),
    )
    .await;
    assert_secret_shape(&secret);
    assert_eq!(id.len(), 26, "a bare ULID: {id}");
    assert!(ulid::Ulid::from_string(&id).is_ok(), "{id}");
    assert_eq!(ep["url"], URL);
    assert_eq!(
        ep["events"],
        json!(["partner.created", "commission.accrued"])
    );
    assert_eq!(ep["label"], "prod");
    assert_eq!(ep["active"], true);
    assert_eq!(ep["disabledReason"], Value::Null);
    assert_eq!(ep["failingSince"], Value::Null);
    assert!(ep["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ep["createdAt"], ep["updatedAt"]);
    assert!(ep.get("secret").is_none());

    // Two endpoints never share a secret.
    let (_, other_secret, _) = create(&t.api, json!({"url": URL, "events": ["*"]})).await;
    assert_secret_shape(&other_secret);
    assert_ne!(secret, other_secret);

    let got = t.api.get(&format!("/webhooks/{id}")).await.expect(200);
    assert_eq!(got.body["endpoint"], ep);
    assert_eq!(
        got.body["id"], ep["id"],
        "the endpoint at the top level too"
    );
    assert_eq!(got.body["events"], ep["events"]);
    let text = got.body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("whsec_"),
        "{text}"
    );

    let list = t.api.get("/webhooks").await.expect(200);
    assert_eq!(list.body["data"], list.body["webhooks"]);
    assert_eq!(list.body["data"], list.body["endpoints"]);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(list.body["data"][1], ep, "newest first");
    let text = list.body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("whsec_"),
        "{text}"
    );

    // At rest: sealed (neither the secret, its base64 part nor its key bytes in clear),
    // bound to this endpoint's id, and no previous secret yet.
    let (stored, previous, until) = sealed(&t, &id).await;
    assert!(!contains(&stored, secret.as_bytes()));
    assert!(!contains(&stored, &secret.as_bytes()["whsec_".len()..]));
    assert!(!contains(&stored, b"whsec_"));
    assert_eq!((previous, until), (None, None));
    let key = SecretsKey::from_passphrase(
        TEST_ENV
            .iter()
            .find(|(k, _)| *k == "OP_SECRETS_KEY")
            .unwrap()
            .1,
    );
    assert_eq!(key.open(&stored, &id).as_deref(), Some(secret.as_str()));
    assert_eq!(key.open(&stored, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
}

#[tokio::test]
async fn event_subscriptions_are_validated() {
    let t = Tenant::new().await;
    for (body, why) in [
        (
            json!({"url": URL, "events": ["nope.happened"]}),
            "unknown type",
        ),
        (
            json!({"url": URL, "events": ["partner.created", "Partner.Created"]}),
            "types are case-sensitive",
        ),
        (
            json!({"url": URL, "events": ["webhook.test"]}),
            "test fires are not subscribable",
        ),
        (json!({"url": URL, "events": []}), "empty"),
        (json!({"url": URL}), "events missing"),
        (
            json!({"url": URL, "events": "partner.created"}),
            "not a list",
        ),
        (json!({"url": URL, "events": [1]}), "not strings"),
        (json!({"events": ["*"]}), "url missing"),
        (json!({"url": 5, "events": ["*"]}), "url not a string"),
        (
            json!({"url": URL, "events": ["*"], "secret": "whsec_x"}),
            "unknown field",
        ),
        (
            json!({"url": URL, "events": ["*"], "label": "x".repeat(201)}),
            "label too long",
        ),
    ] {
        let r = t.api.post("/webhooks", body).await;
        assert_eq!(
            (r.code(), r.error()),
            (400, "invalid_body"),
            "{why}: {}",
            r.body
        );
        assert!(r.body["detail"].is_string(), "{why}");
    }
    t.api
        .raw(Method::POST, "/webhooks", Some(b"{not json".to_vec()), &[])
        .await
        .expect_error(400, "invalid_body");
    let list = t.api.get("/webhooks").await.expect(200);
    assert_eq!(list.body["data"], json!([]), "nothing was created");

    let (_, _, all) = create(&t.api, json!({"url": URL, "events": ["*"]})).await;
    assert_eq!(all["events"], json!(["*"]));
    assert_eq!(all["label"], Value::Null);
    let (_, _, every) = create(
        &t.api,
        json!({"url": URL, "events": [
            "attribution.created", "commission.accrued", "commission.approved",
            "commission.paid", "commission.reversed", "partner.created", "partner.activated",
            "partner.revoked", "payout.created", "partnership.approved"
        ]}),
    )
    .await;
    assert_eq!(every["events"].as_array().unwrap().len(), 10);
    let (_, _, dedup) = create(
        &t.api,
        json!({"url": URL, "events": ["partner.revoked", "partner.created", "partner.revoked"]}),
    )
    .await;
    assert_eq!(
        dedup["events"],
        json!(["partner.revoked", "partner.created"])
    );
}

/// Refused everywhere, even with `OP_WEBHOOK_ALLOW_PRIVATE=1`: not http(s), or credentials.
const BAD_SHAPES: &[&str] = &[
    "ftp://example.com/hook",
    "https://user:pw@example.com/hook",
    "https://user@example.com/hook",
    "file:///etc/passwd",
    "not a url",
    "/relative/hook",
    "",
    // Control characters would be stored as sent (NUL, refused in any body, is in
    // fuzz_regressions).
    "http://example.com/a\u{7}b",
];

/// Refused unless `OP_WEBHOOK_ALLOW_PRIVATE=1`: loopback, private, link-local, metadata.
const PRIVATE: &[&str] = &[
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.10/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/",
];

#[tokio::test]
async fn urls_without_a_scheme_we_send_to_or_with_credentials_are_refused() {
    let t = Tenant::new().await;
    let (id, _, _) = create(&t.api, json!({"url": URL, "events": ["*"]})).await;
    for url in BAD_SHAPES {
        t.api
            .post("/webhooks", json!({"url": url, "events": ["*"]}))
            .await
            .expect_error(400, "url_not_allowed");
        t.api
            .patch(&format!("/webhooks/{id}"), json!({"url": url}))
            .await
            .expect_error(400, "url_not_allowed");
    }
    let got = t.api.get(&format!("/webhooks/{id}")).await.expect(200);
    assert_eq!(got.body["url"], URL, "unchanged");
    assert_eq!(
        t.api.get("/webhooks").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn private_addresses_are_refused_on_create_and_change_unless_allowed() {
    let stack = private_stack(&[("OP_WEBHOOK_ALLOW_PRIVATE", "0")]).await;
    let t = Tenant::on(&stack.base_url).await;

    // A public address literal passes (no DNS needed).
    let public = "http://93.184.215.14/hook";
    let (id, _, ep) = create(&t.api, json!({"url": public, "events": ["*"]})).await;
    assert_eq!(ep["url"], public);

    for url in PRIVATE.iter().chain(BAD_SHAPES) {
        let r = t
            .api
            .post("/webhooks", json!({"url": url, "events": ["*"]}))
            .await
            .expect_error(400, "url_not_allowed");
        assert_eq!(r.body["field"], "url", "{url}");
        t.api
            .patch(&format!("/webhooks/{id}"), json!({"url": url}))
            .await
            .expect_error(400, "url_not_allowed");
    }
    let got = t.api.get(&format!("/webhooks/{id}")).await.expect(200);
    assert_eq!(got.body["url"], public, "no refused change was applied");
    let list = t.api.get("/webhooks").await.expect(200);
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "nothing else was created"
    );

    // The same URLs are accepted where private addresses are allowed (the shared stack).
    let shared_api = t.api_via(&shared().stack.base_url);
    shared_api
        .patch(&format!("/webhooks/{id}"), json!({"url": PRIVATE[0]}))
        .await
        .expect(200);
}

#[tokio::test]
async fn without_a_secrets_key_endpoints_cannot_be_created_or_rotated() {
    let stack = private_stack(&[("OP_SECRETS_KEY", "")]).await;
    let t = Tenant::on(&stack.base_url).await;
    t.api
        .post("/webhooks", json!({"url": URL, "events": ["*"]}))
        .await
        .expect_error(503, "secrets_key_missing");
    assert_eq!(t.api.get_ok("/webhooks").await["data"], json!([]));

    // An endpoint made where the key is configured stays readable and manageable here, but
    // its secret cannot be rotated.
    let keyed = t.api_via(&shared().stack.base_url);
    let (id, _, _) = create(&keyed, json!({"url": URL, "events": ["*"]})).await;
    let before = sealed(&t, &id).await;
    t.api.get(&format!("/webhooks/{id}")).await.expect(200);
    t.api
        .post(&format!("/webhooks/{id}/rotate-secret"), json!({}))
        .await
        .expect_error(503, "secrets_key_missing");
    assert_eq!(sealed(&t, &id).await, before, "the secret is unchanged");
    t.api
        .patch(&format!("/webhooks/{id}"), json!({"label": "x"}))
        .await
        .expect(200);
}

#[tokio::test]
async fn patch_changes_only_the_given_fields() {
    let t = Tenant::new().await;
    let (id, _, ep) = create(
        &t.api,
        json!({"url": URL, "events": ["partner.created"], "label": "first"}),
    )
    .await;
    let path = format!("/webhooks/{id}");

    // Nothing to change: the endpoint as it is, updatedAt untouched.
    let same = t.api.patch(&path, json!({})).await.expect(200);
    assert_eq!(same.body["endpoint"], ep);

    let r = t
        .api
        .patch(
            &path,
            json!({"url": "http://127.0.0.1:10/other", "events": ["payout.created", "*", "*"]}),
        )
        .await
        .expect(200);
    let e = &r.body["endpoint"];
    assert_eq!(e["url"], "http://127.0.0.1:10/other");
    assert_eq!(e["events"], json!(["payout.created", "*"]));
    assert_eq!(e["label"], "first", "untouched");
    assert_eq!(e["active"], true);
    assert_eq!(e["createdAt"], ep["createdAt"]);
    assert!(e["updatedAt"].as_str().unwrap() > ep["updatedAt"].as_str().unwrap());

    let r = t
        .api
        .patch(&path, json!({"label": "second"}))
        .await
        .expect(200);
    assert_eq!(r.body["endpoint"]["label"], "second");
    assert_eq!(r.body["endpoint"]["url"], "http://127.0.0.1:10/other");
    let r = t.api.patch(&path, json!({"label": null})).await.expect(200);
    assert_eq!(r.body["endpoint"]["label"], Value::Null);

    for (body, why) in [
        (json!({"events": []}), "empty events"),
        (json!({"events": ["nope"]}), "unknown event"),
        (json!({"events": null}), "null events"),
        (json!({"url": null}), "null url"),
        (json!({"active": "yes"}), "active not a bool"),
        (json!({"active": null}), "null active"),
        (json!({"secret": "whsec_AAAA"}), "unknown field"),
        (
            json!({"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}),
            "id is not writable",
        ),
    ] {
        let r = t.api.patch(&path, body).await;
        assert_eq!(
            (r.code(), r.error()),
            (400, "invalid_body"),
            "{why}: {}",
            r.body
        );
    }
    let got = t.api.get(&path).await.expect(200);
    assert_eq!(
        got.body["events"],
        json!(["payout.created", "*"]),
        "unchanged"
    );

    // Deactivate, then let the delivery side mark it failing and disabled (as a 410 would);
    // reactivating clears both.
    let r = t
        .api
        .patch(&path, json!({"active": false}))
        .await
        .expect(200);
    assert_eq!(r.body["endpoint"]["active"], false);
    let schema = op_control::schema::schema_name(&t.id);
    db().await
        .execute(
            &format!(
                "UPDATE \"{schema}\".webhook_endpoints
                    SET failing_since = now() - interval '1 hour', disabled_reason = 'gone (410)'
                  WHERE id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap();
    let got = t.api.get(&path).await.expect(200);
    assert_eq!(got.body["disabledReason"], "gone (410)");
    assert!(got.body["failingSince"].is_string());
    let r = t
        .api
        .patch(&path, json!({"active": true}))
        .await
        .expect(200);
    let e = &r.body["endpoint"];
    assert_eq!(e["active"], true);
    assert_eq!(e["disabledReason"], Value::Null);
    assert_eq!(e["failingSince"], Value::Null);

    t.api
        .patch(
            "/webhooks/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            json!({"label": "x"}),
        )
        .await
        .expect_error(404, "not_found");
    t.api
        .patch("/webhooks/not-an-id", json!({"label": "x"}))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn delete_deactivates_and_hard_delete_removes() {
    let t = Tenant::new().await;
    let (id, _, _) = create(&t.api, json!({"url": URL, "events": ["*"]})).await;
    let path = format!("/webhooks/{id}");

    let r = t.api.delete(&path).await.expect(200);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["endpoint"]["id"], id.as_str());
    assert_eq!(r.body["endpoint"]["active"], false);
    let got = t.api.get(&path).await.expect(200);
    assert_eq!(got.body["active"], false, "still readable, inactive");
    let list = t.api.get("/webhooks").await.expect(200);
    assert_eq!(list.body["data"][0]["id"], id.as_str());
    assert_eq!(list.body["data"][0]["active"], false);
    // Deactivating again is harmless.
    t.api.delete(&path).await.expect(200);

    t.api
        .delete(&format!("{path}?hard=maybe"))
        .await
        .expect_error(400, "invalid_query");
    t.api.get(&path).await.expect(200);

    let r = t.api.delete(&format!("{path}?hard=1")).await.expect(200);
    assert_eq!(r.body["ok"], true);
    t.api.get(&path).await.expect_error(404, "not_found");
    assert_eq!(t.api.get_ok("/webhooks").await["data"], json!([]));
    let schema = op_control::schema::schema_name(&t.id);
    let n: i64 = db()
        .await
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".webhook_endpoints"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the row is gone");
    t.api.delete(&path).await.expect_error(404, "not_found");
    t.api
        .delete(&format!("{path}?hard=1"))
        .await
        .expect_error(404, "not_found");
    t.api
        .delete("/webhooks/nope")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn rotating_keeps_the_previous_secret_for_a_day() {
    let t = Tenant::new().await;
    let (id, first, _) = create(&t.api, json!({"url": URL, "events": ["*"]})).await;
    let (sealed_first, _, _) = sealed(&t, &id).await;

    let r = t
        .api
        .post(&format!("/webhooks/{id}/rotate-secret"), json!({}))
        .await
        .expect(200);
    let second = r.body["secret"].as_str().unwrap().to_string();
    assert_secret_shape(&second);
    assert_ne!(second, first);
    assert!(r.body["previousSecretExpiresAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let (now_sealed, previous, until) = sealed(&t, &id).await;
    assert_eq!(
        previous.as_deref(),
        Some(&sealed_first[..]),
        "old secret kept"
    );
    assert_ne!(now_sealed, sealed_first);
    assert!(!contains(&now_sealed, second.as_bytes()));
    let until = until.unwrap();
    assert!(
        (24.0 * 3600.0 - 120.0..=24.0 * 3600.0).contains(&until),
        "{until}"
    );
    // The reported expiry is the stored one (to the millisecond it is reported in).
    let schema = op_control::schema::schema_name(&t.id);
    let same: bool = db()
        .await
        .query_one(
            &format!(
                "SELECT abs(extract(epoch FROM previous_secret_until - $2::text::timestamptz)) < 0.001
                   FROM \"{schema}\".webhook_endpoints WHERE id = $1"
            ),
            &[&id, &r.body["previousSecretExpiresAt"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same, "{}", r.body);
    let key = SecretsKey::from_passphrase("test-secrets-key");
    assert_eq!(key.open(&now_sealed, &id).as_deref(), Some(second.as_str()));
    assert_eq!(
        key.open(previous.as_deref().unwrap(), &id).as_deref(),
        Some(first.as_str())
    );

    let got = t.api.get(&format!("/webhooks/{id}")).await.expect(200);
    let text = got.body.to_string();
    assert!(!text.contains(&first) && !text.contains(&second));

    t.api
        .post(
            "/webhooks/01ARZ3NDEKTSV4RRFFQ69G5FAV/rotate-secret",
            json!({}),
        )
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn a_scoped_key_manages_endpoints_but_cannot_read_them() {
    let t = Tenant::new().await;
    let scoped = t.scoped_api(&["webhooks:write"]).await;
    let (id, secret, _) = create(&scoped, json!({"url": URL, "events": ["*"]})).await;
    assert_secret_shape(&secret);
    let path = format!("/webhooks/{id}");
    let r = scoped
        .patch(&path, json!({"label": "by ci"}))
        .await
        .expect(200);
    assert_eq!(r.body["endpoint"]["label"], "by ci");
    scoped.get("/webhooks").await.expect_error(403, "forbidden");
    scoped.get(&path).await.expect_error(403, "forbidden");
    scoped
        .post(&format!("{path}/rotate-secret"), json!({}))
        .await
        .expect_error(403, "forbidden");
    let r = scoped.delete(&path).await.expect(200);
    assert_eq!(r.body["endpoint"]["active"], false);
    scoped.delete(&format!("{path}?hard=1")).await.expect(200);
    t.api.get(&path).await.expect_error(404, "not_found");

    // Another scope does not reach webhooks.
    let other = t.scoped_api(&["partners:write"]).await;
    let e = other
        .post("/webhooks", json!({"url": URL, "events": ["*"]}))
        .await
        .expect_error(403, "forbidden_scope");
    assert_eq!(e.body["required"], "webhooks:write");
    t.api
        .with_key(None)
        .post("/webhooks", json!({"url": URL, "events": ["*"]}))
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn endpoints_of_one_tenant_are_invisible_to_another() {
    let a = Tenant::new().await;
    let b = Tenant::new().await;
    let (id, _, ep) = create(&a.api, json!({"url": URL, "events": ["*"]})).await;
    let path = format!("/webhooks/{id}");
    b.api.get(&path).await.expect_error(404, "not_found");
    b.api
        .patch(&path, json!({"active": false}))
        .await
        .expect_error(404, "not_found");
    b.api.delete(&path).await.expect_error(404, "not_found");
    b.api
        .delete(&format!("{path}?hard=1"))
        .await
        .expect_error(404, "not_found");
    b.api
        .post(&format!("{path}/rotate-secret"), json!({}))
        .await
        .expect_error(404, "not_found");
    assert_eq!(b.api.get_ok("/webhooks").await["data"], json!([]));
    let got = a.api.get(&path).await.expect(200);
    assert_eq!(got.body["endpoint"], ep, "untouched");
}

#[tokio::test]
async fn the_list_pages_newest_first() {
    let t = Tenant::new().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&t.api, json!({"url": URL, "events": ["*"]})).await.0);
    }
    ids.reverse();
    let p1 = t.api.get("/webhooks?limit=2").await.expect(200);
    let cursor = p1.body["nextCursor"].as_str().unwrap().to_string();
    let p2 = t
        .api
        .get(&format!("/webhooks?limit=2&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(p2.body["nextCursor"], Value::Null);
    let got: Vec<&str> = p1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.body["data"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    t.api
        .get("/webhooks?limit=0")
        .await
        .expect_error(400, "invalid_query");
    t.api
        .get("/webhooks?cursor=garbage")
        .await
        .expect_error(400, "invalid_cursor");
}
