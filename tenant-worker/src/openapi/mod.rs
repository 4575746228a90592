//! The OpenAPI 3.1 description of the API, generated from the route table: every row names
//! its [`Op`] (summary, typed request and response structs, its own error codes), and the
//! document adds what the row itself says — path, method, path parameters, who may call it
//! (security, and the `401`/`403` that follow), the body errors of a route that takes one,
//! the `Idempotency-Key` rules of a `POST`. A route cannot be missing from the document: the
//! document is the table (a unit test holds the two equal).
//!
//! Served as `GET /openapi.json` (every route; the API's server is `/api/t/{slug}` hosted,
//! `/api` single-tenant) and `GET /api/t/<slug>/openapi.json` (that tenant's routes and
//! server URL). The gateway names the server in `x-op-server`.

mod op;

pub use op::{schema, Op, SchemaFn};

use crate::idempotency::MAX_KEY_LEN;
use crate::{
    access::Access,
    context::{Ctx, Reply},
    error::{ApiError, ErrorCode},
};
use op::AnswerBody;
use op_proto::v1::Surface;
use schemars::{generate::SchemaSettings, transform::RecursiveTransform, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// One row of the route table, as the document needs it.
pub struct RouteDoc {
    pub surface: Surface,
    pub method: &'static str,
    pub pattern: &'static str,
    pub access: Access,
    pub op: Op,
}

/// Which document: the whole API, or one tenant's part of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every route: the tenant API, the click router and the platform's operator routes.
    All,
    /// One tenant's API and click router.
    Tenant,
}

/// The documentation of the two routes above.
pub fn doc() -> Op {
    Op::new("This API's OpenAPI 3.1 description").ok::<Value>(200, "The OpenAPI document.")
}

/// The server URLs of a document: the tenant API's and the click router's.
pub struct Servers {
    pub api: String,
    pub router: String,
    /// Where `/platform/...` lives (the origin); None when there is no platform (single-tenant).
    pub platform: Option<String>,
}

/// `GET /openapi.json`: the whole API.
pub async fn document(ctx: Ctx) -> Result<Reply, ApiError> {
    serve(&ctx, Scope::All)
}

/// `GET /api/t/<slug>/openapi.json`: this tenant's API, with its server URL.
pub async fn tenant_document(ctx: Ctx) -> Result<Reply, ApiError> {
    serve(&ctx, Scope::Tenant)
}

fn serve(ctx: &Ctx, scope: Scope) -> Result<Reply, ApiError> {
    let servers = servers(ctx.header("x-op-server"));
    let doc = document_for(ctx.app.routes.iter().map(|r| r.describe()), scope, &servers);
    Ok(Reply::ok(doc).with_header("cache-control", "public, max-age=60"))
}

/// The servers from the gateway's `x-op-server` (`<origin>|<api base>|<router base>`, the
/// origin empty when unknown), or relative ones.
pub fn servers(header: Option<&str>) -> Servers {
    let mut parts = header.unwrap_or("").splitn(3, '|');
    let origin = parts.next().unwrap_or("").to_string();
    let api = parts
        .next()
        .filter(|b| b.starts_with('/'))
        .unwrap_or("/api");
    let router = parts.next().filter(|b| b.starts_with('/')).unwrap_or("/r");
    let multi = api.starts_with("/api/t/");
    Servers {
        api: format!("{origin}{api}"),
        router: format!("{origin}{router}"),
        platform: multi.then(|| match origin.is_empty() {
            true => "/".to_string(),
            false => origin.clone(),
        }),
    }
}

