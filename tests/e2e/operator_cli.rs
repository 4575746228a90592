//! The operator CLI (`openpartner tenants|workers|migrate --status`) against the database,
//! as an operator runs it: tables for people, `--json` for scripts, and the gateways see
//! its changes at once.

use crate::harness::*;
use serde_json::Value;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openpartner"))
        .args(args)
        .env("DATABASE_URL", &shared().database_url)
        .env("OP_PLATFORM_KEY", PLATFORM_KEY)
        .output()
        .expect("the CLI runs")
}

#[track_caller]
fn ok_json(args: &[&str]) -> Value {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[track_caller]
fn ok_text(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn fails_with(args: &[&str], code: &str) {
    let out = cli(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(code), "{args:?}: {err}");
}

/// The gateway hears of a change the CLI made through `NOTIFY`: within a moment.
async fn until_answers(api: &Api, status: u16) {
    let start = std::time::Instant::now();
    while api.get("/partners").await.code() != status {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "the gateway never answered {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn operators_manage_tenants_from_the_terminal() {
    let gw = shared().stack.base_url.clone();
    let slug = unique_slug("cli");
    let created = ok_json(&[
        "tenants",
        "create",
        &slug,
        "--name",
        "CLI Inc",
        "--admin-email",
        "Boss@CLI.example",
        "--json",
    ]);
    assert_eq!(created["tenant"]["slug"], slug.as_str());
    assert_eq!(created["tenant"]["name"], "CLI Inc");
    assert_eq!(created["tenant"]["status"], "active");
    let key = created["adminKey"].as_str().unwrap().to_string();
    let api = Api::new(format!("{gw}/api/t/{slug}"), Some(&key));
    api.get("/partners").await.expect(200);
    // The invited admin is there.
    let admins = api.get("/admins").await.expect(200);
    assert!(
        admins.body.to_string().contains("boss@cli.example"),
        "{}",
        admins.body
    );

    // Listed, as JSON and as a table.
    let list = ok_json(&["tenants", "list", "--json"]);
    let mine = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == slug.as_str())
        .expect("listed");
    assert_eq!(mine["id"], created["tenant"]["id"]);
    let table = ok_text(&["tenants", "list"]);
    assert!(table.starts_with("SLUG"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&slug) && l.contains("active")),
        "{table}"
    );

    // Suspend: every gateway refuses the tenant at once; resume: back.
    let s = ok_json(&["tenants", "suspend", &slug, "--json"]);
    assert_eq!(
        (s["ok"].as_bool(), s["tenant"]["status"].as_str()),
        (Some(true), Some("suspended"))
    );
    until_answers(&api, 403).await;
    api.get("/partners")
        .await
        .expect_error(403, "tenant_suspended");
    let r = ok_text(&["tenants", "resume", &slug]);
    assert!(r.contains("active"), "{r}");
    until_answers(&api, 200).await;

    // Mistakes are told, with the API's codes, and change nothing.
    fails_with(&["tenants", "create", &slug], "slug_taken");
    fails_with(&["tenants", "create", "Bad_Slug"], "invalid_slug");
    fails_with(&["tenants", "create", "platform"], "slug_reserved");
    fails_with(
        &[
            "tenants",
            "create",
            &unique_slug("cli"),
            "--admin-email",
            "nope",
        ],
        "invalid_email",
    );
    fails_with(
        &["tenants", "suspend", &unique_slug("missing")],
        "tenant_not_found",
    );
}

#[tokio::test]
async fn operators_see_migrations_and_workers() {
    let status = ok_json(&["migrate", "--status", "--json"]);
    assert_eq!(status["control"]["pending"], serde_json::json!([]));
    assert!(status["control"]["applied"]
        .as_array()
        .unwrap()
        .contains(&2.into()));
    assert_eq!(
        status["tenants"]["latestVersion"],
        op_control::migrations::latest_tenant_version()
    );
    assert_eq!(status["tenants"]["behind"], 0);
    assert_eq!(status["upToDate"], true);
    let text = ok_text(&["migrate", "--status"]);
    assert!(
        text.contains("0002_worker_registry") && text.trim_end().ends_with("up to date"),
        "{text}"
    );

    // One gateway's routing set, as GET /platform/workers has it.
    let gw = shared().stack.base_url.clone();
    let set = ok_json(&["workers", "--gateway", &gw, "--json"]);
    let workers = set["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{set}");
    assert!(workers
        .iter()
        .all(|w| w["source"] == "static" && w["health"] == "serving"));
    let text = ok_text(&["workers", "--gateway", &gw]);
    assert!(
        text.starts_with("ID") && text.lines().count() == 3,
        "{text}"
    );
    // The registry (DATABASE_URL): whatever is registered, in the same shape.
    let registry = ok_json(&["workers", "--json"]);
    for w in registry["workers"].as_array().unwrap() {
        assert_eq!(w["source"], "registry");
        assert!(["serving", "draining", "down"].contains(&w["health"].as_str().unwrap()));
    }
}

/// Each tenant's node (Citus schema-based sharding), and `tenants move` of a live tenant:
/// on plain PostgreSQL (CI) there is no node and nowhere to move; on a Citus cluster
/// (`scripts/citus-smoke`) the tenant moves to another node and back while its data stays
/// readable through the gateway.
#[tokio::test]
async fn tenants_show_their_node_and_move_between_citus_nodes() {
    let gw = shared().stack.base_url.clone();
    let slug = unique_slug("move");
    let created = ok_json(&["tenants", "create", &slug, "--json"]);
    let key = created["adminKey"].as_str().unwrap().to_string();
    let api = Api::new(format!("{gw}/api/t/{slug}"), Some(&key));
    let partner = api
        .post(
            "/partners",
            serde_json::json!({"email": "mover@move.example", "name": "Mover", "sendInvite": false}),
        )
        .await
        .expect(201);
    let partner_id = partner.body["id"].as_str().unwrap().to_string();
    let platform = Api::new(format!("{gw}/platform"), Some(PLATFORM_KEY));
    let node_of = |list: &Value| -> Value {
        list["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["slug"] == slug.as_str())
            .expect("listed")["node"]
            .clone()
    };
    let db = db().await;
    let citus = db
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await
        .unwrap()
        .is_some();
    if !citus {
        assert_eq!(created["tenant"]["node"], Value::Null);
        assert_eq!(
            node_of(&ok_json(&["tenants", "list", "--json"])),
            Value::Null
        );
        let listed = platform.get("/tenants?limit=100").await.expect(200);
        assert_eq!(node_of(&listed.body), Value::Null, "{}", listed.body);
        fails_with(
            &["tenants", "move", &slug, "--to", "127.0.0.1:5432"],
            "not a Citus cluster",
        );
        return;
    }
    let nodes: Vec<String> = db
        .query(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node
              WHERE noderole = 'primary' AND isactive AND shouldhaveshards",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let home = created["tenant"]["node"]
        .as_str()
        .expect("a node")
        .to_string();
    assert!(nodes.contains(&home), "{home} not in {nodes:?}");
    let away = nodes.iter().find(|n| **n != home).expect("a second node");
    fails_with(
        &["tenants", "move", &slug, "--to", "nowhere:1"],
        "no active node",
    );

    let moved = ok_json(&["tenants", "move", &slug, "--to", away, "--json"]);
    assert_eq!(
        (
            moved["from"].as_str(),
            moved["to"].as_str(),
            moved["moved"].as_bool()
        ),
        (Some(home.as_str()), Some(away.as_str()), Some(true))
    );
    assert_eq!(
        node_of(&ok_json(&["tenants", "list", "--json"])),
        away.as_str()
    );
    let listed = platform.get("/tenants?limit=100").await.expect(200);
    assert_eq!(node_of(&listed.body), away.as_str());
    // Served from the new node: the data came along and writes land.
    api.get(&format!("/partners/{partner_id}"))
        .await
        .expect(200);
    api.post(
        "/partners",
        serde_json::json!({"email": "after@move.example", "name": "After", "sendInvite": false}),
    )
    .await
    .expect(201);
    let again = ok_text(&["tenants", "move", &slug, "--to", away]);
    assert!(again.contains("nothing moved"), "{again}");
    ok_text(&["tenants", "move", &slug, "--to", &home]);
    let partners = api.get("/partners").await.expect(200);
    assert_eq!(partners.body["data"].as_array().unwrap().len(), 2);
}
