//! Domain events, written to the tenant's outbox in the same transaction as the change
//! that caused them, so a committed change always has its event (webhooks read the outbox).

use crate::{
    error::ApiError,
    sql::{val, Stmt, Writer},
};
use serde_json::Value;

/// Records `event_type` with `data` in the change `w` writes; returns the envelope id
/// (`evt_<ulid>`).
pub async fn emit(w: &impl Writer, event_type: &str, data: Value) -> Result<String, ApiError> {
    let id = format!("evt_{}", ulid::Ulid::new());
    let sql = format!(
        "INSERT INTO {}.outbox (id, event_type, payload) VALUES ($1, $2, $3)",
        w.schema()
    );
    w.write(Stmt::new(
        sql,
        vec![val(id.clone()), val(event_type.to_string()), val(data)],
    ))
    .await?;
    Ok(id)
}
