//! The gateway's own answers, given without a worker: the service endpoints' methods, no
//! worker reachable, and a configuration it refuses at start (deploy/CONFIG.md: an invalid
//! value stops the process with a message naming the variable).

use crate::harness::{procs, *};
use reqwest::Method;
use std::time::Duration;

/// `/health`, `/ready` and `/metrics` answer `GET` and `HEAD`; any other method is `405
/// method_not_allowed` with `Allow: GET, HEAD`, like every wrong method.
#[tokio::test]
async fn service_endpoints_refuse_other_methods() {
    let gw = gateway();
    for path in ["/health", "/ready", "/metrics"] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = gw
                .raw(method.clone(), path, Some(b"{}".to_vec()), &[])
                .await
                .expect_error(405, "method_not_allowed");
            assert_eq!(r.headers["allow"], "GET, HEAD", "{method} {path}");
        }
        let head = gw.raw(Method::HEAD, path, None, &[]).await;
        assert_eq!(head.code(), 200, "HEAD {path}");
    }
    gw.get("/health").await.expect(200);
    gw.get("/ready").await.expect(200);
}

/// With no worker listening at any address of `OP_WORKERS`, a request never reaches one:
/// `503 unavailable` (retry later), not `502 bad_gateway` (a worker failed mid-request).
#[tokio::test]
async fn no_reachable_worker_is_503_not_502() {
    let t = Tenant::new().await;
    let logs = procs::LogDir::new("noworker");
    let port = openpartner::children::free_port().expect("free port");
    let nowhere = format!("http://127.0.0.1:{port}");
    let (_g, base) = procs::gateway(&nowhere, &[], &logs.file("gateway.log")).await;
    let api = t.api_via(&base);
    // At once (the worker is still presumed up) and after a probe found it down.
    for wait in [0, 1200] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        api.get("/partners").await.expect_error(503, "unavailable");
        api.post(
            "/partners",
            serde_json::json!({"email": "p@example.com", "name": "P"}),
        )
        .await
        .expect_error(503, "unavailable");
        platform(&base)
            .get("/platform/tenants")
            .await
            .expect_error(503, "unavailable");
    }
}

/// A value the gateway cannot use stops it at start, non-zero, with the variable named.
#[tokio::test]
async fn the_gateway_refuses_unusable_settings() {
    let logs = procs::LogDir::new("badcfg");
    let port = openpartner::children::free_port().expect("free port");
    let listen = format!("127.0.0.1:{port}");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "pool0",
            &[
                ("OP_DB_POOL_SIZE", "0"),
                ("OP_WORKERS", "http://127.0.0.1:1"),
            ],
            "OP_DB_POOL_SIZE must be a positive integer",
        ),
        (
            "ftp",
            &[("OP_WORKERS", "ftp://x")],
            "OP_WORKERS: `ftp://x` is not a worker address",
        ),
        (
            "https",
            &[("OP_WORKERS", "http://127.0.0.1:1,https://w:7001")],
            "OP_WORKERS: `https://w:7001`",
        ),
        (
            "bare",
            &[("OP_WORKERS", "w1:7001")],
            "OP_WORKERS: `w1:7001` is not a worker address",
        ),
    ];
    for (name, env, message) in cases {
        let mut all: Vec<(&str, &str)> = vec![("OP_GATEWAY_LISTEN", &listen)];
        all.extend_from_slice(env);
        let mut p = procs::spawn("gateway", &all, &logs.file(&format!("{name}.log")));
        let status = p
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{name}: the gateway did not stop: {}", p.log_text()));
        assert!(!status.success(), "{name}: {status:?}");
        assert!(
            p.log_text().contains(message),
            "{name}: says {message:?}: {}",
            p.log_text()
        );
    }
}
