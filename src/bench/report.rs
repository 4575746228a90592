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
