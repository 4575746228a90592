//! A real local HTTP receiver for webhook tests: records every request (path, headers, raw
//! body) and answers as the test's behaviour says (status, headers, delay).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// What to answer: `(status, extra headers, delay before answering)` for the n-th request
/// (0-based) to a path.
pub type Behaviour = dyn Fn(&str, usize) -> (u16, Vec<(String, String)>, Duration) + Send + Sync;

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Arc<Behaviour>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let r = Receiver {
            base,
            got: Arc::new(Mutex::new(Vec::new())),
            behaviour: Arc::new(Mutex::new(Arc::new(|_: &str, _: usize| {
                (200, vec![], Duration::ZERO)
            }))),
        };
        let me = r.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let header_end = loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let path = lines
                        .next()
                        .unwrap_or("")
                        .split(' ')
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    let mut headers = http::HeaderMap::new();
                    for l in lines {
                        if let Some((k, v)) = l.split_once(':') {
                            if let (Ok(k), Ok(v)) = (
                                http::HeaderName::from_bytes(k.trim().as_bytes()),
                                http::HeaderValue::from_str(v.trim()),
                            ) {
                                headers.append(k, v);
                            }
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < header_end + len {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = buf[header_end..(header_end + len).min(buf.len())].to_vec();
                    let nth = {
                        let mut got = me.got.lock().unwrap();
                        let nth = got.iter().filter(|g| g.path == path).count();
                        got.push(Received {
                            path: path.clone(),
                            headers,
                            body,
                            at: Instant::now(),
                        });
                        nth
                    };
                    let behaviour = me.behaviour.lock().unwrap().clone();
                    let (status, extra, delay) = behaviour(&path, nth);
                    tokio::time::sleep(delay).await;
                    let mut resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n"
                    );
                    for (k, v) in extra {
                        resp.push_str(&format!("{k}: {v}\r\n"));
                    }
                    resp.push_str("\r\n");
                    let _ = stream.write_all(resp.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        r
    }

    /// A receiver answering every request `status` after `delay`.
    pub async fn answering(status: u16, delay: Duration) -> Receiver {
        let r = Receiver::start().await;
        r.behave(move |_, _| (status, vec![], delay));
        r
    }

    /// A receiver answering the first `n` requests to each path `500`, then `200`.
    pub async fn failing_first(n: usize) -> Receiver {
        let r = Receiver::start().await;
        r.behave(move |_, nth| (if nth < n { 500 } else { 200 }, vec![], Duration::ZERO));
        r
    }

    pub fn behave(
        &self,
        f: impl Fn(&str, usize) -> (u16, Vec<(String, String)>, Duration) + Send + Sync + 'static,
    ) {
        *self.behaviour.lock().unwrap() = Arc::new(f);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests received on `path` so far (count).
    pub fn count(&self, path: &str) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .count()
    }

    /// Waits until `check` holds over the received requests on `path` (up to `secs`).
    pub async fn wait_for(&self, path: &str, secs: u64, check: impl Fn(&[&Received]) -> bool) {
        let start = Instant::now();
        loop {
            {
                let got = self.got.lock().unwrap();
                let mine: Vec<&Received> = got.iter().filter(|g| g.path == path).collect();
                if check(&mine) {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "receiver on {path}: condition not met within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
