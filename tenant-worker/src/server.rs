//! The gRPC face of the worker: `Handle` runs one request, `Health` answers the gateways.

use crate::{
    config::Listen,
    context::Reply,
    error::{ApiError, ErrorCode},
    routes, App,
};
use op_proto::v1::{
    tenant_worker_server::{TenantWorker, TenantWorkerServer},
    Envelope, Header, HealthReply, HealthRequest, Reply as ProtoReply,
};
use std::{sync::Arc, time::Duration};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub struct WorkerService {
    app: Arc<App>,
}

/// Requests with no deadline still get one: nothing holds a pooled connection forever.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

fn remaining(deadline_unix_ms: u64) -> Duration {
    if deadline_unix_ms == 0 {
        return DEFAULT_DEADLINE;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(deadline_unix_ms.saturating_sub(now))
}

impl WorkerService {
    /// With `OP_WORKER_TOKEN` configured, a call must carry the current or the previous
    /// token in its metadata; anything else is refused before it is read.
    fn check_token<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(tokens) = &self.app.config.worker_tokens else {
            return Ok(());
        };
        let presented = request
            .metadata()
            .get(op_control::worker_token::METADATA)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if tokens.accepts(presented) {
            Ok(())
        } else {
            tracing::warn!("refused a gRPC call without a valid OP_WORKER_TOKEN");
            Err(Status::unauthenticated("worker token refused"))
        }
    }
}

/// A principal's kind as log lines show it: `admin`, `scoped`, … (not `Some(PrincipalAdmin)`).
fn principal_name(kind: op_proto::v1::PrincipalKind) -> &'static str {
    use op_proto::v1::PrincipalKind as K;
    match kind {
        K::PrincipalAnonymous => "anonymous",
        K::PrincipalAdmin => "admin",
        K::PrincipalScoped => "scoped",
        K::PrincipalPartner => "partner",
        K::PrincipalPlatform => "platform",
    }
}

#[tonic::async_trait]
impl TenantWorker for WorkerService {
    async fn handle(&self, request: Request<Envelope>) -> Result<Response<ProtoReply>, Status> {
        self.check_token(&request)?;
        let env = request.into_inner();
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "request",
            request_id = %env.request_id,
            tenant = env.tenant.as_ref().map(|t| t.slug.as_str()),
            tenant_id = %env.tenant.as_ref().map_or("", |t| t.id.as_str()),
            principal = env.principal.as_ref().map(|p| principal_name(p.kind())),
            method = %env.method,
            route = tracing::field::Empty,
        );
        trace_parent(&span, &env);
        let budget = remaining(env.deadline_unix_ms);
        let app = self.app.clone();
        // A task of its own: a panic in a handler becomes a 500 for this request only.
        let task = tokio::spawn(routes::dispatch(app, env).instrument(span.clone()));
        let (reply, route) = match tokio::time::timeout(budget, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(join)) => {
                span.in_scope(|| tracing::error!(error = %join, "handler panicked"));
                (ApiError::internal().into(), None)
            }
            Err(_) => (
                ApiError::new(504, ErrorCode::Timeout, "the request took too long").into(),
                None,
            ),
        };
        if reply.status >= 500 {
            span.in_scope(|| tracing::warn!(status = reply.status, "server error"));
        }
        span.in_scope(|| {
            tracing::info!(
                status = reply.status,
                route = route.unwrap_or("unmatched"),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            )
        });
        trace_finish(&span, route, reply.status);
        let mut proto = to_proto(reply);
        proto.route = route.unwrap_or_default().to_string();
        Ok(Response::new(proto))
    }

    async fn health(
        &self,
        request: Request<HealthRequest>,
    ) -> Result<Response<HealthReply>, Status> {
        self.check_token(&request)?;
        // Draining is said at once, without waiting for a pooled connection.
        if self.app.drain.is_draining() {
            return Ok(Response::new(HealthReply {
                ok: false,
                database_ok: false, // not checked
                worker_id: self.app.config.worker_id.clone(),
                draining: true,
            }));
        }
        let database_ok = match self.app.pool.get().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        };
        let draining = self.app.drain.is_draining();
        Ok(Response::new(HealthReply {
            ok: !draining,
            database_ok,
            worker_id: self.app.config.worker_id.clone(),
            draining,
        }))
    }
}

/// With traces exported, the request's span is the child of the gateway's (the envelope's
/// trace context; deploy/CONFIG.md, "Traces"). Attributes, not span fields: the JSON log
/// lines stay as they are.
fn trace_parent(span: &tracing::Span, env: &Envelope) {
    if !op_control::traces::enabled() {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(cx) = op_control::traces::extract(&env.traceparent, &env.tracestate) {
        let _ = span.set_parent(cx);
    }
    span.set_attribute("http.request.method", env.method.clone());
}

fn trace_finish(span: &tracing::Span, route: Option<&str>, status: u16) {
    if !op_control::traces::enabled() {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.set_attribute("http.route", route.unwrap_or("unmatched").to_string());
    span.set_attribute("http.response.status_code", i64::from(status));
}

fn to_proto(r: Reply) -> ProtoReply {
    ProtoReply {
        status: r.status as u32,
        headers: r
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body: r.body,
        invalidate_tenant_slugs: r.invalidate_tenant_slugs,
        invalidate_key_ids: r.invalidate_key_ids,
        invalidate_session_ids: r.invalidate_session_ids,
        route: String::new(),
    }
}

/// The worker's bound gRPC listener (`OP_WORKER_LISTEN`).
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    pub async fn bind(listen: &Listen) -> anyhow::Result<Listener> {
        Ok(match listen {
            Listen::Tcp(addr) => Listener::Tcp(tokio::net::TcpListener::bind(addr).await?),
            Listen::Unix(path) => {
                // A socket left by a previous run of this worker (a killed process does not
                // unlink it) would make bind fail; anything else at the path is not ours.
                use std::os::unix::fs::FileTypeExt;
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                    std::fs::remove_file(path)?;
                }
                Listener::Unix(tokio::net::UnixListener::bind(path)?)
            }
        })
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: Listener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let svc = TenantWorkerServer::new(WorkerService { app })
        .max_decoding_message_size(512 * 1024 * 1024)
        .max_encoding_message_size(512 * 1024 * 1024);
    let server = tonic::transport::Server::builder().add_service(svc);
    match listener {
        Listener::Tcp(listener) => {
            // `Server::tcp_nodelay` only applies to listeners tonic binds itself; ours needs
            // it on the incoming stream, or Nagle holds a reply's last frames until the
            // gateway's delayed ACK (40 ms).
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        Listener::Unix(listener) => {
            let incoming = futures::stream::unfold(listener, |l| async move {
                Some((l.accept().await.map(|(stream, _)| stream), l))
            });
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    Ok(())
}
