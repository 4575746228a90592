//! The request pipeline, composed in one place:
//! request id → classify path → a declared body over the limit? `413` → one function per
//! surface (resolve tenant → authenticate → limit) → read body (limited) → forward to a
//! worker → apply cache invalidations → answer. Every answer given without reading the
//! body (a refusal, a service endpoint) reads it and throws it away first, within bounds
//! ([`discard`]), in [`route`] alone.

use crate::{
    auth,
    edge_error::{json_response, Body, EdgeError},
    limits::Decision,
    origin, request_id, tenancy,
    tenancy::{classify, Target},
    State,
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use op_control::{tenants::Tenant, Mode};
use op_proto::v1::{Envelope, Header, Principal, Surface};
use serde_json::json;
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tracing::Instrument;

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
    state.workers.spawn_discovery(state.pool.clone());
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
    tracing::info!(
        drain_secs = state.config.drain.as_secs(),
        "SIGTERM: gateway stopped accepting, finishing the requests in flight"
    );
    if tokio::time::timeout(state.config.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain bound reached with requests in flight");
    }
    tracing::info!("drained; exiting");
    Ok(())
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let rid = request_id::choose(req.headers().get("x-request-id").map(|v| v.as_bytes()));
    let started = std::time::Instant::now();
    // Owned: the target borrows the path while the surface consumes the request.
    let path = req.uri().path().to_string();
    let target = classify(state.config.mode, &path);
    let origin = req.headers().get(header::ORIGIN).cloned();
    let method = req.method().clone();
    let span = crate::traces::request_span(&method, req.headers());
    let mut resp = route(&state, peer, req, &rid, &target)
        .instrument(span.clone())
        .await;
    crate::edge_error::readable_cross_origin(&mut resp, origin);
    let elapsed = started.elapsed();
    state
        .metrics
        .observe(&target, resp.status().as_u16(), elapsed);
    let facts = resp.extensions_mut().remove::<Forwarded>();
    let pattern = route_pattern(state.config.mode, &target, facts.as_ref());
    crate::traces::finish(&span, &method, &pattern, resp.status().as_u16());
    tracing::info!(
        request_id = %rid,
        tenant = facts
            .as_ref()
            .and_then(|f| f.tenant.as_deref())
            .or(named_slug(&target)),
        route = pattern,
        method = %method,
        status = resp.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

/// The tenant slug the path names (`/api/t/<slug>/...`, `/r/<slug>/...`, `/t/<slug>/...`),
/// when well-formed: the log line carries it even when the request was refused before any
/// tenant was resolved (a `401`, a `413`, an unknown tenant).
fn named_slug<'a>(target: &Target<'a>) -> Option<&'a str> {
    match *target {
        Target::Api { slug, .. } | Target::Router { slug, .. } | Target::Portal { slug, .. } => {
            slug.filter(|s| op_control::tenants::valid_slug(s))
        }
        _ => None,
    }
}

/// What a forwarded request's log line needs to know from its answer.
#[derive(Clone)]
struct Forwarded {
    /// The resolved tenant's slug (never an unresolved path segment).
    tenant: Option<String>,
    /// The worker's route pattern (tenant-relative), when a route matched.
    route: Option<String>,
}

/// The route pattern logged for a request: the public prefix and the worker's pattern
/// (`/api/t/:slug/partners/:id`), or the class of path when no worker route matched. Never
/// the raw path: ids, link keys and tokens in paths stay out of the logs.
fn route_pattern(mode: Mode, target: &Target<'_>, facts: Option<&Forwarded>) -> String {
    let pattern = facts.and_then(|f| f.route.as_deref());
    let prefixed = |prefix: &str| match pattern {
        Some(p) => format!("{prefix}{p}"),
        None => format!("{prefix}/*"),
    };
    match target {
        Target::Health => "/health".into(),
        Target::Ready => "/ready".into(),
        Target::Metrics => "/metrics".into(),
        Target::OpenApi => "/openapi.json".into(),
        Target::NotFound => "unmatched".into(),
        Target::SlugMissing => "/api/*".into(),
        Target::Platform(_) => match pattern {
            Some(p) => p.to_string(),
            None => "/platform/*".into(),
        },
        Target::Api { .. } => match mode {
            Mode::Multi => prefixed("/api/t/:slug"),
            Mode::Single => prefixed("/api"),
        },
        Target::Router { slug, .. } => match (mode, slug) {
            (Mode::Multi, _) | (_, Some(_)) => prefixed("/r/:slug"),
            _ => prefixed("/r"),
        },
        // The portal's paths are the app's own (deep links may carry ids): its class only.
        Target::Portal { .. } => match mode {
            Mode::Multi => "/t/:slug/*".into(),
            Mode::Single => "/*".into(),
        },
    }
}

