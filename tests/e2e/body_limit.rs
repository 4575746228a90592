//! A body over `OP_MAX_BODY_BYTES` (1 MiB here) is refused with a `413` that the client can
//! read: the gateway reads the rest of a moderately oversized body (up to 8 MiB past the
//! limit) before answering, so clients that send the whole body before reading (Python's
//! urllib and requests, Node's fetch) get the answer, not a broken pipe or a reset. The
//! connection then closes (`Connection: close`), and the gateway serves the next one.
//!
//! The same holds for every answer the gateway gives before it reads a body (unknown
//! tenant, bad key, unknown path, no slug, the platform without its key): the body is read
//! and thrown away first. A declared size over the limit is refused before anything else.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
/// Over the 1 MiB limit by a little, by twice, and by the most the gateway still reads.
const SIZES: [usize; 3] = [MIB + 16, 2 * MIB, 8 * MIB];

fn refusal() -> Value {
    json!({"error": "payload_too_large", "detail": "the body is larger than 1048576 bytes"})
}

/// A JSON-ish body of `n` bytes (its content does not matter: it is never parsed).
fn body_of(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

/// What a raw HTTP/1.1 client got back, having written its whole request first.
struct RawAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
    /// The gateway closed the connection after the answer.
    closed: bool,
}

/// `POST path` over a plain TCP connection that writes the whole request (head and body,
/// with `Content-Length` or chunked) before reading anything, as urllib does, then reads
/// the answer.
async fn raw_post(base_url: &str, path: &str, key: &str, body: &[u8], chunked: bool) -> RawAnswer {
    let addr = base_url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let framing = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {}", body.len())
    };
    // No key: no `Authorization` header at all.
    let auth = match key {
        "" => String::new(),
        key => format!("authorization: Bearer {key}\r\n"),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}\
         content-type: application/json\r\n{framing}\r\n\r\n"
    );
    let mut wire = head.into_bytes();
    if chunked {
        for piece in body.chunks(64 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        wire.extend_from_slice(body);
    }
    s.write_all(&wire)
        .await
        .expect("the gateway reads the whole body (no broken pipe, no reset)");
    tokio::time::timeout(Duration::from_secs(20), read_answer(&mut s))
        .await
        .expect("the gateway answers")
}

/// Reads one answer (head, then a `Content-Length` body), and whether the gateway then
/// closed the connection.
async fn read_answer(s: &mut tokio::net::TcpStream) -> RawAnswer {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).await.expect("read without a reset");
        assert!(n > 0, "the connection closed before a whole answer head");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    while got.len() < end + len {
        let n = s.read(&mut buf).await.expect("read without a reset");
        assert!(n > 0, "the connection closed before the whole answer body");
        got.extend_from_slice(&buf[..n]);
    }
    let closed = got.len() == end + len
        && tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .is_ok_and(|r| r.is_ok_and(|n| n == 0));
    RawAnswer {
        status,
        head,
        body: got[end..end + len].to_vec(),
        closed,
    }
}

#[tokio::test]
async fn an_oversized_body_gets_a_readable_413_with_reqwest() {
    let t = Tenant::new().await;
    for n in SIZES {
        // A client of its own per request: the connection ends with the refusal.
        let api = Api::new(t.api.base.clone(), Some(&t.admin_key));
        let r = api
            .raw(Method::POST, "/partners", Some(body_of(n)), &[])
            .await
            .expect(413);
        assert_eq!(r.body, refusal(), "{n} bytes");
        assert_eq!(r.headers["connection"], "close", "{n} bytes");
    }
    // The gateway is none the worse: a normal request right after is served.
    t.api.get("/partners").await.expect(200);
    t.api
        .post(
            "/partners",
            json!({"email": "after@example.com", "name": "A", "sendInvite": false}),
        )
        .await
        .expect(201);
}

