//! The load generator's HTTP side: one keep-alive HTTP/1.1 connection per simulated client,
//! driven by hyper's connection-level client (no pool, URL parsing, redirect or retry policy
//! per request). The load tool shares the machine with the system it measures, so every
//! microsecond it spends is taken from the gateway, the workers or PostgreSQL; a lean client
//! keeps the comparison with pgbench (a C client) about the server, not the client.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::sync::Mutex;

/// `n` clients of one HTTP server, each with its own connection (opened on first use and
/// again after the server closed it).
pub struct Clients {
    addr: SocketAddr,
    host: String,
    conns: Vec<Mutex<Option<SendRequest<Full<Bytes>>>>>,
}

impl Clients {
    /// Clients of the server at `base_url` (`http://host:port`).
    pub fn new(base_url: &str, n: usize) -> Result<Clients> {
        let url = url::Url::parse(base_url)?;
        let host = url.host_str().context("base url without host")?;
        let port = url
            .port_or_known_default()
            .context("base url without port")?;
        let addr = format!("{host}:{port}")
            .parse()
            .context("the load tool speaks to an IP address")?;
        Ok(Clients {
            addr,
            host: format!("{host}:{port}"),
            conns: (0..n).map(|_| Mutex::new(None)).collect(),
        })
    }

    /// A request for `path` (and query) with this server's `Host`.
    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
    }

    /// Sends `req` as client `i` and reads the whole reply; its status, or `None` when the
    /// connection failed.
    pub async fn send(&self, i: usize, req: Request<Full<Bytes>>) -> Option<u16> {
        let mut slot = self.conns[i % self.conns.len()].lock().await;
        let sender = match slot.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => slot.insert(self.connect().await.ok()?),
        };
        sender.ready().await.ok()?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                *slot = None;
                return None;
            }
        };
        let status = resp.status().as_u16();
        resp.into_body().collect().await.ok()?;
        Some(status)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}
