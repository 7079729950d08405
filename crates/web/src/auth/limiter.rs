//! The login rate limit: at most [`MAX_FAILURES`] failed attempts per
//! [`WINDOW`] per client address and per user name. Pure: the caller passes
//! the time, so tests need no sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before further attempts are refused.
pub const MAX_FAILURES: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Keys tracked before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// Failure times per key (`ip:ADDR`, `user:NAME`).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl LoginLimiter {
    /// `Ok` when every key may try now; else how long until one may.
    pub fn check(&mut self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(times) = self.failures.get_mut(key) {
                expire(times, now);
                if times.len() >= MAX_FAILURES {
                    let oldest = times[times.len() - MAX_FAILURES];
                    wait = wait.max(WINDOW.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Counts a failed attempt against every key.
    pub fn fail(&mut self, keys: &[String], now: Instant) {
        if self.failures.len() >= SWEEP_AT {
            self.failures.retain(|_, times| {
                expire(times, now);
                !times.is_empty()
            });
        }
        for key in keys {
            let times = self.failures.entry(key.clone()).or_default();
            expire(times, now);
            times.push_back(now);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
    }

    /// Forgets the failures of `key` (a user who logged in).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ip: &str, user: &str) -> Vec<String> {
        vec![format!("ip:{ip}"), format!("user:{user}")]
    }

    #[test]
    fn five_failures_block_the_address_and_the_name_for_the_window() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(
                l.check(&keys("10.0.0.1", "admin"), t0),
                Ok(()),
                "attempt {i}"
            );
            l.fail(&keys("10.0.0.1", "admin"), t0);
        }
        assert_eq!(l.check(&keys("10.0.0.1", "other"), t0), Err(WINDOW));
        // Another address, the same name: refused too.
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            l.check(&keys("10.0.0.2", "admin"), later),
            Err(Duration::from_secs(200))
        );
        assert_eq!(l.check(&keys("10.0.0.2", "bob"), later), Ok(()));
        assert_eq!(l.check(&keys("10.0.0.1", "admin"), t0 + WINDOW), Ok(()));
    }

    #[test]
    fn clear_forgets_a_name() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            l.fail(&keys("10.0.0.1", "admin"), t0);
        }
        l.clear("user:admin");
        assert_eq!(l.check(&["user:admin".to_string()], t0), Ok(()));
        assert!(l.check(&["ip:10.0.0.1".to_string()], t0).is_err());
    }
}
