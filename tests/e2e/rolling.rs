//! The rolling-replacement proof of operate.md, with the page's numbers: under steady load
//! (reads, clicks, events with `eventId` that each make a commission) every worker is
//! replaced one at a time, then every gateway — 0 failed reads, 0 failed clicks, 0 lost
//! acknowledged events, 0 duplicate commissions; and `kill -9` of the busiest worker under
//! the same load, where only requests in flight on it may fail (`502`/`503`), and they
//! succeed when retried.
//!
//! Each test runs on a cluster of its own (the worker registry is one table per database,
//! and another test's workers must not join these gateways), with 3 workers found through
//! the registry (`OP_WORKERS=registry`, so new workers join without touching a gateway) and
//! 2 gateways. The clients go through a client-side list of gateways, as a load balancer
//! does: a gateway to be replaced is taken out of the list and its requests in flight are
//! let finish before it gets SIGTERM (the load balancer's drain).

use crate::harness::{procs, *};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

/// Every process's settings: a short drain bound, no per-IP click cap (the load's clicks
/// come from one host, through a trusted proxy header).
const ENV: &[(&str, &str)] = &[("OP_DRAIN_SECS", "5"), ("OP_CLICK_IP_CAP_PER_MIN", "0")];

/// One gateway in the clients' list.
struct Slot {
    base: RwLock<String>,
    in_rotation: AtomicBool,
    in_flight: AtomicUsize,
}

/// The client-side load balancer: round robin over the gateways in rotation.
struct Balancer {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

/// A request counted against its gateway until dropped.
struct Picked<'a> {
    slot: &'a Slot,
    base: String,
}

