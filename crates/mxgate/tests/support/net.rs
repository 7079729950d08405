//! Loopback ports: pick a free one, wait until one accepts or refuses.
//!
//! `free_port` picks a random port BELOW the kernel's ephemeral range
//! (32768..) and checks that it can be bound. Ports from the ephemeral range
//! are also handed out as the source ports of outgoing connections, and the
//! tests make thousands of those in parallel: a port chosen there can be
//! taken before the test binds it (seen in CI). Another test could still
//! pick the same port in between; the random choice makes that rare, and
//! the Postfix guard retries with a new port when its bind fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use std::path::Path;

use super::{poll, read_text};

/// A TCP port on 127.0.0.1 that was free a moment ago, in 20000..32000,
/// and not handed out before by this process (a test often asks for
/// several ports before anything binds them).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static SEED: AtomicU64 = AtomicU64::new(0);
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut x = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        ^ u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..1000 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Whether a TCP connection to `addr` succeeds now (closed at once).
pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Whether a socket listens on `addr` (IPv4), read from `/proc/net/tcp`
/// without connecting, so the server logs no probe connection. A listener
/// on the wildcard address 0.0.0.0 counts too.
pub fn port_listening(addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return port_open(addr);
    };
    let ip = u32::from(*v4.ip());
    // The address is the kernel's u32 printed in host byte order.
    let wanted = [
        format!("{:08X}:{:04X}", ip.swap_bytes(), v4.port()),
        format!("{:08X}:{:04X}", ip, v4.port()),
        format!("00000000:{:04X}", v4.port()),
    ];
    read_text(Path::new("/proc/net/tcp"))
        .lines()
        .skip(1)
        .any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // f[1] local address, f[3] state (0A = LISTEN)
            f.len() > 3 && f[3] == "0A" && wanted.iter().any(|w| w == f[1])
        })
}

/// Waits until a socket listens on `addr`, without connecting to it.
///
/// # Panics
/// When none does within `timeout`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) {
    if poll(timeout, || port_listening(addr).then_some(())).is_none() {
        panic!("nothing listens on {addr} after {timeout:?}");
    }
}

/// Waits until `addr` accepts TCP connections.
///
/// # Panics
/// When it does not within `timeout`.
pub fn wait_port(addr: SocketAddr, timeout: Duration) {
    if poll(timeout, || port_open(addr).then_some(())).is_none() {
        panic!("nothing accepts connections on {addr} after {timeout:?}");
    }
}

/// Waits until `addr` refuses TCP connections (the server is gone).
///
/// # Panics
/// When it still accepts after `timeout`.
pub fn wait_port_closed(addr: SocketAddr, timeout: Duration) {
    if poll(timeout, || (!port_open(addr)).then_some(())).is_none() {
        panic!("{addr} still accepts connections after {timeout:?}");
    }
}
