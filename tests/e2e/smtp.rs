//! Real mail delivery over SMTP to a local receiver, and no usable token left at rest.

use crate::harness::*;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// A minimal SMTP receiver (RFC 5321 happy path): enough for a real client to deliver to.
async fn smtp_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let store = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 receiver.test ESMTP\r\n").await.ok();
                let mut in_data = false;
                let mut message = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut message));
                            w.write_all(b"250 2.0.0 queued\r\n").await.ok();
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 receiver.test\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.ok();
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    w.write_all(answer).await.ok();
                }
            });
        }
    });
    (port, inbox)
}

#[tokio::test]
async fn magic_links_are_delivered_over_smtp_and_only_redacted_copies_are_stored() {
    let (port, inbox) = smtp_receiver().await;
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let stack = private_stack(&[
        ("SMTP_URL", &smtp_url),
        ("MAIL_FROM", "Partners <partners@merchant.test>"),
    ])
    .await;
    let t = Tenant::on(&stack.base_url).await;

    t.invited_partner("mailme@example.com", "M").await;
    let message = poll(10, Duration::from_millis(25), || async {
        inbox
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.contains("mailme@example.com"))
            .cloned()
            .ok_or("no mail arrived over SMTP".to_string())
    })
    .await;
    assert!(
        message.contains("From: Partners <partners@merchant.test>"),
        "{message}"
    );
    // Bodies may be quoted-printable encoded; undo soft line breaks before reading the token.
    let unfolded = message.replace("=\n", "").replace("=3D", "=");
    let token = token_in(&unfolded);
    let v = t.verify_magic_link(&token).await.expect(200);
    assert_eq!(v.body["role"], "partner");

    // With SMTP there is no dev mailbox, and the stored copy carries no usable token.
    t.api
        .get("/dev/mailbox")
        .await
        .expect_error(404, "not_found");
    let client = crate::harness::db().await;
    let schema = op_control::schema::schema_name(&t.id);
    let rows = client
        .query(
            &format!("SELECT body, sent_at IS NOT NULL FROM \"{schema}\".mail_outbox"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].get(0);
    assert!(
        stored.contains("[redacted]") && !stored.contains(&token),
        "{stored}"
    );
    let sql = format!("SELECT sent_at IS NOT NULL FROM \"{schema}\".mail_outbox");
    wait_until("sent_at is set", 5, || async {
        client.query_one(&sql, &[]).await.unwrap().get::<_, bool>(0)
    })
    .await;
}
