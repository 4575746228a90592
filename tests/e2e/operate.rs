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

/// A worker given a value it cannot use stops at once, naming the variable
/// (deploy/CONFIG.md): a `0`/`1` switch set to anything else is refused, not guessed.
#[tokio::test]
async fn workers_refuse_settings_they_cannot_use() {
    let logs = procs::LogDir::new("bad-settings");
    for (name, value, says) in [
        (
            "OP_COOKIE_SECURE",
            "maybe",
            "OP_COOKIE_SECURE must be 0 or 1",
        ),
        (
            "OP_WEBHOOK_ALLOW_PRIVATE",
            "yes",
            "OP_WEBHOOK_ALLOW_PRIVATE must be 0 or 1",
        ),
        ("OP_DEV_MAILBOX", "true", "OP_DEV_MAILBOX must be 0 or 1"),
        (
            "OP_DB_POOL_SIZE",
            "0",
            "OP_DB_POOL_SIZE must be a positive integer",
        ),
        // Gateways dial workers in plain gRPC: an address they would refuse is refused here.
        (
            "OP_WORKER_ADVERTISE",
            "https://w1:7001",
            "OP_WORKER_ADVERTISE: `https://w1:7001` is not a worker address",
        ),
        (
            "OP_WORKER_ADVERTISE",
            "unix:relative.sock",
            "OP_WORKER_ADVERTISE: `unix:relative.sock` is not a worker address",
        ),
    ] {
        let (mut w, _) = procs::worker("bad", &[(name, value)], &logs.file(&format!("{name}.log")));
        let status = w
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{name}={value}: the worker kept running"));
        assert!(!status.success(), "{name}={value}: exit {status}");
        assert!(
            w.log_text().contains(says),
            "{name}={value}: {}",
            w.log_text()
        );
    }
}

/// `OP_LOG_FORMAT=json`: every line of gateway and worker is one JSON object; each request
/// ends with a line carrying its id, tenant slug, route pattern, status and latency; and no
/// secret used in a full run (platform key, admin and scoped keys, magic-link tokens, the
/// session cookie, a webhook secret, the worker token) appears anywhere in either log, even
/// at `RUST_LOG=debug`.
#[tokio::test]
async fn logs_are_json_lines_and_carry_no_secret() {
    const WORKER_TOKEN: &str = "wt-log-test-token-0123456789abcdef";
    let logs = procs::LogDir::new("logs");
    let json_env = [
        ("OP_LOG_FORMAT", "json"),
        ("OP_WORKER_TOKEN", WORKER_TOKEN),
        // Debug, where libraries say the most (tokio-postgres: every statement's parameters).
        ("RUST_LOG", "debug"),
    ];
    let mut pair = procs::pair("log-worker", &json_env, &logs).await;

    let t = Tenant::on(&pair.base).await;
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
    t.api.get_with_cookie("/auth/me", &cookie).await.expect(200);
    let (_, secret) = t
        .webhook("http://127.0.0.1:9/hook", serde_json::json!(["*"]))
        .await;
    secrets.push(secret);
    // Refused credentials are not logged either.
    let refused = t
        .api
        .with_key(Some("op_live_not_a_real_key_0123456789"))
        .get("/partners")
        .await
        .expect_error(401, "unauthorized");
    secrets.push("op_live_not_a_real_key_0123456789".into());
    // Requests refused before any tenant was resolved: their lines name the path's slug.
    let rid = |r: &Resp| r.headers["x-request-id"].to_str().unwrap().to_string();
    let too_large = Api::new(t.api.base.clone(), Some(&t.admin_key))
        .raw(
            reqwest::Method::POST,
            "/partners",
            Some(vec![b'x'; 1024 * 1024 + 16]),
            &[],
        )
        .await
        .expect_error(413, "payload_too_large");
    let unknown_slug = unique_slug("nosuch");
    let unknown = Api::new(format!("{}/api/t/{unknown_slug}", pair.base), None)
        .get("/partners")
        .await
        .expect_error(404, "tenant_not_found");
    let named = [
        (rid(&refused), t.slug.clone(), 401),
        (rid(&too_large), t.slug.clone(), 413),
        (rid(&unknown), unknown_slug, 404),
    ];

    // Stop both (the drain writes its own lines), then read everything they wrote.
    let [gateway, worker] = pair.terminate(Duration::from_secs(40)).await;
    assert!(gateway.is_some());
    assert!(worker.is_some());
    let gateway_log = pair.gateway.log_text();
    let worker_log = pair.worker.log_text();
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
    assert_eq!(at_worker["principal"], "admin");
    for (id, slug, status) in named {
        let v = gateway_log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["msg"] == "request" && v["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no request line for {id}: {gateway_log}"));
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["tenant"], slug.as_str(), "the slug the path names: {v}");
        assert_eq!(v["route"], "/api/t/:slug/*", "{v}");
    }
    // A request whose path names no tenant still has its line, with a null tenant.
    let health = gateway_log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["msg"] == "request" && v["route"] == "/health")
        .expect("the start-up /health polls were logged");
    assert!(health["tenant"].is_null());
}