async fn route(
    state: &State,
    peer: SocketAddr,
    req: Request<Incoming>,
    rid: &str,
    target: &Target<'_>,
) -> Response<Body> {
    let client_ip = state.limits.client_ip(
        peer.ip(),
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
    );
    // The head goes to the surface; the body waits here until `forward` takes it.
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, ());
    let mut body = Some(body);
    let max = state.config.max_body_bytes;
    let service = matches!(target, Target::Health | Target::Ready | Target::Metrics);
    let answer = if declared_length(req.headers()).is_some_and(|n| n > max as u64) {
        // The size declared is checked first, on every path, before anything else.
        Err(EdgeError::PayloadTooLarge { max })
    } else if service && req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        Err(EdgeError::MethodNotAllowed)
    } else {
        let body = &mut body;
        match *target {
            Target::Health => Ok(health(state)),
            Target::Ready => Ok(ready(state).await),
            Target::Metrics => metrics(state, &req).await,
            Target::NotFound => Err(EdgeError::NotFound),
            Target::SlugMissing => Err(EdgeError::TenantSlugMissing),
            Target::OpenApi => openapi(state, &req, body, rid, client_ip).await,
            Target::Platform(path) => platform(state, &req, body, rid, client_ip, path).await,
            Target::Api { slug, route } => {
                tenant_api(state, &req, body, rid, client_ip, slug, route).await
            }
            Target::Router { slug, route } => {
                // A country header is believed only from a trusted proxy (reporting.md).
                let country = match state.limits.is_trusted(peer.ip()) {
                    true => country(&state.config.country_headers, req.headers()),
                    false => None,
                };
                click_router(state, &req, body, rid, client_ip, country, slug, route).await
            }
            Target::Portal { slug, path } => portal(state, &req, slug, path).await,
        }
    };
    let mut resp = answer.unwrap_or_else(EdgeError::into_response);
    // Answered without reading the body (a refusal, a service endpoint). HTTP/1.1: read it
    // now and throw it away, so a client that sends its whole body before reading gets the
    // answer rather than a broken pipe or a reset. HTTP/2 answers at once: dropping the body
    // ends just its stream (RST_STREAM NO_ERROR, "stop sending"), the connection goes on.
    if let Some(body) = body.filter(|_| req.version() < http::Version::HTTP_2) {
        let drained = discard(req.headers(), body, max).await;
        let refused_size = resp.status() == StatusCode::PAYLOAD_TOO_LARGE;
        if !drained || refused_size {
            // A connection whose body was not read to its end cannot go on, and the answer
            // says so (a 413 always ends it).
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !drained {
            tracing::debug!(
                request_id = rid,
                "body not read to its end before the answer"
            );
        }
    }
    resp
}

fn health(state: &State) -> Response<Body> {
    json_response(
        StatusCode::OK,
        json!({"ok": true, "service": "gateway", "mode": state.config.mode.as_str()}),
    )
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

async fn metrics(state: &State, req: &Request<()>) -> Result<Response<Body>, EdgeError> {
    if !auth::may_scrape(state, req.headers()) {
        return Err(EdgeError::Unauthorized);
    }
    let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render(state).await)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}

/// `/openapi.json`: the API's description, public (any worker writes it from its route
/// table); rate-limited per address like any anonymous call.
async fn openapi(
    state: &State,
    req: &Request<()>,
    body: &mut Unread,
    rid: &str,
    client_ip: IpAddr,
) -> Result<Response<Body>, EdgeError> {
    let rate = allow(state.limits.check_ip(client_ip))?;
    let server = servers(state, req, None);
    let call = Call {
        surface: Surface::Platform,
        tenant: None,
        principal: Principal::default(),
        route: "/openapi.json",
        client_ip,
        server: Some(server),
        portal: None,
        country: None,
    };
    Ok(forward(state, req, body, rid, call, rate).await)
}

