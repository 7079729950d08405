//! Log set-up: one line per event on stderr (on the appliance, busybox
//! syslogd keeps them for `logread`), and the same lines in an in-memory
//! ring of the newest [`mxgate_web::LogRing::CAPACITY`] for the web UI's
//! Logs page. `RUST_LOG` overrides the node file's `log` filter.

use mxgate_web::LogRing;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The ring of the installed subscriber.
static RING: OnceLock<Arc<LogRing>> = OnceLock::new();

/// Installs the global subscriber with `default_filter` unless `RUST_LOG` is set.
pub(crate) fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ring = Arc::clone(RING.get_or_init(Arc::default));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(RingWriter(ring))
                .with_ansi(false)
                .with_target(false),
        )
        .try_init();
}

/// The newest log lines, once [`init`] ran.
pub(crate) fn ring() -> Option<Arc<LogRing>> {
    RING.get().cloned()
}

/// Makes a [`LineWriter`] per event.
struct RingWriter(Arc<LogRing>);

impl<'a> MakeWriter<'a> for RingWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            ring: Arc::clone(&self.0),
            buf: Vec::new(),
        }
    }
}

/// Collects one formatted event and puts its lines in the ring when dropped.
struct LineWriter {
    ring: Arc<LogRing>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        for line in String::from_utf8_lossy(&self.buf).lines() {
            if !line.is_empty() {
                self.ring.push(line.to_string());
            }
        }
    }
}
