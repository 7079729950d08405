//! `[greylist]`: defaults, validation errors naming each key and its range,
//! and the filter settings derived from it.

use mxgate_config::Policy;
use std::time::Duration;

#[test]
fn greylisting_is_off_by_default_with_documented_defaults() {
    let p = Policy::parse("").unwrap();
    assert!(!p.greylist.enabled);
    assert_eq!(p.greylist.delay_s, 300);
    assert_eq!(p.greylist_settings(), None);
}

#[test]
fn enabled_section_gives_filter_settings() {
    let p = Policy::parse(
        "[greylist]\nenabled = true\ndelay_s = 1\nretry_window_s = 60\nlifetime_s = 120\n\
         ipv4_prefix = 32\nipv6_prefix = 128\nauto_allow_after = 0\n",
    )
    .unwrap();
    let s = p.greylist_settings().expect("enabled");
    assert_eq!(s.delay, Duration::from_secs(1));
    assert_eq!(s.retry_window, Duration::from_secs(60));
    assert_eq!(s.lifetime, Duration::from_secs(120));
    assert_eq!(
        (s.ipv4_prefix, s.ipv6_prefix, s.auto_allow_after),
        (32, 128, 0)
    );
    assert!(mxgate_filter_accepts(&s));
    // Round trip through the export format.
    assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
}

fn mxgate_filter_accepts(s: &mxgate_filter::greylist::GreylistSettings) -> bool {
    mxgate_filter::greylist::Greylist::new(s.clone()).is_ok()
}

fn errors(text: &str) -> Vec<(String, String)> {
    Policy::parse(text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.key, e.message))
        .collect()
}

#[test]
fn every_out_of_range_key_is_named_with_its_range() {
    let errs = errors(
        "[greylist]\ndelay_s = 0\nretry_window_s = 2592001\nlifetime_s = 34560001\n\
         ipv4_prefix = 7\nipv6_prefix = 129\nauto_allow_after = 1001\n",
    );
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "greylist.delay_s",
            "greylist.retry_window_s",
            "greylist.lifetime_s",
            "greylist.ipv4_prefix",
            "greylist.ipv6_prefix",
            "greylist.auto_allow_after",
        ]
    );
    assert!(errs[0].1.contains("1..86400"), "{}", errs[0].1);
    assert!(errs[3].1.contains("8..32"), "{}", errs[3].1);
    assert!(errs[4].1.contains("16..128"), "{}", errs[4].1);
    assert!(errs[5].1.contains("0..1000"), "{}", errs[5].1);
}

#[test]
fn window_must_exceed_delay_and_lifetime_cover_window() {
    let errs = errors("[greylist]\ndelay_s = 600\nretry_window_s = 600\nlifetime_s = 599\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].0, "greylist.retry_window_s");
    assert!(errs[0].1.contains("601..2592000"), "{}", errs[0].1);
    assert_eq!(errs[1].0, "greylist.lifetime_s");
    assert!(errs[1].1.contains("600..34560000"), "{}", errs[1].1);
}

#[test]
fn a_disabled_section_is_still_validated() {
    let errs = errors("[greylist]\nenabled = false\nipv4_prefix = 40\n");
    assert_eq!(errs[0].0, "greylist.ipv4_prefix");
}
