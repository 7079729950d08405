//! Readings of this machine: every part present and plausible, as the
//! dashboard would show them.

use mxgate_system::{disk_usage, Firmware, HostReport, HostSampler, CPU_SAMPLE_INTERVAL};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

#[test]
fn a_report_of_this_machine_is_plausible() {
    let tmp = std::env::temp_dir();
    let report = HostReport::read(&tmp);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.uptime_s > 0);
    assert!(report.cpu.count > 0);
    assert_eq!(report.cpu.per_cpu_percent.len(), report.cpu.count);
    assert!((0.0..=100.0).contains(&report.cpu.usage_percent));
    assert!(report.cpu.interval_ms >= 100, "{}", report.cpu.interval_ms);
    assert!(report.load.one >= 0.0 && report.load.fifteen >= 0.0);
    let mem = report.memory;
    assert!(mem.total_bytes > 64 << 20, "{mem:?}");
    assert!(
        mem.used_bytes > 0 && mem.used_bytes <= mem.total_bytes,
        "{mem:?}"
    );
    assert!((0.0..=100.0).contains(&mem.used_percent));
    let disk = report.disk.expect("disk of the temp dir");
    assert!(
        disk.total_bytes > 0 && disk.used_bytes <= disk.total_bytes,
        "{disk:?}"
    );
    assert!(disk.available_bytes <= disk.total_bytes);
    assert_eq!(report.firmware, None);
}

#[test]
fn loopback_is_listed_up_with_127_0_0_1() {
    let report = HostReport::read(Path::new("/"));
    let lo = report
        .interfaces
        .iter()
        .find(|i| i.name == "lo")
        .expect("loopback interface");
    assert!(lo.up, "{lo:?}");
    assert_eq!(lo.mac, None, "loopback has no hardware address");
    assert!(
        lo.addresses
            .iter()
            .any(|a| a.ip == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix == 8),
        "{lo:?}"
    );
    let names: Vec<&str> = report.interfaces.iter().map(|i| i.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

#[test]
fn loopback_counters_grow_with_traffic() {
    let before = rx_of_lo();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    for _ in 0..20 {
        sock.send_to(&[0u8; 1000], addr).unwrap();
    }
    assert!(rx_of_lo() >= before + 20_000);
}

fn rx_of_lo() -> u64 {
    mxgate_system::interfaces()
        .into_iter()
        .find(|i| i.name == "lo")
        .map_or(0, |i| i.rx_bytes)
}

#[test]
fn a_sampler_reports_cpu_use_since_its_last_reading_and_the_firmware() {
    let firmware = Firmware::new("0.1.0", Some("d84f36e"));
    let mut sampler = HostSampler::new(Some(firmware.clone()));
    std::thread::sleep(CPU_SAMPLE_INTERVAL);
    let first = sampler.read(Path::new("/"));
    assert!(first.cpu.interval_ms >= 100);
    assert_eq!(first.firmware.as_ref(), Some(&firmware));
    // A reading right after repeats the figures instead of reporting noise.
    let second = sampler.read(Path::new("/"));
    assert_eq!(second.cpu.interval_ms, first.cpu.interval_ms);
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["firmware"]["git_revision"], "d84f36e");
    assert!(json["memory"]["total_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_missing_data_dir_is_named_not_fatal() {
    let report = HostReport::read(Path::new("/nonexistent/mxgate"));
    assert!(report.disk.is_none());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("/nonexistent/mxgate"));
    assert!(disk_usage(Path::new("/tmp")).unwrap().total_bytes > 0);
}
