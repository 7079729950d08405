//! Log set-up: one line per event on stderr; `RUST_LOG` overrides the node
//! file's `log` filter.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `default_filter` unless `RUST_LOG` is set.
pub(crate) fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