/// Where the API lives, for an OpenAPI document's `servers`: `<origin>|<api base>|<router
/// base>`, the origin [`origin::public_origin`] (left out when the request's `Host` is not a
/// plain host name); the bases with the tenant's slug, or `{slug}` for the whole API.
fn servers(state: &State, req: &Request<()>, slug: Option<&str>) -> String {
    let origin = origin::public_origin(state, req.headers(), req.uri()).unwrap_or_default();
    match state.config.mode {
        Mode::Single => format!("{origin}|/api|/r"),
        Mode::Multi => {
            let slug = slug.unwrap_or("{slug}");
            format!("{origin}|/api/t/{slug}|/r/{slug}")
        }
    }
}

/// Where the tenant's portal lives, as an absolute URL without the trailing slash
/// (`https://host/t/acme`, `https://host` self-hosted): the worker builds magic links on it.
fn portal_base(state: &State, req: &Request<()>, slug: &str) -> Option<String> {
    let origin = origin::public_origin(state, req.headers(), req.uri())?;
    Some(match state.config.mode {
        Mode::Single => origin,
        Mode::Multi => format!("{origin}/t/{slug}"),
    })
}

/// The portal's files and pages (`portal`): a tenant's at `/t/<slug>/` (the tenant must
/// exist and be active), the one tenant's at `/` self-hosted. Without `OP_PORTAL_DIR`,
/// there is no portal: `404`.
async fn portal(
    state: &State,
    req: &Request<()>,
    slug: Option<&str>,
    path: Option<&str>,
) -> Result<Response<Body>, EdgeError> {
    let dir = state
        .config
        .portal_dir
        .as_ref()
        .ok_or(EdgeError::NotFound)?;
    let tenant = tenancy::resolve_tenant(state, slug).await?;
    let base = match state.config.mode {
        Mode::Single => "/".to_string(),
        Mode::Multi => format!("/t/{}/", tenant.slug),
    };
    let Some(path) = path else {
        return Ok(crate::portal::redirect_to(&base));
    };
    crate::portal::serve(dir, req.method(), req.headers(), &base, path).await
}

/// `/platform/*`: the operator's API, not about any one tenant; the full path is the route.
async fn platform(
    state: &State,
    req: &Request<()>,
    body: &mut Unread,
    rid: &str,
    client_ip: IpAddr,
    path: &str,
) -> Result<Response<Body>, EdgeError> {
    let principal = auth::authenticate_platform(state, req.headers(), client_ip)?;
    // The worker set is this gateway's own: answered here, not by a worker.
    if path == "/platform/workers" && req.method() == http::Method::GET {
        let workers: Vec<_> = state.workers.members().iter().map(|w| w.view()).collect();
        let mut resp = json_response(StatusCode::OK, json!({ "workers": workers }));
        resp.extensions_mut().insert(Forwarded {
            tenant: None,
            route: Some("/platform/workers".into()),
        });
        return Ok(resp);
    }
    let call = Call {
        surface: Surface::Platform,
        tenant: None,
        principal,
        route: path,
        client_ip,
        server: None,
        portal: None,
        country: None,
    };
    Ok(forward(state, req, body, rid, call, None).await)
}

/// `/api/...`: one tenant's API, as whoever the credentials say (anonymous without any).
async fn tenant_api(
    state: &State,
    req: &Request<()>,
    body: &mut Unread,
    rid: &str,
    client_ip: IpAddr,
    slug: Option<&str>,
    route: &str,
) -> Result<Response<Body>, EdgeError> {
    let tenant = tenancy::resolve_tenant(state, slug).await?;
    origin::guard(state, req.method(), req.headers(), req.uri(), route)?;
    let (principal, credential) =
        auth::authenticate(state, req.headers(), &tenant, client_ip).await?;
    let rate = match &credential {
        Some(c) => state.limits.check_credential(c),
        None => state.limits.check_ip(client_ip),
    };
    let rate = allow(rate)?;
    let server = (route == "/openapi.json").then(|| servers(state, req, Some(&tenant.slug)));
    let portal = portal_base(state, req, &tenant.slug);
    let call = Call {
        surface: Surface::Api,
        tenant: Some(tenant),
        principal,
        route,
        client_ip,
        server,
        portal,
        country: None,
    };
    Ok(forward(state, req, body, rid, call, rate).await)
}

