//! The portal: the web app's built files (`portal/dist`, `OP_PORTAL_DIR`), served on the
//! API's own origin so that the `op_session` cookie and the API share it — hosted at
//! `/t/<slug>/`, self-hosted at `/`.
//!
//! A file that exists is served as it is (with its precompressed `.gz` sibling when the
//! client takes gzip); hashed build output under `assets/` is cached for a year, everything
//! else is revalidated. Any other path is a page of the app (a deep link): the answer is the
//! app's shell, `index.html`, with its `<base href>` set to where the portal lives, a strict
//! Content-Security-Policy and `no-cache`. A missing `assets/...` file is a `404`, never the
//! shell (a script tag must not load HTML). The API's own paths never reach this module
//! (`tenancy::classify` claims them first).

use crate::edge_error::{Body, EdgeError};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use std::path::{Path, PathBuf};

/// The shell's policy: scripts, styles and everything else only from this origin (no
/// inline script or style), images also as `data:` URLs, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
manifest-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// What hashed build output (`assets/<name>-<hash>.<ext>`) is cached with.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The placeholder the built shell carries (`portal/index.html`); replaced per request by
/// the portal's base path.
const BASE_PLACEHOLDER: &str = "<base href=\"/\">";

/// Answers a portal request: `base` is where the portal lives (`/t/<slug>/` or `/`), `path`
/// the rest, relative to it.
pub async fn serve(
    dir: &Path,
    method: &Method,
    headers: &HeaderMap,
    base: &str,
    path: &str,
) -> Result<Response<Body>, EdgeError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(EdgeError::MethodNotAllowed);
    }
    if let Some(file) = file_path(dir, path) {
        let gzip = accepts_gzip(headers);
        if gzip {
            let mut gz = file.clone().into_os_string();
            gz.push(".gz");
            if let Ok(bytes) = tokio::fs::read(&gz).await {
                let mut r = asset(path, bytes);
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                return Ok(r);
            }
        }
        if let Ok(bytes) = tokio::fs::read(&file).await {
            return Ok(asset(path, bytes));
        }
    }
    if path.starts_with("assets/") {
        return Err(EdgeError::NotFound);
    }
    let shell = tokio::fs::read_to_string(dir.join("index.html"))
        .await
        .map_err(|_| EdgeError::PortalNotBuilt)?;
    Ok(shell_response(&shell, base))
}

/// `/t/<slug>` → `/t/<slug>/` (relative URLs in the app resolve against the slash).
pub fn redirect_to(location: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The shell with its base set, and the headers every page of the app carries.
fn shell_response(shell: &str, base: &str) -> Response<Body> {
    let html = shell.replacen(BASE_PLACEHOLDER, &format!("<base href=\"{base}\">"), 1);
    let mut r = Response::new(Full::new(Bytes::from(html)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    // Sign-in links carry their token in the URL: it never leaves in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn asset(path: &str, bytes: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(path)));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if path.starts_with("assets/") {
            IMMUTABLE
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    r
}

/// The file `path` names under `dir`, if `path` is a plain relative file name: segments of
/// `[A-Za-z0-9._-]`, none empty or starting with a dot (so no `..`, no hidden files, no
/// percent-escapes), and not the shell itself (which is only served rewritten).
fn file_path(dir: &Path, path: &str) -> Option<PathBuf> {
    if path.is_empty() || path == "index.html" || path.len() > 255 {
        return None;
    }
    let plain = path.split('/').all(|seg| {
        !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    plain.then(|| dir.join(path))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn mime(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_are_files() {
        let d = Path::new("/srv/portal");
        assert_eq!(
            file_path(d, "assets/index-abc.js"),
            Some(PathBuf::from("/srv/portal/assets/index-abc.js"))
        );
        for bad in [
            "",
            "index.html",
            "../etc/passwd",
            "assets/../../x",
            ".env",
            "a//b",
            "a/%2e%2e/b",
            "a\\b",
            "partners/",
        ] {
            assert_eq!(file_path(d, bad), None, "{bad}");
        }
    }

    #[test]
    fn gzip_unless_refused() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn the_shell_names_its_base() {
        let r = shell_response(
            "<html><head><base href=\"/\"><script src=\"./assets/a.js\"></script>",
            "/t/acme/",
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    }
}
