//! "Hand over to the peer": a command to a running [`Driver`](super::Driver)
//! to step down. A Master sends one advert with priority 0 (so the backup
//! takes over after Skew_Time), drops its VIPs and stays out, as if a
//! tracked object had failed (Fault), for the hold time; then it comes back
//! as Backup and — with `preempt` and a higher priority — takes the VIPs
//! back. A node that should stay backup needs a longer hold, or a lower
//! priority or `preempt = false` in its node file.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::StateName;

/// The shortest hold accepted.
pub const MIN_HOLD: Duration = Duration::from_secs(5);
/// The longest hold accepted.
pub const MAX_HOLD: Duration = Duration::from_secs(600);
/// The hold when none is given.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(30);

/// Why a hand-over was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandOverError {
    /// Only a Master can hand over.
    #[error("this box is {0}, not MASTER: there is nothing to hand over")]
    NotMaster(StateName),
    /// The hold is outside [`MIN_HOLD`]..=[`MAX_HOLD`].
    #[error("the hold must be 5 to 600 seconds")]
    Hold,
    /// The driver is not running (any more).
    #[error("the virtual router is not running")]
    Stopped,
}

/// One hand-over request, answered by the driver.
#[derive(Debug)]
pub(crate) struct Request {
    /// How long to stay out.
    pub hold: Duration,
    /// The driver's answer.
    pub reply: oneshot::Sender<Result<(), HandOverError>>,
}

/// A handle that asks a running driver to hand over. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HandOver {
    pub(crate) tx: mpsc::Sender<Request>,
}

impl HandOver {
    /// Asks the driver to step down for `hold`; answers once it has (the
    /// priority-0 advert is sent).
    ///
    /// # Errors
    /// [`HandOverError::Hold`] for a hold out of range,
    /// [`HandOverError::NotMaster`] when the router is not Master,
    /// [`HandOverError::Stopped`] when the driver has stopped.
    pub async fn hand_over(&self, hold: Duration) -> Result<(), HandOverError> {
        if !(MIN_HOLD..=MAX_HOLD).contains(&hold) {
            return Err(HandOverError::Hold);
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { hold, reply })
            .await
            .map_err(|_| HandOverError::Stopped)?;
        answer.await.map_err(|_| HandOverError::Stopped)?
    }
}