/// `GET /platform/workers` of the gateway at `base`: the entry of `url`, if listed.
async fn listed(base: &str, url: &str) -> Option<serde_json::Value> {
    let r = platform(base).get("/platform/workers").await.expect(200);
    r.body["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["url"] == url)
        .cloned()
}

/// Polls until `check` holds for the listing of `url` (None: not listed); how long it took.
async fn until_listed(
    base: &str,
    url: &str,
    within: Duration,
    check: impl Fn(&Option<serde_json::Value>) -> bool,
) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let w = listed(base, url).await;
        if check(&w) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{url} never reached the expected state; last: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn health_is(h: &'static str) -> impl Fn(&Option<serde_json::Value>) -> bool {
    move |w| w.as_ref().is_some_and(|w| w["health"] == h)
}

/// `OP_WORKERS` static URLs and `dns:<name>:<port>` entries side by side; the listing shows
/// each worker with its source, health, in-flight count and last probe.
#[tokio::test]
async fn gateways_route_to_static_and_dns_workers() {
    let logs = procs::LogDir::new("dns");
    let (_a, url_a) = procs::worker("static-a", &[], &logs.file("a.log"));
    let (_b, url_b) = procs::worker("dns-b", &[], &logs.file("b.log"));
    let port_b = url_b.rsplit(':').next().unwrap();
    let (_g, base) = procs::gateway(
        &format!("{url_a},dns:localhost:{port_b}"),
        &[("OP_WORKER_REFRESH_SECS", "1")],
        &logs.file("gw.log"),
    )
    .await;
    // Probed and serving (static workers count as serving before their first probe).
    let probed = |w: &Option<serde_json::Value>| {
        w.as_ref()
            .is_some_and(|w| w["health"] == "serving" && w["lastSeenAt"].is_string())
    };
    until_listed(&base, &url_a, Duration::from_secs(10), probed).await;
    until_listed(&base, &url_b, Duration::from_secs(10), probed).await;
    let a = listed(&base, &url_a).await.unwrap();
    assert_eq!(a["source"], "static");
    assert_eq!(a["id"], "static-a", "the id the worker reports");
    assert_eq!(a["inFlight"], 0);
    assert!(a["lastSeenAt"].as_str().unwrap().ends_with('Z'));
    let b = listed(&base, &url_b).await.unwrap();
    assert_eq!(
        (b["source"].as_str(), b["id"].as_str()),
        (Some("dns"), Some("dns-b"))
    );
    // Tenants spread over both, and every one is served.
    for _ in 0..4 {
        let t = Tenant::on(&base).await;
        t.partner("spread@example.com").await;
    }
    // Only the platform key sees the set.
    Api::new(base.clone(), None)
        .get("/platform/workers")
        .await
        .expect_error(401, "unauthorized");
}

/// `OP_WORKERS=registry`: workers with `OP_WORKER_ADVERTISE` join the set at once (NOTIFY,
/// the refresh is set to a minute here), a draining worker leaves rotation within a second
/// and the set when it exits, and a killed one is dropped after 3 silent heartbeats.
#[tokio::test]
async fn gateways_follow_the_worker_registry() {
    let logs = procs::LogDir::new("registry");
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let (_g, base) = procs::gateway(
        "registry",
        &[("OP_WORKER_REFRESH_SECS", "60")],
        &logs.file("gw.log"),
    )
    .await;
    let start_worker = |n: usize| {
        let port = openpartner::children::free_port().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let id = format!("reg-{tag}-{n}");
        let p = procs::worker_at(
            &id,
            &url,
            &[("OP_WORKER_ADVERTISE", &url), ("OP_DRAIN_SECS", "5")],
            &logs.file(&format!("w{n}.log")),
        );
        (p, url, id)
    };
    let (mut w1, url1, id1) = start_worker(1);
    until_listed(&base, &url1, Duration::from_secs(30), health_is("serving")).await;
    let listed1 = listed(&base, &url1).await.unwrap();
    assert_eq!(
        (listed1["source"].as_str(), listed1["id"].as_str()),
        (Some("registry"), Some(id1.as_str()))
    );
    let t = Tenant::on(&base).await;
    t.partner("reg@example.com").await;
    let (mut w2, url2, _) = start_worker(2);
    let (_w3, url3, _) = start_worker(3);
    until_listed(&base, &url2, Duration::from_secs(30), health_is("serving")).await;
    until_listed(&base, &url3, Duration::from_secs(30), health_is("serving")).await;

    // SIGTERM: draining at the gateway within a second, gone once it exited (0). (The other
    // waits are generous upper bounds: a loaded CI box starts and probes slowly.)
    w1.signal(libc::SIGTERM);
    let took = until_listed(&base, &url1, Duration::from_secs(5), |w| {
        w.as_ref().is_none_or(|w| w["health"] != "serving")
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "out of rotation after {took:?}"
    );
    let status = w1
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits within OP_DRAIN_SECS");
    assert!(status.success(), "{status:?}: {}", w1.log_text());
    until_listed(&base, &url1, Duration::from_secs(10), Option::is_none).await;
    t.partner("after-drain@example.com").await;

    // kill -9: down at once (probe), out of the registry after 3 silent heartbeats (the
    // next heartbeat of a live worker deletes its row and wakes the gateways).
    w2.kill();
    until_listed(&base, &url2, Duration::from_secs(10), |w| {
        w.as_ref().is_none_or(|w| w["health"] == "down")
    })
    .await;
    until_listed(&base, &url2, Duration::from_secs(30), Option::is_none).await;
    t.partner("after-kill@example.com").await;
    let db = db().await;
    let rows = db
        .query(
            "SELECT id FROM control.workers WHERE id LIKE $1",
            &[&format!("reg-{tag}-%")],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only the live worker is registered");
}

/// Rolling restart under load (reads, partner writes, clicks, events with `eventId`):
/// SIGTERM each worker in turn (restarted in place), then the gateway. No request fails; no
/// acknowledged event is lost or priced twice; each worker leaves rotation within a second
/// and exits 0 within `OP_DRAIN_SECS`; the gateway finishes a request in flight before it
/// exits 0.
#[tokio::test]
async fn sigterm_drains_workers_and_gateways_without_failed_requests() {
    use std::sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    };
    let logs = procs::LogDir::new("drain");
    let env = [("OP_DRAIN_SECS", "5"), ("OP_CLICK_IP_CAP_PER_MIN", "0")];
    let (w1, url1) = procs::worker("drain-1", &env, &logs.file("w1.log"));
    let (w2, url2) = procs::worker("drain-2", &env, &logs.file("w2.log"));
    let mut workers = [(w1, url1.clone(), "drain-1"), (w2, url2.clone(), "drain-2")];
    let (mut g, base) = procs::gateway(&format!("{url1},{url2}"), &env, &logs.file("gw.log")).await;
    procs::wait_workers(&base, 2).await;
    let t = Tenant::on(&base).await;
    let seed = t.partner("seed@example.com").await;
    let seed_path = format!("/partners/{}", seed["id"].as_str().unwrap());
    let link = t.campaign_link(serde_json::json!({})).await;
    t.identified_click(&link, "drain-user").await;
    let link_url = t.link_url(&link.key);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    // Acknowledged events: (eventId, server id, commission id).
    let acked = Arc::new(Mutex::new(Vec::<(String, serde_json::Value)>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for c in 0..3 {
        let (api, stop, failures, done, seed_path, acked, link_url) = (
            t.api.clone(),
            stop.clone(),
            failures.clone(),
            done.clone(),
            seed_path.clone(),
            acked.clone(),
            link_url.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = api.get(&seed_path).await;
                if r.code() != 200 {
                    failures.lock().unwrap().push(format!("GET {}: {}", r.code(), r.body));
                }
                let r = api
                    .post(
                        "/partners",
                        serde_json::json!({"email": format!("l{c}-{i}@example.com"), "name": "L", "sendInvite": false}),
                    )
                    .await;
                if r.code() != 201 {
                    failures.lock().unwrap().push(format!("POST {}: {}", r.code(), r.body));
                }
                let click = visit(&link_url, &ip()).await;
                if click.status != 302 {
                    failures.lock().unwrap().push(format!("click {}: {}", click.status, click.body));
                }
                let event_id = format!("drain-{c}-{i}");
                let r = api
                    .post(
                        "/attribution/events",
                        serde_json::json!({"userId": "drain-user", "type": "invoice.paid", "value": "10.00", "currency": "USD", "eventId": event_id}),
                    )
                    .await;
                if r.code() == 201 {
                    acked.lock().unwrap().push((event_id, r.body));
                } else {
                    failures.lock().unwrap().push(format!("event {}: {}", r.code(), r.body));
                }
                done.fetch_add(4, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (proc, url, id) in workers.iter_mut() {
        proc.signal(libc::SIGTERM);
        let took = until_listed(&base, url, Duration::from_secs(5), health_is("draining")).await;
        assert!(
            took < Duration::from_secs(1),
            "{id} out of rotation after {took:?}"
        );
        let start = std::time::Instant::now();
        let status = proc
            .wait_exit(Duration::from_secs(6))
            .await
            .expect("exits within OP_DRAIN_SECS");
        assert!(status.success(), "{id}: {status:?}: {}", proc.log_text());
        assert!(start.elapsed() < Duration::from_secs(5));
        *proc = procs::worker_at(id, url, &env, &logs.file(&format!("{id}-again.log")));
        until_listed(&base, url, Duration::from_secs(20), health_is("serving")).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(done.load(Ordering::Relaxed) > 50, "load flowed");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    // Every acknowledged event is stored once: sent again, it answers its first result
    // (200, same event, same commission), never a new one.
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 5, "events flowed: {}", acked.len());
    let mut commissions = std::collections::HashSet::new();
    for (event_id, first) in &acked {
        let again = t
            .event(serde_json::json!({"userId": "drain-user", "type": "invoice.paid", "value": "10.00", "currency": "USD", "eventId": event_id}))
            .await
            .expect(200);
        assert_eq!(&again.body, first, "{event_id}");
        let commission = first["attribution"]["touches"][0]["commissionId"].clone();
        assert!(commission.is_string(), "{first}");
        assert!(
            commissions.insert(commission.to_string()),
            "{event_id}: a commission twice"
        );
    }

    // The gateway: a request in flight (its body still coming) when SIGTERM arrives is
    // answered; new connections are refused; the gateway exits 0.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let body =
        serde_json::json!({"email": "inflight@example.com", "name": "F", "sendInvite": false})
            .to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/t/{}/partners HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        t.slug,
        t.admin_key,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    g.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "a draining gateway accepts no new connection"
    );
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = g
        .wait_exit(Duration::from_secs(6))
        .await
        .expect("the gateway exits");
    assert!(status.success(), "{status:?}");
}

/// A worker drained while it sends a webhook finishes the send and records the attempt
/// (which releases the delivery's lease) before it exits 0: the delivery is `delivered`,
/// and no other worker sends it again once the lease would have run out.
#[tokio::test]
async fn a_draining_worker_finishes_its_webhook_sends() {
    let logs = procs::LogDir::new("drain-hooks");
    // A cluster of its own: the shared stack's workers would take part in the deliveries.
    let (pg, database_url) = procs::own_cluster(&logs).await;
    let env = [
        ("OP_DRAIN_SECS", "10"),
        ("DATABASE_URL", database_url.as_str()),
    ];
    let procs::Pair {
        worker: mut w,
        worker_url: url,
        gateway: _g,
        base,
    } = procs::pair("hooks-1", &env, &logs).await;
    let t = Tenant::on(&base).await;
    let receiver = receiver::Receiver::answering(200, Duration::from_millis(2500)).await;
    let (ep, _) = t
        .webhook(&receiver.url("/slow"), serde_json::json!(["*"]))
        .await;
    t.partner("hooked@example.com").await;
    // The send has started (the receiver holds its answer for 2.5 s): drain now.
    receiver.wait_for("/slow", 10, |got| !got.is_empty()).await;
    w.signal(libc::SIGTERM);
    let status = w
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits within OP_DRAIN_SECS");
    assert!(status.success(), "{status:?}: {}", w.log_text());
    // Another worker at the same place: the delivery is recorded, and not sent again.
    let _w2 = procs::worker_at("hooks-2", &url, &env, &logs.file("w2.log"));
    procs::wait_workers(&base, 1).await;
    let log = t.deliveries(&ep).await;
    let d = &log.body["data"][0];
    assert_eq!(d["status"], "delivered", "{}\n{}", log.body, w.log_text());
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["attemptLog"][0]["worker"], "hooks-1", "{}", log.body);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count("/slow"), 1, "sent once");
    drop(pg);
}
