//! The operator CLI (`openpartner tenants|workers|migrate --status`) against the database,
//! as an operator runs it: tables for people, `--json` for scripts, and the gateways see
//! its changes at once.

use crate::harness::{procs, *};
use serde_json::Value;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openpartner"))
        .args(args)
        .env("DATABASE_URL", &shared().database_url)
        .env("OP_PLATFORM_KEY", PLATFORM_KEY)
        // The workers' key: imported webhook endpoints get a secret sealed with it.
        .env("OP_SECRETS_KEY", "test-secrets-key")
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
    // docs/API.md: one line `<code>: <detail>` on stderr.
    assert!(err.starts_with(&format!("{code}: ")), "{args:?}: {err}");
}

/// The gateway hears of a change the CLI made through `NOTIFY`: within a moment.
async fn until_answers(api: &Api, status: u16) {
    wait_until(&format!("the gateway answers {status}"), 2, || async {
        api.get("/partners").await.code() == status
    })
    .await;
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
        // The API's code for it (`POST /platform/tenants` checks the same way).
        "invalid_body",
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

/// Runs the CLI; `(success, stdout as JSON (Null if not), stderr)`.
fn run_json(args: &[&str]) -> (bool, Value, String) {
    let out = cli(args);
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tenant's rows in one table as the database holds them, for comparing two tenants.
async fn rows_of(db: &tokio_postgres::Client, tenant: &Tenant, sql: &str) -> Vec<String> {
    let schema = op_control::schema::Schema::of_tenant(&tenant.id).unwrap();
    db.query(&sql.replace("{s}", schema.quoted()), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// `tenants export` → `tenants import` into a new tenant reproduces the tenant: the API
/// answers the same lists (partners, campaigns, grants, terms, links, clicks in the
/// dashboard's rollups, events, commissions with their ledger, payouts, admins), the
/// re-export has the same tables, a dry run writes nothing and reports what the real run
/// does, a second import inserts 0; nothing secret leaves; bad bundles change nothing.
#[tokio::test]
async fn tenants_export_and_import_reproduce_a_tenant() {
    use serde_json::json;
    let t = Tenant::new().await;
    let link = t
        .campaign_link(json!({"commissionRule": percent("20")}))
        .await;
    let p = link.partner.clone();
    let private = t.campaign(json!({"grantToAllPartners": false})).await;
    t.api
        .post(
            &format!("/partners/{p}/programs"),
            json!({"programIds": [private.id]}),
        )
        .await
        .expect(201);
    t.api
        .put(
            &format!("/partners/{p}/terms/{}", link.campaign),
            json!({"commissionType": "percent", "commissionValue": 25}),
        )
        .await
        .expect(200);
    t.partner("other@example.com").await;
    t.api
        .post("/admins", json!({"email": "ops@example.com"}))
        .await
        .expect(201);
    for u in ["u1", "u2", "u3"] {
        t.identified_click(&link, u).await;
    }
    t.click(&link).await;
    t.click(&link).await;
    let mut commissions = Vec::new();
    for (u, value) in [("u1", "100.00"), ("u2", "33.33"), ("u3", "10.00")] {
        let r = t
            .event(json!({"userId": u, "type": "invoice.paid", "value": value, "currency": "USD", "eventId": format!("ev-{u}")}))
            .await
            .expect(201);
        commissions.push(commission_of(&r.body));
    }
    for c in &commissions[..2] {
        t.approve(c).await;
    }
    t.api
        .post(
            &format!("/commissions/{}/reverse", commissions[2]),
            json!({"reason": "refund"}),
        )
        .await
        .expect(200);
    let run = t.api.post("/payouts/run", json!({})).await.expect(200);
    let payout = run.body["payouts"][0]["id"].as_str().unwrap().to_string();
    t.api
        .post(&format!("/payouts/{payout}/mark-paid"), json!({}))
        .await
        .expect(200);
    let (hook_id, _) = t.webhook("http://127.0.0.1:9/hook", json!(["*"])).await;

    // Every table of a tenant schema is exported, rebuilt, or left out on purpose.
    let db = db().await;
    let schema = op_control::schema::Schema::of_tenant(&t.id).unwrap();
    let in_schema: std::collections::BTreeSet<String> = column(
        &db,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        &[&schema.name()],
    )
    .await
    .into_iter()
    .collect();
    use op_worker::migration::{LEFT_OUT, REBUILT, TABLES};
    let classified: std::collections::BTreeSet<String> = TABLES
        .iter()
        .map(|t| t.name.to_string())
        .chain(REBUILT.iter().map(|t| t.to_string()))
        .chain(LEFT_OUT.iter().map(|(t, _)| t.to_string()))
        .collect();
    assert_eq!(in_schema, classified, "every tenant table has its place");

    // The bundle.
    let dir = procs::LogDir::new("bundle");
    let file = dir.file("bundle.json");
    let path = file.to_str().unwrap();
    ok_text(&["tenants", "export", &t.slug, "--out", path]);
    let text = std::fs::read_to_string(&file).unwrap();
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["schemaVersion"], "rs-1");
    assert_eq!(
        bundle["tenant"],
        json!({"slug": t.slug, "name": "Test tenant"})
    );
    assert!(bundle["exportedAt"].as_str().unwrap().ends_with('Z'));
    let positions: Vec<usize> = [
        "\"tables\":{\"partners\":[",
        "],\"payouts\":[",
        "],\"commission_ledger\":[",
        "],\"commissions\":[",
    ]
    .iter()
    .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} in the bundle")))
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "foreign-key order"
    );
    for secret in [
        "secret_sealed",
        "token_hash",
        "key_hash",
        "whsec_",
        &t.admin_key,
    ] {
        assert!(!text.contains(secret), "the bundle carries {secret}");
    }
    let tables = bundle["tables"].as_object().unwrap();
    let count = |name: &str| tables[name].as_array().unwrap().len();
    assert_eq!(count("partners"), 2);
    assert_eq!(count("clicks"), 5);
    assert_eq!(count("identities"), 3);
    assert_eq!(count("events"), 3);
    assert_eq!(count("commissions"), 3);
    assert_eq!(
        count("commission_ledger"),
        3 + 2 + 2 + 1,
        "accrued ×3, approved ×2, paid ×2 (one payout), reversed"
    );
    assert_eq!(count("payouts"), 1);
    assert_eq!(count("partner_programs"), 1);
    assert_eq!(count("webhook_endpoints"), 1);
    for row in tables["commissions"].as_array().unwrap() {
        assert!(row["id"].is_string() && row["amount"].is_string(), "{row}");
    }
    let event = tables["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == "ev-u2")
        .unwrap();
    assert_eq!(
        (event["value"].as_str(), event["currency"].as_str()),
        (Some("33.33"), Some("USD"))
    );
    assert!(tables["clicks"][0].get("landing_url").is_some());
    // Stdout is the same bundle.
    let out = cli(&["tenants", "export", &t.slug]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, rows) in tables {
        // (The endpoint's failing_since moves as its deliveries to port 9 fail.)
        if name != "webhook_endpoints" {
            assert_eq!(&again["tables"][name], rows, "{name}");
        }
    }

    // A dry run into a new tenant: the report, nothing written.
    let t2 = Tenant::new().await;
    let dry = ok_json(&["tenants", "import", &t2.slug, path, "--dry-run", "--json"]);
    assert_eq!(
        (dry["ok"].as_bool(), dry["dryRun"].as_bool()),
        (Some(true), Some(true))
    );
    for (name, rows) in tables {
        assert_eq!(
            dry["report"]["inserted"][name],
            rows.as_array().unwrap().len(),
            "{name}"
        );
        assert_eq!(dry["report"]["skipped"][name], 0, "{name}");
    }
    assert_eq!(
        dry["report"]["missing"],
        json!(["api_keys", "webhook_secrets", "sessions"])
    );
    let empty = t2.api.get("/partners").await.expect(200);
    assert_eq!(empty.body["data"], json!([]), "a dry run writes nothing");

    // The import: the dry run's report, and the same answers from the API.
    let real = ok_json(&["tenants", "import", &t2.slug, path, "--json"]);
    assert_eq!(real["dryRun"], false);
    assert_eq!(real["report"], dry["report"]);
    let same = |v: &Value| {
        v.to_string()
            .replace(&t.slug, "<slug>")
            .replace(&t2.slug, "<slug>")
    };
    for path in [
        "/partners".to_string(),
        "/campaigns".into(),
        "/commissions".into(),
        format!("/commissions/{}", commissions[0]),
        format!("/commissions/{}", commissions[2]),
        "/payouts".into(),
        format!("/payouts/{payout}"),
        "/admins".into(),
        format!("/partners/{p}"),
        format!("/partners/{p}/links"),
        format!("/partners/{p}/programs"),
        format!("/partners/{p}/terms/{}", link.campaign),
        format!("/partners/{p}/commissions"),
        format!("/partners/{p}/payouts"),
        format!("/partners/{p}/dashboard"),
        format!("/partners/{p}/events"),
        format!("/partners/{p}/funnel"),
        "/admin/overview".into(),
    ] {
        let a = t.api.get(&path).await.expect(200);
        let b = t2.api.get(&path).await.expect(200);
        assert_eq!(same(&a.body), same(&b.body), "GET {path}");
    }
    // Click rollups rebuilt as the live writes made them.
    let rollups = "SELECT concat_ws(' ', partner_id, day, link_id, campaign_id, clicks, flagged_clicks, identities) FROM {s}.click_rollups ORDER BY 1";
    assert_eq!(
        rows_of(&db, &t, rollups).await,
        rows_of(&db, &t2, rollups).await
    );
    assert!(!rows_of(&db, &t2, rollups).await.is_empty());
    // The webhook endpoint came without its secret: disabled until it gets a new one.
    let h = t2
        .api
        .get(&format!("/webhooks/{hook_id}"))
        .await
        .expect(200);
    let h = if h.body.get("endpoint").is_some() {
        h.body["endpoint"].clone()
    } else {
        h.body.clone()
    };
    assert_eq!(
        (h["active"].as_bool(), h["disabledReason"].as_str()),
        (Some(false), Some("imported")),
        "{h}"
    );
    assert!(
        real["report"]["warnings"].to_string().contains("rotate"),
        "{real}"
    );
    // The new tenant's export has the same tables (its endpoint disabled).
    let out = cli(&["tenants", "export", &t2.slug]);
    let copy: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, rows) in tables {
        if name != "webhook_endpoints" {
            assert_eq!(&copy["tables"][name], rows, "{name}");
        }
    }

    // Again: every row is there already.
    let second = ok_json(&["tenants", "import", &t2.slug, path, "--json"]);
    for (name, rows) in tables {
        assert_eq!(second["report"]["inserted"][name], 0, "{name}");
        assert_eq!(
            second["report"]["skipped"][name],
            rows.as_array().unwrap().len(),
            "{name}"
        );
    }
    let human = ok_text(&["tenants", "import", &t2.slug, path, "--dry-run"]);
    assert!(human.starts_with("TABLE"), "{human}");
    assert!(human.contains("dry run"), "{human}");

    // Bad bundles change nothing.
    let t3 = Tenant::new().await;
    let write = |name: &str, v: &Value| {
        let f = dir.file(name);
        std::fs::write(&f, v.to_string()).unwrap();
        f.to_str().unwrap().to_string()
    };
    let mut v2 = bundle.clone();
    v2["schemaVersion"] = json!(2);
    let (ok, out, err) = run_json(&[
        "tenants",
        "import",
        &t3.slug,
        &write("v2.json", &v2),
        "--json",
    ]);
    assert!(!ok && err.contains("unsupported_schema_version"), "{err}");
    assert_eq!(out["error"], "unsupported_schema_version");
    let mut broken = bundle.clone();
    let paid = broken["tables"]["commissions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["status"] == "paid")
        .unwrap();
    paid["paid_at"] = Value::Null;
    let paid_id = paid["id"].clone();
    let (ok, out, err) = run_json(&[
        "tenants",
        "import",
        &t3.slug,
        &write("broken.json", &broken),
        "--json",
    ]);
    assert!(!ok && err.starts_with("invalid_row: "), "{err}");
    assert_eq!(
        (out["error"].as_str(), out["table"].as_str()),
        (Some("invalid_row"), Some("commissions")),
        "{out}"
    );
    assert_eq!(out["row"], paid_id, "{out}");
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("commissions_status_times"),
        "{out}"
    );
    // What the API relies on but the database cannot check: a rule that parses, a currency.
    let mut bad_rule = bundle.clone();
    bad_rule["tables"]["campaigns"][0]["commission_rule"] =
        json!({"type": "percent", "value": "250"});
    let (ok, out, _) = run_json(&[
        "tenants",
        "import",
        &t3.slug,
        &write("rule.json", &bad_rule),
        "--json",
    ]);
    assert!(!ok);
    assert_eq!(
        (out["table"].as_str(), &out["row"]),
        (Some("campaigns"), &bundle["tables"]["campaigns"][0]["id"]),
        "{out}"
    );
    let mut bad_currency = bundle.clone();
    bad_currency["tables"]["events"][1]["currency"] = json!("usd");
    let (ok, out, _) = run_json(&[
        "tenants",
        "import",
        &t3.slug,
        &write("currency.json", &bad_currency),
        "--json",
    ]);
    assert!(!ok);
    assert_eq!(
        (out["error"].as_str(), out["table"].as_str(), &out["row"]),
        (
            Some("invalid_row"),
            Some("events"),
            &bundle["tables"]["events"][1]["id"]
        ),
        "{out}"
    );
    // Numbers the database would store but no sum can take: refused, named (not a crash).
    for (i, (table, column, value)) in [
        ("events", "value", json!("NaN")),
        ("events", "value", json!("Infinity")),
        ("events", "value", json!("1e40")),
        ("commissions", "amount", json!("1e16")),
        ("attributions", "weight", json!("abc")),
    ]
    .into_iter()
    .enumerate()
    {
        if bundle["tables"][table].as_array().is_none_or(Vec::is_empty) {
            panic!("the bundle has {table} rows");
        }
        let mut bad = bundle.clone();
        bad["tables"][table][0][column] = value.clone();
        let (ok, out, _) = run_json(&[
            "tenants",
            "import",
            &t3.slug,
            &write(&format!("number{i}.json"), &bad),
            "--json",
        ]);
        assert!(!ok, "{table}.{column} = {value}");
        assert_eq!(
            (out["error"].as_str(), out["table"].as_str(), &out["row"]),
            (
                Some("invalid_row"),
                Some(table),
                &bundle["tables"][table][0]["id"]
            ),
            "{table}.{column} = {value}: {out}"
        );
    }
    // A partner whose e-mail the tenant has under another id: refused, named.
    t3.partner("other@example.com").await;
    let other = tables["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["email"] == "other@example.com")
        .unwrap();
    let (ok, out, _) = run_json(&["tenants", "import", &t3.slug, path, "--json"]);
    assert!(!ok);
    assert_eq!(
        (out["error"].as_str(), out["table"].as_str(), &out["row"]),
        (Some("invalid_row"), Some("partners"), &other["id"]),
        "{out}"
    );
    std::fs::write(dir.file("junk.json"), "{not json").unwrap();
    let (ok, out, _) = run_json(&[
        "tenants",
        "import",
        &t3.slug,
        dir.file("junk.json").to_str().unwrap(),
        "--json",
    ]);
    assert!(!ok);
    assert_eq!(out["error"], "invalid_body");
    let left = t3.api.get_ok("/partners").await["data"].clone();
    assert_eq!(left.as_array().unwrap().len(), 1, "all or nothing: {left}");
    assert_eq!(t3.api.get_ok("/campaigns").await["data"], json!([]));
    fails_with(
        &["tenants", "import", "no-such-tenant", path],
        "tenant_not_found",
    );
    fails_with(&["tenants", "export", "no-such-tenant"], "tenant_not_found");
}

/// An import into a tenant that already has clicks, events and commissions of its own adds to
/// its reports, and never recomputes them: the figures afterwards are the sum of the
/// tenant's and the bundle's, the money rollups equal a recompute from the rows (also when
/// the bundle adds a refund, an adjustment commission and attributions to events already
/// there, and while the tenant's own events keep arriving), and a second import of the same
/// bundle changes nothing.
#[tokio::test]
async fn an_import_into_a_live_tenant_adds_to_its_reports() {
    use crate::reporting::{money_rollups, money_rollups_match_the_raw_rows};
    use serde_json::json;
    // The source: u1 clicks P1's then P2's link and buys (the last click takes it), u2 signs
    // up and buys through P1; one commission approved.
    let a = Tenant::new().await;
    let campaign = a.campaign(json!({"commissionRule": percent("10")})).await;
    let p1 = a.partner_link(&campaign.id).await;
    let p2 = a.partner_link(&campaign.id).await;
    a.identified_click(&p1, "u1").await;
    a.identified_click(&p2, "u1").await;
    a.identified_click(&p1, "u2").await;
    a.click(&p1).await;
    let buy = |user: &str, value: &str, id: &str| json!({"userId": user, "type": "purchase", "value": value, "currency": "USD", "eventId": id});
    let c1 = commission_of(&a.event(buy("u1", "100.00", "ev-u1")).await.expect(201).body);
    a.event(json!({"userId": "u2", "type": "signup", "eventId": "ev-u2-signup"}))
        .await
        .expect(201);
    a.event(buy("u2", "40.00", "ev-u2")).await.expect(201);
    a.approve(&c1).await;
    let dir = procs::LogDir::new("live-import");
    let first = dir.file("first.json");
    let first = first.to_str().unwrap();
    ok_text(&["tenants", "export", &a.slug, "--out", first]);
    let dashboard = |t: &Tenant, p: &str| {
        let (api, path) = (t.api.clone(), format!("/partners/{p}/dashboard"));
        async move { api.get_ok(&path).await }
    };
    let a_p1 = dashboard(&a, &p1.partner).await;
    let a_p2 = dashboard(&a, &p2.partner).await;
    let a_overview = a.api.get_ok("/admin/overview").await;

    // The target has a partner, clicks, events and commissions of its own.
    let b = Tenant::new().await;
    let own = b
        .campaign_link(json!({"commissionRule": percent("20")}))
        .await;
    b.identified_click(&own, "v1").await;
    b.identified_click(&own, "v2").await;
    let v1 = commission_of(&b.event(buy("v1", "50.00", "own-v1")).await.expect(201).body);
    b.event(buy("v2", "25.00", "own-v2")).await.expect(201);
    b.approve(&v1).await;
    let b_own = dashboard(&b, &own.partner).await;
    let b_overview = b.api.get_ok("/admin/overview").await;

    let report = ok_json(&["tenants", "import", &b.slug, first, "--json"]);
    assert_eq!(report["report"]["inserted"]["events"], 3, "{report}");
    // The sum: the bundle's partners as in the source, the tenant's own unchanged.
    let same = |v: &Value| {
        v.to_string()
            .replace(&a.slug, "<slug>")
            .replace(&b.slug, "<slug>")
    };
    assert_eq!(same(&dashboard(&b, &p1.partner).await), same(&a_p1));
    assert_eq!(same(&dashboard(&b, &p2.partner).await), same(&a_p2));
    assert_eq!(dashboard(&b, &own.partner).await, b_own);
    let overview = b.api.get_ok("/admin/overview").await;
    let mut rows: Vec<String> = overview["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(&same)
        .collect();
    let mut expected: Vec<String> = a_overview["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(b_overview["data"].as_array().unwrap())
        .map(&same)
        .collect();
    rows.sort();
    expected.sort();
    assert_eq!(rows, expected);
    for figure in ["partners", "clicks", "flaggedClicks", "attributedEvents"] {
        assert_eq!(
            overview["totals"][figure].as_i64().unwrap(),
            a_overview["totals"][figure].as_i64().unwrap()
                + b_overview["totals"][figure].as_i64().unwrap(),
            "totals.{figure}: {overview}"
        );
    }
    let revenue = |o: &Value| -> rust_decimal::Decimal {
        o["totals"]["revenueByCurrency"][0]["amount"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        revenue(&overview),
        revenue(&a_overview) + revenue(&b_overview)
    );
    money_rollups_match_the_raw_rows(&b).await;
    // Again: nothing is inserted, nothing is counted twice.
    let kept = money_rollups(&b).await;
    let again = ok_json(&["tenants", "import", &b.slug, first, "--json"]);
    assert_eq!(again["report"]["inserted"]["events"], 0, "{again}");
    assert_eq!(money_rollups(&b).await, kept);

    // The source moves on: u1's purchase is refunded in part (a negative adjustment of its
    // approved commission), the campaign turns linear and is rederived (new attributions of
    // u2's events, which the target then has beside their last-click ones), u2 buys again.
    a.event(json!({"userId": "u1", "type": "refund", "value": "30.00", "eventId": "r-u1", "metadata": {"refundOf": "ev-u1"}}))
        .await
        .expect(201);
    a.patch_campaign(&campaign.id, json!({"attributionModel": "linear"}))
        .await;
    a.rederive(&campaign.id).await;
    a.event(buy("u2", "12.50", "ev-u2-again")).await.expect(201);
    let second = dir.file("second.json");
    let second = second.to_str().unwrap();
    ok_text(&["tenants", "export", &a.slug, "--out", second]);

    // Imported while the tenant's own events keep arriving.
    let importing = {
        let (slug, path) = (b.slug.clone(), second.to_string());
        tokio::task::spawn_blocking(move || {
            run_json(&["tenants", "import", &slug, &path, "--json"])
        })
    };
    let mut n = 0;
    while !importing.is_finished() || n < 3 {
        b.event(buy("v1", "1.00", &format!("own-v1-more-{n}")))
            .await
            .expect(201);
        n += 1;
    }
    let (ok, report, err) = importing.await.unwrap();
    assert!(ok, "{err}");
    let inserted = &report["report"]["inserted"];
    assert_eq!(
        inserted["events"], 2,
        "the refund and u2's purchase: {report}"
    );
    assert!(
        inserted["attributions"].as_i64().unwrap() >= 3,
        "u2's events' linear touches: {report}"
    );
    assert!(inserted["commissions"].as_i64().unwrap() >= 2, "{report}");
    money_rollups_match_the_raw_rows(&b).await;
    let p2_now = dashboard(&b, &p2.partner).await;
    assert_eq!(
        p2_now["refunded"],
        json!([{"currency": "USD", "amount": "30.00"}]),
        "{p2_now}"
    );
    let kept = money_rollups(&b).await;
    let again = ok_json(&["tenants", "import", &b.slug, second, "--json"]);
    assert_eq!(again["report"]["inserted"]["attributions"], 0, "{again}");
    assert_eq!(money_rollups(&b).await, kept);
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
            "not_citus",
        );
        return;
    }
    let nodes: Vec<String> = column(
        &db,
        "SELECT nodename || ':' || nodeport FROM pg_dist_node
          WHERE noderole = 'primary' AND isactive AND shouldhaveshards",
        &[],
    )
    .await;
    let home = created["tenant"]["node"]
        .as_str()
        .expect("a node")
        .to_string();
    assert!(nodes.contains(&home), "{home} not in {nodes:?}");
    let away = nodes.iter().find(|n| **n != home).expect("a second node");
    fails_with(
        &["tenants", "move", &slug, "--to", "nowhere:1"],
        "node_not_found",
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
