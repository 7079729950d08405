//! Connections open per client address on one listener, so one client
//! cannot take every slot (Postfix's `smtpd_client_connection_count_limit`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections by client address.
#[derive(Debug, Default)]
pub(crate) struct PerClient {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    owner: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    /// Takes a slot for `ip` unless it already has `limit` open.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr, limit: u32) -> Option<ClientSlot> {
        let mut open = self.open.lock().expect("per-client lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now from `ip`.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .expect("per-client lock")
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().expect("per-client lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_limit_slots_and_frees_them() {
        let per = Arc::new(PerClient::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = per.try_take(ip, 2).unwrap();
        let _b = per.try_take(ip, 2).unwrap();
        assert!(per.try_take(ip, 2).is_none());
        assert!(per.try_take("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert_eq!(per.open(ip), 1);
        assert!(per.try_take(ip, 2).is_some());
    }
}
