//! The interface through rtnetlink: its index, its link state, its IPv4
//! addresses, and adding and removing the virtual IPs. No `ip` command is
//! run; every request is a netlink message on the driver's own connection.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::LinkFlags;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use super::DriverError;

/// `EEXIST` and `EADDRNOTAVAIL`: adding an address already there, removing
/// one already gone.
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// One IPv4 address on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address and its prefix.
    pub net: Ipv4Net,
    /// The kernel's "secondary" flag (a second address in a subnet).
    pub secondary: bool,
}

/// A netlink connection for one interface.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
    interface: String,
    index: u32,
}

impl Netlink {
    /// Open a connection (its task is spawned on the current runtime) and
    /// look `interface` up.
    ///
    /// # Errors
    /// [`DriverError::Io`] when netlink is unavailable,
    /// [`DriverError::NoInterface`] when the interface does not exist.
    pub async fn open(interface: &str) -> Result<Netlink, DriverError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(DriverError::io("open a netlink socket"))?;
        tokio::spawn(connection);
        let link = handle
            .link()
            .get()
            .match_name(interface.to_string())
            .execute()
            .try_next()
            .await
            .ok()
            .flatten()
            .ok_or_else(|| DriverError::NoInterface(interface.to_string()))?;
        Ok(Netlink {
            handle,
            interface: interface.to_string(),
            index: link.header.index,
        })
    }

    /// The interface's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether the link is administratively up and running (carrier and
    /// operational state up).
    ///
    /// # Errors
    /// [`DriverError::Netlink`] (the interface vanished, say).
    pub async fn link_up(&self) -> Result<bool, DriverError> {
        let link = self
            .handle
            .link()
            .get()
            .match_index(self.index)
            .execute()
            .try_next()
            .await
            .map_err(|e| self.error("read the link state", e))?
            .ok_or_else(|| DriverError::NoInterface(self.interface.clone()))?;
        let flags = link.header.flags;
        Ok(flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running))
    }

    /// The interface's IPv4 addresses, in the kernel's order.
    ///
    /// # Errors
    /// [`DriverError::Netlink`].
    pub async fn ipv4_addresses(&self) -> Result<Vec<Address>, DriverError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.error("list the addresses", e))?;
        Ok(messages
            .iter()
            .filter(|m| m.header.index == self.index && m.header.family == AddressFamily::Inet)
            .filter_map(|m| {
                let ip = local_v4(m)?;
                let net = Ipv4Net::new(ip, m.header.prefix_len).ok()?;
                Some(Address {
                    net,
                    secondary: m.header.flags.contains(AddressHeaderFlags::Secondary),
                })
            })
            .collect())
    }

    /// The primary address: the first IPv4 address that is neither
    /// secondary nor one of `vips` (then the first that is not a VIP).
    ///
    /// # Errors
    /// [`DriverError::NoPrimaryAddress`] when there is none.
    pub async fn primary_ipv4(&self, vips: &[Ipv4Net]) -> Result<Ipv4Addr, DriverError> {
        let addrs = self.ipv4_addresses().await?;
        let own = |a: &&Address| !vips.iter().any(|v| v.addr() == a.net.addr());
        addrs
            .iter()
            .filter(own)
            .find(|a| !a.secondary)
            .or_else(|| addrs.iter().find(own))
            .map(|a| a.net.addr())
            .ok_or_else(|| DriverError::NoPrimaryAddress(self.interface.clone()))
    }

    /// Add `vip`; already there counts as done.
    ///
    /// # Errors
    /// [`DriverError::Netlink`].
    pub async fn add(&self, vip: Ipv4Net) -> Result<(), DriverError> {
        let result = self
            .handle
            .address()
            .add(self.index, IpAddr::V4(vip.addr()), vip.prefix_len())
            .execute()
            .await;
        match result {
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EEXIST => Ok(()),
            other => other.map_err(|e| self.error(&format!("add {vip}"), e)),
        }
    }

    /// Remove every address on the interface equal to `vip`'s address
    /// (whatever its prefix); returns whether one was there.
    ///
    /// # Errors
    /// [`DriverError::Netlink`].
    pub async fn remove(&self, vip: Ipv4Net) -> Result<bool, DriverError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.error("list the addresses", e))?;
        let mut found = false;
        for m in messages
            .into_iter()
            .filter(|m| m.header.index == self.index && local_v4(m) == Some(vip.addr()))
        {
            found = true;
            match self.handle.address().del(m).execute().await {
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EADDRNOTAVAIL => {}
                other => other.map_err(|e| self.error(&format!("remove {vip}"), e))?,
            }
        }
        Ok(found)
    }

    fn error(&self, what: &str, e: rtnetlink::Error) -> DriverError {
        DriverError::Netlink {
            what: format!("{what} on {}", self.interface),
            detail: e.to_string(),
        }
    }
}

/// The address of an IPv4 address message (`IFA_LOCAL`, else `IFA_ADDRESS`).
fn local_v4(m: &AddressMessage) -> Option<Ipv4Addr> {
    let find = |local: bool| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) if local => Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) if !local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}