#[tokio::test]
async fn a_client_that_sends_everything_first_reads_the_413() {
    let t = Tenant::new().await;
    let base = t.gateway_url().to_string();
    let path = format!("/api/t/{}/partners", t.slug);
    for chunked in [false, true] {
        for n in SIZES {
            let a = raw_post(&base, &path, &t.admin_key, &body_of(n), chunked).await;
            let what = format!("{n} bytes, chunked: {chunked}");
            assert_eq!(a.status, 413, "{what}: {}", a.head);
            assert!(a.head.contains("connection: close"), "{what}: {}", a.head);
            assert!(a.closed, "{what}: the gateway closes the connection");
            let body: Value = serde_json::from_slice(&a.body).expect("a JSON body");
            assert_eq!(body, refusal(), "{what}");
        }
    }
    // A body within the limit still goes through, on the same kind of connection (read and
    // forwarded: the worker finds it invalid), and that connection is kept.
    let a = raw_post(&base, &path, &t.admin_key, b"{}", false).await;
    assert_eq!(a.status, 400, "{}", a.head);
    assert!(!a.closed, "{}", a.head);
    t.api.get("/partners").await.expect(200);
}

/// Python's urllib and Node's fetch, the clients the refusal used to break, when the
/// machine has them (CI does); each one is skipped, with a note, where it is missing.
#[tokio::test]
async fn urllib_and_fetch_read_the_413() {
    let t = Tenant::new().await;
    let url = format!("{}/partners", t.api.base);
    let python = r#"
import sys, urllib.request, urllib.error
url, key = sys.argv[1], sys.argv[2]
def chunks(n):
    for i in range(0, n, 65536):
        yield b"x" * min(65536, n - i)
for n in [1024 * 1024 + 16, 8 * 1024 * 1024]:
    for data in [b"x" * n, chunks(n)]:
        req = urllib.request.Request(url, data=data, method="POST",
            headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=20)
            print("accepted")
        except urllib.error.HTTPError as e:
            print(e.code, e.read().decode())
"#;
    let node = r#"
const [url, key] = process.argv.slice(1);
(async () => {
  for (const n of [1024 * 1024 + 16, 8 * 1024 * 1024]) {
    const r = await fetch(url, {method: "POST", body: Buffer.alloc(n, 120),
      headers: {authorization: "Bearer " + key, "content-type": "application/json"}});
    console.log(r.status, await r.text());
  }
})().catch((e) => { console.log("error", e.message, e.cause && e.cause.code); });
"#;
    let runs = [
        ("python3", vec!["-c", python, &url, &t.admin_key], 4),
        ("node", vec!["-e", node, &url, &t.admin_key], 2),
    ];
    let mut ran = 0;
    for (program, args, answers) in runs {
        let Some(stdout) = run_client(program, &args).await else {
            continue;
        };
        ran += 1;
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), answers, "{program}: {stdout}");
        for line in lines {
            let (status, body) = line.split_once(' ').expect("status and body");
            assert_eq!(status, "413", "{program}: {line}");
            let body: Value = serde_json::from_str(body).expect("a JSON body");
            assert_eq!(body, refusal(), "{program}");
        }
    }
    // The machines this runs on have python3 (scripts/test installs it) and node.
    assert!(ran > 0, "neither python3 nor node could run");
    t.api.get("/partners").await.expect(200);
}

/// A key of the right shape that no tenant has.
const BAD_KEY: &str = "op_live_not_a_real_key_0123456789";
/// Under the limit (what urllib and fetch used to fail on 3 times in 4), and far over it.
const EARLY_SIZES: [usize; 2] = [1_024_000, 8 * MIB];

/// The answers the gateway gives before reading a body: (path, key, status, error).
fn early_answers(t: &Tenant) -> Vec<(String, String, u16, &'static str)> {
    vec![
        (
            format!("/api/t/{}/partners", unique_slug("nosuch")),
            t.admin_key.clone(),
            404,
            "tenant_not_found",
        ),
        (
            format!("/api/t/{}/partners", t.slug),
            BAD_KEY.into(),
            401,
            "unauthorized",
        ),
        ("/nothing".into(), t.admin_key.clone(), 404, "not_found"),
        (
            "/api/partners".into(),
            t.admin_key.clone(),
            400,
            "tenant_slug_missing",
        ),
        (
            "/platform/tenants".into(),
            BAD_KEY.into(),
            401,
            "unauthorized",
        ),
        // No key at all ("" sends no `Authorization`).
        (
            "/platform/tenants".into(),
            String::new(),
            401,
            "unauthorized",
        ),
    ]
}

