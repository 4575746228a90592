//! Sign-in and every credential kind: magic links, session cookies, partner keys, scoped
//! keys, introspection, brute-force limits, and SMTP delivery.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

/// A session token for an admin and a session that do not exist in `tenant`, valid for an
/// hour, signed with `secret`.
fn admin_session(secret: &str, tenant: &str) -> String {
    op_control::sessions::SessionKeys::new(secret, None).sign(&op_control::sessions::Claims {
        sid: ulid::Ulid::new().to_string(),
        tid: tenant.to_string(),
        kind: "admin".into(),
        pid: ulid::Ulid::new().to_string(),
        iat: 0,
        exp: now_ms() / 1000 + 3600,
    })
}

#[tokio::test]
async fn partner_invite_link_signs_in_once_and_activates() {
    let t = Tenant::new().await;
    let other = t.partner("other@example.com").await;
    let p = t.invited_partner("inv@example.com", "Inv").await;
    assert_eq!(p["status"], "invited");
    let mail = t.last_mail("inv@example.com").await.expect("invite mailed");
    assert_eq!(mail["metadata"]["purpose"], "partner_invite");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("http://portal.test/login?token="), "{body}");
    let token = token_in(body);

    let r = t.verify_magic_link(&token).await.expect(200);
    assert_eq!(r.body["role"], "partner");
    assert_eq!(r.body["principal"]["id"], p["id"]);
    assert_eq!(
        r.body["partner"]["status"], "active",
        "verifying the invite activates"
    );
    let cookie_header = r.headers["set-cookie"].to_str().unwrap();
    for attr in ["op_session=", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie_header.contains(attr), "{cookie_header}");
    }
    assert!(
        !cookie_header.contains("Secure"),
        "OP_COOKIE_SECURE=0 drops Secure"
    );
    let cookie = cookie_header.split(';').next().unwrap();

    // Single use.
    t.verify_magic_link(&token)
        .await
        .expect_error(400, "invalid_token");

    let me = t.api.get_with_cookie("/auth/me", cookie).await.expect(200);
    assert_eq!(me.body["role"], "partner");
    assert_eq!(me.body["partnerId"], p["id"]);
    assert_eq!(me.body["partner"]["email"], "inv@example.com");
    let own = format!("/partners/{}", p["id"].as_str().unwrap());
    t.api.get_with_cookie(&own, cookie).await.expect(200);
    let theirs = format!("/partners/{}", other["id"].as_str().unwrap());
    t.api
        .get_with_cookie(&theirs, cookie)
        .await
        .expect_error(403, "forbidden");
    t.api
        .get_with_cookie("/partners", cookie)
        .await
        .expect_error(403, "forbidden");
    t.api
        .get_with_cookie("/api-keys", cookie)
        .await
        .expect_error(403, "forbidden");
    // Re-sending an invite to an activated partner is refused.
    t.api
        .post(&format!("{own}/invite"), json!({}))
        .await
        .expect_error(409, "already_activated");

    // Sign out: the same cookie is dead on the next request.
    let out = t
        .api
        .with_cookie(Method::POST, "/auth/signout", cookie, None)
        .await
        .expect(200);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    t.api
        .get_with_cookie("/auth/me", cookie)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn magic_request_never_enumerates_and_never_serves_revoked_partners() {
    let t = Tenant::new().await;
    let anon = t.api.with_key(None);
    let r = anon
        .post(
            "/auth/magic/request",
            json!({"email": "nobody@example.com"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body, json!({"ok": true}));
    assert!(t.last_mail("nobody@example.com").await.is_none());

    let p = t.partner("known@example.com").await;
    let r2 = anon
        .post("/auth/signin", json!({"email": "KNOWN@example.com"}))
        .await
        .expect(200);
    assert_eq!(
        r.body, r2.body,
        "same answer for known and unknown addresses"
    );
    let mail = t.last_mail("known@example.com").await.expect("link sent");
    assert_eq!(mail["metadata"]["purpose"], "magic_link");
    let (cookie, v) = t.follow_mailed_link("known@example.com").await;
    assert_eq!(v.body["role"], "partner");

    // Revoking the partner kills its session and stops new links.
    let id = p["id"].as_str().unwrap();
    t.revoke_partner(id).await;
    t.api
        .get_with_cookie("/auth/me", &cookie)
        .await
        .expect_error(401, "unauthorized");
    let before = t.last_mail("known@example.com").await.unwrap()["id"].clone();
    anon.post("/auth/magic/request", json!({"email": "known@example.com"}))
        .await
        .expect(200);
    assert_eq!(
        t.last_mail("known@example.com").await.unwrap()["id"],
        before,
        "no link for a revoked partner"
    );

    anon.post("/auth/magic/request", json!({"email": "not an email"}))
        .await
        .expect_error(400, "invalid_body");
    anon.post("/auth/magic/verify", json!({"token": "short"}))
        .await
        .expect_error(400, "invalid_token");
    anon.post("/auth/magic/verify", json!({"token": "A".repeat(43)}))
        .await
        .expect_error(400, "invalid_token");
}

#[tokio::test]
async fn a_link_issued_before_revocation_does_not_work_after_it() {
    let t = Tenant::new().await;
    let p = t.partner("late@example.com").await;
    let token = t.magic_link_token("late@example.com").await;
    t.revoke_partner_notified(p["id"].as_str().unwrap()).await;
    t.verify_magic_link(&token)
        .await
        .expect_error(400, "invalid_token");
}

#[tokio::test]
async fn concurrent_verifies_of_one_token_give_one_session() {
    let t = Tenant::new().await;
    t.partner("twice@example.com").await;
    let token = t.magic_link_token("twice@example.com").await;
    let tries = (0..8).map(|_| {
        let api = t.api.with_key(None);
        let token = token.clone();
        async move {
            api.post("/auth/magic/verify", json!({"token": token}))
                .await
                .code()
        }
    });
    let codes = futures::future::join_all(tries).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 400).count(), 7, "{codes:?}");
}

