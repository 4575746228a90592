//! The portal on the gateway (portal.md): its files at `/t/<slug>/` (hosted) and `/`
//! (self-hosted), deep links answered with the shell, caching and the Content-Security-
//! Policy, the API's own paths never answered with the shell, magic links pointing at the
//! portal on the request's origin, and the cross-site guard of cookie-authenticated writes.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;

const SHELL: &str = "<!doctype html><html><head><base href=\"/\"><script type=\"module\" src=\"./assets/index-Ab12Cd34.js\"></script></head><body><div id=\"app\">portal shell</div></body></html>";
const SCRIPT: &str = "console.log('the portal');";

/// A built portal as `vite build` leaves it (plus the `.gz` the build script writes).
fn portal_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "openpartner-e2e-portal-{}-{}",
        std::process::id(),
        ulid::Ulid::new()
    ));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), SHELL).unwrap();
    std::fs::write(
        dir.join("favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/index-Ab12Cd34.js"), SCRIPT).unwrap();
    std::fs::write(dir.join("assets/index-Ab12Cd34.js.gz"), b"\x1f\x8bgzipped").unwrap();
    dir
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn fetch(url: &str, headers: &[(&str, &str)]) -> Page {
    fetch_with(Method::GET, url, headers).await
}

async fn fetch_with(method: Method, url: &str, headers: &[(&str, &str)]) -> Page {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("the gateway answers");
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

fn header<'a>(p: &'a Page, name: &str) -> &'a str {
    p.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[track_caller]
fn assert_shell(p: &Page, base: &str) {
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("portal shell"), "{}", p.body);
    assert!(
        p.body.contains(&format!("<base href=\"{base}\">")),
        "the shell names its base: {}",
        p.body
    );
    assert_eq!(header(p, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(p, "cache-control"), "no-cache");
    let csp = header(p, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(p, "x-frame-options"), "DENY");
    assert_eq!(header(p, "referrer-policy"), "no-referrer");
}

#[track_caller]
fn assert_not_shell(p: &Page) {
    assert!(
        !p.body.contains("portal shell") && !p.body.contains("<base"),
        "{}: {}",
        p.status,
        p.body
    );
    assert_eq!(header(p, "content-security-policy"), "", "{}", p.body);
}

