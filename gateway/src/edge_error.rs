//! Every answer the gateway gives on its own, without a worker: one variant per refusal,
//! mapped once to status + `{error, detail}` (+ the headers that go with it) in
//! [`EdgeError::into_response`]. The codes are the shared [`ErrorCode`] list, so the edge
//! and the workers speak the same closed vocabulary.

use crate::limits::Decision;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use op_control::ErrorCode;
use serde_json::json;

pub type Body = Full<Bytes>;

/// A JSON answer written by the gateway itself (errors, health, readiness).
pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Why the gateway answered instead of a worker. The `Display` text is the `detail`.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("no such route")]
    NotFound,
    #[error(
        "this is a multi-tenant install: put /t/<your-slug> after /api, e.g. /api/t/acme/partners"
    )]
    TenantSlugMissing,
    #[error("no tenant with this slug")]
    TenantNotFound,
    #[error("this tenant is suspended")]
    TenantSuspended,
    /// Missing, malformed, forged, expired or foreign-tenant credentials: all look alike.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A bucket is empty; the decision carries the `RateLimit` headers and `Retry-After`.
    #[error("too many requests; slow down and retry after the Retry-After delay")]
    RateLimited(Decision),
    /// This address failed authentication too often and is refused before any lookup.
    #[error("too many failed attempts from this address; retry after the Retry-After delay")]
    Blocked { retry_after_secs: u64 },
    #[error("the body is larger than {max} bytes")]
    PayloadTooLarge { max: usize },
    #[error("the request body could not be read")]
    InvalidBody,
    /// The tenant or key lookup failed (the database is down or the pool exhausted).
    #[error("control plane unavailable; retry shortly")]
    ControlPlaneUnavailable,
    /// A cookie-authenticated write whose `Origin` (or `Sec-Fetch-Site`) names another site.
    #[error("a request with a session cookie must come from this service's own origin; call the API with a bearer key from elsewhere")]
    CrossSiteRequest,
    #[error("this path accepts only GET and HEAD")]
    MethodNotAllowed,
    /// `OP_PORTAL_DIR` is set but holds no `index.html`.
    #[error("the portal's files are missing (OP_PORTAL_DIR has no index.html): build it with `npm run build` in portal/")]
    PortalNotBuilt,
    #[error("the request took too long")]
    Timeout,
    #[error("no worker is available; retry shortly")]
    NoWorker,
    /// The worker's transport failed mid-request; the request may or may not have run.
    #[error("the worker failed while serving this request; retry it (with an Idempotency-Key for writes)")]
    WorkerFailed,
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::NotFound | EdgeError::TenantNotFound => StatusCode::NOT_FOUND,
            EdgeError::TenantSlugMissing | EdgeError::InvalidBody => StatusCode::BAD_REQUEST,
            EdgeError::TenantSuspended | EdgeError::CrossSiteRequest => StatusCode::FORBIDDEN,
            EdgeError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            EdgeError::Unauthorized => StatusCode::UNAUTHORIZED,
            EdgeError::RateLimited(_) | EdgeError::Blocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            EdgeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::ControlPlaneUnavailable
            | EdgeError::NoWorker
            | EdgeError::PortalNotBuilt => StatusCode::SERVICE_UNAVAILABLE,
            EdgeError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            EdgeError::WorkerFailed => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EdgeError::NotFound => ErrorCode::NotFound,
            EdgeError::TenantSlugMissing => ErrorCode::TenantSlugMissing,
            EdgeError::TenantNotFound => ErrorCode::TenantNotFound,
            EdgeError::TenantSuspended => ErrorCode::TenantSuspended,
            EdgeError::Unauthorized => ErrorCode::Unauthorized,
            EdgeError::RateLimited(_) | EdgeError::Blocked { .. } => ErrorCode::RateLimited,
            EdgeError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            EdgeError::InvalidBody => ErrorCode::InvalidBody,
            EdgeError::ControlPlaneUnavailable
            | EdgeError::NoWorker
            | EdgeError::PortalNotBuilt => ErrorCode::Unavailable,
            EdgeError::CrossSiteRequest => ErrorCode::CrossSiteRequest,
            EdgeError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            EdgeError::Timeout => ErrorCode::Timeout,
            EdgeError::WorkerFailed => ErrorCode::BadGateway,
        }
    }

    /// The one place a refusal becomes an HTTP answer.
    pub fn into_response(self) -> Response<Body> {
        let mut r = json_response(
            self.status(),
            json!({ "error": self.code().as_str(), "detail": self.to_string() }),
        );
        let retry_after = match &self {
            EdgeError::RateLimited(d) => {
                d.write_headers(r.headers_mut());
                Some(d.retry_after_secs)
            }
            EdgeError::Blocked { retry_after_secs } => Some(*retry_after_secs),
            EdgeError::MethodNotAllowed => {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                None
            }
            _ => None,
        };
        if let Some(secs) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r.extensions_mut().insert(EdgeAnswer);
        r
    }
}

/// Marks an answer the gateway gave itself (no worker wrote it): such an answer carries no
/// CORS headers of a tenant, see [`readable_cross_origin`].
#[derive(Clone, Copy)]
pub struct EdgeAnswer;

/// Lets a browser page read the gateway's own error answer to its cross-origin request (a
/// `429` from a merchant's page calling the public identify route, say) instead of seeing a
/// CORS failure: the requesting origin, without credentials, and the rate headers exposed.
/// Only error bodies are concerned; what a tenant's routes allow is the worker's to say.
pub fn readable_cross_origin(resp: &mut Response<Body>, origin: Option<HeaderValue>) {
    let Some(origin) = origin else { return };
    if resp.extensions().get::<EdgeAnswer>().is_none()
        || resp
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        return;
    }
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after, ratelimit, ratelimit-policy, x-request-id"),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

impl From<crate::workers::ForwardError> for EdgeError {
    fn from(e: crate::workers::ForwardError) -> EdgeError {
        use crate::workers::ForwardError;
        match e {
            ForwardError::Timeout => EdgeError::Timeout,
            // A refused token is the operator's to fix; the client sees "retry later".
            ForwardError::NoWorker | ForwardError::Refused => EdgeError::NoWorker,
            ForwardError::Failed(_) => EdgeError::WorkerFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response<Body>) -> String {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_body_is_error_and_detail() {
        let r = EdgeError::PayloadTooLarge { max: 10 }.into_response();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body(r).await,
            r#"{"detail":"the body is larger than 10 bytes","error":"payload_too_large"}"#
        );
    }

    #[tokio::test]
    async fn refusals_by_rate_say_when_to_retry() {
        let d = Decision {
            allowed: false,
            name: "per-ip",
            policy: "\"per-ip\";q=600;w=60".into(),
            remaining: 0,
            retry_after_secs: 7,
        };
        let r = EdgeError::RateLimited(d).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["ratelimit-policy"], "\"per-ip\";q=600;w=60");
        assert_eq!(r.headers()["ratelimit"], "\"per-ip\";r=0;t=7");
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");

        let r = EdgeError::Blocked {
            retry_after_secs: 3,
        }
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert!(r.headers().get("ratelimit").is_none());
    }
}
