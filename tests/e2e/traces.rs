//! Optional OpenTelemetry traces (operate.md, "Traces"; deploy/CONFIG.md): with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, the gateway and the worker export their spans over
//! OTLP/gRPC, and the trace context rides in the envelope, so one request is one trace
//! across both processes. A tiny OTLP collector here (tonic, the `opentelemetry-proto`
//! service) records what arrives.

use crate::harness::{procs, *};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One exported span, as the collector saw it.
#[derive(Clone, Debug)]
struct Seen {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

impl Seen {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Seen>>>);

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    seen.push(Seen {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|a| (a.key.clone(), text(&a.value)))
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves OTLP/gRPC on a free port; returns the endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        format!("http://{addr}")
    }

    /// The spans of `trace_id` exported so far.
    fn spans_of(&self, trace_id: &str) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// The spans of `trace_id` once both processes exported theirs (30 s at most).
    async fn trace(&self, trace_id: &str) -> Vec<Seen> {
        poll(30, Duration::from_millis(50), || async {
            let spans = self.spans_of(trace_id);
            let has = |svc: &str| spans.iter().any(|s| s.service == svc);
            if has("op-gateway") && has("op-worker") {
                return Ok(spans);
            }
            Err(format!(
                "trace {trace_id}: not both processes' spans: {spans:#?}\nall: {:#?}",
                self.0.lock().unwrap()
            ))
        })
        .await
    }
}

/// `GET url` with the bearer `key` and a `traceparent` header: the status.
async fn get_traced(url: &str, key: &str, traceparent: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(key)
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap()
        .status()
}

/// The gateway's span (a child of the client's `traceparent`, when one came) and the worker's
/// span (a child of the gateway's) share one trace id; without an incoming `traceparent`
/// the gateway starts the trace and the worker still joins it; a gateway that exports no
/// traces passes the client's context on to the worker.
#[tokio::test]
async fn one_request_is_one_trace_across_gateway_and_worker() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let logs = procs::LogDir::new("traces");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let pair = procs::pair("trace-worker", &env, &logs).await;
    let url = &pair.worker_url;
    let t = Tenant::on(&pair.base).await;
    let partner = t.partner("traced@example.com").await;
    let path = format!("/partners/{}", partner["id"].as_str().unwrap());

    // The client's trace context is kept: its trace id, the gateway span its child.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let status = get_traced(
        &format!("{}{path}", t.api.base),
        &t.admin_key,
        &format!("00-{trace_id}-{client_span}-01"),
    )
    .await;
    assert_eq!(status, 200);
    let spans = collector.trace(trace_id).await;
    let gw: Vec<&Seen> = spans.iter().filter(|s| s.service == "op-gateway").collect();
    let wk: Vec<&Seen> = spans.iter().filter(|s| s.service == "op-worker").collect();
    assert_eq!(gw.len(), 1, "one gateway span: {spans:#?}");
    let gw = gw[0];
    assert_eq!(gw.parent_span_id, client_span, "{gw:#?}");
    assert_eq!(gw.name, "GET /api/t/:slug/partners/:id", "{gw:#?}");
    assert_eq!(gw.attribute("http.response.status_code"), Some("200"));
    assert_eq!(
        gw.attribute("http.route"),
        Some("/api/t/:slug/partners/:id")
    );
    let root = wk
        .iter()
        .find(|s| s.parent_span_id == gw.span_id)
        .unwrap_or_else(|| panic!("a worker span under the gateway's: {spans:#?}"));
    assert_eq!(
        root.attribute("http.route"),
        Some("/partners/:id"),
        "{root:#?}"
    );
    assert_eq!(root.attribute("http.response.status_code"), Some("200"));
    // The raw path (with the partner id) is in no span.
    let id = partner["id"].as_str().unwrap();
    for s in &spans {
        assert!(
            !s.name.contains(id) && s.attributes.iter().all(|(_, v)| !v.contains(id)),
            "{s:#?}"
        );
    }

    // No incoming context: the gateway starts a trace, the worker's span joins it.
    let before: Vec<String> = collector
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.span_id.clone())
        .collect();
    t.api.get(&path).await.expect(200);
    let gw = poll(30, Duration::from_millis(50), || async {
        collector
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|s| {
                s.service == "op-gateway"
                    && !before.contains(&s.span_id)
                    && s.name == "GET /api/t/:slug/partners/:id"
            })
            .cloned()
            .ok_or_else(|| "no gateway span".to_string())
    })
    .await;
    assert_ne!(gw.trace_id, trace_id);
    assert_eq!(gw.parent_span_id, "", "a root span: {gw:#?}");
    let spans = collector.trace(&gw.trace_id).await;
    assert!(
        spans
            .iter()
            .any(|s| s.service == "op-worker" && s.parent_span_id == gw.span_id),
        "{spans:#?}"
    );

    // An invalid traceparent is ignored (W3C): a fresh root, and the request is served.
    let status = get_traced(
        &format!("{}{path}", t.api.base),
        &t.admin_key,
        "00-not-a-trace-01",
    )
    .await;
    assert_eq!(status, 200);

    // A gateway that exports nothing still hands the client's context on: the worker's
    // span joins the client's trace, as the child of the client's span.
    let (_quiet, quiet_base) = procs::gateway(url, &[], &logs.file("gateway-quiet.log")).await;
    procs::wait_workers(&quiet_base, 1).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let status = get_traced(
        &format!("{quiet_base}/api/t/{}{path}", t.slug),
        &t.admin_key,
        &format!("00-{trace_id}-{client_span}-01"),
    )
    .await;
    assert_eq!(status, 200);
    let spans = poll(30, Duration::from_millis(50), || async {
        let spans = collector.spans_of(trace_id);
        if spans.iter().any(|s| s.service == "op-worker") {
            Ok(spans)
        } else {
            Err("no worker span".to_string())
        }
    })
    .await;
    let s = spans.iter().find(|s| s.service == "op-worker").unwrap();
    assert_eq!(s.parent_span_id, client_span, "{s:#?}");
    assert!(spans.iter().all(|s| s.service == "op-worker"), "{spans:#?}");
}

/// Spans still queued when a process is told to stop are exported before it exits: with a
/// batch delay far longer than the test, the spans of a request arrive only through the
/// flush that follows the drain.
#[tokio::test]
async fn spans_queued_at_sigterm_are_exported_before_exit() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let logs = procs::LogDir::new("traces-flush");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ("OP_DRAIN_SECS", "3"),
    ];
    let mut pair = procs::pair("flush-worker", &env, &logs).await;
    let base = &pair.base;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let status = get_traced(
        &format!("{base}/platform/tenants"),
        PLATFORM_KEY,
        &format!("00-{trace_id}-10f067aa0ba902b7-01"),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        collector.0.lock().unwrap().is_empty(),
        "nothing is exported before the batch delay"
    );
    let statuses = pair.terminate(Duration::from_secs(10)).await;
    for (status, p) in statuses.into_iter().zip([&pair.gateway, &pair.worker]) {
        assert!(status.is_some_and(|s| s.success()), "{}", p.log_text());
    }
    let spans = collector.trace(trace_id).await;
    let gw = spans.iter().find(|s| s.service == "op-gateway").unwrap();
    assert_eq!(gw.name, "GET /platform/tenants", "{gw:#?}");
}