#[tokio::test]
async fn expired_links_are_refused() {
    let t = Tenant::new().await;
    t.partner("old@example.com").await;
    let token = t.magic_link_token("old@example.com").await;
    let db = db().await;
    let schema = op_control::schema::schema_name(&t.id);
    db.execute(
        &format!("UPDATE \"{schema}\".magic_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL"),
        &[],
    )
    .await
    .unwrap();
    t.verify_magic_link(&token)
        .await
        .expect_error(400, "invalid_token");
}

#[tokio::test]
async fn admins_sign_in_invite_others_and_revocation_ends_sessions() {
    let t = Tenant::with_admin("Boss@Example.com").await;
    let admins = t.api.get("/admins").await.expect(200);
    assert_eq!(admins.body["admins"][0]["email"], "boss@example.com");

    let (boss, v) = t.sign_in("boss@example.com").await;
    assert_eq!(v.body["role"], "admin");
    assert_eq!(v.body["admin"]["status"], "active");
    t.api.get_with_cookie("/partners", &boss).await.expect(200);
    let intro = t
        .api
        .get_with_cookie("/auth/introspect", &boss)
        .await
        .expect(200);
    assert_eq!(intro.body["role"], "admin");

    // The boss invites a colleague by cookie; the colleague signs in with the invite.
    let new = t
        .api
        .with_cookie(
            Method::POST,
            "/admins",
            &boss,
            Some(json!({"email": "ops@example.com", "name": "Ops"})),
        )
        .await
        .expect(201);
    assert_eq!(new.body["status"], "invited");
    let (ops, v) = t.follow_mailed_link("ops@example.com").await;
    assert_eq!(v.body["admin"]["email"], "ops@example.com");
    t.api.get_with_cookie("/auth/me", &ops).await.expect(200);
    t.api
        .post("/admins", json!({"email": "ops@example.com"}))
        .await
        .expect_error(409, "email_taken");

    let id = new.body["id"].as_str().unwrap();
    t.api
        .with_cookie(Method::POST, &format!("/admins/{id}/revoke"), &boss, None)
        .await
        .expect(200);
    t.api
        .get_with_cookie("/auth/me", &ops)
        .await
        .expect_error(401, "unauthorized");
    t.api
        .post(&format!("/admins/{id}/revoke"), json!({}))
        .await
        .expect_error(409, "already_revoked");
}

