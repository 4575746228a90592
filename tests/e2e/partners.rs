//! Partners through the gateway: create, read, list (cursor pages), revoke, reinstate.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

#[tokio::test]
async fn create_and_get_a_partner() {
    let t = Tenant::new().await;
    let r = t
        .api
        .post(
            "/partners",
            json!({"email": "  Ann@Example.COM ", "name": "Ann", "metadata": {"tier": "gold"}}),
        )
        .await
        .expect(201);
    let p = &r.body;
    assert_eq!(p["email"], "ann@example.com");
    assert_eq!(p["status"], "invited", "sendInvite defaults to true");
    assert_eq!(p["invited"], true);
    assert_eq!(p["metadata"], json!({"tier": "gold"}));
    assert_eq!(p["activatedAt"], Value::Null);
    let id = p["id"].as_str().unwrap();
    assert!(
        ulid::Ulid::from_string(id).is_ok(),
        "partner ids are bare ULIDs"
    );
    assert!(p["createdAt"].as_str().unwrap().ends_with('Z'));

    let got = t.api.get(&format!("/partners/{id}")).await.expect(200);
    assert_eq!(got.body["id"], id);
    assert_eq!(got.body["partner"]["email"], "ann@example.com");

    let active = t
        .api
        .post(
            "/partners",
            json!({"email": "bob@example.com", "name": "Bob", "sendInvite": false}),
        )
        .await
        .expect(201);
    assert_eq!(active.body["status"], "active");
    assert_eq!(active.body["invited"], false);
    assert!(active.body["activatedAt"].is_string());
}

