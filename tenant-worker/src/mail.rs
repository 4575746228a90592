//! Outgoing mail goes to the tenant's `mail_outbox` in the caller's transaction; a sender
//! (SMTP) or the dev mailbox reads it from there, so no mail is promised for a change that
//! rolled back.

use crate::error::ApiError;
use deadpool_postgres::Transaction;

pub async fn queue(
    tx: &Transaction<'_>,
    to: &str,
    subject: &str,
    body: &str,
    purpose: &str,
) -> Result<String, ApiError> {
    let id = ulid::Ulid::new().to_string();
    tx.execute(
        "INSERT INTO mail_outbox (id, to_email, subject, body, purpose) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &to, &subject, &body, &purpose],
    )
    .await?;
    Ok(id)
}
