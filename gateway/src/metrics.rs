//! `GET /metrics` (Prometheus text; bearer `METRICS_TOKEN` if set).
//!
//! Two kinds of series:
//! - the gateway's own (`op_` prefix): requests by surface and status class, latency, healthy
//!   workers — labelled by surface, never by tenant;
//! - the original OpenPartner's domain counters (`openpartner_*`, same names so existing
//!   dashboards keep working), summed over every tenant schema at scrape time (one
//!   `UNION ALL` query per 100 tenants) and cached for 10 s so scrapes stay cheap.

use crate::{tenancy::Target, State};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use std::{
    fmt::Write,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    surface: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SurfaceLabels {
    surface: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<SurfaceLabels, Histogram>,
    workers_healthy: Gauge,
    domain: Mutex<Option<(Instant, String)>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "op_gateway_requests",
            "Requests answered, by surface and status class",
            requests.clone(),
        );
        let latency = Family::<SurfaceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "op_gateway_request_duration_seconds",
            "Time to answer, by surface",
            latency.clone(),
        );
        let workers_healthy = Gauge::default();
        registry.register(
            "op_gateway_workers_healthy",
            "Workers passing health checks",
            workers_healthy.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            workers_healthy,
            domain: Mutex::new(None),
        }
    }
}

/// The `surface` label, from the path's classification, so that a request is counted
/// under the surface that actually served it. Unroutable paths count as `service`.
fn surface_label(target: &Target) -> &'static str {
    match target {
        Target::Api { .. } | Target::SlugMissing => "api",
        Target::Router { .. } => "router",
        Target::Portal { .. } => "portal",
        Target::Platform(_) | Target::OpenApi => "platform",
        Target::Health | Target::Ready | Target::Metrics | Target::NotFound => "service",
    }
}

impl Metrics {
    pub fn observe(&self, target: &Target, status: u16, elapsed: Duration) {
        let surface = surface_label(target);
        let class = format!("{}xx", status / 100);
        self.requests
            .get_or_create(&RequestLabels {
                surface: surface.into(),
                status: class,
            })
            .inc();
        self.latency
            .get_or_create(&SurfaceLabels {
                surface: surface.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The metrics page.
pub async fn render(state: &State) -> String {
    state
        .metrics
        .workers_healthy
        .set(state.workers.healthy_count() as i64);
    let mut out = String::new();
    let _ = encode(&mut out, &state.metrics.registry);
    // `encode` ends with `# EOF`; the domain series go before it.
    if let Some(stripped) = out.strip_suffix("# EOF\n") {
        out = stripped.to_string();
    }
    out.push_str(&domain(state).await);
    out.push_str("# EOF\n");
    out
}

async fn domain(state: &State) -> String {
    if let Some((at, text)) = state.metrics.domain.lock().expect("metrics lock").as_ref() {
        if at.elapsed() < Duration::from_secs(10) {
            return text.clone();
        }
    }
    let text = match count(state).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "domain metrics unavailable");
            return String::new();
        }
    };
    *state.metrics.domain.lock().expect("metrics lock") = Some((Instant::now(), text.clone()));
    text
}

const SERIES: &[(&str, &str)] = &[
    (
        "clicks",
        "SELECT 'clicks', NULL::text, count(*) FROM {s}.clicks",
    ),
    (
        "clicks_flagged",
        "SELECT 'clicks_flagged', NULL, count(*) FROM {s}.clicks WHERE fraud_flag IS NOT NULL",
    ),
    (
        "identities",
        "SELECT 'identities', NULL, count(*) FROM {s}.identities",
    ),
    ("events", "SELECT 'events', NULL, count(*) FROM {s}.events"),
    (
        "attributions",
        "SELECT 'attributions', NULL, count(*) FROM {s}.attributions",
    ),
    (
        "commissions",
        "SELECT 'commissions', status, count(*) FROM {s}.commissions GROUP BY status",
    ),
    (
        "payouts",
        "SELECT 'payouts', status, count(*) FROM {s}.payouts GROUP BY status",
    ),
];

async fn count(state: &State) -> Result<String, crate::GatewayError> {
    let conn = state.pool.get().await?;
    // Tenants whose schema has every table counted here (migration 4 added payouts).
    let tenants: Vec<String> = conn
        .query(
            "SELECT id FROM control.tenants WHERE schema_version >= 4 ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut totals: std::collections::BTreeMap<(String, Option<String>), i64> = Default::default();
    for chunk in tenants.chunks(100) {
        let parts: Vec<String> = chunk
            .iter()
            .filter_map(|id| op_control::schema::Schema::of_tenant(id))
            .flat_map(|s| {
                let s = s.to_string();
                SERIES.iter().map(move |(_, sql)| sql.replace("{s}", &s))
            })
            .collect();
        for r in conn.query(parts.join(" UNION ALL ").as_str(), &[]).await? {
            *totals.entry((r.get(0), r.get(1))).or_default() += r.get::<_, i64>(2);
        }
    }
    let mut out = String::new();
    for (name, _) in SERIES {
        let _ = writeln!(
            out,
            "# HELP openpartner_{name}_total OpenPartner {} (all tenants)",
            name.replace('_', " ")
        );
        let _ = writeln!(out, "# TYPE openpartner_{name}_total counter");
        let mut any = false;
        for ((n, label), v) in &totals {
            if n == name {
                any = true;
                match label {
                    Some(l) => {
                        let _ = writeln!(out, "openpartner_{name}_total{{status=\"{l}\"}} {v}");
                    }
                    None => {
                        let _ = writeln!(out, "openpartner_{name}_total {v}");
                    }
                }
            }
        }
        if !any && !matches!(*name, "commissions" | "payouts") {
            let _ = writeln!(out, "openpartner_{name}_total 0");
        }
    }
    Ok(out)
}
