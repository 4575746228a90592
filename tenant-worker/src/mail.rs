//! Outgoing mail.
//!
//! Every message is recorded in the tenant's `mail_outbox` in the caller's transaction, so
//! no mail is promised for a change that rolled back, and sent after the commit:
//! - with `SMTP_URL`, over SMTP (lettre); the stored body has its secrets (magic-link tokens)
//!   redacted, so no usable token is ever at rest;
//! - in dev mode without SMTP, the stored row *is* the delivery: `GET /dev/mailbox` shows it
//!   with the working link, for humans and tests.

use crate::sql::Schema;
use crate::sql::{val, Stmt, Writer};
use crate::{
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{page_body, PageRequest},
    App,
};
use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

pub struct Mailer {
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    pub dev_mailbox: bool,
}

impl Mailer {
    pub fn from_config(config: &crate::Config) -> Result<Mailer, String> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| format!("MAIL_FROM is not a mailbox: {e}"))?;
        let smtp = match &config.smtp_url {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("SMTP_URL: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(15)))
                    .build(),
            ),
        };
        Ok(Mailer {
            smtp,
            from,
            dev_mailbox: config.dev_mailbox,
        })
    }

    /// True if a stored body may keep its secrets (dev mailbox only).
    fn keeps_plaintext(&self) -> bool {
        self.smtp.is_none() && self.dev_mailbox
    }
}

/// A message recorded in the outbox, still to be sent after commit.
pub struct Outgoing {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Records a message in the change `w` writes. `secrets` are replaced by `[redacted]` in
/// the stored copy unless this is the dev mailbox.
pub async fn queue(
    w: &impl Writer,
    mailer: &Mailer,
    to: &str,
    subject: &str,
    body: &str,
    purpose: &str,
    secrets: &[&str],
) -> Result<Outgoing, ApiError> {
    let id = ulid::Ulid::new().to_string();
    let mut stored = body.to_string();
    if !mailer.keeps_plaintext() {
        for s in secrets {
            stored = stored.replace(s, "[redacted]");
        }
    }
    let sql = format!(
        "INSERT INTO {}.mail_outbox (id, to_email, subject, body, purpose) VALUES ($1, $2, $3, $4, $5)",
        w.schema()
    );
    w.write(Stmt::new(
        sql,
        vec![
            val(id.clone()),
            val(to.to_string()),
            val(subject.to_string()),
            val(stored),
            val(purpose.to_string()),
        ],
    ))
    .await?;
    Ok(Outgoing {
        id,
        to: to.to_string(),
        subject: subject.to_string(),
        body: body.to_string(),
    })
}

/// Sends committed messages in the background and marks them sent. Call after commit.
pub fn send_after_commit(app: &Arc<App>, schema: &Schema, mails: Vec<Outgoing>) {
    if mails.is_empty() || app.mailer.smtp.is_none() {
        if !mails.is_empty() && !app.mailer.dev_mailbox {
            tracing::warn!(
                count = mails.len(),
                "mail not sent: SMTP_URL is not configured"
            );
        }
        return;
    }
    let (app, schema) = (app.clone(), schema.clone());
    tokio::spawn(async move {
        for m in mails {
            match deliver(&app.mailer, &m).await {
                Ok(()) => {
                    let sql =
                        format!("UPDATE {schema}.mail_outbox SET sent_at = now() WHERE id = $1");
                    if let Ok(conn) = app.pool.get().await {
                        let _ = conn.execute(sql.as_str(), &[&m.id]).await;
                    }
                }
                // The address is the customer's data, not a secret; the body is never logged.
                Err(e) => tracing::warn!(mail_id = %m.id, error = %e, "SMTP delivery failed"),
            }
        }
    });
}

async fn deliver(mailer: &Mailer, m: &Outgoing) -> Result<(), String> {
    let smtp = mailer.smtp.as_ref().ok_or("no SMTP transport")?;
    let to: Mailbox = m.to.parse().map_err(|e| format!("recipient: {e}"))?;
    let msg = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(m.subject.clone())
        .body(m.body.clone())
        .map_err(|e| e.to_string())?;
    smtp.send(msg).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A message of the dev mailbox.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct MailView {
    id: String,
    /// The recipient's address.
    to: String,
    subject: String,
    /// The text, with its working links (dev mode keeps them).
    body: String,
    metadata: MailMetadata,
    created_at: Timestamp,
}

#[derive(Serialize, JsonSchema)]
struct MailMetadata {
    /// What the mail is: `magic_link`, `partner_invite`, `admin_invite`, `partner_revoked`,
    /// `campaign_ending`.
    purpose: String,
}

pub fn mailbox_doc() -> Op {
    Op::new("Read the dev mailbox")
        .describe("Development only (`openpartner dev`, no `SMTP_URL`): the mail the server would have sent, newest first; `404` elsewhere.")
        .query(
            "to",
            "Only the mail to this address (compared case-insensitively).",
            json!({"type": "string"}),
        )
        .page::<MailView>("mails")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /dev/mailbox?to=` (admin, dev mode only): the mail outbox, newest first.
pub async fn mailbox(ctx: Ctx) -> Result<Reply, ApiError> {
    if !ctx.app.mailer.keeps_plaintext() {
        return Err(ApiError::not_found(
            "the dev mailbox exists only in dev mode without SMTP_URL",
        ));
    }
    let page = PageRequest::from_ctx(&ctx)?;
    let to = ctx.query_value("to").map(|t| t.trim().to_lowercase());
    let (after_t, after_id) = page.after.clone().unzip();
    let rows = ctx
        .read(
            &format!(
                "SELECT id, to_email, subject, body, purpose, created_at FROM {}.mail_outbox
                  WHERE ($1::text IS NULL OR to_email = $1)
                    AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
                  ORDER BY created_at DESC, id DESC LIMIT $4",
                ctx.schema()?
            ),
            &[&to, &after_t, &after_id, &page.fetch()],
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            let mail = MailView {
                id: r.get("id"),
                to: r.get("to_email"),
                subject: r.get("subject"),
                body: r.get("body"),
                metadata: MailMetadata {
                    purpose: r.get("purpose"),
                },
                created_at: Timestamp(r.get("created_at")),
            };
            let v = serde_json::to_value(mail).unwrap_or_default();
            (r.get("created_at"), r.get("id"), v)
        })
        .collect();
    Ok(Reply::ok(page_body(&page, "mails", items)))
}