/// What a body of `n` bytes sent with `Content-Length` gets where the gateway answers
/// `(status, error)` without a worker: the size declared is checked first, so over the
/// limit it is always the `413`.
fn expected(n: usize, chunked: bool, status: u16, error: &'static str) -> (u16, &'static str) {
    if n > MIB && !chunked {
        (413, "payload_too_large")
    } else {
        (status, error)
    }
}

/// Every answer given before the body is read (unknown tenant, bad key, unknown path, no
/// slug, the platform without its key) reads the body first, so a client that writes it all
/// before reading gets the answer; within the limit the connection is kept.
#[tokio::test]
async fn answers_before_the_body_still_read_it() {
    let t = Tenant::new().await;
    let base = t.gateway_url().to_string();
    for (path, key, status, error) in early_answers(&t) {
        for chunked in [false, true] {
            for n in EARLY_SIZES {
                let a = raw_post(&base, &path, &key, &body_of(n), chunked).await;
                let what = format!("{path}, {n} bytes, chunked: {chunked}");
                let (status, error) = expected(n, chunked, status, error);
                assert_eq!(a.status, status, "{what}: {}", a.head);
                let body: Value = serde_json::from_slice(&a.body).expect("a JSON body");
                assert_eq!(body["error"], error, "{what}");
                assert!(body["detail"].is_string(), "{what}");
                if status == 413 {
                    assert!(a.head.contains("connection: close"), "{what}: {}", a.head);
                    assert!(a.closed, "{what}: the gateway closes the connection");
                }
                if n < MIB {
                    // Read to its end: the connection can go on.
                    assert!(!a.closed, "{what}: {}", a.head);
                }
            }
        }
    }
    t.api.get("/partners").await.expect(200);
}

/// One rule for the order of refusals: the `Content-Length` over the limit is refused
/// before anything else is looked at, with or without a key, good or bad, on every surface.
#[tokio::test]
async fn the_declared_size_is_checked_before_the_key() {
    let t = Tenant::new().await;
    let gw = t.gateway_url().to_string();
    for base in [t.api.base.clone(), gw.clone()] {
        let path = if base == gw {
            "/platform/tenants"
        } else {
            "/partners"
        };
        for key in [None, Some(BAD_KEY), Some(t.admin_key.as_str())] {
            let api = Api::new(base.clone(), key);
            let r = api
                .raw(Method::POST, path, Some(body_of(MIB + 16)), &[])
                .await
                .expect(413);
            assert_eq!(r.body, refusal(), "{path}, key {key:?}");
        }
    }
    // Even a service endpoint (where the method alone is wrong).
    let r = Api::new(gw, None)
        .raw(Method::POST, "/health", Some(body_of(MIB + 16)), &[])
        .await
        .expect(413);
    assert_eq!(r.body, refusal());
}