/// Builds the document of `routes`.
pub fn document_for(
    routes: impl IntoIterator<Item = RouteDoc>,
    scope: Scope,
    servers: &Servers,
) -> Value {
    let mut settings =
        SchemaSettings::draft2020_12().with_transform(RecursiveTransform(no_null_defaults));
    settings.definitions_path = "#/components/schemas/".into();
    let mut gen = settings.into_generator();
    let mut paths = Map::new();
    for r in routes {
        if is_the_document_itself(r.surface, r.pattern) {
            continue;
        }
        let own_server = match r.surface {
            Surface::Api => None,
            Surface::Router => Some(servers.router.clone()),
            Surface::Platform => match (scope, &servers.platform) {
                (Scope::All, Some(origin)) => Some(origin.clone()),
                _ => continue,
            },
        };
        let path = openapi_path(r.pattern);
        let item = paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path items are objects");
        if let Some(url) = own_server {
            item.insert("servers".into(), json!([server(&url)]));
        }
        item.insert(r.method.to_ascii_lowercase(), operation(&r, &mut gen));
    }
    let mut schemas: Map<String, Value> = gen.take_definitions(true).into_iter().collect();
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OpenPartner API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The partner-program API: partners, links and clicks, conversion events and attribution, commissions, payouts and signed webhooks. Errors are `{\"error\": \"<code>\", \"detail\": \"...\"}`.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [server(&servers.api)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin, scoped or partner API key (`op_` + 48 hex characters).",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "op_session",
                    "description": "The session cookie `POST /auth/magic/verify` sets.",
                },
                "platformKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator's `OP_PLATFORM_KEY`.",
                },
            },
        },
    })
}

/// Drops the `"default": null` schemars writes for a `#[serde(default)]` field (there only
/// so that the field is optional): a default of null says nothing, and contradicts a field
/// that cannot be null. Applied to every schema of the document.
fn no_null_defaults(schema: &mut Schema) {
    if schema.get("default") == Some(&Value::Null) {
        schema.remove("default");
    }
}

/// `GET /openapi.json` at the origin is where this document is read, not an operation of
/// the API (its path would collide with the tenant copy's `/openapi.json`).
pub(crate) fn is_the_document_itself(surface: Surface, pattern: &str) -> bool {
    surface == Surface::Platform && pattern == "/openapi.json"
}

/// A server object; `{slug}` in a URL is a variable (the whole API's document).
fn server(url: &str) -> Value {
    match url.contains("{slug}") {
        true => json!({
            "url": url,
            "variables": {"slug": {"default": "demo", "description": "Your tenant's slug."}},
        }),
        false => json!({ "url": url }),
    }
}

