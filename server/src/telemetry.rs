//! Logging: building the subscriber is separate from installing it, so tests can build one
//! without touching the global default. Logs are human-readable by default and JSON by flag;
//! no token or secret is ever a field (the types that hold them redact their `Debug`).

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, registry::LookupSpan};

use crate::config::{LogConfig, LogFormat};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Builds the subscriber described by `config`, writing to standard error.
pub fn build_subscriber(
    config: &LogConfig,
) -> Result<Box<dyn Subscriber + Send + Sync + 'static>, TelemetryError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|source| TelemetryError::Filter {
        filter: config.level.clone(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    Ok(match config.format {
        LogFormat::Text => Box::new(registry.with(fmt_layer().with_ansi(false))),
        LogFormat::Json => Box::new(
            registry.with(
                fmt_layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            ),
        ),
    })
}

fn fmt_layer<S>()
-> fmt::Layer<S, fmt::format::DefaultFields, fmt::format::Format, fn() -> std::io::Stderr>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fmt::layer().with_writer(std::io::stderr as fn() -> std::io::Stderr)
}

/// Installs a subscriber as the global default, and routes `log` records (sqlx's) through it.
pub fn install(
    subscriber: Box<dyn Subscriber + Send + Sync + 'static>,
) -> Result<(), TelemetryError> {
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInstalled)
}