#[tokio::test]
async fn forged_expired_and_foreign_cookies_are_401() {
    let a = Tenant::new().await;
    let b = Tenant::new().await;
    a.partner("x@example.com").await;
    let (cookie, _) = a.sign_in("x@example.com").await;
    a.api.get_with_cookie("/auth/me", &cookie).await.expect(200);
    // The same valid cookie under another tenant's slug.
    b.api
        .get_with_cookie("/auth/me", &cookie)
        .await
        .expect_error(401, "unauthorized");
    b.api
        .with_cookie(
            Method::POST,
            "/auth/magic/request",
            &cookie,
            Some(json!({"email": "x@example.com"})),
        )
        .await
        .expect_error(401, "unauthorized");
    // Tampered payload / signature, garbage, and a token signed with another secret.
    let jwt = cookie.trim_start_matches("op_session=");
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    // Flip a character in the middle of the signature (the last base64 character carries
    // padding bits, so changing it may not change the decoded signature at all).
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[5] = if sig[5] == 'A' { 'B' } else { 'A' };
    parts[2] = sig.into_iter().collect();
    let bad_sig = format!("op_session={}", parts.join("."));
    let foreign = admin_session("someone-elses-secret", &a.id);
    for c in [
        bad_sig,
        "op_session=garbage".to_string(),
        format!("op_session={foreign}"),
    ] {
        a.api
            .get_with_cookie("/auth/me", &c)
            .await
            .expect_error(401, "unauthorized");
    }
    // A correctly signed cookie for a session row that does not exist: the worker refuses it.
    let ghost = admin_session(TEST_ENV[0].1, &a.id);
    a.api
        .get_with_cookie("/partners", &format!("op_session={ghost}"))
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn partner_keys_act_as_their_partner_only_and_die_with_it() {
    let t = Tenant::new().await;
    let p = t.partner("pk@example.com").await;
    let other = t.partner("pk2@example.com").await;
    let id = p["id"].as_str().unwrap();
    let r = t
        .api
        .post(
            &format!("/partners/{id}/api-keys"),
            json!({"label": "zapier"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["role"], "partner");
    assert_eq!(r.body["partnerId"], id);
    let pk = t.api.with_key(r.body["key"].as_str());

    let intro = pk.get("/auth/introspect").await.expect(200);
    assert_eq!(intro.body, json!({"role": "partner", "partnerId": id}));
    pk.get(&format!("/partners/{id}")).await.expect(200);
    pk.get(&format!("/partners/{}", other["id"].as_str().unwrap()))
        .await
        .expect_error(403, "forbidden");
    pk.get("/partners").await.expect_error(403, "forbidden");
    pk.post("/api-keys", json!({}))
        .await
        .expect_error(403, "forbidden");
    pk.post(&format!("/partners/{id}/revoke"), json!({}))
        .await
        .expect_error(403, "forbidden");
    // A partner manages its own keys, and only its own.
    let second = pk
        .post(&format!("/partners/{id}/api-keys"), json!({}))
        .await
        .expect(201)
        .body;
    let listed = pk
        .get(&format!("/partners/{id}/api-keys"))
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    pk.get(&format!(
        "/partners/{}/api-keys",
        other["id"].as_str().unwrap()
    ))
    .await
    .expect_error(403, "forbidden");
    let admin_key = t.api.get("/api-keys").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    pk.delete(&format!("/api-keys/{admin_key}"))
        .await
        .expect_error(404, "not_found");
    pk.delete(&format!("/api-keys/{}", second["id"].as_str().unwrap()))
        .await
        .expect(200);
    t.api
        .with_key(second["key"].as_str())
        .get("/auth/me")
        .await
        .expect_error(401, "unauthorized");

    // Revoking the partner revokes its keys in the same transaction.
    t.revoke_partner_notified(id).await;
    pk.get(&format!("/partners/{id}"))
        .await
        .expect_error(401, "unauthorized");
    t.api
        .post(&format!("/partners/{id}/api-keys"), json!({}))
        .await
        .expect_error(409, "partner_revoked");
}

#[tokio::test]
async fn introspection_and_the_originals_scoped_route() {
    let t = Tenant::new().await;
    assert_eq!(
        t.api.get_ok("/auth/introspect").await,
        json!({"role": "admin", "unrestricted": true})
    );
    let r = t
        .api
        .post(
            "/api-keys/scoped",
            json!({"scopes": "events:write, partners:read", "label": "zap"}),
        )
        .await
        .expect(201);
    let k = t.api.with_key(r.body["key"].as_str());
    let intro = k.get("/auth/introspect").await.expect(200);
    assert_eq!(
        intro.body,
        json!({"role": "scoped", "scopes": ["events:write", "partners:read"]})
    );
    assert_eq!(intro.body["role"], "scoped");
    assert_eq!(
        intro.body["scopes"],
        json!(["events:write", "partners:read"]),
        "minting order"
    );
    t.api
        .post("/api-keys/scoped", json!({"label": "no scopes"}))
        .await
        .expect_error(400, "invalid_scope");
    let me = k.get("/auth/whoami").await.expect(200);
    assert_eq!(me.body["role"], "scoped");
    let listed = t.api.get("/api-keys?scope=events:write").await.expect(200);
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![r.body["id"].as_str().unwrap()]);
    t.api
        .with_key(None)
        .get("/auth/introspect")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn failed_credentials_are_rate_limited_per_ip() {
    let stack = private_stack(&[("OP_RATE_LIMIT_PER_MIN", "100")]).await;
    let t = Tenant::on(&stack.base_url).await;
    // Authenticated calls carry the rate-limit headers of their key's bucket.
    let ok = t.api.get("/partners").await.expect(200);
    assert!(ok.headers["ratelimit-policy"]
        .to_str()
        .unwrap()
        .contains("q=100"));
    assert!(ok.headers.contains_key("ratelimit"));

    let bad = t.api.with_key(Some(&format!("op_{}", "cd".repeat(24))));
    let mut codes = Vec::new();
    for _ in 0..14 {
        codes.push(bad.get("/partners").await.code());
    }
    assert_eq!(&codes[..10], &[401; 10], "{codes:?}");
    assert!(codes[10..].iter().all(|c| *c == 429), "{codes:?}");
    let limited = bad.get("/partners").await.expect_error(429, "rate_limited");
    assert!(
        limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another address (via a trusted proxy's X-Forwarded-For) is unaffected.
    let r = bad
        .get_with("/partners", &[("x-forwarded-for", "198.51.100.23")])
        .await;
    r.expect_error(401, "unauthorized");

    // A merchant's page calling the public identify route from its own origin can read the
    // gateway's 429 (and when to retry), instead of seeing a CORS failure.
    let page = t.api.with_key(None);
    let mut last = None;
    for _ in 0..120 {
        let r = page
            .raw(
                Method::POST,
                "/attribution/identify",
                Some(br#"{"cref":"01ARZ3NDEKTSV4RRFFQ69G5FAV","userId":"u"}"#.to_vec()),
                &[
                    ("origin", "https://shop.example"),
                    ("x-forwarded-for", "198.51.100.24"),
                ],
            )
            .await;
        let limited = r.code() == 429;
        last = Some(r);
        if limited {
            break;
        }
    }
    let last = last.unwrap();
    let limited = last.expect_error(429, "rate_limited");
    assert_eq!(
        limited.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert!(limited.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("retry-after"));
    assert!(!limited
        .headers
        .contains_key("access-control-allow-credentials"));
}

#[tokio::test]
async fn session_secret_rotation_accepts_the_previous_secret_only_while_configured() {
    let t = Tenant::new().await;
    t.partner("rot@example.com").await;
    let (cookie, _) = t.sign_in("rot@example.com").await;
    let old_secret = TEST_ENV[0].1;
    let new_secret = ("OP_SESSION_SECRET", "the-new-session-secret-0123456789");
    let rotating = private_stack(&[new_secret, ("OP_SESSION_SECRET_PREVIOUS", old_secret)]).await;
    let api = t.api_via(&rotating.base_url);
    api.get_with_cookie("/auth/me", &cookie).await.expect(200);
    drop(rotating);
    let rotated = private_stack(&[new_secret]).await;
    let api = t.api_via(&rotated.base_url);
    api.get_with_cookie("/auth/me", &cookie)
        .await
        .expect_error(401, "unauthorized");
}