/// `/r/...`: a click. Anonymous, with a per-IP cap of its own checked before the tenant
/// lookup, so a flood costs nothing further.
#[allow(clippy::too_many_arguments)]
async fn click_router(
    state: &State,
    req: &Request<()>,
    body: &mut Unread,
    rid: &str,
    client_ip: IpAddr,
    country: Option<String>,
    slug: Option<&str>,
    route: &str,
) -> Result<Response<Body>, EdgeError> {
    let rate = allow(state.limits.check_click_ip(client_ip))?;
    let tenant = tenancy::resolve_tenant(state, slug).await?;
    let call = Call {
        surface: Surface::Router,
        tenant: Some(tenant),
        principal: Principal::default(),
        route,
        client_ip,
        server: None,
        portal: None,
        country,
    };
    Ok(forward(state, req, body, rid, call, rate).await)
}

/// Passes an allowed (or absent) rate decision on, refuses an exhausted one.
fn allow(decision: Option<Decision>) -> Result<Option<Decision>, EdgeError> {
    match decision {
        Some(d) if !d.allowed => Err(EdgeError::RateLimited(d)),
        d => Ok(d),
    }
}

/// What the surface decided about a request, for the envelope.
struct Call<'a> {
    surface: Surface,
    tenant: Option<Tenant>,
    principal: Principal,
    /// Tenant-relative for tenant surfaces, the full path for the platform.
    route: &'a str,
    client_ip: IpAddr,
    /// For the OpenAPI document: where the API lives ([`servers`]).
    server: Option<String>,
    /// For magic links: where the tenant's portal lives ([`portal_base`]).
    portal: Option<String>,
    /// The click router: the visitor's country from a trusted proxy's header.
    country: Option<String>,
}

/// A request's body not read yet: [`forward`] takes it; left here, [`route`] reads it to
/// its end (within bounds) and throws it away after the answer.
type Unread = Option<Incoming>;

/// Reads the body, hands the envelope to a worker and relays its reply. `rate`, when a
/// bucket was consulted, is advertised on the answer (worker reply or forwarding error).
async fn forward(
    state: &State,
    req: &Request<()>,
    body: &mut Unread,
    rid: &str,
    call: Call<'_>,
    rate: Option<Decision>,
) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut headers: Vec<Header> = FORWARDED_HEADERS
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
    if let Some(server) = call.server {
        headers.push(Header {
            name: "x-op-server".into(),
            value: server,
        });
    }
    if let Some(portal) = call.portal {
        headers.push(Header {
            name: "x-op-portal".into(),
            value: portal,
        });
    }
    if let Some(country) = call.country {
        headers.push(Header {
            name: "x-op-country".into(),
            value: country,
        });
    }
    let trace = crate::traces::carrier(req.headers());
    let http1 = req.version() < http::Version::HTTP_2;
    let max = state.config.max_body_bytes;
    let Some(body) = body.take() else {
        return EdgeError::InvalidBody.into_response();
    };
    let body = match read_body(body, max, http1).await {
        Ok(b) => b,
        Err(BodyRefusal::Unreadable) => return EdgeError::InvalidBody.into_response(),
        Err(BodyRefusal::TooLarge { drained }) => {
            let mut r = EdgeError::PayloadTooLarge { max }.into_response();
            // HTTP/1.1: the connection ends with the 413 (one whose body was not read to
            // its end cannot go on), and the answer says so. HTTP/2 ends just the stream.
            if http1 {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            tracing::debug!(request_id = rid, drained, "body over the limit refused");
            return r;
        }
    };

    let timeout = state.config.request_timeout;
    let deadline = std::time::SystemTime::now() + timeout;
    let affinity = call
        .tenant
        .as_ref()
        .map_or("platform".to_string(), |t| t.id.clone());
    let env = Envelope {
        request_id: rid.to_string(),
        surface: call.surface as i32,
        tenant: call.tenant.as_ref().map(|t| op_proto::v1::Tenant {
            id: t.id.clone(),
            slug: t.slug.clone(),
        }),
        principal: Some(call.principal),
        method,
        path: call.route.to_string(),
        query,
        headers,
        body: body.to_vec(),
        deadline_unix_ms: deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        client_ip: call.client_ip.to_string(),
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
    };
    let tenant = call.tenant.as_ref().map(|t| t.slug.clone());
    let mut resp = match state.workers.forward(&affinity, env, timeout).await {
        Ok(mut reply) => {
            let route = Some(std::mem::take(&mut reply.route)).filter(|r| !r.is_empty());
            let mut resp = relay(state, reply);
            resp.extensions_mut().insert(Forwarded { tenant, route });
            resp
        }
        Err(e) => {
            if let crate::workers::ForwardError::Failed(status) = &e {
                tracing::error!(request_id = rid, error = %status, "worker call failed");
            }
            let mut resp = EdgeError::from(e).into_response();
            resp.extensions_mut().insert(Forwarded {
                tenant,
                route: None,
            });
            resp
        }
    };
    if let Some(d) = &rate {
        d.write_headers(resp.headers_mut());
    }
    resp
}

