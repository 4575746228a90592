//! Which tenant a request is for: the URL prefix (by mode) and a slug → tenant cache.
//!
//! The cache is dropped entry by entry when a tenant changes: synchronously from a worker's
//! reply on this gateway, and via `LISTEN op_cache` for every other gateway.

use crate::{edge_error::EdgeError, State};
use op_control::{
    tenants::{self, Tenant},
    Mode,
};
use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

/// Where a request goes, from its path alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Health,
    Ready,
    Metrics,
    /// `/openapi.json`: the whole API's description.
    OpenApi,
    /// `/platform/...`: the full path is the route.
    Platform(&'a str),
    /// An API call for tenant `slug` (None in single mode) with the tenant-relative route.
    Api {
        slug: Option<&'a str>,
        route: &'a str,
    },
    /// A click: `/r/<slug>/<linkKey>` or `/r/<linkKey>`.
    Router {
        slug: Option<&'a str>,
        route: &'a str,
    },
    /// The portal (the web app): `/t/<slug>/<path>` in multi mode, any other path in single
    /// mode. `path` is relative to the portal's root, without a leading `/` (`""` is the
    /// root; in multi mode `/t/<slug>` alone has `path: None`, which redirects to `/t/<slug>/`).
    Portal {
        slug: Option<&'a str>,
        path: Option<&'a str>,
    },
    /// `/api/...` without `t/<slug>` in multi mode.
    SlugMissing,
    NotFound,
}

/// Splits `path` into its target. `route` keeps a leading `/`.
pub fn classify(mode: Mode, path: &str) -> Target<'_> {
    match path {
        "/health" => return Target::Health,
        "/ready" => return Target::Ready,
        "/metrics" => return Target::Metrics,
        "/openapi.json" => return Target::OpenApi,
        _ => {}
    }
    if path == "/platform" || path.starts_with("/platform/") {
        return match mode {
            Mode::Multi => Target::Platform(path),
            Mode::Single => Target::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix("/api") {
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Target::NotFound;
        }
        return match mode {
            Mode::Single => Target::Api {
                slug: None,
                route: if rest.is_empty() { "/" } else { rest },
            },
            Mode::Multi => match rest.strip_prefix("/t/") {
                Some(after) => {
                    let (slug, route) = match after.find('/') {
                        Some(i) => (&after[..i], &after[i..]),
                        None => (after, "/"),
                    };
                    Target::Api {
                        slug: Some(slug),
                        route,
                    }
                }
                None => Target::SlugMissing,
            },
        };
    }
    if path == "/r" {
        return Target::NotFound;
    }
    if let Some(rest) = path.strip_prefix("/r/") {
        return match mode {
            Mode::Single => Target::Router {
                slug: None,
                route: &path[2..],
            },
            Mode::Multi => match rest.find('/') {
                Some(i) => Target::Router {
                    slug: Some(&rest[..i]),
                    route: &rest[i..],
                },
                None => Target::NotFound,
            },
        };
    }
    // Whatever is left is the portal's: a tenant's under `/t/<slug>/` (hosted), the one
    // tenant's at `/` (self-hosted). The API's own paths were all claimed above.
    match mode {
        Mode::Single => Target::Portal {
            slug: None,
            path: Some(&path[1.min(path.len())..]),
        },
        Mode::Multi => match path.strip_prefix("/t/") {
            Some(after) if !after.is_empty() => match after.find('/') {
                Some(i) => Target::Portal {
                    slug: Some(&after[..i]),
                    path: Some(&after[i + 1..]),
                },
                None => Target::Portal {
                    slug: Some(after),
                    path: None,
                },
            },
            _ => Target::NotFound,
        },
    }
}

/// The active tenant a tenant-surface request is for: the one tenant in single mode, the
/// slug's in multi mode. Unknown and suspended tenants are refused here, before any
/// credential is looked at.
pub async fn resolve_tenant(state: &State, slug: Option<&str>) -> Result<Tenant, EdgeError> {
    let tenant = match (state.config.mode, slug) {
        (Mode::Single, _) => state.single_tenant.clone(),
        (Mode::Multi, Some(slug)) => {
            state
                .tenants
                .resolve(&state.pool, slug)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "tenant lookup failed");
                    EdgeError::ControlPlaneUnavailable
                })?
        }
        (Mode::Multi, None) => None,
    };
    let tenant = tenant.ok_or(EdgeError::TenantNotFound)?;
    if !tenant.is_active() {
        return Err(EdgeError::TenantSuspended);
    }
    Ok(tenant)
}