#[tokio::test]
async fn duplicate_email_is_409_even_under_concurrency() {
    let t = Tenant::new().await;
    let attempts = (0..12).map(|i| {
        let api = t.api.clone();
        async move {
            api.post(
                "/partners",
                json!({"email": "race@example.com", "name": format!("R{i}")}),
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.code() == 201).count();
    let conflicts = results
        .iter()
        .filter(|r| r.code() == 409 && r.error() == "email_taken")
        .count();
    assert_eq!((created, conflicts), (1, 11));
    // The refused ones wrote nothing: one partner, one invite mail, one invite token (the
    // partner, its event and its invite commit together or not at all). The outbox is a
    // queue the webhook pipeline drains, so it is not counted here.
    let schema = op_control::schema::Schema::of_tenant(&t.id).unwrap();
    let db = db().await;
    for (table, filter) in [
        ("partners", "email = 'race@example.com'"),
        ("mail_outbox", "to_email = 'race@example.com'"),
        ("magic_tokens", "purpose = 'invite'"),
    ] {
        let n: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {schema}.{table} WHERE {filter}"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{table}");
    }
    let mails = t
        .api
        .get("/dev/mailbox?to=race%40example.com")
        .await
        .expect(200);
    assert_eq!(mails.body["data"].as_array().unwrap().len(), 1);
    // Case-insensitively the same address.
    t.api
        .post(
            "/partners",
            json!({"email": "RACE@example.com", "name": "again"}),
        )
        .await
        .expect_error(409, "email_taken");
}

#[tokio::test]
async fn invalid_bodies_are_400_and_write_nothing() {
    let t = Tenant::new().await;
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed JSON"),
        (b"[]".to_vec(), "array body"),
        (b"".to_vec(), "empty body"),
        (br#"{"email": 5, "name": "A"}"#.to_vec(), "wrong type"),
        (br#"{"name": "A"}"#.to_vec(), "missing email"),
        (
            br#"{"email": "not-an-email", "name": "A"}"#.to_vec(),
            "bad email",
        ),
        (
            br#"{"email": "a@example.com", "name": "   "}"#.to_vec(),
            "blank name",
        ),
        (
            br#"{"email": "a@example.com", "name": "A", "metadata": [1]}"#.to_vec(),
            "metadata not an object",
        ),
        (
            br#"{"email": "a@example.com", "name": "A", "sendInvite": "yes"}"#.to_vec(),
            "sendInvite not bool",
        ),
        (
            br#"{"email": "a@example.com", "name": "A", "bogus": 1}"#.to_vec(),
            "unknown field",
        ),
        (
            b"{\"email\": \"a@example.com\", \"name\": \"\xff\xfe\"}".to_vec(),
            "bad UTF-8",
        ),
    ];
    for (body, what) in bad {
        let r = t.api.raw(Method::POST, "/partners", Some(body), &[]).await;
        assert_eq!(
            (r.code(), r.error()),
            (400, "invalid_body"),
            "{what}: {}",
            r.body
        );
    }
    let list = t.api.get("/partners").await.expect(200);
    assert_eq!(list.body["data"], json!([]), "no half-written partner");
}

#[tokio::test]
async fn bad_ids_queries_and_cursors() {
    let t = Tenant::new().await;
    t.api
        .get("/partners/not-a-ulid")
        .await
        .expect_error(404, "not_found");
    t.api
        .get(&format!("/partners/{}", ulid::Ulid::new()))
        .await
        .expect_error(404, "not_found");
    for q in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=-1",
        "status=gone",
    ] {
        t.api
            .get(&format!("/partners?{q}"))
            .await
            .expect_error(400, "invalid_query");
    }
    for c in ["garbage!", "djEuMTIzLg", "djIuMS5BQkM"] {
        t.api
            .get(&format!("/partners?cursor={c}"))
            .await
            .expect_error(400, "invalid_cursor");
    }
}

#[tokio::test]
async fn listing_pages_have_no_duplicates_or_gaps_while_rows_are_inserted() {
    let t = Tenant::new().await;
    let mut original = HashSet::new();
    for i in 0..25 {
        let p = t.partner(&format!("p{i}@example.com")).await;
        original.insert(p["id"].as_str().unwrap().to_string());
    }
    // Keep inserting while we page.
    let writer = {
        let api = t.api.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                api.post(
                    "/partners",
                    json!({"email": format!("late{i}@example.com"), "name": "L"}),
                )
                .await
                .expect(201);
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/partners?limit=7&cursor={c}"),
            None => "/partners?limit=7".to_string(),
        };
        let r = t.api.get(&path).await.expect(200);
        assert_eq!(r.body["data"], r.body["partners"], "the original's alias");
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 7);
        seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        pages += 1;
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(pages >= 4, "25+ rows at 7 per page span at least 4 pages");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates across pages");
    assert!(
        original.is_subset(&unique),
        "no gaps: every pre-existing partner was listed"
    );
    // Newest first.
    let all = t.api.get("/partners?limit=500").await.expect(200);
    let times: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["createdAt"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(times.len(), 45);
}

#[tokio::test]
async fn list_filters() {
    let t = Tenant::new().await;
    t.partner("active@example.com").await;
    t.invited_partner("inv@example.com", "I").await;
    let r = t.api.get("/partners?status=invited").await.expect(200);
    let emails: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["inv@example.com"]);
    let r = t
        .api
        .get("/partners?email=ACTIVE%40example.com")
        .await
        .expect(200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["status"], "active");
}

#[tokio::test]
async fn revoke_and_reinstate_state_machine() {
    let t = Tenant::new().await;
    let active = t.partner("sm@example.com").await;
    let id = active["id"].as_str().unwrap();

    t.api
        .post(&format!("/partners/{id}/reinstate"), json!({}))
        .await
        .expect_error(409, "not_revoked");
    let r = t
        .api
        .post(
            &format!("/partners/{id}/revoke"),
            json!({"reason": "fraud", "notify": false}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["notified"], false);
    assert!(r.body["revokedAt"].is_string());
    let got = t.api.get_ok(&format!("/partners/{id}")).await;
    assert_eq!(
        (got["status"].as_str(), got["revokeReason"].as_str()),
        (Some("revoked"), Some("fraud"))
    );

    t.api
        .post(&format!("/partners/{id}/revoke"), json!({}))
        .await
        .expect_error(409, "already_revoked");
    t.api
        .post(&format!("/partners/{id}/reinstate"), json!({}))
        .await
        .expect(200);
    let got = t.api.get_ok(&format!("/partners/{id}")).await;
    assert_eq!(got["status"], "active");
    assert_eq!(got["revokedAt"], Value::Null);

    // An invited partner goes back to invited, not active.
    let invited = t.invited_partner("inv2@example.com", "I").await;
    let iid = invited["id"].as_str().unwrap();
    let r = t
        .api
        .raw(Method::POST, &format!("/partners/{iid}/revoke"), None, &[])
        .await
        .expect(200);
    assert_eq!(r.body["notified"], true, "notify defaults to true");
    t.api
        .post(&format!("/partners/{iid}/reinstate"), json!({}))
        .await
        .expect(200);
    assert_eq!(
        t.api.get(&format!("/partners/{iid}")).await.body["status"],
        "invited"
    );

    let ghost = ulid::Ulid::new();
    t.api
        .post(&format!("/partners/{ghost}/revoke"), json!({}))
        .await
        .expect_error(404, "not_found");
    t.api
        .post(&format!("/partners/{ghost}/reinstate"), json!({}))
        .await
        .expect_error(404, "not_found");
    t.api
        .post(&format!("/partners/{id}/revoke"), json!({"reason": 5}))
        .await
        .expect_error(400, "invalid_body");
}
