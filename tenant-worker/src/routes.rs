//! THE route table: every endpoint of the API, the principals it admits and its handler,
//! in one list. Aliases the original OpenPartner clients rely on are rows here too, never
//! special cases elsewhere. Tests walk this table to build the authorization matrix.

use crate::{
    access::{Access, Principal, Scope},
    admins, api_keys,
    attribution::{events, identify, rederive},
    auth, campaigns, clicks, commissions,
    context::{Ctx, Handler, Reply, TenantRef},
    error::{ApiError, ErrorCode},
    grants, idempotency, links, mail,
    openapi::{self, Op, RouteDoc},
    partners, payouts, platform, reporting, terms, webhooks, App,
};
use op_proto::v1::{Envelope, Surface};
use std::sync::Arc;

pub struct Route {
    pub surface: Surface,
    pub method: &'static str,
    /// `/partners/:id/revoke`; `:name` matches one non-empty segment.
    pub pattern: &'static str,
    pub access: Access,
    pub handler: Handler,
    /// Its documentation ([`openapi`]): typed request and response structs, its errors.
    pub doc: fn() -> Op,
}

macro_rules! route {
    ($surface:ident, $method:literal, $pattern:literal, $access:expr, $handler:path, $doc:path) => {
        Route {
            surface: Surface::$surface,
            method: $method,
            pattern: $pattern,
            access: $access,
            handler: |ctx| Box::pin($handler(ctx)),
            doc: $doc,
        }
    };
}

