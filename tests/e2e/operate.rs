//! Operating a hosted setup (operate.md): the gateway↔worker token, JSON logs without
//! secrets, graceful drain. Each test starts its own processes as deploy/CONFIG.md documents.

use crate::harness::{procs, *};
use std::time::Duration;

/// A worker with `OP_WORKER_TOKEN` (and a previous value being rotated out) serves only
/// gateways that send one of them; a gateway without a valid token answers `503 unavailable`.
#[tokio::test]
async fn workers_refuse_gateways_without_their_token() {
    let logs = procs::LogDir::new("token");
    let (_w, url) = procs::worker(
        "tok-worker",
        &[
            ("OP_WORKER_TOKEN", "wt-current-0123456789abcdef"),
            ("OP_WORKER_TOKEN_PREVIOUS", "wt-previous-0123456789abcdef"),
        ],
        &logs.file("worker.log"),
    );
    // The current token and the previous one both pass.
    for (name, token) in [
        ("current", "wt-current-0123456789abcdef"),
        ("previous", "wt-previous-0123456789abcdef"),
    ] {
        let (_g, base) = procs::gateway(
            &url,
            &[("OP_WORKER_TOKEN", token)],
            &logs.file(&format!("gw-{name}.log")),
        )
        .await;
        procs::wait_workers(&base, 1).await;
        platform(&base).get("/platform/tenants").await.expect(200);
    }
    // No token, or another one: the worker refuses every call; the gateway says 503.
    for (name, env) in [
        ("none", vec![]),
        (
            "wrong",
            vec![("OP_WORKER_TOKEN", "wt-current-0123456789abcdeX")],
        ),
        ("prefix", vec![("OP_WORKER_TOKEN", "wt-current")]),
    ] {
        let (g, base) = procs::gateway(&url, &env, &logs.file(&format!("gw-{name}.log"))).await;
        tokio::time::sleep(Duration::from_millis(1500)).await; // a health probe ran
        let ready = Api::new(base.clone(), None).get("/ready").await;
        assert_eq!(ready.code(), 503, "{name}: {}", ready.body);
        assert_eq!(ready.body["workers"], 0, "{name}");
        platform(&base)
            .get("/platform/tenants")
            .await
            .expect_error(503, "unavailable");
        assert!(
            g.log_text()
                .contains("refused this gateway's OP_WORKER_TOKEN"),
            "{name}: the gateway says why: {}",
            g.log_text()
        );
    }
}

/// `OP_LOG_FORMAT=json`: every line of gateway and worker is one JSON object; each request
/// ends with a line carrying its id, tenant slug, route pattern, status and latency; and no
/// secret used in a full run (platform key, admin and scoped keys, magic-link tokens, the
/// session cookie, a webhook secret, the worker token) appears anywhere in either log.
#[tokio::test]
async fn logs_are_json_lines_and_carry_no_secret() {
    const WORKER_TOKEN: &str = "wt-log-test-token-0123456789abcdef";
    let logs = procs::LogDir::new("logs");
    let json_env = [
        ("OP_LOG_FORMAT", "json"),
        ("OP_WORKER_TOKEN", WORKER_TOKEN),
        ("RUST_LOG", "info"),
    ];
    let (mut w, url) = procs::worker("log-worker", &json_env, &logs.file("worker.log"));
    let (mut g, base) = procs::gateway(&url, &json_env, &logs.file("gateway.log")).await;
    procs::wait_workers(&base, 1).await;

    let t = Tenant::on(&base).await;
    let mut secrets = vec![
        PLATFORM_KEY.to_string(),
        WORKER_TOKEN.to_string(),
        t.admin_key.clone(),
    ];
    let scoped = t
        .api
        .post(
            "/api-keys",
            serde_json::json!({"scopes": ["partners:read"]}),
        )
        .await
        .expect(201);
    let scoped_key = scoped.body["key"].as_str().unwrap().to_string();
    secrets.push(scoped_key.clone());
    let partners = t
        .api
        .with_key(Some(&scoped_key))
        .get("/partners")
        .await
        .expect(200);
    assert!(partners.body["data"].is_array());

    let partner = t.partner("logged@example.com").await;
    let partner_id = partner["id"].as_str().unwrap().to_string();
    let read = t
        .api
        .get(&format!("/partners/{partner_id}"))
        .await
        .expect(200);
    let read_rid = read.headers["x-request-id"].to_str().unwrap().to_string();
    secrets.push(t.magic_link_token("logged@example.com").await);
    let (cookie, verify) = t.sign_in("logged@example.com").await;
    let mail = t.last_mail("logged@example.com").await.unwrap();
    secrets.push(token_in(mail["body"].as_str().unwrap()));
    assert_eq!(verify.code(), 200);
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    assert!(cookie_value.len() > 20);
    secrets.push(cookie_value);
    t.api
        .with_cookie(reqwest::Method::GET, "/auth/me", &cookie, None)
        .await
        .expect(200);
    let hook = t
        .api
        .post(
            "/webhooks",
            serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await
        .expect(201);
    secrets.push(hook.body["secret"].as_str().unwrap().to_string());
    // Refused credentials are not logged either.
    t.api
        .with_key(Some("op_live_not_a_real_key_0123456789"))
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    secrets.push("op_live_not_a_real_key_0123456789".into());

    // Stop both (the drain writes its own lines), then read everything they wrote.
    g.signal(libc::SIGTERM);
    w.signal(libc::SIGTERM);
    assert!(g.wait_exit(Duration::from_secs(40)).is_some());
    assert!(w.wait_exit(Duration::from_secs(40)).is_some());
    let gateway_log = g.log_text();
    let worker_log = w.log_text();
    for (name, log) in [("gateway", &gateway_log), ("worker", &worker_log)] {
        assert!(log.lines().count() > 5, "{name} logged: {log}");
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not a JSON line ({e}): {line}"));
            for key in ["ts", "level", "msg"] {
                assert!(v[key].is_string(), "{name}: no {key}: {line}");
            }
            if v["msg"] == "request" {
                for key in ["request_id", "tenant", "route", "status", "latency_ms"] {
                    assert!(
                        v.get(key).is_some(),
                        "{name}: request line without {key}: {line}"
                    );
                }
                assert!(
                    !v["route"].as_str().unwrap_or("").contains(&partner_id),
                    "{name}: a raw path was logged: {line}"
                );
            }
        }
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "{name} log contains the secret {secret}"
            );
        }
    }
    // The read of one partner, as each process logged it.
    let line = |log: &str| -> serde_json::Value {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["msg"] == "request" && v["request_id"] == read_rid.as_str())
            .unwrap_or_else(|| panic!("no request line for {read_rid}: {log}"))
    };
    let at_gateway = line(&gateway_log);
    assert_eq!(at_gateway["route"], "/api/t/:slug/partners/:id");
    assert_eq!(at_gateway["tenant"], t.slug.as_str());
    assert_eq!(at_gateway["status"], 200);
    assert!(at_gateway["latency_ms"].as_f64().unwrap() > 0.0);
    let at_worker = line(&worker_log);
    assert_eq!(at_worker["route"], "/partners/:id");
    assert_eq!(at_worker["tenant"], t.slug.as_str());
    assert_eq!(at_worker["status"], 200);
    // A request no tenant matched still has its line, with a null tenant.
    let health = gateway_log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["msg"] == "request" && v["route"] == "/health")
        .expect("the start-up /health polls were logged");
    assert!(health["tenant"].is_null());
}
