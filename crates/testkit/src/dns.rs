//! A fake authoritative DNS server on 127.0.0.1 (UDP and TCP on one port).
//!
//! It runs on its own thread with a current-thread tokio runtime, so it works
//! the same from `#[test]` and `#[tokio::test]`. Names are matched
//! case-insensitively, without the trailing dot. An unknown name answers
//! NXDOMAIN; a known name without records of the asked type answers NOERROR
//! with no answer (NODATA). Both carry an SOA (TTL and minimum
//! [`NEGATIVE_TTL`]) in the authority section.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub use hickory_proto::rr::RecordType;

/// TTL (and SOA minimum) of negative answers (NXDOMAIN, NODATA), in seconds.
pub const NEGATIVE_TTL: u32 = 60;

/// Largest UDP answer sent to a client that did not announce an EDNS size.
const PLAIN_UDP_MAX: usize = 512;

/// The in-memory zone data and the query log.
#[derive(Default)]
struct State {
    records: HashMap<String, Vec<(RData, u32)>>,
    delays: HashMap<String, Duration>,
    servfail: HashMap<String, ()>,
    queries: Vec<(String, RecordType)>,
}

/// A running fake DNS server; it stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The name a PTR lookup of `ip` asks (without trailing dot):
/// `4.3.2.1.in-addr.arpa` for 1.2.3.4, the reversed nibbles under
/// `ip6.arpa` for IPv6.
pub fn reverse_name(ip: IpAddr) -> String {
    let mut name = String::with_capacity(72);
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let _ = write!(name, "{d}.{c}.{b}.{a}.in-addr.arpa");
        }
        IpAddr::V6(v6) => {
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            name.push_str("ip6.arpa");
        }
    }
    name
}

/// Canonical table key: lower case, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    /// Starts a server on 127.0.0.1 with a free port, UDP and TCP.
    ///
    /// # Panics
    /// If no port can be bound on loopback (a broken test machine).
    pub fn start() -> DnsServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("udp local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("testkit-dns".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(serve(udp, tcp, thread_state, stop_rx));
            })
            .expect("spawn dns thread");
        DnsServer {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The address (127.0.0.1:port) that answers on UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, name: &str, rdata: RData, ttl: u32) {
        self.state()
            .records
            .entry(key(name))
            .or_default()
            .push((rdata, ttl));
    }

    /// Adds an A record (records accumulate; an RRset may hold several).
    pub fn add_a(&self, name: &str, ip: Ipv4Addr, ttl: u32) {
        self.add(name, RData::A(A(ip)), ttl);
    }

    /// Adds an AAAA record.
    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr, ttl: u32) {
        self.add(name, RData::AAAA(AAAA(ip)), ttl);
    }

    /// Adds a PTR record at `name` pointing to `target` (e.g.
    /// `add_ptr(&reverse_name(ip), "mail.example.test", 300)`).
    ///
    /// # Panics
    /// When `target` is not a valid domain name (a mistake in the test).
    pub fn add_ptr(&self, name: &str, target: &str, ttl: u32) {
        let fqdn = format!("{}.", target.trim_end_matches('.'));
        let target = Name::from_ascii(&fqdn).expect("PTR target is a domain name");
        self.add(name, RData::PTR(PTR(target)), ttl);
    }

    /// Adds an MX record at `name`: mail for it goes to `exchange` with
    /// `preference` (lower first). `add_mx(domain, 0, ".", ttl)` is a null
    /// MX (RFC 7505: the domain accepts no mail).
    ///
    /// # Panics
    /// When `exchange` is not a valid domain name (a mistake in the test).
    pub fn add_mx(&self, name: &str, preference: u16, exchange: &str, ttl: u32) {
        let fqdn = format!("{}.", exchange.trim_end_matches('.'));
        let exchange = Name::from_ascii(&fqdn).expect("MX exchange is a domain name");
        self.add(name, RData::MX(MX::new(preference, exchange)), ttl);
    }

    /// Adds a TXT record; text longer than 255 bytes is split into
    /// 255-byte character-strings (as DNS requires).
    pub fn add_txt(&self, name: &str, text: &str, ttl: u32) {
        let chunks: Vec<&[u8]> = if text.is_empty() {
            vec![&[][..]]
        } else {
            text.as_bytes().chunks(255).collect()
        };
        self.add(name, RData::TXT(TXT::from_bytes(chunks)), ttl);
    }

    /// Makes `name` answer NXDOMAIN again by removing its records (every
    /// name without records already does).
    pub fn add_nxdomain(&self, name: &str) {
        let mut state = self.state();
        state.records.remove(&key(name));
        state.servfail.remove(&key(name));
    }

    /// Makes every answer for `name` SERVFAIL.
    pub fn set_servfail(&self, name: &str) {
        self.state().servfail.insert(key(name), ());
    }

    /// Delays every answer for `name` by `delay` (to simulate a slow zone or
    /// a timeout); `Duration::ZERO` removes the delay.
    pub fn set_delay(&self, name: &str, delay: Duration) {
        let mut state = self.state();
        if delay.is_zero() {
            state.delays.remove(&key(name));
        } else {
            state.delays.insert(key(name), delay);
        }
    }

    /// Every query received so far, in order: (name in lower case without
    /// trailing dot, type). A query retried over TCP appears twice.
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.state().queries.clone()
    }

    /// Forgets every record, delay, SERVFAIL mark and logged query.
    pub fn clear(&self) {
        *self.state() = State::default();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds UDP and TCP on the same free loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp on loopback");
        let port = udp.local_addr().expect("udp local addr").port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            udp.set_nonblocking(true).expect("nonblocking udp");
            tcp.set_nonblocking(true).expect("nonblocking tcp");
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    state: Arc<Mutex<State>>,
    mut stop: watch::Receiver<bool>,
) {
    let udp = Arc::new(tokio::net::UdpSocket::from_std(udp).expect("tokio udp"));
    let tcp = tokio::net::TcpListener::from_std(tcp).expect("tokio tcp");
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            got = udp.recv_from(&mut buf) => {
                let Ok((len, peer)) = got else { continue };
                let packet = buf[..len].to_vec();
                let (udp, state) = (Arc::clone(&udp), Arc::clone(&state));
                tokio::spawn(async move {
                    if let Some(reply) = answer(&packet, &state, true).await {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                });
            }
            got = tcp.accept() => {
                let Ok((stream, _)) = got else { continue };
                tokio::spawn(serve_tcp(stream, Arc::clone(&state)));
            }
        }
    }
}