impl Drop for Picked<'_> {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Balancer {
    fn new(bases: &[String]) -> Balancer {
        Balancer {
            slots: bases
                .iter()
                .map(|b| Slot {
                    base: RwLock::new(b.clone()),
                    in_rotation: AtomicBool::new(true),
                    in_flight: AtomicUsize::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next gateway in rotation. The request is counted before the rotation flag is
    /// read, so once [`Balancer::drain`] returned, no request goes to that gateway.
    fn pick(&self) -> Picked<'_> {
        loop {
            let i = self.next.fetch_add(1, SeqCst) % self.slots.len();
            let slot = &self.slots[i];
            slot.in_flight.fetch_add(1, SeqCst);
            if slot.in_rotation.load(SeqCst) {
                let base = slot.base.read().unwrap().clone();
                return Picked { slot, base };
            }
            slot.in_flight.fetch_sub(1, SeqCst);
        }
    }

    /// Takes gateway `i` out of rotation and waits for its requests in flight to finish.
    async fn drain(&self, i: usize) {
        let slot = &self.slots[i];
        slot.in_rotation.store(false, SeqCst);
        wait_until("the gateway's requests in flight finish", 30, || async {
            slot.in_flight.load(SeqCst) == 0
        })
        .await;
    }

    fn restore(&self, i: usize, base: &str) {
        *self.slots[i].base.write().unwrap() = base.to_string();
        self.slots[i].in_rotation.store(true, SeqCst);
    }
}

/// `GET /platform/workers` of the gateway at `base`: url → health.
async fn routes_to(base: &str) -> HashMap<String, (String, u64)> {
    let r = platform(base).get("/platform/workers").await.expect(200);
    r.body["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            (
                w["url"].as_str().unwrap().to_string(),
                (
                    w["health"].as_str().unwrap().to_string(),
                    w["inFlight"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// One tenant the load works on: a partner to read, a link to click, and a user whose
/// click was identified, so each event of that user makes one commission.
#[derive(Clone)]
struct Target {
    slug: String,
    key: String,
    read: String,
    link_key: String,
    link_id: String,
    user: String,
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    reads: AtomicUsize,
    clicks: AtomicUsize,
    events: AtomicUsize,
    /// Reads and clicks that failed (kind, status, body), each retried until it succeeded.
    failed: Mutex<Vec<String>>,
    /// Event posts that failed and were retried with the same `eventId`: (status, body).
    event_retries: Mutex<Vec<(u16, String)>>,
    /// Acknowledged events: eventId → (slug, the commission id of the reply).
    acked: Mutex<HashMap<String, (String, String)>>,
    /// Clicks answered 302, per link id.
    clicked: Mutex<HashMap<String, i64>>,
}

/// One HTTP exchange: the status (0 when no answer came) and the body.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = http
        .request(method, url)
        .header("x-forwarded-for", ip())
        .header("user-agent", "Mozilla/5.0 (rolling)");
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("no answer: {e}")),
    }
}

/// A fleet on a cluster of its own: registry-discovered workers, gateways, tenants, load.
struct Fleet {
    logs: procs::LogDir,
    database_url: String,
    tag: String,
    started: usize,
    workers: Vec<(procs::Proc, String)>,
    gateways: Vec<procs::Proc>,
    balancer: Arc<Balancer>,
    targets: Vec<Target>,
    _pg: openpartner::embedded_pg::EmbeddedPg,
}

impl Fleet {
    async fn start(name: &str, workers: usize, gateways: usize, tenants: usize) -> Fleet {
        let logs = procs::LogDir::new(name);
        let (pg, database_url) = procs::own_cluster(&logs).await;
        let mut fleet = Fleet {
            logs,
            database_url,
            tag: ulid::Ulid::new().to_string().to_lowercase()[16..].to_string(),
            started: 0,
            workers: Vec::new(),
            gateways: Vec::new(),
            balancer: Arc::new(Balancer::new(&[])),
            targets: Vec::new(),
            _pg: pg,
        };
        for _ in 0..workers {
            let w = fleet.start_worker();
            fleet.workers.push(w);
        }
        let mut bases = Vec::new();
        for _ in 0..gateways {
            let (g, base) = fleet.start_gateway().await;
            fleet.gateways.push(g);
            bases.push(base);
        }
        fleet.balancer = Arc::new(Balancer::new(&bases));
        for _ in 0..tenants {
            let t = Tenant::on(&bases[0]).await;
            let seed = t.partner("seed@example.com").await;
            let link = t
                .campaign_link(json!({"commissionRule": percent("10")}))
                .await;
            t.identified_click(&link, "roll-user").await;
            fleet.targets.push(Target {
                read: format!("/partners/{}", seed["id"].as_str().unwrap()),
                slug: t.slug.clone(),
                key: t.admin_key.clone(),
                link_key: link.key.clone(),
                link_id: link.id.clone(),
                user: "roll-user".into(),
            });
        }
        fleet
    }

    fn env(&self) -> Vec<(&str, &str)> {
        let mut env = ENV.to_vec();
        env.push(("DATABASE_URL", self.database_url.as_str()));
        env
    }

    /// A new worker that registers itself (`OP_WORKER_ADVERTISE`); it and its URL.
    fn start_worker(&mut self) -> (procs::Proc, String) {
        self.started += 1;
        let port = openpartner::children::free_port().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let id = format!("roll-{}-{}", self.tag, self.started);
        let mut env = self.env();
        env.push(("OP_WORKER_ADVERTISE", &url));
        let p = procs::worker_at(
            &id,
            &url,
            &env,
            &self.logs.file(&format!("w{}.log", self.started)),
        );
        (p, url)
    }

    /// A new gateway following the registry, once it routes to every current worker.
    async fn start_gateway(&mut self) -> (procs::Proc, String) {
        self.started += 1;
        let env = self.env();
        let (g, base) = procs::gateway(
            "registry",
            &env,
            &self.logs.file(&format!("gw{}.log", self.started)),
        )
        .await;
        let urls: Vec<String> = self.workers.iter().map(|w| w.1.clone()).collect();
        wait_until("a new gateway routes to every worker", 30, || async {
            let set = routes_to(&base).await;
            urls.iter()
                .all(|u| set.get(u).is_some_and(|h| h.0 == "serving"))
        })
        .await;
        (g, base)
    }

    /// The bases of the gateways in rotation.
    fn gateway_bases(&self) -> Vec<String> {
        self.balancer
            .slots
            .iter()
            .filter(|s| s.in_rotation.load(SeqCst))
            .map(|s| s.base.read().unwrap().clone())
            .collect()
    }

    /// Waits until every gateway in rotation sees `url` as `health` (`None`: not listed).
    async fn until_every_gateway(&self, url: &str, health: Option<&str>, secs: u64) -> Duration {
        let bases = self.gateway_bases();
        wait_until(
            &format!("every gateway sees {url} as {health:?}"),
            secs,
            || {
                let bases = bases.clone();
                async move {
                    for b in &bases {
                        let set = routes_to(b).await;
                        if set.get(url).map(|h| h.0.as_str()) != health {
                            return false;
                        }
                    }
                    true
                }
            },
        )
        .await
    }

    /// Replaces worker `i`: a new one starts, every gateway routes to it, then the old one
    /// gets SIGTERM, leaves rotation and exits 0 within the drain bound.
    async fn replace_worker(&mut self, i: usize) {
        let (new, new_url) = self.start_worker();
        self.until_every_gateway(&new_url, Some("serving"), 30)
            .await;
        let (mut old, old_url) = std::mem::replace(&mut self.workers[i], (new, new_url));
        old.signal(libc::SIGTERM);
        let took = self
            .until_every_gateway(&old_url, Some("draining"), 5)
            .await;
        assert!(
            took < Duration::from_secs(1),
            "{old_url} out of rotation after {took:?}"
        );
        let status = old
            .wait_exit(Duration::from_secs(7))
            .await
            .expect("a draining worker exits within OP_DRAIN_SECS");
        assert!(status.success(), "{status:?}: {}", old.log_text());
        self.until_every_gateway(&old_url, None, 10).await;
    }

    /// Replaces gateway `i`: out of the clients' rotation (its requests finish), SIGTERM,
    /// exit 0; a new one is put in its place once it routes to every worker.
    async fn replace_gateway(&mut self, i: usize) {
        self.balancer.drain(i).await;
        let old = &mut self.gateways[i];
        old.signal(libc::SIGTERM);
        let status = old
            .wait_exit(Duration::from_secs(7))
            .await
            .expect("a gateway exits once its requests finished");
        assert!(status.success(), "{status:?}: {}", old.log_text());
        let (g, base) = self.start_gateway().await;
        self.gateways[i] = g;
        self.balancer.restore(i, &base);
    }

    /// Starts `clients` load loops (read, click, event with `eventId`, on the targets in
    /// turn) until [`Load::stop`].
    fn load(&self, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let loops = self.load_loops(clients, &stop, &tally);
        Load { stop, tally, loops }
    }

    fn load_loops(
        &self,
        clients: usize,
        stop: &Arc<AtomicBool>,
        tally: &Arc<Tally>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..clients)
            .map(|c| {
                let (lb, stop, tally, targets, tag) = (
                    self.balancer.clone(),
                    stop.clone(),
                    tally.clone(),
                    self.targets.clone(),
                    self.tag.clone(),
                );
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap();
                    let mut i = 0usize;
                    while !stop.load(SeqCst) {
                        let t = &targets[(c + i) % targets.len()];
                        // A read and a click: retried until they succeed, every failure
                        // counted.
                        for (kind, ok) in [("read", 200), ("click", 302)] {
                            let mut tries = 0;
                            loop {
                                let (status, body) = {
                                    let gw = lb.pick();
                                    let url = if kind == "read" {
                                        format!("{}/api/t/{}{}", gw.base, t.slug, t.read)
                                    } else {
                                        format!("{}/r/{}/{}", gw.base, t.slug, t.link_key)
                                    };
                                    call(&http, reqwest::Method::GET, &url, Some(&t.key).filter(|_| kind == "read").map(|k| k.as_str()), None).await
                                };
                                if status == ok {
                                    break;
                                }
                                tally.failed.lock().unwrap().push(format!("{kind} {status}: {body}"));
                                tries += 1;
                                assert!(tries < 100, "{kind} never succeeded: {status} {body}");
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            if kind == "read" {
                                tally.reads.fetch_add(1, SeqCst);
                            } else {
                                tally.clicks.fetch_add(1, SeqCst);
                                *tally.clicked.lock().unwrap().entry(t.link_id.clone()).or_default() += 1;
                            }
                        }
                        // An event: a failure is retried with the same eventId.
                        let event_id = format!("{tag}-{c}-{i}");
                        let body = json!({"userId": t.user, "type": "invoice.paid", "value": "10.00", "currency": "USD", "eventId": event_id});
                        let mut tries = 0;
                        loop {
                            let (status, reply) = {
                                let gw = lb.pick();
                                let url = format!("{}/api/t/{}/attribution/events", gw.base, t.slug);
                                call(&http, reqwest::Method::POST, &url, Some(&t.key), Some(&body)).await
                            };
                            if status == 201 || status == 200 {
                                let reply: Value = serde_json::from_str(&reply).unwrap();
                                let commission = reply["attribution"]["touches"][0]["commissionId"]
                                    .as_str()
                                    .unwrap_or_else(|| panic!("a commission: {reply}"))
                                    .to_string();
                                let before = tally.acked.lock().unwrap().insert(event_id.clone(), (t.slug.clone(), commission));
                                assert!(before.is_none(), "{event_id} acknowledged twice");
                                break;
                            }
                            tally.event_retries.lock().unwrap().push((status, reply.clone()));
                            tries += 1;
                            assert!(tries < 100, "event {event_id} never acknowledged: {status} {reply}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        tally.events.fetch_add(1, SeqCst);
                        i += 1;
                    }
                })
            })
            .collect()
    }

    /// The final invariants, from the database: every acknowledged event is stored, with
    /// exactly one commission — the one its reply named —, no event the clients did not
    /// get acknowledged, and at least as many clicks per link as were answered 302.
    async fn check(&self, tally: &Tally) {
        let db = openpartner::connect(&self.database_url).await.unwrap();
        let acked = tally.acked.lock().unwrap().clone();
        let mut stored: HashMap<String, (String, Vec<String>)> = HashMap::new();
        let mut clicks: HashMap<String, i64> = HashMap::new();
        for t in &self.targets {
            let schema: String = db
                .query_one(
                    "SELECT schema_name FROM control.tenants WHERE slug = $1",
                    &[&t.slug],
                )
                .await
                .unwrap()
                .get(0);
            let rows = db
                .query(
                    &format!(
                        "SELECT e.event_id, array_remove(array_agg(c.id), NULL) \
                         FROM {schema}.events e LEFT JOIN {schema}.commissions c ON c.event_id = e.id \
                         WHERE e.event_id LIKE $1 GROUP BY e.event_id"
                    ),
                    &[&format!("{}-%", self.tag)],
                )
                .await
                .unwrap();
            for r in rows {
                let prev = stored.insert(r.get(0), (t.slug.clone(), r.get(1)));
                assert!(prev.is_none(), "an eventId stored in two tenants");
            }
            for r in db
                .query(
                    &format!("SELECT link_id, count(*) FROM {schema}.clicks GROUP BY link_id"),
                    &[],
                )
                .await
                .unwrap()
            {
                clicks.insert(r.get(0), r.get(1));
            }
        }
        let mut lost = Vec::new();
        for (event_id, (slug, commission)) in &acked {
            match stored.get(event_id) {
                None => lost.push(event_id.clone()),
                Some((stored_slug, commissions)) => {
                    assert_eq!(stored_slug, slug, "{event_id}");
                    assert_eq!(
                        commissions,
                        &vec![commission.clone()],
                        "{event_id}: exactly the commission its reply named"
                    );
                }
            }
        }
        assert!(lost.is_empty(), "lost acknowledged events: {lost:?}");
        let unacked: Vec<&String> = stored.keys().filter(|e| !acked.contains_key(*e)).collect();
        assert!(
            unacked.is_empty(),
            "stored events no client was answered for: {unacked:?}"
        );
        let commissions: HashSet<&String> = acked.values().map(|(_, c)| c).collect();
        assert_eq!(
            commissions.len(),
            acked.len(),
            "a commission for two events"
        );
        for (link, answered) in tally.clicked.lock().unwrap().iter() {
            let recorded = clicks.get(link).copied().unwrap_or(0);
            // + the set-up's one identified click.
            assert!(
                recorded > *answered,
                "{link}: {answered} clicks answered, {recorded} recorded"
            );
        }
    }
}

/// The load loops running on a fleet, and what they counted.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Waits until the load made `n` more events (so each step runs under load).
    async fn progress(&self, n: usize) {
        let from = self.events();
        wait_until("the load makes progress", 30, || async {
            self.events() >= from + n
        })
        .await;
    }

    /// Events acknowledged so far.
    fn events(&self) -> usize {
        self.tally.events.load(SeqCst)
    }

    /// Stops the loops and waits for them; prints what they did. Returns the tally, the
    /// reads and clicks that failed, and the event posts that were retried.
    async fn stop(self) -> (Arc<Tally>, Vec<String>, Vec<(u16, String)>) {
        self.stop.store(true, SeqCst);
        for l in self.loops {
            l.await.unwrap();
        }
        let tally = self.tally;
        let failed = tally.failed.lock().unwrap().clone();
        let retries = tally.event_retries.lock().unwrap().clone();
        eprintln!(
            "reads {}, clicks {}, events {}, event retries {}",
            tally.reads.load(SeqCst),
            tally.clicks.load(SeqCst),
            tally.events.load(SeqCst),
            retries.len()
        );
        (tally, failed, retries)
    }
}

/// operate.md: replace every worker one at a time, then every gateway, under steady load —
/// 0 failed reads, 0 failed clicks, 0 lost acknowledged events, 0 duplicate commissions.
#[tokio::test]
async fn replacing_every_worker_then_every_gateway_under_load_loses_nothing() {
    let mut fleet = Fleet::start("rolling", 3, 2, 4).await;
    let load = fleet.load(4);
    load.progress(10).await;
    let start = Instant::now();
    eprintln!("under load");
    for i in 0..fleet.workers.len() {
        fleet.replace_worker(i).await;
        eprintln!("worker {i} replaced at {:?}", start.elapsed());
        load.progress(10).await;
    }
    for i in 0..fleet.gateways.len() {
        fleet.replace_gateway(i).await;
        eprintln!("gateway {i} replaced at {:?}", start.elapsed());
        load.progress(10).await;
    }
    let (tally, failed, retries) = load.stop().await;
    assert!(failed.is_empty(), "failed reads/clicks: {failed:?}");
    assert!(
        retries.iter().all(|(s, _)| *s == 502 || *s == 503),
        "an event write failed in a way a client may not retry: {retries:?}"
    );
    assert!(tally.events.load(SeqCst) >= 60, "load flowed");
    fleet.check(&tally).await;
}

/// operate.md: `kill -9` the busiest worker under the same load — the same numbers, except
/// requests in flight on it, which fail with `502`/`503` and succeed when retried.
#[tokio::test]
async fn kill_9_of_the_busiest_worker_fails_only_its_requests_in_flight() {
    let mut fleet = Fleet::start("kill9", 3, 2, 4).await;
    let load = fleet.load(4);
    load.progress(10).await;
    // The busiest: the most requests in flight over a few samples at every gateway.
    let mut busy: HashMap<String, u64> = HashMap::new();
    for _ in 0..20 {
        for b in fleet.gateway_bases() {
            for (url, (_, in_flight)) in routes_to(&b).await {
                *busy.entry(url).or_default() += in_flight;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (victim_url, samples) = busy.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(*samples > 0, "no worker was seen busy: {busy:?}");
    let i = fleet
        .workers
        .iter()
        .position(|w| &w.1 == victim_url)
        .unwrap();
    let events_before = load.events();
    fleet.workers[i].0.signal(libc::SIGKILL);
    assert!(fleet.workers[i]
        .0
        .wait_exit(Duration::from_secs(5))
        .await
        .is_some());
    // Gone from every gateway's rotation (probe), then from the set (3 silent heartbeats).
    fleet.until_every_gateway(victim_url, Some("down"), 5).await;
    load.progress(10).await;
    fleet.until_every_gateway(victim_url, None, 15).await;
    load.progress(10).await;
    let (tally, failed, retries) = load.stop().await;
    assert!(
        tally.events.load(SeqCst) > events_before + 20,
        "load flowed"
    );
    assert!(
        failed.is_empty(),
        "reads and clicks are replayed by the gateway: {failed:?}"
    );
    assert!(
        retries.iter().all(|(s, _)| *s == 502 || *s == 503),
        "only 502/503 for requests in flight on the killed worker: {retries:?}"
    );
    fleet.check(&tally).await;
}
