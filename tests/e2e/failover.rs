//! A worker killed mid-run: the gateway routes around it and requests keep succeeding.

use crate::harness::*;
use openpartner::stack::{Mode, Stack};
use serde_json::json;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

#[tokio::test]
async fn killing_a_worker_fails_only_requests_in_flight_on_it() {
    let db = shared().database_url.clone();
    let mut stack = Stack::start(options(&db, Mode::Multi, 2), None)
        .await
        .expect("private stack");
    let t = Tenant::on(&stack.base_url).await;
    let seed = t.partner("seed@example.com").await;
    let seed_path = format!("/partners/{}", seed["id"].as_str().unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let get_failures = Arc::new(AtomicUsize::new(0));
    let post_failures = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    const CLIENTS: usize = 4;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (api, stop, gf, pf, created, seed_path) = (
            t.api.clone(),
            stop.clone(),
            get_failures.clone(),
            post_failures.clone(),
            created.clone(),
            seed_path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let g = api.get(&seed_path).await;
                if g.code() != 200 {
                    gf.fetch_add(1, Ordering::Relaxed);
                }
                let p = api
                    .post(
                        "/partners",
                        json!({"email": format!("c{c}-{i}@example.com"), "name": "L"}),
                    )
                    .await;
                if p.code() == 201 {
                    created
                        .lock()
                        .unwrap()
                        .push(p.body["id"].as_str().unwrap().to_string());
                } else {
                    pf.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stack.kill_worker(0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stack.restart_worker(0).unwrap();
    stack.wait_ready(Duration::from_secs(20)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.kill_worker(1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let created = created.lock().unwrap().clone();
    assert!(
        created.len() > 20,
        "load kept flowing: {} creates",
        created.len()
    );
    assert_eq!(
        get_failures.load(Ordering::Relaxed),
        0,
        "reads are re-sent to a live worker"
    );
    // At most the writes in flight at each of the two kills (one per client).
    assert!(
        post_failures.load(Ordering::Relaxed) <= 2 * CLIENTS,
        "write failures: {}",
        post_failures.load(Ordering::Relaxed)
    );
    // Every acknowledged write is there.
    for id in created.iter().step_by(5) {
        t.api.get(&format!("/partners/{id}")).await.expect(200);
    }
    let ready = Api::new(stack.base_url.clone(), None)
        .get("/ready")
        .await
        .expect(200);
    assert_eq!(
        ready.body["workers"], 1,
        "the killed worker is out of rotation"
    );
}
