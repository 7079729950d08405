//! Policy parsing, validation errors and the export round trip.

use mxgate_config::{Balance, Policy, ServerState};
use std::time::Duration;

const TWO_SERVERS: &str = r#"
[relay]
domains = ["Example.COM."]

[[pool]]
name = "mta"
balance = "leastconn"
check = { interval_ms = 1000, timeout_ms = 2000, fall = 3, rise = 2, starttls = false }

[[pool.server]]
name = "mta1"
address = "10.0.0.11:25"
weight = 3
max_conn = 500

[[pool.server]]
name = "mta2"
address = "[2001:db8::12]:25"
state = "drain"

[[listener]]
name = "mx"
bind = "0.0.0.0:25"
pool = "mta"
send_proxy = "v2"
accept_proxy = true
proxy_trusted = ["127.0.0.1/32", "10.1.0.0/16"]
"#;

#[test]
fn parses_and_fills_defaults() {
    let p = Policy::parse(TWO_SERVERS).unwrap();
    assert_eq!(p.relay_domains, ["example.com"]);
    let pool = &p.pools[0];
    assert_eq!(pool.balance, Balance::Leastconn);
    assert_eq!(pool.check.interval, Duration::from_secs(1));
    assert_eq!(pool.connect_timeout, Duration::from_secs(5));
    assert_eq!(pool.servers[0].weight, 3);
    assert_eq!(pool.servers[1].weight, 1);
    assert_eq!(pool.servers[1].state, ServerState::Drain);
    assert_eq!(p.listeners[0].idle_timeout, Duration::from_secs(300));
    assert_eq!(p.limits.max_connections, 20_000);
}

#[test]
fn export_round_trips_exactly() {
    let p = Policy::parse(TWO_SERVERS).unwrap();
    let exported = p.to_toml();
    let again = Policy::parse(&exported).unwrap();
    assert_eq!(p, again);
    assert_eq!(exported, again.to_toml());
}

#[test]
fn empty_policy_is_valid() {
    let p = Policy::parse("").unwrap();
    assert!(p.pools.is_empty());
    assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
}

#[test]
fn every_error_is_reported_with_its_key() {
    let text = r#"
[relay]
domains = ["not a domain"]
[[pool]]
name = "mta"
check = { fall = 0 }
[[pool.server]]
name = "a"
address = "10.0.0.1"
weight = 300
[[pool.server]]
name = "a"
address = "10.0.0.2:25"
[[listener]]
name = "mx"
bind = "0.0.0.0:25"
pool = "nope"
accept_proxy = true
[[listener]]
name = "mx2"
bind = "0.0.0.0:26"
pool = "mta"
proxy_trusted = ["10.0.0.1/8"]
"#;
    let err = Policy::parse(text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "relay.domains[0]",
            "pool[mta].check.fall",
            "pool[mta].server[a].weight",
            "pool[mta].server[a].address",
            "pool[mta].server[a].name",
            "listener[mx].pool",
            "listener[mx].proxy_trusted",
            "listener[mx2].proxy_trusted[0]",
        ],
        "{err}"
    );
    assert!(err.to_string().contains("must be 0..256"), "{err}");
}

#[test]
fn syntax_and_unknown_keys_name_the_line() {
    let err = Policy::parse("[[pool]]\nname = \"a\"\nbalanse = \"first\"\n").unwrap_err();
    assert_eq!(err.0[0].key, "line 3", "{err}");
    assert!(err.0[0].message.contains("balanse"), "{err}");
    let err = Policy::parse("[[pool]]\nname = \"a\"\nbalance = \"random\"\n").unwrap_err();
    assert_eq!(err.0[0].key, "line 3", "{err}");
    assert!(err.0[0].message.contains("roundrobin"), "{err}");
}

#[test]
fn smtp_listeners_take_their_settings_and_refuse_send_proxy() {
    let text = "[[pool]]\nname = \"p\"\nclient_identity = \"proxy_v2\"\n[[listener]]\nname = \"l\"\nbind = \"127.0.0.1:25\"\npool = \"p\"\nmode = \"smtp\"\n";
    let p = Policy::parse(text).unwrap();
    let l = &p.listeners[0];
    assert_eq!(l.smtp.max_message_size, 52_428_800);
    assert_eq!(l.smtp.max_recipients, 1000);
    assert!(l.smtp.starttls);
    // The pool's checks speak the PROXY version its smtp listeners' relay uses.
    assert_eq!(p.pools[0].check.proxy, mxgate_config::ProxyVersion::V2);
    let bad =
        format!("{text}send_proxy = \"v2\"\nmax_recipients = 10\ncommand_timeout_ms = 600000\n");
    let err = Policy::parse(&bad).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "listener[l].max_recipients",
            "listener[l].command_timeout_ms",
            "listener[l].send_proxy"
        ],
        "{err}"
    );
}

#[test]
fn checks_follow_the_listeners_proxy_header_unless_told() {
    use mxgate_config::ProxyVersion;
    let base = "[[pool]]\nname = \"p\"\n[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:25\"\npool = \"p\"\nsend_proxy = \"v2\"\n";
    let p = Policy::parse(base).unwrap();
    assert_eq!(p.pools[0].check.proxy, ProxyVersion::V2);
    assert_eq!(p.pools[0].check.send_proxy, None);
    let exported = p.to_toml();
    assert!(
        !exported.contains("send_proxy = \"v2\"\n\n[[pool"),
        "{exported}"
    );
    assert_eq!(Policy::parse(&exported).unwrap(), p);

    let told = base.replace(
        "name = \"p\"\n",
        "name = \"p\"\ncheck = { send_proxy = \"none\" }\n",
    );
    assert_eq!(
        Policy::parse(&told).unwrap().pools[0].check.proxy,
        ProxyVersion::None
    );

    let mixed =
        format!("{base}[[listener]]\nname = \"b\"\nbind = \"127.0.0.1:26\"\npool = \"p\"\n");
    let err = Policy::parse(&mixed).unwrap_err();
    assert_eq!(err.0[0].key, "listener[b]", "{err}");
}

#[test]
fn lists_and_rate_limits_are_validated_and_round_trip() {
    let text = r#"
[[list]]
action = "block"
client = "198.51.100.0/24"
[[list]]
action = "allow"
sender_domain = ".Partner.Example"
[[rate_limit]]
key = "client_ip"
window_s = 60
connections = 10
concurrency = 3
"#;
    let p = Policy::parse(text).unwrap();
    assert_eq!(
        p.lists[1].sender_domain.as_deref(),
        Some(".partner.example")
    );
    assert_eq!(p.list_entries().len(), 2);
    assert_eq!(p.rate_rules()[0].connections, Some(10));
    assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);

    let bad = r#"
[[list]]
action = "deny"
client = "10.0.0.1"
[[list]]
action = "block"
client = "10.0.0.1/8"
[[list]]
action = "block"
helo = "a"
sender = "b@c"
[[rate_limit]]
key = "sender"
connections = 5
[[rate_limit]]
key = "ip"
messages = 5
"#;
    let err = Policy::parse(bad).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "list[0].action",
            "list[1].client",
            "list[2]",
            "rate_limit[0]",
            "rate_limit[1].key"
        ],
        "{err}"
    );
}
