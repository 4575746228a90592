//! The set-up steps tests share, named after what the API docs call them: a partner, a
//! campaign, a partner's link on it, a click on the link, the visitor identified as a user,
//! an event of that user; and signing in by magic link. Each step makes new rows in the
//! test's own tenant (nothing is shared between tests) and fails the test on the spot when
//! the API refuses it, so a test states only what it is about:
//!
//! ```ignore
//! let link = t.campaign_link(json!({"commissionRule": percent("20")})).await;
//! let cref = t.identified_click(&link, "user-1").await;
//! let r = t.event(json!({"userId": "user-1", "type": "invoice.paid", "value": "100.00"})).await;
//! ```

use super::{unique_slug, Api, Resp, Tenant};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};

/// A campaign as `POST /campaigns` answered it.
pub struct Campaign {
    pub id: String,
    pub body: Value,
}

/// A partner's tracking link on a campaign.
pub struct Link {
    pub id: String,
    pub key: String,
    pub partner: String,
    pub campaign: String,
}

/// What the click router answered a browser.
pub struct Click {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Click {
    pub fn location(&self) -> &str {
        self.headers["location"].to_str().expect("a Location")
    }

    /// The click id, from the `cref` the redirect carries.
    pub fn cref(&self) -> String {
        let url = url::Url::parse(self.location()).expect("Location is a URL");
        url.query_pairs()
            .find(|(k, _)| k == "cref")
            .map(|(_, v)| v.into_owned())
            .expect("cref in Location")
    }
}

/// A commission rule paying `value` percent of an event's value.
pub fn percent(value: &str) -> Value {
    json!({"type": "percent", "value": value})
}

/// A unique documentation-range address per call, so tests never share an IP's budget
/// (the click router's per-IP cap and velocity flag).
pub fn ip() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed) + std::process::id() % 1000 * 50;
    format!("198.18.{}.{}", n / 250 % 256, n % 250 + 1)
}

/// `GET url` as a browser behind a trusted proxy at `ip`, not following the redirect.
pub async fn visit(url: &str, ip: &str) -> Click {
    browse(
        url,
        &[
            ("x-forwarded-for", ip),
            ("user-agent", "Mozilla/5.0 (e2e)"),
            ("referer", "https://blog.example/post"),
        ],
    )
    .await
}

/// `GET url` with exactly `headers`, not following the redirect.
pub async fn browse(url: &str, headers: &[(&str, &str)]) -> Click {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("the router answers");
    Click {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.expect("body"),
    }
}

/// The commission of the first touch in the reply to `POST /attribution/events`.
pub fn commission_of(reply: &Value) -> String {
    reply["attribution"]["touches"][0]["commissionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a commission: {reply}"))
        .to_string()
}

/// The magic-link token inside a mail body (`...?token=<43 chars>&tenant=...`).
pub fn token_in(body: &str) -> String {
    let i = body.find("token=").expect("mail carries a token") + "token=".len();
    body[i..i + 43].to_string()
}

impl Tenant {
    /// The gateway this tenant is reached through (`http://127.0.0.1:<port>`).
    pub fn gateway_url(&self) -> &str {
        self.api.base.split("/api/").next().expect("an API base")
    }

    /// This tenant's API through another gateway on the same cluster, with the admin key.
    pub fn api_via(&self, gateway: &str) -> Api {
        Api::new(
            format!("{gateway}/api/t/{}", self.slug),
            Some(&self.admin_key),
        )
    }

    /// An active partner (no invite mail) with `email`.
    pub async fn partner(&self, email: &str) -> Value {
        self.api
            .post(
                "/partners",
                json!({"email": email, "name": "P", "sendInvite": false}),
            )
            .await
            .expect(201)
            .body
    }

    /// A partner invited by mail (`POST /partners` with the API's default `sendInvite`).
    pub async fn invited_partner(&self, email: &str, name: &str) -> Value {
        self.api
            .post("/partners", json!({"email": email, "name": name}))
            .await
            .expect(201)
            .body
    }

    /// Revokes `partner` without mailing it (`notify: false`).
    pub async fn revoke_partner(&self, partner: &str) {
        self.api
            .post(
                &format!("/partners/{partner}/revoke"),
                json!({"notify": false}),
            )
            .await
            .expect(200);
    }