/// Python's urllib and Node's fetch read the answers given before the body: under the
/// limit the refusal itself, over it the `413`.
#[tokio::test]
async fn urllib_and_fetch_read_answers_given_before_the_body() {
    let t = Tenant::new().await;
    let gw = t.gateway_url().to_string();
    let cases = early_answers(&t);
    let urls: Vec<Value> = cases
        .iter()
        .map(|(path, key, _, _)| json!([format!("{gw}{path}"), key]))
        .collect();
    let urls = Value::Array(urls).to_string();
    let python = r#"
import json, sys, urllib.request, urllib.error
for url, key in json.loads(sys.argv[1]):
    for n in [1024000, 8 * 1024 * 1024]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + key
        req = urllib.request.Request(url, data=b"x" * n, method="POST", headers=headers)
        try:
            urllib.request.urlopen(req, timeout=20)
            print("accepted")
        except urllib.error.HTTPError as e:
            print(e.code, e.read().decode())
"#;
    let node = r#"
const cases = JSON.parse(process.argv[1]);
(async () => {
  for (const [url, key] of cases) {
    for (const n of [1024000, 8 * 1024 * 1024]) {
      const headers = {"content-type": "application/json"};
      if (key) headers.authorization = "Bearer " + key;
      const r = await fetch(url, {method: "POST", body: Buffer.alloc(n, 120), headers});
      console.log(r.status, await r.text());
    }
  }
})().catch((e) => { console.log("error", e.message, e.cause && e.cause.code); });
"#;
    let mut ran = 0;
    for (program, args) in [
        ("python3", vec!["-c", python, &urls]),
        ("node", vec!["-e", node, &urls]),
    ] {
        let Some(stdout) = run_client(program, &args).await else {
            continue;
        };
        ran += 1;
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), cases.len() * 2, "{program}: {stdout}");
        let wanted = cases.iter().flat_map(|(path, _, status, error)| {
            EARLY_SIZES.map(|n| (path, n, expected(n, false, *status, error)))
        });
        for (line, (path, n, (status, error))) in lines.iter().zip(wanted) {
            let what = format!("{program}: {path}, {n} bytes: {line}");
            let (got, body) = line.split_once(' ').expect("status and body");
            assert_eq!(got, status.to_string(), "{what}");
            let body: Value = serde_json::from_str(body).expect("a JSON body");
            assert_eq!(body["error"], error, "{what}");
        }
    }
    assert!(ran > 0, "neither python3 nor node could run");
    t.api.get("/partners").await.expect(200);
}

/// HTTP/2: an answer given before the body is read ends just its stream; the same
/// connection serves the next request.
#[tokio::test]
async fn over_http2_an_early_answer_ends_just_the_stream() {
    let t = Tenant::new().await;
    let gw = t.gateway_url().to_string();
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an h2 client");
    for (path, key, status, error) in early_answers(&t) {
        for n in EARLY_SIZES {
            let mut req = http.post(format!("{gw}{path}"));
            if !key.is_empty() {
                req = req.bearer_auth(&key);
            }
            let r = req
                .header("content-type", "application/json")
                .body(body_of(n))
                .send()
                .await
                .expect("the answer, not a reset");
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let (status, error) = expected(n, false, status, error);
            assert_eq!(r.status().as_u16(), status, "{path}, {n} bytes");
            assert!(r.headers().get("connection").is_none(), "{path}");
            let body: Value = r.json().await.expect("a JSON body");
            assert_eq!(body["error"], error, "{path}, {n} bytes");
            // The connection goes on.
            let ok = http
                .get(format!("{}/partners", t.api.base))
                .bearer_auth(&t.admin_key)
                .send()
                .await
                .expect("served on the same client");
            assert_eq!(ok.status().as_u16(), 200);
        }
    }
}

/// HTTP/2 refuses at once: the answer to a request the gateway will not serve arrives while
/// the client is still sending its body (the stream is ended, not read for up to a second
/// as an HTTP/1.1 body is).
#[tokio::test]
async fn over_http2_a_refusal_does_not_wait_for_the_body() {
    let t = Tenant::new().await;
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an h2 client");
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    // The body's first bytes, then nothing: the stream stays open until the test ends.
    let mut tx = tx;
    tx.try_send(Ok(b"{\"email\": ".to_vec())).unwrap();
    let started = std::time::Instant::now();
    let r = http
        .post(format!("{}/partners", t.api.base))
        .bearer_auth("op_live_not_a_key")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(rx))
        .send()
        .await
        .expect("the answer");
    let waited = started.elapsed();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    // An HTTP/1.1 body would be waited for up to a second (DRAIN_FOR) before this answer.
    assert!(
        waited < Duration::from_millis(900),
        "answered after {waited:?}, with the body still open"
    );
    drop(tx);
}

/// Runs a real client (`python3 -c …`, `node -e …`); its stdout, or None when the program is
/// not installed (the test then says it skipped that client). A client that fails fails the test.
async fn run_client(program: &str, args: &[&str]) -> Option<String> {
    let out = match tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("{program} not available ({e}): skipped");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}