/// Every route of the product, one line each (hence no rustfmt here).
#[rustfmt::skip]
pub fn table() -> Vec<Route> {
    use Access::*;
    vec![
        // Partners
        route!(Api, "POST", "/partners", AdminOrScope(Scope::PartnersWrite), partners::create, partners::create_doc),
        route!(Api, "GET", "/partners", AdminOrScope(Scope::PartnersRead), partners::list, partners::list_doc),
        route!(Api, "GET", "/partners/:id", AdminScopeOrSelf(Some(Scope::PartnersRead)), partners::get, partners::get_doc),
        route!(Api, "POST", "/partners/:id/invite", Admin, partners::invite, partners::invite_doc),
        route!(Api, "POST", "/partners/:id/revoke", AdminOrScope(Scope::PartnersWrite), partners::revoke, partners::revoke_doc),
        route!(Api, "POST", "/partners/:id/reinstate", Admin, partners::reinstate, partners::reinstate_doc),
        route!(Api, "POST", "/partners/:id/api-keys", AdminScopeOrSelf(None), api_keys::create_for_partner, api_keys::create_for_partner_doc),
        route!(Api, "GET", "/partners/:id/api-keys", AdminScopeOrSelf(None), api_keys::list_for_partner, api_keys::list_for_partner_doc),
        // Partner terms (programs.md): all campaigns (the original's snapshot), or one
        route!(Api, "GET", "/partners/:id/commission-snapshot", Admin, terms::get, terms::get_doc),
        route!(Api, "PUT", "/partners/:id/commission-snapshot", Admin, terms::put, terms::put_doc),
        route!(Api, "DELETE", "/partners/:id/commission-snapshot", Admin, terms::delete, terms::delete_doc),
        route!(Api, "GET", "/partners/:id/terms/:campaignId", Admin, terms::get, terms::get_doc),
        route!(Api, "PUT", "/partners/:id/terms/:campaignId", Admin, terms::put, terms::put_doc),
        route!(Api, "DELETE", "/partners/:id/terms/:campaignId", Admin, terms::delete, terms::delete_doc),
        // Program access (grants); `programs` is the original's later name
        route!(Api, "GET", "/partners/:id/campaigns", AdminScopeOrSelf(None), grants::list, grants::list_doc),
        route!(Api, "GET", "/partners/:id/programs", AdminScopeOrSelf(None), grants::list, grants::list_doc),
        route!(Api, "POST", "/partners/:id/campaigns", Admin, grants::add, grants::add_doc),
        route!(Api, "POST", "/partners/:id/programs", Admin, grants::add, grants::add_doc),
        route!(Api, "DELETE", "/partners/:id/programs/:programId", Admin, grants::remove, grants::remove_doc),
        route!(Api, "DELETE", "/partners/:id/campaigns/:campaignId", Admin, grants::remove, grants::remove_doc),
        route!(Api, "GET", "/me/programs", AdminOrPartner, grants::mine, grants::mine_doc),
        route!(Api, "GET", "/me/campaigns", AdminOrPartner, grants::mine, grants::mine_doc),
        // API keys
        route!(Api, "POST", "/api-keys", Admin, api_keys::create, api_keys::create_doc),
        route!(Api, "POST", "/api-keys/scoped", Admin, api_keys::create_scoped, api_keys::create_scoped_doc),
        route!(Api, "GET", "/api-keys", Admin, api_keys::list, api_keys::list_doc),
        route!(Api, "DELETE", "/api-keys/:id", AdminOrPartner, api_keys::revoke, api_keys::revoke_doc),
        // Admins (people) and sign-in
        route!(Api, "POST", "/admins", Admin, admins::create, admins::create_doc),
        route!(Api, "GET", "/admins", Admin, admins::list, admins::list_doc),
        route!(Api, "POST", "/admins/:id/revoke", Admin, admins::revoke, admins::revoke_doc),
        route!(Api, "POST", "/auth/magic/request", Public, auth::magic_request, auth::magic_request_doc),
        route!(Api, "POST", "/auth/signin", Public, auth::magic_request, auth::magic_request_doc),
        route!(Api, "POST", "/auth/magic/verify", Public, auth::magic_verify, auth::magic_verify_doc),
        route!(Api, "GET", "/auth/me", Authenticated, auth::me, auth::me_doc),
        route!(Api, "GET", "/auth/whoami", Authenticated, auth::me, auth::me_doc),
        route!(Api, "POST", "/auth/signout", Authenticated, auth::signout, auth::signout_doc),
        route!(Api, "GET", "/auth/introspect", Authenticated, auth::introspect, auth::introspect_doc),
        // Campaigns (the original's later name, programs, is an alias)
        route!(Api, "POST", "/campaigns", Admin, campaigns::create, campaigns::create_doc),
        route!(Api, "GET", "/campaigns", Admin, campaigns::list, campaigns::list_doc),
        route!(Api, "GET", "/campaigns/:id", Admin, campaigns::get, campaigns::get_doc),
        route!(Api, "PATCH", "/campaigns/:id", Admin, campaigns::update, campaigns::update_doc),
        route!(Api, "POST", "/programs", Admin, campaigns::create, campaigns::create_doc),
        route!(Api, "GET", "/programs", Admin, campaigns::list, campaigns::list_doc),
        route!(Api, "GET", "/programs/:id", Admin, campaigns::get, campaigns::get_doc),
        route!(Api, "PATCH", "/programs/:id", Admin, campaigns::update, campaigns::update_doc),
        // Links and clicks
        route!(Api, "POST", "/partners/:id/links", AdminScopeOrSelf(Some(Scope::LinksWrite)), links::create, links::create_doc),
        route!(Api, "GET", "/partners/:id/links", AdminScopeOrSelf(None), links::list, links::list_doc),
        route!(Api, "POST", "/clicks", AdminOrScope(Scope::ClicksWrite), clicks::record, clicks::record_doc),
        route!(Router, "GET", "/:linkKey", Public, clicks::redirect, clicks::redirect_doc),
        // Attribution
        route!(Api, "POST", "/attribution/identify", Public, identify::identify, identify::identify_doc),
        route!(Api, "OPTIONS", "/attribution/identify", Public, identify::preflight, identify::preflight_doc),
        route!(Api, "POST", "/attribution/events", AdminOrScope(Scope::EventsWrite), events::ingest, events::ingest_doc),
        route!(Api, "POST", "/attribution/rederive", Admin, rederive::rederive, rederive::rederive_doc),
        // Commissions and payouts
        route!(Api, "GET", "/commissions", AdminOrScope(Scope::CommissionsRead), commissions::list, commissions::list_doc),
        route!(Api, "POST", "/commissions/approve", Admin, commissions::bulk_approve, commissions::bulk_approve_doc),
        route!(Api, "POST", "/commissions/reverse", Admin, commissions::bulk_reverse, commissions::bulk_reverse_doc),
        route!(Api, "GET", "/commissions/:id", AdminOrScope(Scope::CommissionsRead), commissions::get, commissions::get_doc),
        route!(Api, "POST", "/commissions/:id/approve", Admin, commissions::approve, commissions::approve_doc),
        route!(Api, "POST", "/commissions/:id/reverse", Admin, commissions::reverse, commissions::reverse_doc),
        route!(Api, "GET", "/partners/:id/commissions", AdminScopeOrSelf(Some(Scope::CommissionsRead)), commissions::list, commissions::partner_list_doc),
        route!(Api, "POST", "/payouts/run", Admin, payouts::run, payouts::run_doc),
        route!(Api, "GET", "/partners/:id/payouts", AdminScopeOrSelf(Some(Scope::PartnersRead)), payouts::partner_list, payouts::partner_list_doc),
        // Reporting (specs/reporting.md)
        route!(Api, "GET", "/partners/:id/dashboard", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::dashboard, reporting::dashboard_doc),
        route!(Api, "GET", "/partners/:id/timeseries", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::timeseries, reporting::timeseries_doc),
        route!(Api, "GET", "/partners/:id/events", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::events, reporting::events_doc),
        route!(Api, "GET", "/partners/:id/customers", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::customers, reporting::customers_doc),
        route!(Api, "GET", "/partners/:id/breakdowns", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::breakdowns, reporting::breakdowns_doc),
        route!(Api, "GET", "/partners/:id/funnel", AdminScopeOrSelf(Some(Scope::PartnersRead)), reporting::funnel, reporting::funnel_doc),
        route!(Api, "GET", "/admin/overview", AdminOrScope(Scope::PartnersRead), reporting::overview, reporting::overview_doc),
        route!(Api, "GET", "/payouts", Admin, payouts::list, payouts::list_doc),
        route!(Api, "GET", "/payouts/:id", Admin, payouts::get, payouts::get_doc),
        route!(Api, "POST", "/payouts/:id/mark-paid", Admin, payouts::mark_paid, payouts::mark_paid_doc),
        // Webhooks
        route!(Api, "POST", "/webhooks", AdminOrScope(Scope::WebhooksWrite), webhooks::endpoints::create, webhooks::endpoints::create_doc),
        route!(Api, "GET", "/webhooks", Admin, webhooks::endpoints::list, webhooks::endpoints::list_doc),
        route!(Api, "GET", "/webhooks/:id", Admin, webhooks::endpoints::get, webhooks::endpoints::get_doc),
        route!(Api, "PATCH", "/webhooks/:id", AdminOrScope(Scope::WebhooksWrite), webhooks::endpoints::update, webhooks::endpoints::update_doc),
        route!(Api, "DELETE", "/webhooks/:id", AdminOrScope(Scope::WebhooksWrite), webhooks::endpoints::delete, webhooks::endpoints::delete_doc),
        route!(Api, "POST", "/webhooks/:id/rotate-secret", Admin, webhooks::endpoints::rotate_secret, webhooks::endpoints::rotate_secret_doc),
        route!(Api, "GET", "/webhooks/:id/deliveries", Admin, webhooks::log::deliveries, webhooks::log::deliveries_doc),
        route!(Api, "POST", "/webhooks/:id/deliveries/:deliveryId/retry", Admin, webhooks::log::retry, webhooks::log::retry_doc),
        route!(Api, "POST", "/webhooks/:id/test", Admin, webhooks::log::test_fire, webhooks::log::test_fire_doc),
        // Development
        route!(Api, "GET", "/dev/mailbox", Admin, mail::mailbox, mail::mailbox_doc),
        // The API's description
        route!(Api, "GET", "/openapi.json", Public, openapi::tenant_document, openapi::doc),
        route!(Platform, "GET", "/openapi.json", Public, openapi::document, openapi::doc),
        // Operator endpoints (multi-tenant mode)
        route!(Platform, "POST", "/platform/tenants", Platform, platform::create_tenant, platform::create_tenant_doc),
        route!(Platform, "GET", "/platform/tenants", Platform, platform::list_tenants, platform::list_tenants_doc),
        route!(Platform, "POST", "/platform/tenants/:slug/suspend", Platform, platform::suspend, platform::suspend_doc),
        route!(Platform, "POST", "/platform/tenants/:slug/resume", Platform, platform::resume, platform::resume_doc),
        route!(Platform, "GET", "/platform/workers", Platform, platform::workers, platform::workers_doc),
    ]
}

