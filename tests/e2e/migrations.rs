//! The migration runner over several tenant schemas, run twice at once.

use crate::harness::{procs, *};
use std::process::Command;

#[tokio::test]
async fn migrate_brings_every_tenant_schema_up_to_date_even_when_run_concurrently() {
    let db = shared().database_url.clone();
    let mut client = crate::harness::db().await;
    // Three tenants whose schemas predate every tenant migration, created as provisioning
    // creates them (on Citus: distributed schemas; one statement per query, CITUS.md rule 7).
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = ulid::Ulid::new().to_string();
        let schema = op_control::schema::schema_name(&id);
        let tx = client.transaction().await.unwrap();
        tx.execute("SET LOCAL citus.enable_schema_based_sharding = on", &[])
            .await
            .unwrap();
        tx.execute(
            "INSERT INTO control.tenants (id, slug, name, schema_name) VALUES ($1, $2, 'old', $3)",
            &[&id, &unique_slug(&format!("old{i}")), &schema],
        )
        .await
        .unwrap();
        tx.execute(&format!("CREATE SCHEMA \"{schema}\""), &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(id);
    }
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_openpartner"))
            .arg("migrate")
            .env("DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run openpartner migrate")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(run);
        let b = s.spawn(run);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));

    let latest = op_control::migrations::latest_tenant_version();
    let want = op_control::migrations::TENANT.len() as i64;
    for id in &ids {
        let schema = op_control::schema::schema_name(id);
        let applied: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".schema_migrations"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            applied, want,
            "each migration applied exactly once in {schema}"
        );
        client
            .execute(&format!("SELECT 1 FROM \"{schema}\".partners LIMIT 1"), &[])
            .await
            .expect("tenant tables exist");
        let v: i32 = client
            .query_one(
                "SELECT schema_version FROM control.tenants WHERE id = $1",
                &[id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, latest);
        assert!(distributed_if_citus(&client, &schema).await);
    }
    // A third run has nothing to do.
    let c = run();
    assert!(c.status.success());
    assert!(String::from_utf8_lossy(&c.stdout).contains("control migrations applied: []"));
}

#[tokio::test]
async fn provisioned_tenants_start_at_the_latest_version() {
    let t = Tenant::new().await;
    let client = db().await;
    let row = client
        .query_one(
            "SELECT schema_version, schema_name FROM control.tenants WHERE id = $1 AND slug = $2",
            &[&t.id, &t.slug],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        op_control::migrations::latest_tenant_version()
    );
    let schema: String = row.get(1);
    assert_ne!(schema, t.slug, "schema names are generated, not the slug");
    assert!(schema.starts_with("t_"));
    assert!(distributed_if_citus(&client, &schema).await);
}

/// `migrate` opens its extra connections (at most 3) only for schemas that are behind: a
/// run with nothing to do is one connection, a run with two schemas behind two.
#[tokio::test]
async fn migrate_connects_only_as_often_as_there_is_work() {
    let logs = procs::LogDir::new("migrate-conns");
    let (pg, url) = procs::own_cluster(&logs).await;
    let admin = openpartner::connect(&url).await.unwrap();
    procs::alter_system(&admin, "log_connections", "on").await;
    wait_until("log_connections is on", 10, || async {
        let c = openpartner::connect(&url).await.unwrap();
        let on: String = c
            .query_one("SHOW log_connections", &[])
            .await
            .unwrap()
            .get(0);
        on == "on"
    })
    .await;
    let log = pg.data_dir.with_extension("log");
    // Connections to the product's database made by one `migrate` run.
    let connections_of_a_run = || {
        let before = std::fs::read_to_string(&log).unwrap().len();
        let out = Command::new(env!("CARGO_BIN_EXE_openpartner"))
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .expect("run openpartner migrate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&log).unwrap()[before..]
            .matches("connection authorized: user=postgres database=openpartner")
            .count()
    };
    assert_eq!(connections_of_a_run(), 1, "nothing behind: one connection");
    for i in 0..2 {
        let id = ulid::Ulid::new().to_string();
        let schema = op_control::schema::schema_name(&id);
        admin
            .execute(
                "INSERT INTO control.tenants (id, slug, name, schema_name) VALUES ($1, $2, 'old', $3)",
                &[&id, &unique_slug(&format!("conn{i}")), &schema],
            )
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .unwrap();
    }
    assert_eq!(
        connections_of_a_run(),
        2,
        "two schemas behind: one more lane"
    );
    assert_eq!(connections_of_a_run(), 1, "all caught up again");
}

/// On Citus (`OP_E2E_DATABASE_URL` at a coordinator), whether `schema` is a distributed
/// schema; on plain PostgreSQL, true.
async fn distributed_if_citus(client: &tokio_postgres::Client, schema: &str) -> bool {
    let citus = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await
        .unwrap()
        .is_some();
    !citus
        || client
            .query_opt(
                "SELECT 1 FROM citus_schemas WHERE schema_name::text = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .is_some()
}
