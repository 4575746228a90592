//! `Idempotency-Key` on POSTs of the tenant API: replays (status, headers, body), conflicts,
//! concurrency, per-tenant keys, expiry and takeover of abandoned claims, 5xx freeing the
//! key, and stored replies sealed rather than in the clear.

use crate::harness::*;
use openpartner::stack::{Mode, Stack};
use reqwest::{header::HeaderValue, Method};
use serde_json::{json, Value};

async fn post(api: &Api, path: &str, body: &Value, key: &str) -> Resp {
    api.raw(
        Method::POST,
        path,
        Some(body.to_string().into_bytes()),
        &[("idempotency-key", key)],
    )
    .await
}

fn replayed(r: &Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

async fn partner_count(t: &Tenant) -> usize {
    t.api.get_ok("/partners?limit=100").await["data"]
        .as_array()
        .expect("data")
        .len()
}

async fn keys_labelled(t: &Tenant, label: &str) -> usize {
    t.api.get_ok("/api-keys?limit=100").await["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|k| k["label"] == label)
        .count()
}

/// `"t_…".idempotency_keys` of this tenant.
fn table(t: &Tenant) -> String {
    format!(
        "\"{}\".idempotency_keys",
        op_control::schema::schema_name(&t.id)
    )
}

/// Rows are keyed by hex SHA-256 of the Idempotency-Key.
const ROW_KEY: &str = "encode(sha256(convert_to($1, 'UTF8')), 'hex')";

/// Applies `set` to this tenant's row for `key` (to move it back in time).
async fn age_row(t: &Tenant, key: &str, set: &str) {
    let n = db()
        .await
        .execute(
            &format!("UPDATE {} SET {set} WHERE key = {ROW_KEY}", table(t)),
            &[&key],
        )
        .await
        .expect("update");
    assert_eq!(n, 1, "the key has a row");
}

#[tokio::test]
async fn same_key_and_body_replays_the_first_reply_and_creates_once() {
    let t = Tenant::new().await;
    let body = json!({"email": "idem@example.com", "name": "Idem", "sendInvite": false});
    let first = post(&t.api, "/partners", &body, "create-idem-1")
        .await
        .expect(201);
    assert!(!replayed(&first), "the first reply is not a replay");

    let again = post(&t.api, "/partners", &body, "create-idem-1")
        .await
        .expect(201);
    assert!(replayed(&again), "headers: {:?}", again.headers);
    assert_eq!(
        again.body, first.body,
        "the very same body, same partner id"
    );
    assert_eq!(again.headers["content-type"], first.headers["content-type"]);
    assert_eq!(partner_count(&t).await, 1, "the handler ran once");

    // A new key is a new request: the handler runs (and finds the email taken).
    post(&t.api, "/partners", &body, "create-idem-2")
        .await
        .expect_error(409, "email_taken");
}

#[tokio::test]
async fn same_key_with_a_different_request_is_409_reused() {
    let t = Tenant::new().await;
    let body = json!({"email": "one@example.com", "name": "One", "sendInvite": false});
    let first = post(&t.api, "/partners", &body, "k-reuse")
        .await
        .expect(201);

    let other = json!({"email": "two@example.com", "name": "Two", "sendInvite": false});
    post(&t.api, "/partners", &other, "k-reuse")
        .await
        .expect_error(409, "idempotency_key_reused");
    // Another path with the same key and body.
    post(&t.api, "/admins", &body, "k-reuse")
        .await
        .expect_error(409, "idempotency_key_reused");
    // The same request by another caller of the tenant does not get this caller's reply.
    let other_admin = t
        .api
        .post("/api-keys", json!({"label": "second admin"}))
        .await
        .expect(201);
    let second = t.api.with_key(other_admin.body["key"].as_str());
    post(&second, "/partners", &body, "k-reuse")
        .await
        .expect_error(409, "idempotency_key_reused");
    assert_eq!(partner_count(&t).await, 1, "two@ was never created");

    // The original request still replays.
    let again = post(&t.api, "/partners", &body, "k-reuse")
        .await
        .expect(201);
    assert!(replayed(&again));
    assert_eq!(again.body["id"], first.body["id"]);
}

#[tokio::test]
async fn a_failed_request_is_replayed_as_it_failed() {
    let t = Tenant::new().await;
    t.partner("taken@example.com").await;
    let body = json!({"email": "taken@example.com", "name": "Dup"});
    post(&t.api, "/partners", &body, "k-fail")
        .await
        .expect_error(409, "email_taken");
    let again = post(&t.api, "/partners", &body, "k-fail")
        .await
        .expect_error(409, "email_taken");
    assert!(replayed(&again));

    // A replay answers from the stored reply even when running the handler again would
    // now succeed: reinstating an active partner fails; after a revoke it would work.
    let p = t.partner("state@example.com").await;
    let path = format!("/partners/{}/reinstate", p["id"].as_str().unwrap());
    post(&t.api, &path, &json!({}), "k-reinstate")
        .await
        .expect_error(409, "not_revoked");
    t.api
        .post(
            &format!("/partners/{}/revoke", p["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .expect(200);
    let again = post(&t.api, &path, &json!({}), "k-reinstate")
        .await
        .expect_error(409, "not_revoked");
    assert!(replayed(&again));
    let now = t
        .api
        .get(&format!("/partners/{}", p["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(
        now.body["status"], "revoked",
        "the handler did not run again"
    );
}

#[tokio::test]
async fn keys_are_per_tenant() {
    let (a, b) = (Tenant::new().await, Tenant::new().await);
    let body = json!({"email": "shared@example.com", "name": "S", "sendInvite": false});
    let ra = post(&a.api, "/partners", &body, "k-tenant")
        .await
        .expect(201);
    let rb = post(&b.api, "/partners", &body, "k-tenant")
        .await
        .expect(201);
    assert!(!replayed(&ra) && !replayed(&rb), "each tenant ran its own");
    assert_ne!(ra.body["id"], rb.body["id"]);
    assert_eq!((partner_count(&a).await, partner_count(&b).await), (1, 1));
    // A different body under the same key in tenant B is B's business only.
    let other = json!({"email": "other@example.com", "name": "O", "sendInvite": false});
    post(&b.api, "/partners", &other, "k-tenant")
        .await
        .expect_error(409, "idempotency_key_reused");
    assert!(replayed(
        &post(&a.api, "/partners", &body, "k-tenant")
            .await
            .expect(201)
    ));
}

#[tokio::test]
async fn concurrent_requests_with_one_key_run_the_handler_once() {
    let t = Tenant::new().await;
    // One warmed-up connection per request, so the POSTs arrive together.
    let clients: Vec<Api> = futures::future::join_all((0..16).map(|_| async {
        let api = Api::new(t.api.base.clone(), Some(&t.admin_key));
        api.get("/auth/me").await.expect(200);
        api
    }))
    .await;
    for round in 0..3 {
        // Minting keys has no natural uniqueness: without the key, every request mints one.
        let label = format!("race-{round}");
        let body = json!({ "label": label });
        let key = format!("k-race-{round}");
        let attempts = clients
            .iter()
            .map(|api| post(api, "/api-keys", &body, &key));
        let results = futures::future::join_all(attempts).await;
        let created: Vec<&Resp> = results.iter().filter(|r| r.code() == 201).collect();
        let in_progress = results
            .iter()
            .filter(|r| r.code() == 409 && r.error() == "idempotency_key_in_progress")
            .count();
        assert_eq!(
            created.len() + in_progress,
            results.len(),
            "only 201 or in_progress: {:?}",
            results.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        assert_eq!(
            created.iter().filter(|r| !replayed(r)).count(),
            1,
            "exactly one request ran the handler"
        );
        assert!(created.iter().all(|r| r.body == created[0].body));
        assert_eq!(keys_labelled(&t, &label).await, 1, "exactly one key minted");

        let after = post(&t.api, "/api-keys", &body, &key).await.expect(201);
        assert!(replayed(&after));
        assert_eq!(after.body, created[0].body);
        assert_eq!(keys_labelled(&t, &label).await, 1);
    }
}

#[tokio::test]
async fn malformed_keys_are_400_and_run_nothing() {
    let t = Tenant::new().await;
    let body = json!({"email": "bad@example.com", "name": "B", "sendInvite": false});
    let long = "k".repeat(300);
    for key in [long.as_str(), "", "tab\there"] {
        post(&t.api, "/partners", &body, key)
            .await
            .expect_error(400, "invalid_idempotency_key");
    }
    // Not valid UTF-8, let alone printable ASCII: still refused, not ignored.
    let r = t
        .api
        .http
        .post(format!("{}/partners", t.api.base))
        .bearer_auth(&t.admin_key)
        .header(
            "idempotency-key",
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_idempotency_key");
    assert_eq!(partner_count(&t).await, 0, "no handler ran");

    // 255 characters is the longest key.
    post(&t.api, "/partners", &body, &"k".repeat(255))
        .await
        .expect(201);
    // Other methods ignore the header, valid or not.
    let r = t
        .api
        .get_with("/partners", &[("idempotency-key", &long)])
        .await
        .expect(200);
    assert!(!replayed(&r));
}

#[tokio::test]
async fn the_platform_surface_is_not_idempotent() {
    let p = platform(&shared().stack.base_url);
    // A key that would be refused on the tenant API is ignored here (no tenant schema).
    let r = p
        .raw(
            Method::POST,
            "/platform/tenants",
            Some(
                json!({"slug": unique_slug("idem"), "name": "I"})
                    .to_string()
                    .into_bytes(),
            ),
            &[("idempotency-key", "")],
        )
        .await
        .expect(201);
    assert!(!replayed(&r));
}

#[tokio::test]
async fn old_rows_are_absent_and_abandoned_claims_can_be_taken_over() {
    let t = Tenant::new().await;
    let body = json!({"label": "aging"});
    let first = post(&t.api, "/api-keys", &body, "k-age").await.expect(201);

    // A claim still in progress (the row lost its reply) and recent: in progress.
    age_row(
        &t,
        "k-age",
        "status = NULL, headers = NULL, body = NULL, completed_at = NULL, created_at = now() - interval '30 seconds'",
    )
    .await;
    post(&t.api, "/api-keys", &body, "k-age")
        .await
        .expect_error(409, "idempotency_key_in_progress");
    // ... but by another request, a reuse.
    post(&t.api, "/api-keys", &json!({"label": "x"}), "k-age")
        .await
        .expect_error(409, "idempotency_key_reused");

    // Abandoned for over a minute (a crashed worker): the same request takes it over.
    age_row(&t, "k-age", "created_at = now() - interval '61 seconds'").await;
    let second = post(&t.api, "/api-keys", &body, "k-age").await.expect(201);
    assert!(!replayed(&second), "the handler ran again");
    assert_ne!(second.body["id"], first.body["id"]);
    let again = post(&t.api, "/api-keys", &body, "k-age").await.expect(201);
    assert!(replayed(&again));
    assert_eq!(again.body["id"], second.body["id"]);
    assert_eq!(keys_labelled(&t, "aging").await, 2);

    // Older than 24 hours: as if never used, even by a different request.
    age_row(&t, "k-age", "created_at = now() - interval '25 hours'").await;
    let other = json!({"label": "aging-2"});
    let third = post(&t.api, "/api-keys", &other, "k-age").await.expect(201);
    assert!(!replayed(&third));
    assert_eq!(keys_labelled(&t, "aging-2").await, 1);
}

#[tokio::test]
async fn stored_replies_hold_no_secret_in_the_clear() {
    let t = Tenant::new().await;
    let minted = post(&t.api, "/api-keys", &json!({"label": "secret"}), "k-secret")
        .await
        .expect(201);
    let plaintext = minted.body["key"].as_str().expect("key").to_string();
    let replay = post(&t.api, "/api-keys", &json!({"label": "secret"}), "k-secret")
        .await
        .expect(201);
    assert!(replayed(&replay));
    assert_eq!(
        replay.body["key"],
        plaintext.as_str(),
        "the replay carries the key"
    );

    let db = db().await;
    let rows = db
        .query(
            &format!("SELECT key, headers, body FROM {}", table(&t)),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (key, headers, body): (String, Option<Value>, Vec<u8>) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_ne!(key, "k-secret", "the row is keyed by a hash");
    assert_eq!(headers, None);
    assert!(!body.is_empty());
    for needle in [plaintext.as_bytes(), b"application/json", b"secret"] {
        assert!(
            !body.windows(needle.len()).any(|w| w == needle),
            "`{}` is stored in the clear",
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test]
async fn a_replay_repeats_the_headers_of_the_first_reply() {
    let t = Tenant::new().await;
    t.partner("cookie@example.com").await;
    let anon = t.api.with_key(None);
    let token = t.magic_link_token("cookie@example.com").await;
    let body = json!({ "token": token });
    let first = post(&anon, "/auth/magic/verify", &body, "k-cookie")
        .await
        .expect(200);
    let cookie = first.headers["set-cookie"].clone();
    // The token is single-use: only a replay can answer 200 again.
    let again = post(&anon, "/auth/magic/verify", &body, "k-cookie")
        .await
        .expect(200);
    assert!(replayed(&again));
    assert_eq!(again.headers["set-cookie"], cookie);
    assert_eq!(again.body, first.body);
    anon.post("/auth/magic/verify", body.clone())
        .await
        .expect_error(400, "invalid_token");
}

#[tokio::test]
async fn a_server_error_is_not_stored_and_frees_the_key() {
    // Without a session secret, verifying a magic link is `503 sessions_disabled`.
    let mut opts = options(&shared().database_url, Mode::Multi, 1);
    opts.env.retain(|(k, _)| k != "OP_SESSION_SECRET");
    let stack = Stack::start(opts, None).await.expect("stack");
    let t = Tenant::on(&stack.base_url).await;
    let anon = t.api.with_key(None);
    let body = json!({"token": "x"});
    for _ in 0..2 {
        let r = post(&anon, "/auth/magic/verify", &body, "k-5xx")
            .await
            .expect_error(503, "sessions_disabled");
        assert!(!replayed(&r));
    }
    let rows: i64 = db()
        .await
        .query_one(&format!("SELECT count(*) FROM {}", table(&t)), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the claim was released");
}

#[tokio::test]
async fn stored_replies_are_swept_after_24_hours() {
    let t = Tenant::new().await;
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.batch_execute(&format!(
        "INSERT INTO \"{schema}\".idempotency_keys (key, request_hash, created_at) VALUES
            ('old-key', '\\x00', now() - interval '25 hours'), ('fresh-key', '\\x00', now())"
    ))
    .await
    .unwrap();
    // Nothing told a worker: the safety sweep finds the expired reply (its row made due now
    // instead of waiting OP_JOB_SWEEP_SECS), and the cleanup pass deletes it.
    db.execute(
        "UPDATE control.pending_work SET due_at = now() WHERE tenant_id = '*' AND job = 'sweep'",
        &[],
    )
    .await
    .unwrap();
    let every = std::time::Duration::from_millis(100);
    let sql = format!("SELECT key FROM \"{schema}\".idempotency_keys ORDER BY key");
    poll(15, every, || async {
        let keys: Vec<String> = column(&db, &sql, &[]).await;
        (keys == vec!["fresh-key".to_string()])
            .then_some(())
            .ok_or(format!("{keys:?}"))
    })
    .await;
    // The next pass is recorded for when the fresh reply expires, 24 hours from now.
    poll(10, every, || async {
        let due: Option<bool> = db
            .query_opt(
                "SELECT due_at > now() + interval '23 hours' AND due_at < now() + interval '25 hours'
                   FROM control.pending_work WHERE tenant_id = $1 AND job = 'idempotency_cleanup'",
                &[&t.id],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        (due == Some(true))
            .then_some(())
            .ok_or(format!("next cleanup not scheduled: {due:?}"))
    })
    .await;
}