impl Route {
    /// This row as the OpenAPI document describes it.
    pub fn describe(&self) -> RouteDoc {
        RouteDoc {
            surface: self.surface,
            method: self.method,
            pattern: self.pattern,
            access: self.access,
            op: (self.doc)(),
        }
    }
}

/// The whole API's OpenAPI document with relative server URLs (`openpartner openapi`).
pub fn document(single_tenant: bool) -> serde_json::Value {
    let servers = match single_tenant {
        true => "|/api|/r",
        false => "|/api/t/{slug}|/r/{slug}",
    };
    openapi::document_for(
        table().iter().map(Route::describe),
        openapi::Scope::All,
        &openapi::servers(Some(servers)),
    )
}

/// Matches `path` against `pattern`, returning the named parameters.
pub fn match_path(pattern: &str, path: &str) -> Option<Vec<(&'static str, String)>> {
    match_segments(pattern, &segments(path))
}

/// A request path's segments, split once per request.
fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/')
        .trim_start_matches('/')
        .split('/')
        .collect()
}

/// Matches without allocating unless the route matches (dispatch tries many routes).
fn match_segments(pattern: &str, got: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let pat = pattern.trim_matches('/');
    if pat.split('/').count() != got.len() {
        return None;
    }
    let matches = pat.split('/').zip(got).all(|(p, g)| {
        if p.starts_with(':') {
            !g.is_empty()
        } else {
            p == *g
        }
    });
    if !matches {
        return None;
    }
    Some(
        pat.split('/')
            .zip(got)
            .filter_map(|(p, g)| {
                p.strip_prefix(':')
                    .map(|name| (leak_name(name), (*g).to_string()))
            })
            .collect(),
    )
}

