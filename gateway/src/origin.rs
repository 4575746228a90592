//! The service's own origin, and the cross-site guard of cookie-authenticated writes.
//!
//! The origin a request came to is `OP_PUBLIC_URL` when configured, else the request's
//! `Host` with `X-Forwarded-Proto` (`http` without it). It names where the API and the
//! portal live (the OpenAPI document's servers, magic links in mail).
//!
//! The guard (portal.md, pinned): a `POST`/`PUT`/`PATCH`/`DELETE` authenticated by the
//! `op_session` cookie — no `Authorization` header — whose `Origin` is not the service's own
//! origin, or which has no `Origin` but says `Sec-Fetch-Site: cross-site`, is refused with
//! `403 cross_site_request` before any credential is looked at. Bearer-key calls never
//! carry a browser's ambient credential, so they are not concerned, nor is the SDK's public
//! identify route (its CORS rules are the worker's). `SameSite=Lax` already keeps the
//! cookie off most cross-site writes; this closes the rest (same-site subdomains, older
//! browsers) without tokens in the app.

use crate::{edge_error::EdgeError, State};
use http::{header, HeaderMap, Method, Uri};
use op_control::sessions::{cookie_value, COOKIE_NAME};

/// `<scheme>://<host>` of the request as the client addressed it, from `Host` (or the
/// URI's authority, HTTP/2) and `X-Forwarded-Proto`; None when the host is not a plain
/// host name (nothing else is worth echoing into a document or a mail).
pub fn request_origin(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// The origin magic links and documents name: `OP_PUBLIC_URL`, else [`request_origin`].
pub fn public_origin(state: &State, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    state
        .config
        .public_url
        .clone()
        .or_else(|| request_origin(headers, uri))
}

/// The cross-site guard for a tenant API request (see the module doc). `route` is the
/// tenant-relative path.
pub fn guard(
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    route: &str,
) -> Result<(), EdgeError> {
    let writes = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !writes || route == "/attribution/identify" || headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let has_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|h| cookie_value(h, COOKIE_NAME).is_some());
    if !has_cookie {
        return Ok(());
    }
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            let own = request_origin(headers, uri).is_some_and(|o| o == origin)
                || state.config.public_url.as_deref() == Some(origin.as_str());
            if own {
                Ok(())
            } else {
                Err(EdgeError::CrossSiteRequest)
            }
        }
        None => {
            let cross = headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
            if cross {
                Err(EdgeError::CrossSiteRequest)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_origin_is_host_and_forwarded_scheme() {
        let uri: Uri = "/api/t/acme/partners".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(request_origin(&h, &uri), None);
        h.insert(
            header::HOST,
            HeaderValue::from_static("Partners.Example:8443"),
        );
        assert_eq!(
            request_origin(&h, &uri).as_deref(),
            Some("http://partners.example:8443")
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            request_origin(&h, &uri).as_deref(),
            Some("https://partners.example:8443")
        );
        h.insert(header::HOST, HeaderValue::from_static("evil.example/x"));
        assert_eq!(request_origin(&h, &uri), None);
    }
}
