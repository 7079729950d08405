//! `[vrrp]` in the node file: documented defaults, the INTERFACE example,
//! and every error naming its key and the valid range.

use mxgate_config::{NodeConfig, VrrpSettings};
use std::time::Duration;

const HEAD: &str = "name = \"gw-a\"\ndata_dir = \"/data\"\n";

fn vrrp(section: &str) -> VrrpSettings {
    NodeConfig::parse(&format!("{HEAD}[vrrp]\n{section}"))
        .unwrap()
        .vrrp
        .expect("[vrrp] present")
}

fn errors(section: &str) -> Vec<(String, String)> {
    NodeConfig::parse(&format!("{HEAD}[vrrp]\n{section}"))
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.key, e.message))
        .collect()
}

fn keys(section: &str) -> Vec<String> {
    errors(section).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn absent_section_means_no_failover() {
    assert_eq!(NodeConfig::parse(HEAD).unwrap().vrrp, None);
}

#[test]
fn the_interface_example_is_valid() {
    let v = vrrp(
        "interface = \"eth0\"\nvrid = 51\npriority = 150\nadvert_interval_ms = 100\n\
         virtual_ips = [\"192.0.2.25/24\"]\nunicast_peers = []\npreempt = true\n",
    );
    assert_eq!(v.interface, "eth0");
    assert_eq!((v.vrid, v.priority, v.advert_interval_cs), (51, 150, 10));
    assert_eq!(v.virtual_ips, ["192.0.2.25/24".parse().unwrap()]);
    assert!(v.unicast_peers.is_empty());
    assert!(v.preempt);
}

#[test]
fn defaults_are_documented_ones() {
    let v = vrrp("interface = \"eth0\"\nvrid = 7\nvirtual_ips = [\"192.0.2.25\"]\n");
    assert_eq!(v.priority, 100);
    assert_eq!(v.advert_interval_cs, 100);
    assert_eq!(v.virtual_ips, ["192.0.2.25/32".parse().unwrap()]);
    assert!(v.preempt);
    assert_eq!(v.preempt_delay, Duration::ZERO);
    assert_eq!(v.garp_count, 5);
    assert_eq!(v.garp_interval, Duration::from_millis(200));
    assert_eq!(v.garp_refresh, Duration::ZERO);
    assert_eq!(
        (
            v.track_pool_weight,
            v.track_listener_weight,
            v.track_link_weight,
            v.track_store_weight
        ),
        (50, 50, 255, 50)
    );
    assert_eq!(v.notify, None);
}

#[test]
fn every_key_can_be_set() {
    let v = vrrp(
        "interface = \"br-lan\"\nvrid = 255\npriority = 255\nadvert_interval_ms = 40950\n\
         virtual_ips = [\"192.0.2.25/24\", \"198.51.100.7/32\"]\n\
         unicast_peers = [\"192.0.2.12\"]\npreempt = false\npreempt_delay_ms = 5000\n\
         garp_count = 0\ngarp_interval_ms = 1000\ngarp_refresh_s = 60\n\
         track_pool_weight = 0\ntrack_listener_weight = 10\ntrack_link_weight = 30\n\
         track_store_weight = 255\nnotify = \"/usr/local/bin/notify\"\n",
    );
    assert_eq!((v.vrid, v.priority, v.advert_interval_cs), (255, 255, 4095));
    assert_eq!(v.virtual_ips.len(), 2);
    assert_eq!(
        v.unicast_peers,
        ["192.0.2.12".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert!(!v.preempt);
    assert_eq!(v.preempt_delay, Duration::from_secs(5));
    assert_eq!(v.garp_count, 0);
    assert_eq!(v.garp_refresh, Duration::from_secs(60));
    assert_eq!(v.track_store_weight, 255);
    assert_eq!(v.notify.unwrap().to_str(), Some("/usr/local/bin/notify"));
}

#[test]
fn out_of_range_numbers_name_key_and_range() {
    let errs = errors(
        "interface = \"eth0\"\nvrid = 0\npriority = 256\nadvert_interval_ms = 5\n\
         virtual_ips = [\"192.0.2.25\"]\npreempt_delay_ms = 1000001\ngarp_count = 101\n\
         garp_interval_ms = -1\ngarp_refresh_s = 86401\ntrack_pool_weight = 256\n\
         track_listener_weight = -1\ntrack_link_weight = 300\ntrack_store_weight = 1000\n",
    );
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "vrrp.vrid",
            "vrrp.priority",
            "vrrp.advert_interval_ms",
            "vrrp.preempt_delay_ms",
            "vrrp.garp_count",
            "vrrp.garp_interval_ms",
            "vrrp.garp_refresh_s",
            "vrrp.track_pool_weight",
            "vrrp.track_listener_weight",
            "vrrp.track_link_weight",
            "vrrp.track_store_weight",
        ]
    );
    assert!(errs[0].1.contains("1..255"), "{:?}", errs[0]);
    assert!(errs[2].1.contains("10..40950"), "{:?}", errs[2]);
    assert!(errs[7].1.contains("0..255"), "{:?}", errs[7]);
}

#[test]
fn interval_must_be_whole_centiseconds() {
    let errs = errors(
        "interface = \"eth0\"\nvrid = 1\nadvert_interval_ms = 105\nvirtual_ips = [\"192.0.2.25\"]\n",
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "vrrp.advert_interval_ms");
    assert!(errs[0].1.contains("multiple of 10"), "{:?}", errs[0]);
}

#[test]
fn virtual_ips_are_checked_one_by_one() {
    let errs = errors(
        "interface = \"eth0\"\nvrid = 1\n\
         virtual_ips = [\"192.0.2.25/24\", \"2001:db8::25/64\", \"nonsense\", \"192.0.2.26/33\", \
         \"224.0.0.18\", \"192.0.2.25/32\"]\n",
    );
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "vrrp.virtual_ips[1]",
            "vrrp.virtual_ips[2]",
            "vrrp.virtual_ips[3]",
            "vrrp.virtual_ips[4]",
            "vrrp.virtual_ips[5]",
        ]
    );
    assert!(errs[0].1.contains("IPv4 only"), "{:?}", errs[0]);
    assert!(errs[4].1.contains("twice"), "{:?}", errs[4]);
}

