//! The load loop, and one operation measured through the gateway (HTTP) and straight to a
//! worker (gRPC): the first two of the three ways (the third is in `baselines`).

use super::{cpu, report::Report, target::Bench};
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use op_proto::v1::Envelope;
use serde_json::Value;
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Runs `op` from `concurrency` tasks for `duration`; `op(client, n)` gets the task's index
/// and a unique sequence number and returns whether the call succeeded.
pub(super) async fn measure<F, Fut>(
    label: &str,
    concurrency: usize,
    duration: Duration,
    op: F,
) -> Report
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let seq = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu::snapshot();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (op, seq) = (op.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut ok, mut err) = (Vec::with_capacity(4096), 0u64, 0u64);
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if op(client, n).await {
                    ok += 1;
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    err += 1;
                }
            }
            (lat, ok, err)
        }));
    }
    let mut report = Report {
        label: label.to_string(),
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
        cpu: Vec::new(),
    };
    for t in tasks {
        if let Ok((lat, ok, err)) = t.await {
            report.micros.extend(lat);
            report.ok += ok;
            report.errors += err;
        }
    }
    report.elapsed = start.elapsed();
    report.micros.sort_unstable();
    report.cpu = cpu::spent_since(&cpu_before);
    report
}

impl Bench {
    /// `http_req(n)` through the gateway, succeeding on status `want`.
    pub(super) async fn via_gateway(
        &self,
        label: &str,
        http_req: impl Fn(u64) -> http::Request<Full<Bytes>> + Clone + Send + Sync + 'static,
        want: u16,
    ) -> Report {
        let load = self.admin.load.clone();
        measure(label, self.concurrency, self.duration, move |client, n| {
            let (load, req) = (load.clone(), http_req(n));
            async move { load.send(client, req).await == Some(want) }
        })
        .await
    }

    /// The same operation through the gateway and straight to the worker.
    pub(super) async fn both(
        &self,
        label: &str,
        http_req: impl Fn(u64) -> http::Request<Full<Bytes>> + Clone + Send + Sync + 'static,
        want_http: u16,
        envelope_for: impl Fn(u64) -> Envelope + Clone + Send + Sync + 'static,
        want_grpc: u32,
    ) -> (Report, Report) {
        let via_gw = self
            .via_gateway(
                &format!("{label:<26} via gateway (HTTP)"),
                http_req,
                want_http,
            )
            .await;
        let w = self.worker.clone();
        let direct =
            measure(
                &format!("{label:<26} direct to worker (gRPC)"),
                self.concurrency,
                self.duration,
                move |_, n| {
                    let (mut w, env) = (w.clone(), envelope_for(n));
                    async move {
                        matches!(w.handle(env).await, Ok(r) if r.get_ref().status == want_grpc)
                    }
                },
            )
            .await;
        (via_gw, direct)
    }

    /// `method path` of the tenant API with a fresh JSON body per call, through the
    /// gateway and straight to the worker, both succeeding on `want`; `body(side, n)` gets
    /// `"gw"` or `"w"` so that the two runs never send the same body.
    pub(super) async fn both_json(
        &self,
        method: Method,
        path: &str,
        body: impl Fn(&str, u64) -> Value + Clone + Send + Sync + 'static,
        want: u16,
    ) -> (Report, Report) {
        let admin = self.admin.clone();
        let tmpl = self.target.envelope(method.as_str(), path);
        let (b1, b2, p) = (body.clone(), body, path.to_string());
        self.both(
            &format!("{method} {path}"),
            move |n| admin.request(method.clone(), &p, &b1("gw", n)),
            want,
            move |n| Envelope {
                body: b2("w", n).to_string().into_bytes(),
                ..tmpl.clone()
            },
            want.into(),
        )
        .await
    }
}
