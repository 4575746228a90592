//! What a run prints: throughput, latency percentiles and CPU per request, one line per
//! measured run, and the ratios of a gateway / direct / baselines trio.

use std::time::Duration;

/// Latency samples and counts of one measured run.
pub(super) struct Report {
    pub(super) label: String,
    pub(super) ok: u64,
    pub(super) errors: u64,
    pub(super) elapsed: Duration,
    /// Latencies of the successful calls, sorted.
    pub(super) micros: Vec<u64>,
    /// CPU seconds each part of the system spent during the run (Linux; empty elsewhere).
    pub(super) cpu: Vec<(&'static str, f64)>,
}

impl Report {
    pub(super) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile latency in milliseconds.
    pub(super) fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
        self.micros[i] as f64 / 1000.0
    }

    pub(super) fn line(&self) -> String {
        let mut line = format!(
            "{:<52} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors)",
            self.label,
            self.rps(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.ok,
            self.errors
        );
        if !self.cpu.is_empty() && self.ok > 0 {
            // Where the machine's CPU went, per successful request: the profile in one line.
            let per: Vec<String> = self
                .cpu
                .iter()
                .map(|(part, secs)| format!("{part} {:.0}", secs * 1e6 / self.ok as f64))
                .collect();
            line.push_str(&format!("\n{:<52} CPU µs/req: {}", "", per.join(", ")));
        }
        line
    }
}

/// One operation measured the three ways.
pub(super) struct Trio {
    pub(super) via_gateway: Report,
    pub(super) direct: Report,
    /// Raw SQL and pgbench, for writes; none for reads.
    pub(super) baselines: Vec<Report>,
}

impl Trio {
    /// The trio's report, with the ratios that matter.
    pub(super) fn lines(&self) -> Vec<String> {
        let (gw, direct) = (&self.via_gateway, &self.direct);
        let mut lines = vec![gw.line(), direct.line()];
        lines.extend(self.baselines.iter().map(Report::line));
        let mut ratios = format!(
            "  gateway hop adds: p50 {:+.2} ms, p99 {:+.2} ms; throughput gateway/direct {:.2}",
            gw.quantile_ms(0.5) - direct.quantile_ms(0.5),
            gw.quantile_ms(0.99) - direct.quantile_ms(0.99),
            gw.rps() / direct.rps(),
        );
        for base in &self.baselines {
            let name = if base.label.contains("pgbench") {
                "pgbench"
            } else {
                "raw SQL"
            };
            ratios.push_str(&format!("; gateway/{name} {:.2}", gw.rps() / base.rps()));
        }
        lines.push(ratios);
        lines
    }
}

impl Report {
    /// CPU microseconds of the whole machine (every part) per successful request.
    pub(super) fn cpu_us_per_req(&self) -> f64 {
        if self.ok == 0 {
            return f64::NAN;
        }
        self.cpu.iter().map(|(_, s)| s).sum::<f64>() * 1e6 / self.ok as f64
    }
}

/// What one scenario at one concurrency printed, and its comparison with its anchor.
pub(super) struct Section {
    pub(super) lines: Vec<String>,
    pub(super) versus: Option<Versus>,
}

impl Section {
    pub(super) fn plain(lines: Vec<String>) -> Section {
        Section {
            lines,
            versus: None,
        }
    }
}

/// A scenario through the gateway against its same-run anchor at one concurrency: the
/// ratios of adjacent (gateway, anchor) runs. Alternating cancels the machine's drift
/// better than one run of each.
pub(super) struct Versus {
    pub(super) scenario: &'static str,
    pub(super) concurrency: usize,
    /// The anchor, as the targets name it.
    pub(super) anchor: &'static str,
    ratios: Vec<f64>,
    gateway_cpu: Vec<f64>,
    anchor_cpu: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Versus {
    pub(super) fn new(scenario: &'static str, concurrency: usize, anchor: &'static str) -> Versus {
        Versus {
            scenario,
            concurrency,
            anchor,
            ratios: Vec::new(),
            gateway_cpu: Vec::new(),
            anchor_cpu: Vec::new(),
        }
    }

    /// Records the `i`-th pair; its line.
    pub(super) fn add(&mut self, i: usize, gw: &Report, anchor: &Report) -> String {
        let ratio = gw.rps() / anchor.rps();
        self.ratios.push(ratio);
        self.gateway_cpu.push(gw.cpu_us_per_req());
        self.anchor_cpu.push(anchor.cpu_us_per_req());
        format!(
            "  pair {i}: gateway {:>6.0}/s (p50 {:.2} ms, p99 {:.2} ms), {} {:>6.0}/s: {ratio:.2}x; CPU µs/req {:.0} vs {:.0}",
            gw.rps(),
            gw.quantile_ms(0.5),
            gw.quantile_ms(0.99),
            self.anchor,
            anchor.rps(),
            gw.cpu_us_per_req(),
            anchor.cpu_us_per_req(),
        )
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ratios.is_empty()
    }

    pub(super) fn median(&self) -> f64 {
        median(&self.ratios)
    }

    fn range(&self) -> (f64, f64) {
        let lo = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .ratios
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    /// The summary line under the pairs.
    pub(super) fn summary(&self) -> String {
        let (lo, hi) = self.range();
        format!(
            "  gateway/{}, median of {} pairs: {:.2}x (range {lo:.2}–{hi:.2})",
            self.anchor,
            self.ratios.len(),
            self.median(),
        )
    }
}

/// A target of issue 14: the scenario through the gateway at `concurrency` clients, at
/// least `min` times its anchor.
struct Target {
    scenario: &'static str,
    what: &'static str,
    concurrency: usize,
    min: f64,
}

const TARGETS: [Target; 7] = [
    Target {
        scenario: "partners-get",
        what: "GET /partners/:id",
        concurrency: 64,
        min: 0.25,
    },
    Target {
        scenario: "partners-get",
        what: "GET /partners/:id",
        concurrency: 8,
        min: 0.15,
    },
    Target {
        scenario: "partners-create",
        what: "POST /partners",
        concurrency: 64,
        min: 0.4,
    },
    Target {
        scenario: "events",
        what: "POST /attribution/events",
        concurrency: 8,
        min: 0.4,
    },
    Target {
        scenario: "events",
        what: "POST /attribution/events",
        concurrency: 64,
        min: 0.5,
    },
    Target {
        scenario: "events-terms",
        what: "events, partner terms",
        concurrency: 64,
        min: 0.9,
    },
    Target {
        scenario: "clicks",
        what: "GET /r/<slug>/<linkKey>",
        concurrency: 64,
        min: 1.0,
    },
];

/// The targets section: per target of a scenario that ran, the measured ratio (median of
/// the adjacent gateway/anchor pairs), the threshold and PASS or MISS, with the CPU per
/// request of both sides (all parts of the machine). Empty when no target's scenario ran.
pub(super) fn targets(measured: &[Versus]) -> Vec<String> {
    let ran = |s: &str| measured.iter().any(|v| v.scenario == s);
    if !TARGETS.iter().any(|t| ran(t.scenario)) {
        return vec![];
    }
    let mut lines = vec![
        "targets (gateway / same-run anchor, median of adjacent pairs; CPU µs/req of the whole machine, gateway vs anchor):".to_string(),
    ];
    for t in TARGETS.iter().filter(|t| ran(t.scenario)) {
        let head = format!("  {:<26} {:>3} clients", t.what, t.concurrency);
        let Some(v) = measured
            .iter()
            .find(|v| v.scenario == t.scenario && v.concurrency == t.concurrency && !v.is_empty())
        else {
            lines.push(format!(
                "{head}: not measured (needs --concurrency {} and --pairs ≥ 1)  ≥ {:.2}x  -",
                t.concurrency, t.min
            ));
            continue;
        };
        let (lo, hi) = v.range();
        let m = v.median();
        lines.push(format!(
            "{head} vs {:<22} {m:.3}x ({lo:.2}–{hi:.2}, {} pairs)  ≥ {:.2}x  {}  CPU {:.0} vs {:.0}",
            v.anchor,
            v.ratios.len(),
            t.min,
            if m >= t.min { "PASS" } else { "MISS" },
            median(&v.gateway_cpu),
            median(&v.anchor_cpu),
        ));
    }
    lines
}
