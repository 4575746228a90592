//! The webhooks scenario's endpoint: a local HTTP server that answers 200 to everything
//! and counts the requests.

use anyhow::Result;
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) struct Receiver {
    /// Where to deliver: `http://127.0.0.1:<port>/hook`.
    pub(super) url: String,
    count: Arc<AtomicU64>,
}

impl Receiver {
    /// Listens on a free local port.
    pub(super) async fn start() -> Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut have = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        have.extend_from_slice(&buf[..n]);
                        // One request per connection is enough for the client we serve.
                        if let Some(i) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&have[..i]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if have.len() >= i + 4 + len {
                                c.fetch_add(1, Ordering::Relaxed);
                                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n").await;
                                have.drain(..i + 4 + len);
                            }
                        }
                    }
                });
            }
        });
        Ok(Receiver { url, count })
    }

    /// Requests received so far.
    pub(super) fn received(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits, looking every `poll`, until `n` requests have been received or two minutes
    /// have passed.
    pub(super) async fn wait_for(&self, n: u64, poll: Duration) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.received() < n && Instant::now() < deadline {
            tokio::time::sleep(poll).await;
        }
    }
}
