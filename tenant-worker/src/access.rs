//! Authorization: who the gateway says the caller is ([`Principal`]) and what each route
//! admits ([`Access`]). The gateway authenticates; only the worker decides "may you do this".

use crate::error::{ApiError, ErrorCode};
use op_proto::v1::{self, PrincipalKind};

/// The scopes a scoped key can carry. Each route that admits scoped keys names one, so the
/// route table cannot name a scope that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    EventsWrite,
    PartnersWrite,
    PartnersRead,
    CommissionsRead,
    LinksWrite,
    WebhooksWrite,
    ClicksWrite,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[
        Scope::EventsWrite,
        Scope::PartnersWrite,
        Scope::PartnersRead,
        Scope::CommissionsRead,
        Scope::LinksWrite,
        Scope::WebhooksWrite,
        Scope::ClicksWrite,
    ];

    /// The scope as keys carry it and the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::PartnersWrite => "partners:write",
            Scope::PartnersRead => "partners:read",
            Scope::CommissionsRead => "commissions:read",
            Scope::LinksWrite => "links:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::ClicksWrite => "clicks:write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// An admin key (`key_id`), `ADMIN_API_KEY` (neither), or an admin's session.
    Admin {
        key_id: Option<String>,
        session: Option<Session>,
    },
    Scoped {
        key_id: String,
        scopes: Vec<String>,
    },
    /// A partner key or a partner's session.
    Partner {
        partner_id: String,
        key_id: Option<String>,
        session_id: Option<String>,
    },
    Platform,
    /// The worker itself, in a background job (the auto-approve sweep): never built from
    /// an envelope, so no request is ever this principal.
    System,
}

/// A signed-in admin: the session row and the admin it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub admin_id: String,
}

impl Principal {
    pub fn from_proto(p: Option<&v1::Principal>) -> Principal {
        let Some(p) = p else {
            return Principal::Anonymous;
        };
        let key_id = (!p.key_id.is_empty()).then(|| p.key_id.clone());
        let session_id = (!p.session_id.is_empty()).then(|| p.session_id.clone());
        match p.kind() {
            PrincipalKind::PrincipalAnonymous => Principal::Anonymous,
            PrincipalKind::PrincipalAdmin => Principal::Admin {
                key_id,
                session: session_id.map(|id| Session {
                    id,
                    admin_id: p.admin_id.clone(),
                }),
            },
            PrincipalKind::PrincipalScoped => Principal::Scoped {
                key_id: p.key_id.clone(),
                scopes: p.scopes.clone(),
            },
            PrincipalKind::PrincipalPartner => Principal::Partner {
                partner_id: p.partner_id.clone(),
                key_id,
                session_id,
            },
            PrincipalKind::PrincipalPlatform => Principal::Platform,
        }
    }

    /// The session this request rides on, if any (the worker checks it is still live).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Principal::Admin {
                session: Some(s), ..
            } => Some(s.id.as_str()),
            Principal::Partner {
                session_id: Some(s),
                ..
            } => Some(s.as_str()),
            _ => None,
        }
    }

    /// Who did it, for audit rows: the key, admin or partner id (never a secret).
    pub fn audit_id(&self) -> Option<String> {
        match self {
            Principal::Admin {
                session: Some(s), ..
            } => Some(s.admin_id.clone()),
            Principal::Admin { key_id, .. } => key_id.clone(),
            Principal::Scoped { key_id, .. } => Some(key_id.clone()),
            Principal::Partner { partner_id, .. } => Some(partner_id.clone()),
            Principal::Anonymous | Principal::Platform | Principal::System => None,
        }
    }

    /// The kind, for logs and audit rows (never the key itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Admin { .. } => "admin",
            Principal::Scoped { .. } => "scoped",
            Principal::Partner { .. } => "partner",
            Principal::Platform => "platform",
            Principal::System => "system",
        }
    }
}

/// What a route admits. Lives next to the route in the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no credentials (e.g. the click router).
    Public,
    /// The operator (`OP_PLATFORM_KEY`), on the platform surface only.
    Platform,
    /// Admins only; scoped and partner principals get `403 forbidden`.
    Admin,
    /// Admins, or scoped keys holding the scope.
    AdminOrScope(Scope),
    /// Admins, scoped keys holding the scope (if any), or the partner named by the route's
    /// `:id` parameter acting on itself.
    AdminScopeOrSelf(Option<Scope>),
    /// Admins and partners; the handler restricts a partner to what it owns.
    AdminOrPartner,
    /// Any authenticated principal of the tenant (`/auth/me`, `/auth/introspect`).
    Authenticated,
}