async fn serve_tcp(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut packet = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut packet).await.is_err() {
            return;
        }
        let Some(reply) = answer(&packet, &state, false).await else {
            return;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(len).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Builds the wire answer for one request, after the name's delay.
async fn answer(packet: &[u8], state: &Mutex<State>, udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.authoritative = true;
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(edns.max_payload().max(512));
        reply.edns = Some(ours);
    }
    let Some(query) = request.queries.first().cloned() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok();
    };
    reply.add_query(query.clone());
    if request.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        return reply.to_vec().ok();
    }
    let name = key(&query.name.to_ascii());
    let qtype = query.query_type;
    let delay = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.queries.push((name.clone(), qtype));
        state.delays.get(&name).copied()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    fill(&mut reply, &query.name, &name, qtype, state);
    let bytes = reply.to_vec().ok()?;
    let limit = request.edns.as_ref().map_or(PLAIN_UDP_MAX, |e| {
        usize::from(e.max_payload()).max(PLAIN_UDP_MAX)
    });
    if udp && bytes.len() > limit {
        return reply.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// Puts the answer (or the negative answer) for `name`/`qtype` into `reply`.
fn fill(reply: &mut Message, qname: &Name, name: &str, qtype: RecordType, state: &Mutex<State>) {
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    if state.servfail.contains_key(name) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return;
    }
    let Some(records) = state.records.get(name) else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        reply.add_authority(soa(qname));
        return;
    };
    let mut any = false;
    for (rdata, ttl) in records.iter().filter(|(r, _)| r.record_type() == qtype) {
        reply.add_answer(Record::from_rdata(qname.clone(), *ttl, rdata.clone()));
        any = true;
    }
    if !any {
        reply.add_authority(soa(qname));
    }
}

/// The SOA put in negative answers (owned by the asked name itself).
fn soa(qname: &Name) -> Record {
    let mname = Name::from_ascii("ns.testkit.invalid.").unwrap_or_else(|_| Name::root());
    let rname = Name::from_ascii("hostmaster.testkit.invalid.").unwrap_or_else(|_| Name::root());
    let soa = SOA::new(mname, rname, 1, 3600, 600, 86_400, NEGATIVE_TTL);
    Record::from_rdata(qname.clone(), NEGATIVE_TTL, RData::SOA(soa))
}