const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Unknown slugs are remembered briefly so a scan of random slugs does not hit the database
/// per request; provisioning invalidates the entry at once anyway.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct TenantCache {
    entries: RwLock<HashMap<String, (Option<Tenant>, Instant)>>,
}

impl TenantCache {
    pub fn get(&self, slug: &str) -> Option<Option<Tenant>> {
        let map = self.entries.read().expect("tenant cache lock");
        let (tenant, at) = map.get(slug)?;
        let ttl = if tenant.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        };
        (at.elapsed() < ttl).then(|| tenant.clone())
    }

    pub fn put(&self, slug: &str, tenant: Option<Tenant>) {
        let mut map = self.entries.write().expect("tenant cache lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(slug.to_string(), (tenant, Instant::now()));
    }

    pub fn invalidate(&self, slug: &str) {
        self.entries
            .write()
            .expect("tenant cache lock")
            .remove(slug);
    }

    pub fn clear(&self) {
        self.entries.write().expect("tenant cache lock").clear();
    }

    /// Resolves `slug`, from the cache or the control plane. Malformed slugs never reach the database.
    pub async fn resolve(
        &self,
        pool: &deadpool_postgres::Pool,
        slug: &str,
    ) -> Result<Option<Tenant>, crate::GatewayError> {
        if !tenants::valid_slug(slug) {
            return Ok(None);
        }
        if let Some(hit) = self.get(slug) {
            return Ok(hit);
        }
        let conn = pool.get().await?;
        let tenant = tenants::find_by_slug(&**conn, slug).await?;
        self.put(slug, tenant.clone());
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_mode_paths() {
        let m = Mode::Multi;
        assert_eq!(classify(m, "/health"), Target::Health);
        assert_eq!(classify(m, "/api/partners"), Target::SlugMissing);
        assert_eq!(classify(m, "/api"), Target::SlugMissing);
        assert_eq!(
            classify(m, "/api/t/acme/partners/1"),
            Target::Api {
                slug: Some("acme"),
                route: "/partners/1"
            }
        );
        assert_eq!(
            classify(m, "/api/t/acme"),
            Target::Api {
                slug: Some("acme"),
                route: "/"
            }
        );
        assert_eq!(classify(m, "/apix"), Target::NotFound);
        assert_eq!(
            classify(m, "/r/acme/key1"),
            Target::Router {
                slug: Some("acme"),
                route: "/key1"
            }
        );
        assert_eq!(classify(m, "/r/key1"), Target::NotFound);
        assert_eq!(
            classify(m, "/platform/tenants"),
            Target::Platform("/platform/tenants")
        );
        assert_eq!(classify(m, "/"), Target::NotFound);
        assert_eq!(classify(m, "/t/"), Target::NotFound);
        assert_eq!(
            classify(m, "/t/acme"),
            Target::Portal {
                slug: Some("acme"),
                path: None
            }
        );
        assert_eq!(
            classify(m, "/t/acme/"),
            Target::Portal {
                slug: Some("acme"),
                path: Some("")
            }
        );
        assert_eq!(
            classify(m, "/t/acme/partners/01J"),
            Target::Portal {
                slug: Some("acme"),
                path: Some("partners/01J")
            }
        );
        // The API's paths never reach the portal.
        assert!(matches!(
            classify(m, "/api/t/acme/nope"),
            Target::Api { .. }
        ));
        assert_eq!(classify(m, "/openapi.json"), Target::OpenApi);
    }

    #[test]
    fn single_mode_paths() {
        let s = Mode::Single;
        assert_eq!(
            classify(s, "/api/partners"),
            Target::Api {
                slug: None,
                route: "/partners"
            }
        );
        assert_eq!(
            classify(s, "/r/key1"),
            Target::Router {
                slug: None,
                route: "/key1"
            }
        );
        assert_eq!(classify(s, "/platform/tenants"), Target::NotFound);
        assert_eq!(
            classify(s, "/"),
            Target::Portal {
                slug: None,
                path: Some("")
            }
        );
        assert_eq!(
            classify(s, "/commissions"),
            Target::Portal {
                slug: None,
                path: Some("commissions")
            }
        );
        assert_eq!(classify(s, "/r"), Target::NotFound);
        assert_eq!(classify(s, "/health"), Target::Health);
        assert!(matches!(classify(s, "/api"), Target::Api { .. }));
    }
}
