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
