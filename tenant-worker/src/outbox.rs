//! Domain events, written to the tenant's outbox in the same transaction as the change
//! that caused them, so a committed change always has its event (webhooks read the outbox).

use crate::error::ApiError;
use crate::sql::Tx;
use serde_json::Value;

/// Records `event_type` with `data`; returns the envelope id (`evt_<ulid>`).
pub async fn emit(tx: &Tx, event_type: &str, data: Value) -> Result<String, ApiError> {
    let id = format!("evt_{}", ulid::Ulid::new());
    tx.execute(
        "INSERT INTO outbox (id, event_type, payload) VALUES ($1, $2, $3)",
        &[&id, &event_type, &data],
    )
    .await?;
    Ok(id)
}