#[tokio::test]
async fn the_portal_is_served_at_the_tenants_path() {
    let dir = portal_dir();
    let dir_s = dir.to_str().unwrap();
    let stack = private_stack(&[("OP_PORTAL_DIR", dir_s), ("OP_PORTAL_URL", "")]).await;
    let gw = stack.base_url.clone();
    let t = Tenant::on(&gw).await;
    let root = format!("{gw}/t/{}", t.slug);

    // The root and every deep link answer the shell, based at the tenant's path.
    assert_shell(
        &fetch(&format!("{root}/"), &[]).await,
        &format!("/t/{}/", t.slug),
    );
    for deep in [
        "partners",
        "partners/01JABCDEF/terms",
        "login?token=x",
        "commissions?status=accrued",
        "index.html",
    ] {
        assert_shell(
            &fetch(&format!("{root}/{deep}"), &[]).await,
            &format!("/t/{}/", t.slug),
        );
    }
    // Without the slash: a redirect to it.
    let r = fetch(&root, &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(header(&r, "location"), format!("/t/{}/", t.slug));

    // Hashed assets are cached for good; other files are revalidated.
    let js = fetch(&format!("{root}/assets/index-Ab12Cd34.js"), &[]).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.body, SCRIPT);
    assert_eq!(
        header(&js, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&js, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&js, "x-content-type-options"), "nosniff");
    assert_eq!(header(&js, "content-encoding"), "");
    let gz = fetch(
        &format!("{root}/assets/index-Ab12Cd34.js"),
        &[("accept-encoding", "gzip, br")],
    )
    .await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    let icon = fetch(&format!("{root}/favicon.svg"), &[]).await;
    assert_eq!(icon.status, 200);
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    assert_eq!(header(&icon, "cache-control"), "no-cache");
    // A missing asset is a 404, never the shell.
    let missing = fetch(&format!("{root}/assets/index-Gone.js"), &[]).await;
    assert_eq!(missing.status, 404);
    assert_not_shell(&missing);
    // Only GET and HEAD.
    let post = fetch_with(Method::POST, &format!("{root}/partners"), &[]).await;
    assert_eq!(post.status, 405);
    assert_eq!(header(&post, "allow"), "GET, HEAD");
    assert_eq!(
        fetch_with(Method::HEAD, &format!("{root}/"), &[])
            .await
            .status,
        200
    );

    // Unknown tenants have no portal; the API's paths never answer the shell.
    let unknown = fetch(&format!("{gw}/t/no-such-tenant-here/"), &[]).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("tenant_not_found"),
        "{}",
        unknown.body
    );
    for api in [
        format!("{gw}/api/t/{}/no-such-route", t.slug),
        format!("{gw}/api/t/{}/partners", t.slug),
        format!("{gw}/api/partners"),
        format!("{gw}/r/{}/no-such-link", t.slug),
        format!("{gw}/openapi.json"),
        format!("{gw}/health"),
        format!("{gw}/ready"),
        format!("{gw}/metrics"),
        format!("{gw}/platform/tenants"),
        format!("{gw}/"),
        format!("{gw}/t/"),
    ] {
        assert_not_shell(&fetch(&api, &[]).await);
    }

    // Magic links in mail point at this portal, on the origin the request came to.
    let email = format!("{}@portal.example", unique_slug("a"));
    t.api
        .post("/admins", json!({"email": email, "sendInvite": true}))
        .await
        .expect(201);
    let invite = t.last_mail(&email).await.expect("an invite");
    let body = invite["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("{root}/login?token=")),
        "the invite links to {root}/login: {body}"
    );
    t.request_magic_link(&email).await;
    let mail = t.last_mail(&email).await.expect("a sign-in link");
    assert!(
        mail["body"]
            .as_str()
            .unwrap()
            .contains(&format!("{root}/login?token=")),
        "{mail}"
    );
    drop(stack);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_public_url_names_the_links_origin() {
    let stack = private_stack(&[
        ("OP_PORTAL_URL", ""),
        ("OP_PUBLIC_URL", "https://partners.example.com/"),
    ])
    .await;
    let t = Tenant::on(&stack.base_url).await;
    let email = format!("{}@portal.example", unique_slug("a"));
    t.api
        .post("/admins", json!({"email": email, "sendInvite": false}))
        .await
        .expect(201);
    t.request_magic_link(&email).await;
    let mail = t.last_mail(&email).await.expect("a sign-in link");
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "https://partners.example.com/t/{}/login?token=",
            t.slug
        )),
        "a Host header does not choose where links point: {body}"
    );
    // The public origin is the service's own for the cross-site guard too.
    let (cookie, _) = t.follow_mailed_link(&email).await;
    let ok = t
        .api
        .with_key(None)
        .raw(
            Method::POST,
            "/partners",
            Some(
                json!({"email": format!("{}@p.example", unique_slug("p")), "name": "P", "sendInvite": false})
                    .to_string()
                    .into_bytes(),
            ),
            &[("cookie", &cookie), ("origin", "https://partners.example.com")],
        )
        .await;
    ok.expect(201);
}

