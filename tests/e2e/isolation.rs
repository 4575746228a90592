//! The authorization matrix, generated from the worker's route table so every new route is
//! covered automatically: every credential kind of two tenants against every API route,
//! under its own tenant (exactly the status the route's access rule gives) and under the
//! other tenant (always 401, and nothing of the other tenant in the answer).

use crate::harness::*;
use op_proto::v1::Surface;
use op_worker::access::{Principal, Session};
use reqwest::Method;
use serde_json::json;

struct Cred {
    name: &'static str,
    principal: Principal,
    bearer: Option<String>,
    cookie: Option<String>,
}

struct World {
    tenant: Tenant,
    partner_id: String,
    secrets: Vec<String>,
    creds: Vec<Cred>,
}

async fn world(tag: &str) -> World {
    let unique = unique_slug(tag);
    let admin_email = format!("boss-{unique}@example.com");
    let tenant = Tenant::with_admin(&admin_email).await;
    let admin_key = tenant.admin_key.clone();
    let partner_email = format!("partner-{unique}@example.com");
    let p = tenant
        .api
        .post("/partners", json!({"email": partner_email, "name": "P"}))
        .await
        .expect(201)
        .body;
    let partner_id = p["id"].as_str().unwrap().to_string();
    let (partner_cookie, _) = tenant.follow_mailed_link(&partner_email).await;
    let (admin_cookie, v) = tenant.sign_in(&admin_email).await;
    let admin_id = v.body["admin"]["id"].as_str().unwrap().to_string();
    let read = tenant.scoped_key(&["partners:read"]).await;
    let events = tenant.scoped_key(&["events:write", "links:write"]).await;
    let pkey = tenant.partner_key(&partner_id).await;
    let creds = vec![
        Cred {
            name: "anonymous",
            principal: Principal::Anonymous,
            bearer: None,
            cookie: None,
        },
        Cred {
            name: "admin key",
            principal: Principal::Admin {
                key_id: Some("k".into()),
                session: None,
            },
            bearer: Some(admin_key),
            cookie: None,
        },
        Cred {
            name: "scoped partners:read",
            principal: Principal::Scoped {
                key_id: "k".into(),
                scopes: vec!["partners:read".into()],
            },
            bearer: Some(read),
            cookie: None,
        },
        Cred {
            name: "scoped events:write,links:write",
            principal: Principal::Scoped {
                key_id: "k".into(),
                scopes: vec!["events:write".into(), "links:write".into()],
            },
            bearer: Some(events),
            cookie: None,
        },
        Cred {
            name: "partner key",
            principal: Principal::Partner {
                partner_id: partner_id.clone(),
                key_id: Some("k".into()),
                session_id: None,
            },
            bearer: Some(pkey),
            cookie: None,
        },
        Cred {
            name: "admin session",
            principal: Principal::Admin {
                key_id: None,
                session: Some(Session {
                    id: "s".into(),
                    admin_id,
                }),
            },
            bearer: None,
            cookie: Some(admin_cookie),
        },
        Cred {
            name: "partner session",
            principal: Principal::Partner {
                partner_id: partner_id.clone(),
                key_id: None,
                session_id: Some("s".into()),
            },
            bearer: None,
            cookie: Some(partner_cookie),
        },
    ];
    World {
        secrets: vec![
            partner_id.clone(),
            partner_email,
            admin_email,
            tenant.id.clone(),
        ],
        tenant,
        partner_id,
        creds,
    }
}

async fn call(base: &str, method: &str, path: &str, cred: &Cred) -> Resp {
    let api = Api::new(base.to_string(), cred.bearer.as_deref());
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let body = (method != Method::GET && method != Method::DELETE).then(|| b"{}".to_vec());
    let headers: Vec<(&str, &str)> = cred.cookie.iter().map(|c| ("cookie", c.as_str())).collect();
    api.raw(method, path, body, &headers).await
}

#[tokio::test]
async fn every_credential_against_every_route_of_both_tenants() {
    let a = world("iso-a").await;
    let b = world("iso-b").await;
    let mut routes: Vec<_> = op_worker::routes::table()
        .into_iter()
        .filter(|r| r.surface == Surface::Api)
        .collect();
    // Signing out would end the sessions the rest of the matrix uses.
    routes.sort_by_key(|r| r.pattern == "/auth/signout");
    assert!(routes.len() >= 20, "the matrix covers the route table");

    let mut checked = 0;
    for route in &routes {
        for cred in &a.creds {
            // Under its own tenant: exactly what the route's rule says.
            let is_self_route =
                matches!(route.access, op_worker::access::Access::AdminScopeOrSelf(_))
                    && matches!(cred.principal, Principal::Partner { .. });
            let id = if route.method == "GET" || is_self_route {
                a.partner_id.clone()
            } else {
                ulid::Ulid::new().to_string()
            };
            let path = route.pattern.replace(":id", &id);
            let r = call(&a.tenant.api.base, route.method, &path, cred).await;
            match route.access.check(&cred.principal, Some(&id)) {
                Err(e) => assert_eq!(
                    (r.code(), r.error()),
                    (e.status, e.code.as_str()),
                    "{} {} as {}: {}",
                    route.method,
                    path,
                    cred.name,
                    r.body
                ),
                Ok(()) => assert!(
                    r.code() != 401 && r.code() != 403,
                    "{} {} as {} should be allowed, got {}: {}",
                    route.method,
                    path,
                    cred.name,
                    r.code(),
                    r.body
                ),
            }
            // Under the other tenant's slug (with the other tenant's real ids): always 401.
            if cred.bearer.is_some() || cred.cookie.is_some() {
                let path = route.pattern.replace(":id", &b.partner_id);
                let r = call(&b.tenant.api.base, route.method, &path, cred).await;
                assert_eq!(
                    (r.code(), r.error()),
                    (401, "unauthorized"),
                    "{} {} as {} of another tenant: {}",
                    route.method,
                    path,
                    cred.name,
                    r.body
                );
                let text = r.body.to_string();
                for secret in &b.secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "leak of {secret} in {text}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * a.creds.len());
}
