//! The request pipeline, composed in one place:
//! request id → classify path → resolve tenant → authenticate → read body (limited) →
//! forward to a worker → apply cache invalidations → answer.

use crate::limits::Decision;
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
use op_control::{
    keys::secrets_equal,
    sessions::{cookie_value, COOKIE_NAME},
    tenants::Tenant,
};
use op_proto::v1::{Envelope, Header, Principal, Surface};
use serde_json::json;
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

type Body = Full<Bytes>;

/// Request headers a worker may need; everything else (credentials included) stays here.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "x-forwarded-proto",
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
    state.limits.spawn_housekeeping();
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
    let started = std::time::Instant::now();
    let path = req.uri().path();
    let surface = if path.starts_with("/api") {
        "api"
    } else if path.starts_with("/r/") {
        "router"
    } else if path.starts_with("/platform") {
        "platform"
    } else {
        "service"
    };
    let mut resp = route(&state, peer, req, &rid).await;
    state
        .metrics
        .observe(surface, resp.status().as_u16(), started.elapsed());
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
    let client_ip = state.limits.client_ip(
        peer.ip(),
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
    );
    let (surface, slug, route_path) = match classify(state.config.mode, &path) {
        Target::Health => {
            return json_response(
                StatusCode::OK,
                json!({"ok": true, "service": "gateway", "mode": state.config.mode.as_str()}),
            )
        }
        Target::Ready => return ready(state).await,
        Target::Metrics => {
            let allowed = match &state.config.metrics_token {
                None => true,
                Some(want) => matches!(auth::bearer(header_bytes(&req, header::AUTHORIZATION)), Some(Ok(got)) if secrets_equal(want, got)),
            };
            if !allowed {
                return unauthorized();
            }
            let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render(state).await)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            return r;
        }
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

    // The click router's per-IP cap, before the tenant lookup: a flood costs nothing further.
    let mut rate = None;
    if surface == Surface::Router {
        rate = state.limits.check_click_ip(client_ip);
        if let Some(d) = rate.as_ref().filter(|d| !d.allowed) {
            return too_many(d);
        }
    }

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
            return refuse(state, client_ip);
        }
        (None, auth::platform_principal())
    } else {
        let tenant = match resolve_tenant(state, slug.as_deref()).await {
            Ok(t) => t,
            Err(resp) => return resp,
        };
        let principal = if surface == Surface::Router {
            // Clicks are anonymous and have a limit of their own (the cap above).
            Principal::default()
        } else {
            let (principal, credential) = match authenticate(state, &req, &tenant, client_ip).await
            {
                Ok(p) => p,
                Err(resp) => return resp,
            };
            let decision = match &credential {
                Some(c) => state.limits.check_credential(c),
                None => state.limits.check_ip(client_ip),
            };
            if let Some(d) = &decision {
                if !d.allowed {
                    return too_many(d);
                }
            }
            rate = decision;
            principal
        };
        (Some(tenant), principal)
    };

    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: Vec<Header> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            // Lossy rather than dropped: a non-ASCII `Idempotency-Key` must reach the
            // worker (and be refused), not silently turn the request non-idempotent.
            let v = req.headers().get(*name)?.as_bytes();
            Some(Header {
                name: (*name).to_string(),
                value: String::from_utf8_lossy(v).into_owned(),
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
        client_ip: client_ip.to_string(),
    };
    let mut resp = match state.workers.forward(&affinity, env, timeout).await {
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
    };
    if let Some(d) = &rate {
        rate_headers(&mut resp, d);
    }
    resp
}

fn rate_headers(resp: &mut Response<Body>, d: &Decision) {
    let name = d.name;
    if let Ok(v) = HeaderValue::from_str(&d.policy) {
        resp.headers_mut().insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "\"{name}\";r={};t={}",
        d.remaining,
        d.retry_after_secs.max(if d.allowed { 0 } else { 1 })
    )) {
        resp.headers_mut().insert("ratelimit", v);
    }
}

fn too_many(d: &Decision) -> Response<Body> {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; slow down and retry after the Retry-After delay",
    );
    rate_headers(&mut r, d);
    if let Ok(v) = HeaderValue::from_str(&d.retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A failed authentication: `401`, or `429` once this address has failed too often.
fn refuse(state: &State, ip: std::net::IpAddr) -> Response<Body> {
    match state.limits.check_ip(ip) {
        Some(d) if !d.allowed => too_many(&d),
        _ => unauthorized(),
    }
}

fn blocked(secs: u64) -> Response<Body> {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed attempts from this address; retry after the Retry-After delay",
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
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

/// Who is calling: `(principal, credential id for rate limiting)`. Bearer wins over cookie.
/// Malformed, forged, expired and foreign-tenant credentials are refused here, without a
/// worker call and (except for well-formed unknown keys) without a database hit.
async fn authenticate(
    state: &State,
    req: &Request<Incoming>,
    tenant: &Tenant,
    ip: std::net::IpAddr,
) -> Result<(Principal, Option<String>), Response<Body>> {
    let bearer = auth::bearer(header_bytes(req, header::AUTHORIZATION));
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, COOKIE_NAME).map(str::to_string));
    if bearer.is_none() && cookie.is_none() {
        return Ok((Principal::default(), None));
    }
    if let Some(secs) = state.limits.blocked_for(ip) {
        return Err(blocked(secs));
    }
    let token = match bearer {
        Some(Ok(t)) => t,
        Some(Err(_)) => return Err(refuse(state, ip)),
        None => {
            let claims = state
                .sessions
                .as_ref()
                .and_then(|k| k.verify(cookie.as_deref().unwrap_or_default()))
                .filter(|c| c.tid == tenant.id);
            return match claims {
                Some(c) => Ok((
                    auth::session_principal(&c),
                    Some(format!("session:{}", c.sid)),
                )),
                None => Err(refuse(state, ip)),
            };
        }
    };
    if state.config.mode == Mode::Single {
        if let Some(admin) = &state.config.admin_api_key {
            if secrets_equal(admin, token) {
                return Ok((auth::admin_principal(), Some("admin-api-key".to_string())));
            }
        }
    }
    match state.keys.find(&state.pool, token).await {
        Ok(Some(rec)) => match auth::principal_for(&rec, &tenant.id) {
            Ok(p) => Ok((p, Some(format!("key:{}", rec.id)))),
            Err(_) => Err(refuse(state, ip)),
        },
        Ok(None) => Err(refuse(state, ip)),
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
