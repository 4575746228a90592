//! The request pipeline, composed in one place:
//! request id → classify path → resolve tenant → authenticate → read body (limited) →
//! forward to a worker → apply cache invalidations → answer.

use crate::{
    auth,
    config::Mode,
    request_id,
    tenancy::{classify, Target},
    workers::ForwardError,
    State,
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use op_control::{keys::secrets_equal, tenants::Tenant};
use op_proto::v1::{Envelope, Header, Principal, Surface};
use serde_json::json;
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

type Body = Full<Bytes>;

/// Request headers a worker may need; everything else (cookies aside, later) stays here.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "idempotency-key",
    "user-agent",
    "referer",
    "origin",
    "accept",
    "accept-language",
];

/// Accepts connections (HTTP/1.1 and HTTP/2) until `shutdown`, then drains them.
pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    state.workers.spawn_health_checks();
    crate::invalidation::spawn(state.clone());
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // e.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let svc = hyper::service::service_fn(move |req| handle(state.clone(), peer, req));
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("gateway draining connections");
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, code: &str, detail: &str) -> Response<Body> {
    json_response(status, json!({ "error": code, "detail": detail }))
}

fn unauthorized() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid credentials",
    )
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let rid = request_id::choose(req.headers().get("x-request-id").map(|v| v.as_bytes()));
    let mut resp = route(&state, peer, req, &rid).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

async fn route(
    state: &State,
    peer: SocketAddr,
    req: Request<Incoming>,
    rid: &str,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let (surface, slug, route_path) = match classify(state.config.mode, &path) {
        Target::Health => {
            return json_response(
                StatusCode::OK,
                json!({"ok": true, "service": "gateway", "mode": state.config.mode.as_str()}),
            )
        }
        Target::Ready => return ready(state).await,
        Target::NotFound => return error(StatusCode::NOT_FOUND, "not_found", "no such route"),
        Target::SlugMissing => {
            return error(
                StatusCode::BAD_REQUEST,
                "tenant_slug_missing",
                "this is a multi-tenant install: put /t/<your-slug> after /api, e.g. /api/t/acme/partners",
            )
        }
        Target::Platform(p) => (Surface::Platform, None, p.to_string()),
        Target::Api { slug, route } => (Surface::Api, slug.map(str::to_string), route.to_string()),
        Target::Router { slug, route } => (Surface::Router, slug.map(str::to_string), route.to_string()),
    };

    // Tenant and principal.
    let (tenant, principal) = if surface == Surface::Platform {
        let ok = match (
            &state.config.platform_key,
            auth::bearer(header_bytes(&req, header::AUTHORIZATION)),
        ) {
            (Some(want), Some(Ok(got))) => secrets_equal(want, got),
            _ => false,
        };
        if !ok {
            return unauthorized();
        }
        (None, auth::platform_principal())
    } else {
        let tenant = match resolve_tenant(state, slug.as_deref()).await {
            Ok(t) => t,
            Err(resp) => return resp,
        };
        let principal = if surface == Surface::Router {
            Principal::default()
        } else {
            match authenticate(state, &req, &tenant).await {
                Ok(p) => p,
                Err(resp) => return resp,
            }
        };
        (Some(tenant), principal)
    };

    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: Vec<Header> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            let v = req.headers().get(*name)?.to_str().ok()?;
            Some(Header {
                name: (*name).to_string(),
                value: v.to_string(),
            })
        })
        .collect();
    let body = match read_body(req, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };

    let timeout = state.config.request_timeout;
    let deadline = std::time::SystemTime::now() + timeout;
    let affinity = tenant
        .as_ref()
        .map_or("platform".to_string(), |t| t.id.clone());
    let env = Envelope {
        request_id: rid.to_string(),
        surface: surface as i32,
        tenant: tenant.as_ref().map(|t| op_proto::v1::Tenant {
            id: t.id.clone(),
            slug: t.slug.clone(),
        }),
        principal: Some(principal),
        method,
        path: route_path,
        query,
        headers,
        body: body.to_vec(),
        deadline_unix_ms: deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        client_ip: peer.ip().to_string(),
    };
    match state.workers.forward(&affinity, env, timeout).await {
        Ok(reply) => {
            for slug in &reply.invalidate_tenant_slugs {
                state.tenants.invalidate(slug);
            }
            for id in &reply.invalidate_key_ids {
                state.keys.invalidate(id);
            }
            let status =
                StatusCode::from_u16(reply.status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
            *resp.status_mut() = status;
            for h in reply.headers {
                if let (Ok(n), Ok(v)) = (
                    header::HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_str(&h.value),
                ) {
                    resp.headers_mut().append(n, v);
                }
            }
            resp
        }
        Err(ForwardError::Timeout) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the request took too long",
        ),
        Err(ForwardError::NoWorker) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no worker is available; retry shortly",
        ),
        Err(ForwardError::Failed(status)) => {
            tracing::error!(request_id = rid, error = %status, "worker call failed");
            error(StatusCode::BAD_GATEWAY, "bad_gateway", "the worker failed while serving this request; retry it (with an Idempotency-Key for writes)")
        }
    }
}

fn header_bytes<B>(req: &Request<B>, name: header::HeaderName) -> Option<&[u8]> {
    req.headers().get(name).map(|v| v.as_bytes())
}

async fn resolve_tenant(state: &State, slug: Option<&str>) -> Result<Tenant, Response<Body>> {
    let tenant = match (state.config.mode, slug) {
        (Mode::Single, _) => state.single_tenant.clone(),
        (Mode::Multi, Some(slug)) => {
            state
                .tenants
                .resolve(&state.pool, slug)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "tenant lookup failed");
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "control plane unavailable; retry shortly",
                    )
                })?
        }
        (Mode::Multi, None) => None,
    };
    let tenant = tenant.ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            "no tenant with this slug",
        )
    })?;
    if !tenant.is_active() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "this tenant is suspended",
        ));
    }
    Ok(tenant)
}

async fn authenticate(
    state: &State,
    req: &Request<Incoming>,
    tenant: &Tenant,
) -> Result<Principal, Response<Body>> {
    let token = match auth::bearer(header_bytes(req, header::AUTHORIZATION)) {
        None => return Ok(Principal::default()),
        Some(Err(_)) => return Err(unauthorized()),
        Some(Ok(t)) => t,
    };
    if state.config.mode == Mode::Single {
        if let Some(admin) = &state.config.admin_api_key {
            if secrets_equal(admin, token) {
                return Ok(auth::admin_principal());
            }
        }
    }
    match state.keys.find(&state.pool, token).await {
        Ok(Some(rec)) => auth::principal_for(&rec, &tenant.id).map_err(|_| unauthorized()),
        Ok(None) => Err(unauthorized()),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "control plane unavailable; retry shortly",
            ))
        }
    }
}

async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the body is larger than {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the request body could not be read",
        )),
    }
}

async fn ready(state: &State) -> Response<Body> {
    let db_ok = match state.pool.get().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let workers = state.workers.healthy_count();
    let ok = db_ok && workers > 0;
    json_response(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        json!({"ok": ok, "database": db_ok, "workers": workers}),
    )
}
