//! A tenant's data as one bundle, out and back in: the `rs-1` export of migration.md
//! (`{exportedAt, schemaVersion: "rs-1", tenant: {slug, name}, tables: {<table>: [rows]}}`)
//! and its import (one transaction, all or nothing; existing ids skipped, so a second
//! import inserts 0; `dryRun` runs everything and rolls back, so its report equals the real
//! run's).
//!
//! The operator CLI (`openpartner tenants export|import`) calls `export` and `import`
//! over `DATABASE_URL`; the HTTP routes of migration.md (`GET /export.json`, `POST /import`)
//! are meant to call the same two functions.
//!
//! Every table of a tenant schema is in exactly one of three lists (an e2e test checks it
//! against a migrated schema): `TABLES` travel, in foreign-key order; `REBUILT` are
//! derived and counted by the import as the live writes count; `LEFT_OUT` never travel (secrets, tokens,
//! sessions, queues and logs of this installation). Rows are the table's columns by column
//! name: numbers as decimal strings, times as RFC 3339 in UTC with microseconds (so ledger
//! entries keep their exact times and the database's transition checks hold), JSON columns as
//! JSON, arrays as arrays.

mod export;
mod import;

pub use export::export;
pub use import::{import, ImportError, ImportOptions};

/// The bundle's `schemaVersion`.
pub const SCHEMA_VERSION: &str = "rs-1";

/// A table that travels in the bundle.
pub struct Table {
    pub name: &'static str,
    /// The columns that identify a row: `id`, or the primary key of the two tables that
    /// have none (`partner_programs`, `first_events`).
    pub key: &'static [&'static str],
    /// Columns never exported (secrets).
    pub secret: &'static [&'static str],
}

const ID: &[&str] = &["id"];

/// The tables of a bundle, in foreign-key order (a table comes after every table it
/// references: the ledger before the commissions whose state it proves, payouts before the
/// commissions they pay).
pub const TABLES: &[Table] = &[
    t("partners"),
    t("admins"),
    t("campaigns"),
    Table {
        name: "partner_programs",
        key: &["partner_id", "campaign_id"],
        secret: &[],
    },
    t("partner_terms"),
    t("links"),
    t("clicks"),
    t("identities"),
    t("events"),
    Table {
        name: "first_events",
        key: &["user_id", "campaign_id", "partner_id", "event_type"],
        secret: &[],
    },
    t("attributions"),
    t("payouts"),
    t("commission_ledger"),
    t("commissions"),
    Table {
        name: "webhook_endpoints",
        key: ID,
        secret: &[
            "secret_sealed",
            "previous_secret_sealed",
            "previous_secret_until",
        ],
    },
];

const fn t(name: &'static str) -> Table {
    Table {
        name,
        key: ID,
        secret: &[],
    }
}

/// Derived tables: not in the bundle. The import adds what it inserted the way the live
/// writes add it: the imported clicks and identities to the click rollups; the imported
/// events, attributions, refunds and commissions to the event, user and commission rollups
/// (an imported attribution or refund of an event already there recounts that event, as
/// rederive does). Adding upserts only, so imports commute with live writers.
pub const REBUILT: &[&str] = &[
    "click_rollups",
    "event_rollups",
    "user_rollups",
    "commission_rollups",
];

/// Tables that never travel, and why.
pub const LEFT_OUT: &[(&str, &str)] = &[
    ("magic_tokens", "sign-in tokens"),
    ("sessions", "sessions"),
    ("mail_outbox", "mails carry sign-in links"),
    (
        "outbox",
        "this installation's queue of undelivered webhook events",
    ),
    ("webhook_deliveries", "this installation's delivery log"),
    ("webhook_attempts", "this installation's delivery log"),
    ("idempotency_keys", "24-hour replay cache of replies"),
    ("schema_migrations", "the schema's own migration record"),
];

/// What a bundle cannot carry, named in every import report (`missing`).
pub const MISSING: &[&str] = &["api_keys", "webhook_secrets", "sessions"];

/// A table's columns as the schema has them now: (name, SQL type as `format_type` writes
/// it — `text`, `numeric`, `timestamp with time zone`, `text[]`, …), in column order.
async fn columns(
    db: &impl tokio_postgres::GenericClient,
    schema: &op_control::schema::Schema,
    table: &str,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    Ok(db
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&schema.table(table)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// `"name"`, for SQL text (column names come from the catalog, quoted anyway).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