/// `/partners/:id` → `/partners/{id}`.
fn openapi_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `POST /partners/:id/revoke` → `postPartnersIdRevoke`.
fn operation_id(method: &str, pattern: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for word in pattern
        .split(['/', '-', '.', ':'])
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

fn operation(r: &RouteDoc, gen: &mut SchemaGenerator) -> Value {
    let op = &r.op;
    let mut errors = op.errors.clone();
    let mut add = |status: u16, code: ErrorCode| {
        if !errors.contains(&(status, code)) {
            errors.push((status, code));
        }
    };
    // What the row itself implies.
    match r.access {
        // A public tenant route needs no credential, but one sent with it is checked: an
        // invalid, revoked or foreign key (or ended session) is refused all the same.
        Access::Public if r.surface == Surface::Api => add(401, ErrorCode::Unauthorized),
        Access::Public => {}
        Access::Platform => add(401, ErrorCode::Unauthorized),
        Access::Authenticated => add(401, ErrorCode::Unauthorized),
        access => {
            add(401, ErrorCode::Unauthorized);
            add(403, ErrorCode::Forbidden);
            if access.scope().is_some() {
                add(403, ErrorCode::ForbiddenScope);
            }
        }
    }
    // The gateway refuses every route of a suspended tenant, public ones too.
    if r.surface != Surface::Platform {
        add(403, ErrorCode::TenantSuspended);
    }
    add(429, ErrorCode::RateLimited);
    // The gateway's cross-site guard: a write carrying the `op_session` cookie (and no
    // bearer) from another origin. The SDK's identify call is exempt.
    if r.surface == Surface::Api
        && matches!(r.method, "POST" | "PUT" | "PATCH" | "DELETE")
        && r.pattern != "/attribution/identify"
    {
        add(403, ErrorCode::CrossSiteRequest);
    }
    let takes_body = op.body.is_some();
    if takes_body {
        add(400, ErrorCode::InvalidBody);
        add(413, ErrorCode::PayloadTooLarge);
    }
    // `Idempotency-Key` is a tenant API feature (idempotency::run); the operator's routes
    // and the click router ignore the header.
    let idempotent_post = r.method == "POST" && r.surface == Surface::Api;
    if idempotent_post {
        add(400, ErrorCode::InvalidIdempotencyKey);
        add(409, ErrorCode::IdempotencyKeyInProgress);
        add(409, ErrorCode::IdempotencyKeyReused);
    }

    let mut parameters: Vec<Value> = r
        .pattern
        .split('/')
        .filter_map(|s| s.strip_prefix(':'))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "schema": {"type": "string", "minLength": 1},
            })
        })
        .collect();
    for q in &op.query {
        parameters.push(json!({
            "name": q.name, "in": "query", "required": false,
            "description": q.description, "schema": q.schema,
        }));
    }
    if idempotent_post {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes the request safe to retry: the same key (printable ASCII) within 24 hours replays the first answer.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN, "pattern": "^[\\x20-\\x7e]+$"},
        }));
    }

    let mut responses = Map::new();
    for a in &op.answers {
        let mut resp = json!({ "description": a.description });
        match &a.body {
            AnswerBody::None => {}
            AnswerBody::Json(f) => {
                resp["content"] = json!({"application/json": {"schema": f(gen)}});
            }
            AnswerBody::Page(f, alias) => {
                let item = f(gen);
                resp["content"] = json!({"application/json": {"schema": {
                    "type": "object",
                    "required": ["data", alias, "nextCursor"],
                    "properties": {
                        "data": {"type": "array", "items": item},
                        *alias: {"type": "array", "items": item},
                        "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."},
                    },
                }}});
            }
            AnswerBody::Text(media) => {
                resp["content"] = json!({ *media: {"schema": {"type": "string"}} });
            }
        }
        if !op.headers.is_empty() {
            let headers: Map<String, Value> = op
                .headers
                .iter()
                .map(|(n, d)| {
                    (
                        n.to_string(),
                        json!({"description": d, "schema": {"type": "string"}}),
                    )
                })
                .collect();
            resp["headers"] = Value::Object(headers);
        }
        responses.insert(a.status.to_string(), resp);
    }
    let mut by_status: std::collections::BTreeMap<u16, Vec<&'static str>> = Default::default();
    for (status, code) in &errors {
        by_status.entry(*status).or_default().push(code.as_str());
    }
    for (status, codes) in by_status {
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("Error: {}.", codes.join(", ")),
                "content": {"application/json": {"schema": {
                    "allOf": [{"$ref": "#/components/schemas/Error"}],
                    "properties": {"error": {"enum": codes}},
                }}},
            }),
        );
    }

    let mut out = json!({
        "operationId": operation_id(r.method, r.pattern),
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
        "security": security(r.access),
    });
    if let Some(d) = op.description {
        out["description"] = json!(d);
    }
    if let Some(f) = op.body {
        out["requestBody"] = json!({
            "required": !op.body_optional,
            "content": {"application/json": {"schema": f(gen)}},
        });
    }
    out
}

fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::Platform => json!([{ "platformKey": [] }]),
        access => match access.scope() {
            Some(scope) => json!([{ "bearerKey": [scope.as_str()] }, { "session": [] }]),
            None => json!([{ "bearerKey": [] }, { "session": [] }]),
        },
    }
}

/// The error shape every `4xx`/`5xx` answer has.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "A stable, machine-readable code."},
            "detail": {"type": "string", "description": "What went wrong, for people."},
            "field": {"type": "string", "description": "The body field at fault, when there is one."},
            "required": {"type": "string", "description": "The scope a `forbidden_scope` answer needed."},
        },
        "additionalProperties": true,
    })
}

#[cfg(test)]
mod tests;
