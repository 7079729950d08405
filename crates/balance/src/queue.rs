//! The bounded wait list of a pool: sessions waiting for a free slot when
//! every usable server is at `max_conn`.
//!
//! Waiters are kept in arrival order (by ticket). A released slot wakes the
//! oldest waiter that may use that server; a woken waiter that finds no slot
//! after all (another session took it first) goes back to its old place, not
//! to the end. Events that can open many slots at once (a server comes up,
//! the configuration changes) wake everybody. The lock of this list is also
//! held while a waiter looks for a slot, so a release can never slip between
//! "found nothing" and "is waiting".

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Why a waiter was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A slot was released on the server with this id.
    Slot(u64),
    /// Anything may have changed.
    Any,
}

/// The wait list of one pool.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    inner: Mutex<Waiters>,
}

/// The waiters, under the queue's lock.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    list: VecDeque<Waiter>,
    next_ticket: u64,
}

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    /// Ids of servers this waiter must not use (its failed connects).
    excluded: Vec<u64>,
    wake: oneshot::Sender<Wake>,
}

impl WaitQueue {
    /// Locks the list (also held while a waiter looks for a slot).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot on server `server_id` was released.
    pub(crate) fn slot_released(&self, server_id: u64) {
        self.lock().wake(Wake::Slot(server_id));
    }

    /// Wakes every waiter so each looks again.
    pub(crate) fn wake_all(&self) {
        self.lock().wake(Wake::Any);
    }

    /// Number of waiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Waiters {
    /// Number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// A new ticket, later than every earlier one.
    pub(crate) fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Puts `ticket` in the list at its place in arrival order.
    pub(crate) fn insert(&mut self, ticket: u64, excluded: &[u64]) -> oneshot::Receiver<Wake> {
        let (wake, rx) = oneshot::channel();
        let at = self.list.partition_point(|w| w.ticket < ticket);
        self.list.insert(
            at,
            Waiter {
                ticket,
                excluded: excluded.to_vec(),
                wake,
            },
        );
        rx
    }

    /// Takes `ticket` out of the list; false when it was not there (woken).
    fn remove(&mut self, ticket: u64) -> bool {
        match self.list.iter().position(|w| w.ticket == ticket) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }

    /// Wakes the oldest waiter `wake` concerns (or all for [`Wake::Any`]).
    fn wake(&mut self, wake: Wake) {
        match wake {
            Wake::Any => {
                for w in self.list.drain(..) {
                    let _ = w.wake.send(Wake::Any);
                }
            }
            Wake::Slot(id) => {
                while let Some(i) = self.list.iter().position(|w| !w.excluded.contains(&id)) {
                    let w = self.list.remove(i).expect("index from position");
                    if w.wake.send(wake).is_ok() {
                        return;
                    }
                }
            }
        }
    }
}

/// One stay in the list. Dropping it (timeout, or the session went away)
/// leaves the list; a wake-up received but not acted upon is passed on.
pub(crate) struct Registration {
    queue: Arc<WaitQueue>,
    ticket: u64,
    rx: Option<oneshot::Receiver<Wake>>,
}

impl Registration {
    pub(crate) fn new(queue: Arc<WaitQueue>, ticket: u64, rx: oneshot::Receiver<Wake>) -> Self {
        Registration {
            queue,
            ticket,
            rx: Some(rx),
        }
    }

    /// Waits to be woken; the registration is then spent.
    pub(crate) async fn woken(&mut self) {
        if let Some(rx) = self.rx.as_mut() {
            // A closed channel (sender dropped) also means "look again".
            let _ = rx.await;
            self.rx = None;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut waiters = self.queue.lock();
        if !waiters.remove(self.ticket) {
            if let Ok(wake) = rx.try_recv() {
                waiters.wake(wake);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(q: &Arc<WaitQueue>, excluded: &[u64]) -> Registration {
        let mut w = q.lock();
        let t = w.ticket();
        let rx = w.insert(t, excluded);
        Registration::new(q.clone(), t, rx)
    }

    fn is_woken(r: &mut Registration) -> Option<Wake> {
        r.rx.as_mut().and_then(|rx| rx.try_recv().ok())
    }

    #[test]
    fn slot_wakes_the_oldest_eligible_waiter() {
        let q = Arc::new(WaitQueue::default());
        let mut a = register(&q, &[7]);
        let mut b = register(&q, &[]);
        let mut c = register(&q, &[]);
        q.slot_released(7);
        assert_eq!(is_woken(&mut a), None);
        assert_eq!(is_woken(&mut b), Some(Wake::Slot(7)));
        assert_eq!(is_woken(&mut c), None);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn reinsert_keeps_arrival_order() {
        let q = Arc::new(WaitQueue::default());
        let mut w = q.lock();
        let t1 = w.ticket();
        let t2 = w.ticket();
        let _r2 = w.insert(t2, &[]);
        let _r1 = w.insert(t1, &[]);
        let order: Vec<u64> = w.list.iter().map(|x| x.ticket).collect();
        assert_eq!(order, vec![t1, t2]);
    }

    #[test]
    fn dropped_waiter_leaves_and_passes_on_its_wake() {
        let q = Arc::new(WaitQueue::default());
        let a = register(&q, &[]);
        let mut b = register(&q, &[]);
        q.slot_released(1); // goes to a
        assert_eq!(q.len(), 1);
        drop(a); // a never used it: b gets it
        assert_eq!(is_woken(&mut b), Some(Wake::Slot(1)));
        assert_eq!(q.len(), 0);

        let c = register(&q, &[]);
        assert_eq!(q.len(), 1);
        drop(c);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn wake_all_empties_the_list() {
        let q = Arc::new(WaitQueue::default());
        let mut a = register(&q, &[]);
        let mut b = register(&q, &[3]);
        q.wake_all();
        assert_eq!(is_woken(&mut a), Some(Wake::Any));
        assert_eq!(is_woken(&mut b), Some(Wake::Any));
        assert_eq!(q.len(), 0);
    }
}