/// Parameter names come from the static route table, so they are `'static` already; this
/// maps the borrowed slice back to the table's string without allocating per request.
fn leak_name(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "id",
        "slug",
        "keyId",
        "linkKey",
        "deliveryId",
        "programId",
        "campaignId",
    ];
    KNOWN
        .iter()
        .copied()
        .find(|k| *k == name)
        .unwrap_or("param")
}

/// Routes one envelope: 404/405, authorization, then the handler (under the
/// `Idempotency-Key` rules, `idempotency::run`).
pub async fn dispatch(app: Arc<App>, env: Envelope) -> (Reply, Option<&'static str>) {
    let mut matched = None;
    let reply = dispatch_to(app, env, &mut matched).await;
    (reply, matched)
}

/// [`dispatch`], telling the matched route's pattern through `matched` (for the logs).
async fn dispatch_to(app: Arc<App>, env: Envelope, matched: &mut Option<&'static str>) -> Reply {
    let surface = env.surface();
    let path = env.path.clone();
    let path_segments = segments(&path);
    let mut path_matched = false;
    let mut allowed = Vec::new();
    let mut found = None;
    for (i, r) in app.routes.iter().enumerate() {
        if r.surface != surface {
            continue;
        }
        if let Some(params) = match_segments(r.pattern, &path_segments) {
            path_matched = true;
            allowed.push(r.method);
            if r.method.eq_ignore_ascii_case(&env.method) {
                found = Some((i, params));
                break;
            }
        }
    }
    let Some((i, params)) = found else {
        if path_matched {
            let mut reply: Reply = ApiError::new(
                405,
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here", env.method),
            )
            .into();
            reply.headers.push(("allow".into(), allowed.join(", ")));
            return reply;
        }
        return ApiError::new(404, ErrorCode::NotFound, "no such route").into();
    };
    let route = &app.routes[i];
    *matched = Some(route.pattern);
    tracing::Span::current().record("route", route.pattern);
    let principal = Principal::from_proto(env.principal.as_ref());
    let tenant = env.tenant.as_ref().and_then(TenantRef::from_proto);
    if surface != Surface::Platform && tenant.is_none() {
        tracing::error!("envelope without a valid tenant on a tenant surface");
        return ApiError::internal().into();
    }
    let self_id = params
        .iter()
        .find(|(n, _)| *n == "id")
        .map(|(_, v)| v.as_str());
    if let Err(e) = route.access.check(&principal, self_id) {
        return e.into();
    }
    // PostgreSQL's text cannot hold NUL: refused here for every query parameter at once.
    if env.query.to_ascii_lowercase().contains("%00") {
        return ApiError::invalid_query("query values may not contain the NUL character").into();
    }
    let ctx = Ctx {
        app: app.clone(),
        request_id: env.request_id,
        tenant,
        principal,
        method: env.method,
        path: env.path,
        query: env.query,
        headers: env.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: env.body,
        params,
        client_ip: env.client_ip,
    };
    let tenant_id = ctx.tenant.as_ref().map(|t| t.id.clone());
    let write = !matches!(route.method, "GET" | "HEAD");
    let reply = idempotency::run(ctx, route.handler).await;
    if let (true, Some(tenant_id), true) = (write, tenant_id, reply.status < 400) {
        crate::jobs::after_write(&app, &tenant_id, route.pattern);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_matching() {
        assert_eq!(match_path("/partners", "/partners"), Some(vec![]));
        assert_eq!(match_path("/partners", "/partners/"), Some(vec![]));
        assert_eq!(
            match_path("/partners/:id/revoke", "/partners/abc/revoke"),
            Some(vec![("id", "abc".to_string())])
        );
        assert_eq!(match_path("/partners/:id", "/partners/"), None);
        assert_eq!(match_path("/partners/:id", "/partners/a/b"), None);
        assert_eq!(match_path("/partners", "/partner"), None);
    }

    #[test]
    fn table_has_no_duplicate_routes_and_known_params() {
        let t = table();
        let mut seen = std::collections::HashSet::new();
        for r in &t {
            assert!(
                seen.insert((r.surface, r.method, r.pattern)),
                "duplicate {} {}",
                r.method,
                r.pattern
            );
            for seg in r.pattern.split('/') {
                if let Some(name) = seg.strip_prefix(':') {
                    assert_ne!(leak_name(name), "param", "add `{name}` to KNOWN");
                }
            }
        }
    }
}