impl Access {
    /// The scope a scoped key would need, for the `forbidden_scope` error and the docs.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Access::AdminOrScope(s) => Some(s),
            Access::AdminScopeOrSelf(s) => s,
            _ => None,
        }
    }

    /// Decides. `self_partner_id` is the `:id` of the route, for [`Access::AdminScopeOrSelf`].
    pub fn check(self, who: &Principal, self_partner_id: Option<&str>) -> Result<(), ApiError> {
        match (self, who) {
            (Access::Public, _) => Ok(()),
            (Access::Platform, Principal::Platform) => Ok(()),
            (_, Principal::Anonymous | Principal::Platform | Principal::System)
            | (Access::Platform, _) => Err(ApiError::unauthorized()),
            (_, Principal::Admin { .. }) | (Access::Authenticated, _) => Ok(()),
            (Access::AdminOrPartner, Principal::Partner { .. }) => Ok(()),
            (Access::AdminScopeOrSelf(_), Principal::Partner { partner_id, .. })
                if self_partner_id == Some(partner_id.as_str()) =>
            {
                Ok(())
            }
            (_, Principal::Scoped { scopes, .. }) => match self.scope() {
                Some(s) if scopes.iter().any(|have| have == s.as_str()) => Ok(()),
                Some(s) => Err(ApiError::new(
                    403,
                    ErrorCode::ForbiddenScope,
                    format!("this key lacks the `{}` scope", s.as_str()),
                )
                .with("required", s.as_str())),
                None => Err(ApiError::forbidden("this route needs an admin key")),
            },
            (_, Principal::Partner { .. }) => Err(ApiError::forbidden(
                "a partner may only act on its own resources",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoped(s: &[&str]) -> Principal {
        Principal::Scoped {
            key_id: "k".into(),
            scopes: s.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn partner(id: &str) -> Principal {
        Principal::Partner {
            partner_id: id.into(),
            key_id: None,
            session_id: None,
        }
    }

    fn status(r: Result<(), ApiError>) -> u16 {
        r.err().map_or(200, |e| e.status)
    }

    #[test]
    fn admin_reaches_everything_but_platform() {
        let admin = Principal::Admin {
            key_id: None,
            session: None,
        };
        assert_eq!(status(Access::Admin.check(&admin, None)), 200);
        assert_eq!(
            status(Access::AdminOrScope(Scope::PartnersRead).check(&admin, None)),
            200
        );
        assert_eq!(status(Access::Platform.check(&admin, None)), 401);
    }

    #[test]
    fn scoped_keys_reach_only_their_scopes() {
        let k = scoped(&["partners:read"]);
        assert_eq!(
            status(Access::AdminOrScope(Scope::PartnersRead).check(&k, None)),
            200
        );
        let e = Access::AdminOrScope(Scope::PartnersWrite)
            .check(&k, None)
            .unwrap_err();
        assert_eq!((e.status, e.code), (403, ErrorCode::ForbiddenScope));
        assert_eq!(e.extra["required"], "partners:write");
        assert_eq!(
            Access::Admin.check(&k, None).unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            status(Access::AdminScopeOrSelf(Some(Scope::PartnersRead)).check(&k, Some("p1"))),
            200
        );
    }

    #[test]
    fn partners_act_only_on_themselves() {
        let p = partner("p1");
        assert_eq!(
            status(Access::AdminScopeOrSelf(None).check(&p, Some("p1"))),
            200
        );
        assert_eq!(
            status(Access::AdminScopeOrSelf(None).check(&p, Some("p2"))),
            403
        );
        assert_eq!(status(Access::Admin.check(&p, None)), 403);
        assert_eq!(
            status(Access::AdminOrScope(Scope::PartnersRead).check(&p, None)),
            403
        );
    }

    #[test]
    fn anonymous_gets_401_except_public() {
        assert_eq!(
            status(Access::Admin.check(&Principal::Anonymous, None)),
            401
        );
        assert_eq!(
            status(Access::Public.check(&Principal::Anonymous, None)),
            200
        );
        assert_eq!(
            status(Access::Platform.check(&Principal::Platform, None)),
            200
        );
        assert_eq!(status(Access::Admin.check(&Principal::Platform, None)), 401);
    }
}
