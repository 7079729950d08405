//! Session workers: one thread per core, each with its own single-threaded
//! tokio runtime and its own listening sockets (`SO_REUSEPORT`), so a
//! session lives its whole life on one thread and one epoll set — the model
//! of HAProxy's threads. No task ever migrates, no worker wakes another; the
//! kernel spreads new connections over the workers' sockets.
//!
//! Stopping a worker drops its runtime, and with it every session task still
//! running there (their sockets close): that is the end of a shutdown's grace
//! period.

use std::sync::Mutex;
use std::thread::JoinHandle;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The session worker threads of a gateway.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    running: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Workers {
    /// Starts `count` workers (0 = [`default_count`]).
    ///
    /// # Errors
    /// When a runtime or thread cannot be created.
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = match count {
            0 => default_count(),
            n => n,
        };
        let mut handles = Vec::with_capacity(count);
        let mut running = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("mxgate-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        tokio::spawn(heartbeat());
                        let _ = stopped.await;
                    });
                    // Dropping the runtime drops every task left on it.
                    drop(runtime);
                })?;
            running.push((stop, thread));
        }
        Ok(Workers {
            handles,
            running: Mutex::new(running),
        })
    }

    /// The runtimes to spawn accept loops on, one per worker.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops every worker, dropping the tasks still on it, and waits for the
    /// threads to end.
    pub fn stop(&self) {
        let running = std::mem::take(&mut *self.running.lock().expect("workers lock"));
        for (stop, thread) in running {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Half the available cores, at least one. A TCP relay spends most of its
/// CPU time in the kernel (about 80% measured under `scripts/bench l4`):
/// the softirq and socket work of every session needs cores too, and on a
/// 2-core box one worker relayed more sessions per second than two.
pub fn default_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.div_ceil(2).max(1)
}

/// Keeps a timer due within [`HEARTBEAT`] on every worker. tokio's time
/// driver interrupts its own epoll wait (an eventfd write and an extra wake)
/// whenever a new timer is due before the driver's next planned wake; with
/// this heartbeat pending, the per-session timers (connect timeout, idle
/// timeout) are nearly always later and register silently.
async fn heartbeat() {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Period of [`heartbeat`].
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}