    /// Revokes `partner` with the API's defaults (`{}`: the partner is mailed).
    pub async fn revoke_partner_notified(&self, partner: &str) {
        self.post_ok(&format!("/partners/{partner}/revoke")).await;
    }

    /// `POST path` with an empty object, answered `200`.
    async fn post_ok(&self, path: &str) {
        self.api.post(path, json!({})).await.expect(200);
    }

    /// A new API key of `partner` (`POST /partners/:id/api-keys`): its plaintext.
    pub async fn partner_key(&self, partner: &str) -> String {
        let r = self
            .api
            .post(&format!("/partners/{partner}/api-keys"), json!({}))
            .await
            .expect(201);
        r.body["key"].as_str().expect("key").to_string()
    }

    /// A new scoped API key (`POST /api-keys` with `scopes`): its plaintext.
    pub async fn scoped_key(&self, scopes: &[&str]) -> String {
        let r = self
            .api
            .post("/api-keys", json!({ "scopes": scopes }))
            .await
            .expect(201);
        r.body["key"].as_str().expect("key").to_string()
    }

    /// This tenant's API authenticated by a new key of `partner`.
    pub async fn partner_api(&self, partner: &str) -> Api {
        self.api.with_key(Some(&self.partner_key(partner).await))
    }

    /// This tenant's API authenticated by a new key of `scopes`.
    pub async fn scoped_api(&self, scopes: &[&str]) -> Api {
        self.api.with_key(Some(&self.scoped_key(scopes).await))
    }

    /// A webhook endpoint on `url` for `events` (`POST /webhooks`): its id and its secret.
    pub async fn webhook(&self, url: &str, events: Value) -> (String, String) {
        let r = self
            .api
            .post("/webhooks", json!({"url": url, "events": events}))
            .await
            .expect(201);
        (
            r.body["endpoint"]["id"].as_str().expect("id").to_string(),
            r.body["secret"].as_str().expect("secret").to_string(),
        )
    }

    /// `GET /webhooks/:id/deliveries`: the endpoint's delivery log.
    pub async fn deliveries(&self, endpoint: &str) -> Resp {
        self.api
            .get(&format!("/webhooks/{endpoint}/deliveries"))
            .await
            .expect(200)
    }

    /// `POST /campaigns` with `fields` over a name, a `shop.example` destination and a
    /// 10 % rule; what `fields` leaves out keeps the API's own default.
    pub async fn campaign(&self, fields: Value) -> Campaign {
        let mut body = json!({
            "name": "C",
            "destinationUrl": "https://shop.example/landing?src=op#top",
            "commissionRule": percent("10"),
        });
        for (k, v) in fields.as_object().expect("campaign fields are an object") {
            body[k] = v.clone();
        }
        let body = self.api.post("/campaigns", body).await.expect(201).body;
        Campaign {
            id: body["id"].as_str().expect("id").to_string(),
            body,
        }
    }

    /// `PATCH /campaigns/:id` with `fields`, answered `200`.
    pub async fn patch_campaign(&self, campaign: &str, fields: Value) -> Resp {
        self.api
            .patch(&format!("/campaigns/{campaign}"), fields)
            .await
            .expect(200)
    }

    /// `POST /attribution/rederive` of `campaign`, answered `200` (with the counts).
    pub async fn rederive(&self, campaign: &str) -> Resp {
        self.api
            .post("/attribution/rederive", json!({ "campaignId": campaign }))
            .await
            .expect(200)
    }

    /// A new partner with a link (under a fresh key) on `campaign`.
    pub async fn partner_link(&self, campaign: &str) -> Link {
        let p = self
            .partner(&format!("{}@example.com", unique_slug("p")))
            .await;
        self.link(p["id"].as_str().expect("id"), campaign).await
    }

    /// Another link (under a fresh key) of `partner` on `campaign`.
    pub async fn link(&self, partner: &str, campaign: &str) -> Link {
        let partner = partner.to_string();
        let key = unique_slug("lk");
        let l = self
            .api
            .post(
                &format!("/partners/{partner}/links"),
                json!({"linkKey": key, "campaignId": campaign}),
            )
            .await
            .expect(201)
            .body;
        Link {
            id: l["id"].as_str().expect("id").to_string(),
            key,
            partner,
            campaign: campaign.to_string(),
        }
    }