/// The worker's reply as the HTTP answer, after dropping the cache entries it made stale.
fn relay(state: &State, reply: op_proto::v1::Reply) -> Response<Body> {
    for slug in &reply.invalidate_tenant_slugs {
        state.tenants.invalidate(slug);
    }
    for id in &reply.invalidate_key_ids {
        state.keys.invalidate(id);
    }
    for id in &reply.invalidate_session_ids {
        state.session_rows.invalidate(id);
    }
    let status = StatusCode::from_u16(reply.status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
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

/// An oversized body is still read, and thrown away, for up to this many bytes past the
/// limit (and [`DRAIN_FOR`]) before the `413`: clients that send the whole body before
/// reading the answer (Python's urllib and requests, Node's fetch) otherwise meet a closed
/// socket (a broken pipe or a reset) instead of the `413`. Beyond it the gateway answers
/// and closes at once.
const DRAIN_PAST_LIMIT: u64 = 8 * 1024 * 1024;
/// How long an oversized body is read and thrown away, at most, before the `413`.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// Why a body was not read.
enum BodyRefusal {
    /// Over the limit. `drained`: the body was read to its end, so the answer reaches a
    /// client still sending; otherwise the connection is closed under it.
    TooLarge {
        drained: bool,
    },
    Unreadable,
}

/// The `Content-Length` the client declared, if any.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body, whole, if it is at most `max` bytes (a larger declared `Content-Length` is
/// refused by [`route`] before this). Over HTTP/1.1, a larger one found while reading
/// (chunked) is read to its end and thrown away when that end is near
/// ([`DRAIN_PAST_LIMIT`], [`DRAIN_FOR`]), so the `413` can be read by a client that sends
/// everything first; HTTP/2 ends just the stream.
async fn read_body(mut body: Incoming, max: usize, http1: bool) -> Result<Bytes, BodyRefusal> {
    let bound = (max as u64).saturating_add(DRAIN_PAST_LIMIT);
    match Limited::new(&mut body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            // More than `max` bytes are read already.
            let drained = http1 && drain(&mut body, bound - max as u64).await;
            Err(BodyRefusal::TooLarge { drained })
        }
        Err(_) => Err(BodyRefusal::Unreadable),
    }
}

/// Reads a body nobody will use to its end and drops it, when that end is near: up to
/// `max` + [`DRAIN_PAST_LIMIT`] bytes and for [`DRAIN_FOR`]. True when it was read to its
/// end (or had none). A declared `Content-Length` past that bound is not read at all, nor
/// is the body of a client that sent `Expect: 100-continue` (it has not sent it yet, and
/// never will once it has the answer).
async fn discard(headers: &http::HeaderMap, mut body: Incoming, max: usize) -> bool {
    if body.is_end_stream() {
        return true;
    }
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let bound = (max as u64).saturating_add(DRAIN_PAST_LIMIT);
    if waits_for_continue || declared_length(headers).is_some_and(|n| n > bound) {
        return false;
    }
    drain(&mut body, bound).await
}

/// Reads what is left of `body` and drops it, up to `budget` bytes and [`DRAIN_FOR`].
/// True when the body ended within both.
async fn drain(body: &mut Incoming, mut budget: u64) -> bool {
    let deadline = tokio::time::Instant::now() + DRAIN_FOR;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > budget {
                    return false;
                }
                budget -= n;
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// The first present of `names` with a two-letter value, upper-cased (ISO 3166-1 alpha-2);
/// anything else (`XX`-style placeholders pass, `T1` or `""` do not) is no country.
fn country(names: &[String], headers: &http::HeaderMap) -> Option<String> {
    let v = names.iter().find_map(|n| headers.get(n.as_str()))?;
    let v = v.to_str().ok()?.trim();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic())).then(|| v.to_ascii_uppercase())
}