#[tokio::test]
async fn the_self_hosted_portal_is_at_the_root() {
    let dir = portal_dir();
    let admin = "single-portal-admin-key-0123456789";
    let stack = single_tenant_stack_with(
        admin,
        &[
            ("OP_PORTAL_DIR", dir.to_str().unwrap()),
            ("OP_PORTAL_URL", ""),
        ],
    )
    .await;
    let gw = stack.base_url.clone();
    assert_shell(&fetch(&format!("{gw}/"), &[]).await, "/");
    assert_shell(&fetch(&format!("{gw}/commissions"), &[]).await, "/");
    assert_shell(&fetch(&format!("{gw}/t/acme/partners"), &[]).await, "/");
    let js = fetch(&format!("{gw}/assets/index-Ab12Cd34.js"), &[]).await;
    assert_eq!(js.body, SCRIPT);
    for api in [
        "/api/no-such-route",
        "/api/partners",
        "/r/no-such-link",
        "/health",
        "/openapi.json",
    ] {
        assert_not_shell(&fetch(&format!("{gw}{api}"), &[]).await);
    }
    // Links point at the root of this origin.
    let api = Api::new(format!("{gw}/api"), Some(admin));
    let email = format!("{}@single-portal.example", unique_slug("a"));
    api.post("/admins", json!({"email": email, "sendInvite": true}))
        .await
        .expect(201);
    let mails = api
        .get(&format!("/dev/mailbox?to={}", email.replace('@', "%40")))
        .await
        .expect(200);
    let body = mails.body["data"][0]["body"].as_str().unwrap().to_string();
    assert!(body.contains(&format!("{gw}/login?token=")), "{body}");
    drop(stack);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn cookie_writes_from_another_site_are_refused() {
    let t = Tenant::new().await;
    let email = format!("{}@csrf.example", unique_slug("a"));
    t.api
        .post("/admins", json!({"email": email, "sendInvite": false}))
        .await
        .expect(201);
    let (cookie, _) = t.sign_in(&email).await;
    let own = shared().stack.base_url.clone();
    let new_partner = || {
        json!({"email": format!("{}@p.example", unique_slug("p")), "name": "P", "sendInvite": false})
            .to_string()
            .into_bytes()
    };
    let anon = t.api.with_key(None);
    let write = |headers: Vec<(&'static str, String)>| {
        let anon = anon.clone();
        let body = new_partner();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            anon.raw(Method::POST, "/partners", Some(body), &h).await
        }
    };

    // From another origin, or cross-site without an Origin: refused before the worker.
    for headers in [
        vec![
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".to_string()),
        ],
        vec![("cookie", cookie.clone()), ("origin", "null".to_string())],
        vec![
            ("cookie", cookie.clone()),
            ("origin", own.replace("127.0.0.1", "localhost")),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "cross-site".to_string()),
        ],
        vec![
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".to_string()),
            ("sec-fetch-site", "same-origin".to_string()),
        ],
    ] {
        write(headers).await.expect_error(403, "cross_site_request");
    }
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        anon.raw(
            method,
            "/partners/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            Some(b"{}".to_vec()),
            &[("cookie", &cookie), ("origin", "http://evil.example")],
        )
        .await
        .expect_error(403, "cross_site_request");
    }
    // Nothing was created by the refused writes.
    let listed = t.api.get("/partners").await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0);

    // The service's own origin, same-site fetches, and clients that send neither pass.
    write(vec![("cookie", cookie.clone()), ("origin", own.clone())])
        .await
        .expect(201);
    write(vec![
        ("cookie", cookie.clone()),
        ("sec-fetch-site", "same-origin".to_string()),
    ])
    .await
    .expect(201);
    write(vec![("cookie", cookie.clone())]).await.expect(201);
    // Reads are not writes.
    anon.get_with(
        "/partners",
        &[("cookie", &cookie), ("origin", "http://evil.example")],
    )
    .await
    .expect(200);
    // Bearer keys carry no ambient authority: unaffected, with or without a cookie.
    t.api
        .raw(
            Method::POST,
            "/partners",
            Some(new_partner()),
            &[
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await
        .expect(201);
    t.api
        .raw(
            Method::POST,
            "/partners",
            Some(new_partner()),
            &[("cookie", &cookie), ("origin", "http://evil.example")],
        )
        .await
        .expect(201);
    // The SDK's identify call from a merchant's site is the worker's (CORS) business.
    anon.raw(
        Method::POST,
        "/attribution/identify",
        Some(
            json!({"cref": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "userId": "u1"})
                .to_string()
                .into_bytes(),
        ),
        &[("cookie", &cookie), ("origin", "http://shop.example")],
    )
    .await
    .expect_error(404, "click_not_found");
    // Without a cookie there is nothing to forge: an anonymous cross-site sign-in request
    // goes through.
    anon.raw(
        Method::POST,
        "/auth/magic/request",
        Some(json!({"email": "x@example.com"}).to_string().into_bytes()),
        &[("origin", "http://evil.example")],
    )
    .await
    .expect(200);
}
