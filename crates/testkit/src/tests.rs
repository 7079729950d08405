//! Tests of the fake DNS server with a raw hickory-proto client over UDP and TCP.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData};

use crate::{reverse_name, DnsServer, RecordType};

fn query(name: &str, qtype: RecordType, edns: bool) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.edns = Some(e);
    }
    msg
}

fn ask_udp(server: &DnsServer, msg: &Message) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&msg.to_vec().unwrap(), server.addr()).unwrap();
    let mut buf = [0u8; 65_535];
    let (len, _) = sock.recv_from(&mut buf).unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

fn ask_tcp(server: &DnsServer, msg: &Message) -> Message {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let bytes = msg.to_vec().unwrap();
    stream
        .write_all(&u16::try_from(bytes.len()).unwrap().to_be_bytes())
        .unwrap();
    stream.write_all(&bytes).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

fn txt_of(reply: &Message) -> Vec<Vec<Vec<u8>>> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_a_and_aaaa_over_udp_and_tcp() {
    let server = DnsServer::start();
    server.add_a("Host.Example", Ipv4Addr::new(192, 0, 2, 1), 300);
    server.add_a("host.example.", Ipv4Addr::new(192, 0, 2, 2), 300);
    server.add_aaaa("host.example", Ipv6Addr::LOCALHOST, 120);
    for reply in [
        ask_udp(&server, &query("host.example.", RecordType::A, false)),
        ask_tcp(&server, &query("HOST.example.", RecordType::A, false)),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let ips: Vec<_> = reply
            .answers
            .iter()
            .map(|r| (r.data.clone(), r.ttl))
            .collect();
        assert_eq!(ips.len(), 2);
        assert!(ips.contains(&(RData::A(Ipv4Addr::new(192, 0, 2, 1).into()), 300)));
    }
    let reply = ask_udp(&server, &query("host.example.", RecordType::AAAA, true));
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.answers[0].ttl, 120);
    assert_eq!(
        server.queries(),
        vec![
            ("host.example".to_string(), RecordType::A),
            ("host.example".to_string(), RecordType::A),
            ("host.example".to_string(), RecordType::AAAA),
        ]
    );
}

#[test]
fn answers_ptr_at_the_reverse_name() {
    let server = DnsServer::start();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));
    assert_eq!(reverse_name(ip), "25.2.0.192.in-addr.arpa");
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        reverse_name(IpAddr::V6(v6)),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
    server.add_ptr(&reverse_name(ip), "Mail.Example.test", 300);
    server.add_ptr(&reverse_name(ip), "other.example.test.", 120);
    for reply in [
        ask_udp(
            &server,
            &query("25.2.0.192.in-addr.arpa.", RecordType::PTR, true),
        ),
        ask_tcp(
            &server,
            &query("25.2.0.192.IN-ADDR.arpa.", RecordType::PTR, false),
        ),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let names: Vec<_> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some((p.0.to_ascii(), r.ttl)),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("Mail.Example.test.".to_string(), 300),
                ("other.example.test.".to_string(), 120)
            ]
        );
    }
    let reply = ask_udp(
        &server,
        &query("25.2.0.192.in-addr.arpa.", RecordType::A, true),
    );
    assert!(reply.answers.is_empty(), "NODATA for another type");
}

#[test]
fn long_txt_is_split_into_255_byte_strings() {
    let server = DnsServer::start();
    let spf = format!("v=spf1 {}-all", "ip4:192.0.2.0/24 ".repeat(35));
    assert!(spf.len() > 600);
    server.add_txt("example.org", &spf, 3600);
    let reply = ask_udp(&server, &query("example.org.", RecordType::TXT, true));
    let txt = txt_of(&reply);
    assert_eq!(txt.len(), 1);
    assert_eq!(
        txt[0].iter().map(Vec::len).collect::<Vec<_>>(),
        vec![255, 255, spf.len() - 510]
    );
    assert_eq!(txt[0].concat(), spf.as_bytes());
    // Without EDNS the UDP answer does not fit in 512 bytes: truncated, then TCP.
    let reply = ask_udp(&server, &query("example.org.", RecordType::TXT, false));
    assert!(reply.metadata.truncation);
    assert!(reply.answers.is_empty());
    let reply = ask_tcp(&server, &query("example.org.", RecordType::TXT, false));
    assert_eq!(txt_of(&reply)[0].concat(), spf.as_bytes());
}

#[test]
fn unknown_name_is_nxdomain_and_other_type_is_nodata() {
    let server = DnsServer::start();
    server.add_a("known.example", Ipv4Addr::new(127, 0, 0, 2), 60);
    let reply = ask_udp(&server, &query("unknown.example.", RecordType::A, true));
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.authorities.len(), 1);
    let reply = ask_udp(&server, &query("known.example.", RecordType::TXT, true));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    server.add_nxdomain("known.example");
    let reply = ask_udp(&server, &query("known.example.", RecordType::A, true));
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    server.set_servfail("bad.example");
    let reply = ask_tcp(&server, &query("bad.example.", RecordType::A, false));
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    server.clear();
    assert!(server.queries().is_empty());
}

#[test]
fn delay_holds_only_that_name() {
    let server = DnsServer::start();
    server.add_a("slow.example", Ipv4Addr::new(127, 0, 0, 2), 60);
    server.add_a("fast.example", Ipv4Addr::new(127, 0, 0, 3), 60);
    server.set_delay("slow.example", Duration::from_millis(400));
    let slow = {
        let msg = query("slow.example.", RecordType::A, true);
        let addr = server.addr();
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.send_to(&msg.to_vec().unwrap(), addr).unwrap();
            let started = Instant::now();
            let mut buf = [0u8; 4096];
            sock.recv_from(&mut buf).unwrap();
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let reply = ask_udp(&server, &query("fast.example.", RecordType::A, true));
    assert_eq!(reply.answers.len(), 1);
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(slow.join().unwrap() >= Duration::from_millis(390));
    server.set_delay("slow.example", Duration::ZERO);
    let started = Instant::now();
    ask_udp(&server, &query("slow.example.", RecordType::A, true));
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn works_inside_a_tokio_runtime_and_stops_on_drop() {
    let server = DnsServer::start();
    server.add_a("x.example", Ipv4Addr::new(127, 0, 0, 1), 60);
    let addr = server.addr();
    let reply = tokio::task::spawn_blocking(move || {
        let r = ask_udp(&server, &query("x.example.", RecordType::A, true));
        drop(server);
        r
    })
    .await
    .unwrap();
    assert_eq!(reply.answers.len(), 1);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn answers_mx_records_including_a_null_mx() {
    let server = DnsServer::start();
    server.add_mx("example.test", 20, "mx2.example.test.", 300);
    server.add_mx("example.test", 10, "MX1.example.test", 300);
    server.add_mx("nomail.test", 0, ".", 300);
    let reply = ask_udp(&server, &query("example.test.", RecordType::MX, true));
    let mut got: Vec<(u16, String)> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (10, "MX1.example.test.".to_string()),
            (20, "mx2.example.test.".to_string())
        ]
    );
    let reply = ask_tcp(&server, &query("nomail.test.", RecordType::MX, false));
    let RData::MX(null) = &reply.answers[0].data else {
        panic!("{reply:?}")
    };
    assert_eq!((null.preference, null.exchange.is_root()), (0, true));
}