    /// A campaign made of `fields` (see [`Tenant::campaign`]) and one partner's link on it.
    pub async fn campaign_link(&self, fields: Value) -> Link {
        let c = self.campaign(fields).await;
        self.partner_link(&c.id).await
    }

    /// The click router's address of link `key`: `<gateway>/r/<slug>/<key>`.
    pub fn link_url(&self, key: &str) -> String {
        format!("{}/r/{}/{key}", self.gateway_url(), self.slug)
    }

    /// A browser's click on `link` (from an address of its own): the click id (`cref`).
    pub async fn click(&self, link: &Link) -> String {
        let c = visit(&self.link_url(&link.key), &ip()).await;
        assert_eq!(c.status, 302, "{}", c.body);
        c.cref()
    }

    /// `POST /attribution/identify` as the merchant's page sends it (no credentials).
    pub async fn identify(&self, cref: &str, user: &str) -> Resp {
        self.api
            .with_key(None)
            .post(
                "/attribution/identify",
                json!({"cref": cref, "userId": user, "ts": 1764000000000u64}),
            )
            .await
    }

    /// A click on `link` whose visitor is then identified as `user`: the click id.
    pub async fn identified_click(&self, link: &Link, user: &str) -> String {
        let cref = self.click(link).await;
        self.identify(&cref, user).await.expect(200);
        cref
    }

    /// `POST /attribution/events`.
    pub async fn event(&self, body: Value) -> Resp {
        self.api.post("/attribution/events", body).await
    }

    /// Approves `commission` (`POST /commissions/:id/approve`).
    pub async fn approve(&self, commission: &str) {
        self.post_ok(&format!("/commissions/{commission}/approve"))
            .await;
    }

    /// Reverses `commission` (`POST /commissions/:id/reverse`, no reason).
    pub async fn reverse(&self, commission: &str) {
        self.post_ok(&format!("/commissions/{commission}/reverse"))
            .await;
    }

    /// The newest mail to `to` in the tenant's dev mailbox.
    pub async fn last_mail(&self, to: &str) -> Option<Value> {
        let r = self
            .api
            .get(&format!("/dev/mailbox?to={}", to.replace('@', "%40")))
            .await
            .expect(200);
        r.body["data"].as_array().and_then(|d| d.first().cloned())
    }

    /// Asks for a magic link for `email` (as the portal does) and returns its token from the
    /// dev mailbox.
    pub async fn magic_link_token(&self, email: &str) -> String {
        self.request_magic_link(email).await;
        let mail = self.last_mail(email).await.expect("a mail was sent");
        token_in(mail["body"].as_str().expect("a body"))
    }

    /// Signs `email` in through the link in the newest mail it got (an invite, or a link
    /// asked for already); returns the cookie pair (`op_session=...`) and the verify
    /// response.
    pub async fn follow_mailed_link(&self, email: &str) -> (String, Resp) {
        let mail = self.last_mail(email).await.expect("a mail was sent");
        let token = token_in(mail["body"].as_str().expect("a body"));
        let r = self.verify_magic_link(&token).await.expect(200);
        let set_cookie = r.headers["set-cookie"].to_str().expect("a cookie");
        let pair = set_cookie.split(';').next().expect("a pair").to_string();
        (pair, r)
    }

    /// Signs `email` in as the portal does: asks for a magic link, takes it from the dev
    /// mailbox and verifies it. Returns the cookie pair and the verify response.
    pub async fn sign_in(&self, email: &str) -> (String, Resp) {
        self.request_magic_link(email).await;
        self.follow_mailed_link(email).await
    }

    /// `POST /auth/magic/verify` of `token`, without credentials, as the portal sends it.
    pub async fn verify_magic_link(&self, token: &str) -> Resp {
        self.api
            .with_key(None)
            .post("/auth/magic/verify", json!({ "token": token }))
            .await
    }

    /// `POST /auth/magic/request` for `email`, without credentials, as the portal sends it.
    pub async fn request_magic_link(&self, email: &str) {
        self.api
            .with_key(None)
            .post("/auth/magic/request", json!({ "email": email }))
            .await
            .expect(200);
    }
}
