//! Process plumbing every binary shares: the runtime, logging set-up and the shutdown signal.

/// The process's tokio runtime: one thread per core, or `TOKIO_WORKER_THREADS` of them.
///
/// One thread (what the local stack gives each process on a small machine, see
/// `src/stack.rs`) gets tokio's current-thread scheduler. A multi-thread runtime with one
/// worker still keeps the main thread beside it, and under the event load it was switched
/// in and out twice as often (10.3k against 5.4k scheduler slices in 3 s in the busy
/// worker); with everything on the one thread the workers and the gateway spent ~20% less
/// CPU per event and the stack took ~15% more events/s (BENCHMARKS.md).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_thread = crate::env::trimmed("TOKIO_WORKER_THREADS").as_deref() == Some("1");
    match one_thread {
        true => tokio::runtime::Builder::new_current_thread(),
        // Reads TOKIO_WORKER_THREADS itself.
        false => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
}

/// `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or, with
/// `OP_LOG_FORMAT=json`, JSON lines ([`crate::logs`]); plus, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, span export over OTLP ([`crate::traces`]; call it
/// inside the runtime, and [`crate::traces::flush`] at exit). `service` is the
/// `service.name` when `OTEL_SERVICE_NAME` is unset. Idempotent. An invalid
/// `OP_LOG_FORMAT` or `OTEL_*` setting is an error the binary stops on.
/// tokio-postgres logs every statement's parameters at `debug` — keys' hashes, magic-link
/// mails, webhook secrets — so `RUST_LOG=debug` must not reach that one target, whatever
/// else it turns on (a more specific directive wins in an `EnvFilter`).
const QUIET_QUERY_PARAMETERS: &str = "tokio_postgres::query=info";

pub fn init_tracing(service: &str) -> Result<(), String> {
    use tracing_subscriber::prelude::*;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
            .add_directive(QUIET_QUERY_PARAMETERS.parse().expect("a valid directive"))
    };
    let format = crate::logs::LogFormat::from_env()?;
    let otel = match crate::traces::Settings::from_env(service)? {
        Some(settings) if !crate::traces::enabled() => Some(
            tracing_opentelemetry::layer()
                .with_tracer(crate::traces::start(&settings)?)
                .with_filter(filter()),
        ),
        _ => None,
    };
    let logs = match format {
        crate::logs::LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
        crate::logs::LogFormat::Json => crate::logs::JsonLines.with_filter(filter()).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM: the point where servers stop accepting and drain.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