#[test]
fn virtual_ips_are_required_and_not_empty() {
    assert_eq!(
        keys("interface = \"eth0\"\nvrid = 1\nvirtual_ips = []\n"),
        ["vrrp.virtual_ips"]
    );
    let missing =
        NodeConfig::parse(&format!("{HEAD}[vrrp]\ninterface = \"eth0\"\nvrid = 1\n")).unwrap_err();
    assert!(missing.to_string().contains("virtual_ips"), "{missing}");
}

#[test]
fn unicast_peers_are_ipv4_unicast() {
    let errs = errors(
        "interface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.25/24\"]\n\
         unicast_peers = [\"192.0.2.12\", \"fe80::1\", \"224.0.0.18\", \"x\", \"192.0.2.12\", \"192.0.2.25\"]\n",
    );
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "vrrp.unicast_peers[1]",
            "vrrp.unicast_peers[2]",
            "vrrp.unicast_peers[3]",
            "vrrp.unicast_peers[4]",
            "vrrp.unicast_peers[5]",
        ]
    );
    assert!(errs[0].1.contains("IPv4 only"), "{:?}", errs[0]);
}

#[test]
fn interface_name_and_notify_path_are_checked() {
    assert_eq!(
        keys(
            "interface = \"a-very-long-interface-name\"\nvrid = 1\nvirtual_ips = [\"192.0.2.25\"]\n\
             notify = \"notify.sh\"\n"
        ),
        ["vrrp.interface", "vrrp.notify"]
    );
    assert_eq!(
        keys("interface = \"\"\nvrid = 1\nvirtual_ips = [\"192.0.2.25\"]\n"),
        ["vrrp.interface"]
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let err = NodeConfig::parse(&format!(
        "{HEAD}[vrrp]\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.25\"]\nauth_pass = \"x\"\n"
    ))
    .unwrap_err();
    assert_eq!(err.0[0].key, "line 7");
    assert!(err.0[0].message.contains("auth_pass"), "{err}");
}
