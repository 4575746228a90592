//! Click enrichment (specs/reporting.md): what a click says about its visitor, worked out
//! once when the click is written, so reports never parse anything on read.
//!
//! - device / browser / OS from the `User-Agent`, by `woothee` (a maintained, table-driven
//!   classifier shared by several languages; a few microseconds a click, measured in
//!   BENCHMARKS.md), run in the request's task before the click joins its lane, so the
//!   lane's batch writer does no parsing;
//! - `utm_*` from the router request's query string, which is also carried over to the
//!   destination;
//! - the country from the header the gateway passes on as `x-op-country`: the gateway sets
//!   it only for requests that came through `OP_TRUSTED_PROXIES`, from the first present of
//!   `OP_COUNTRY_HEADERS`, and a client cannot send it itself (the gateway forwards a fixed
//!   list of headers). It is validated here again: two ASCII letters, upper-cased.
//!
//! Everything here is pure.

use std::sync::LazyLock;

/// The `utm_*` parameters a click keeps, in column order.
pub const UTM_PARAMS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// The header through which the gateway hands a trusted country code to the worker.
pub const COUNTRY_HEADER: &str = "x-op-country";

const MAX_UTM: usize = 256;

static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

/// What the `User-Agent` says; `None` where it says nothing recognisable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Device {
    /// `desktop`, `mobile`, `bot`, `appliance` or `other`.
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}

/// Device, browser and OS of a `User-Agent`.
pub fn device(user_agent: Option<&str>) -> Device {
    let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else {
        return Device::default();
    };
    let Some(r) = PARSER.parse(ua) else {
        return Device::default();
    };
    let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_string());
    let device = match r.category {
        "pc" => Some("desktop"),
        "smartphone" | "mobilephone" => Some("mobile"),
        "crawler" => Some("bot"),
        "appliance" => Some("appliance"),
        "misc" => Some("other"),
        _ => None,
    };
    Device {
        device: device.map(str::to_string),
        browser: known(r.name),
        os: known(r.os),
    }
}

/// A country code as stored: two ASCII letters, upper-cased; anything else is no country.
pub fn country(raw: Option<&str>) -> Option<String> {
    let v = raw?.trim();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic())).then(|| v.to_ascii_uppercase())
}

/// The `utm_*` values of a query (the first of each name; blank is none; at most 256
/// characters, control characters dropped), in [`UTM_PARAMS`] order.
pub fn utm(query: &[(String, String)]) -> [Option<String>; 5] {
    UTM_PARAMS.map(|name| {
        let v = query.iter().find(|(k, _)| k == name)?.1.as_str();
        let v: String = crate::context::truncate(v.trim(), MAX_UTM)
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        (!v.is_empty()).then_some(v)
    })
}

/// `destination` with the router request's query parameters carried over: each one
/// replaces the destination's parameters of its name (`cref` is never carried: the router
/// adds its own). An unparsable destination is returned unchanged.
pub fn carry_query(destination: &str, query: &[(String, String)]) -> String {
    let carried: Vec<&(String, String)> = query.iter().filter(|(k, _)| k != "cref").collect();
    if carried.is_empty() {
        return destination.to_string();
    }
    let Ok(mut url) = url::Url::parse(destination) else {
        return destination.to_string();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !carried.iter().any(|(c, _)| c == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    {
        let mut q = url.query_pairs_mut();
        q.extend_pairs(kept);
        q.extend_pairs(carried.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn user_agents_are_classified() {
        let chrome = device(Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"));
        assert_eq!(chrome.device.as_deref(), Some("desktop"));
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.os.as_deref(), Some("Windows 10"));
        let iphone = device(Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"));
        assert_eq!(iphone.device.as_deref(), Some("mobile"));
        assert_eq!(iphone.browser.as_deref(), Some("Safari"));
        assert_eq!(iphone.os.as_deref(), Some("iPhone"));
        let bot = device(Some(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ));
        assert_eq!(bot.device.as_deref(), Some("bot"));
        assert_eq!(device(None), Device::default());
        assert_eq!(device(Some("   ")), Device::default());
        assert_eq!(device(Some("curl-like-thing/0")).browser, None);
    }

    #[test]
    fn countries_are_two_letters_upper_cased() {
        assert_eq!(country(Some("de")).as_deref(), Some("DE"));
        assert_eq!(country(Some(" US ")).as_deref(), Some("US"));
        assert_eq!(country(Some("XX")).as_deref(), Some("XX"));
        assert_eq!(country(Some("USA")), None);
        assert_eq!(country(Some("1A")), None);
        assert_eq!(country(Some("")), None);
        assert_eq!(country(Some("é")), None);
        assert_eq!(country(None), None);
    }

    #[test]
    fn utm_parameters_are_read_in_column_order() {
        let u = utm(&pairs(
            "utm_medium=cpc&utm_source=news%20letter&x=1&utm_term=&utm_source=second",
        ));
        assert_eq!(
            u,
            [
                Some("news letter".to_string()),
                Some("cpc".to_string()),
                None,
                None,
                None
            ]
        );
        let long = "a".repeat(1000);
        assert_eq!(
            utm(&pairs(&format!("utm_content={long}")))[4]
                .as_ref()
                .unwrap()
                .len(),
            256
        );
    }

    #[test]
    fn the_router_query_is_carried_to_the_destination() {
        assert_eq!(
            carry_query(
                "https://shop.example/p?a=1&utm_source=old#f",
                &pairs("utm_source=nl&b=2&cref=evil")
            ),
            "https://shop.example/p?a=1&utm_source=nl&b=2#f"
        );
        assert_eq!(
            carry_query("https://shop.example/", &[]),
            "https://shop.example/"
        );
        assert_eq!(carry_query("not a url", &pairs("a=1")), "not a url");
    }
}
