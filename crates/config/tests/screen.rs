//! `[screen]` validation: ranges, greet action, thresholds and zones, each
//! error naming its key.

use mxgate_config::Policy;

fn keys(text: &str) -> Vec<String> {
    let err = Policy::parse(text).unwrap_err();
    err.0.iter().map(|e| e.key.clone()).collect()
}

#[test]
fn a_valid_screen_is_normalised_and_round_trips() {
    let p = Policy::parse(
        "[screen]\ngreet_wait_ms = 6000\ngreet_action = \"drop\"\ndnsbl_threshold = 3\n\
         dnsbl_allow_threshold = -2\ndns_timeout_ms = 800\nallowlist_ttl_s = 3600\n\
         [[screen.dnsbl]]\nzone = \"ZEN.Example.\"\nweight = 2\nfilter = \" 127.0.0.[2..11] \"\n\
         [[screen.dnsbl]]\nzone = \"list.dnswl.example\"\nweight = -5\n",
    )
    .unwrap();
    assert_eq!(p.screen.dnsbl[0].zone, "zen.example");
    assert_eq!(p.screen.dnsbl[0].filter.as_deref(), Some("127.0.0.[2..11]"));
    assert_eq!(p.screen.dnsbl[1].weight, -5);
    assert_eq!(p.screen.greet_action, "drop");
    let again = Policy::parse(&p.to_toml()).unwrap();
    assert_eq!(again, p);
}

#[test]
fn defaults_are_valid() {
    let p = Policy::parse("[screen]\n").unwrap();
    assert_eq!(p.screen.greet_wait_ms, 0);
    assert_eq!(p.screen.greet_action, "reject");
    assert_eq!(p.screen.dnsbl_threshold, 3);
    assert!(p.screen.dnsbl.is_empty());
}

#[test]
fn every_screen_error_names_its_key() {
    let got = keys(
        "[screen]\ngreet_wait_ms = 30001\ngreet_action = \"enforce\"\ndnsbl_threshold = 101\n\
         dns_timeout_ms = 99\nallowlist_ttl_s = 2592001\n\
         [[screen.dnsbl]]\nzone = \"bad zone\"\nweight = 0\nfilter = \"127.0.0\"\n\
         [[screen.dnsbl]]\nzone = \"a.test\"\nweight = 101\nfilter = \"127.0.0.[5..2]\"\n\
         [[screen.dnsbl]]\nzone = \"A.test.\"\n",
    );
    assert_eq!(
        got,
        [
            "screen.greet_wait_ms",
            "screen.greet_action",
            "screen.dnsbl_threshold",
            "screen.dns_timeout_ms",
            "screen.allowlist_ttl_s",
            "screen.dnsbl[0].zone",
            "screen.dnsbl[0].weight",
            "screen.dnsbl[0].filter",
            "screen.dnsbl[1].weight",
            "screen.dnsbl[1].filter",
            "screen.dnsbl[2].zone",
        ]
    );
}

#[test]
fn the_allow_threshold_must_be_below_the_threshold() {
    assert_eq!(
        keys("[screen]\ndnsbl_threshold = 2\ndnsbl_allow_threshold = 2\n"),
        ["screen.dnsbl_allow_threshold"]
    );
    assert_eq!(
        keys("[screen]\ndnsbl_threshold = -1\ndnsbl_allow_threshold = -101\n"),
        ["screen.dnsbl_allow_threshold"]
    );
    assert!(Policy::parse("[screen]\ndnsbl_threshold = 5\ndnsbl_allow_threshold = -3\n").is_ok());
}

#[test]
fn a_duplicate_zone_is_refused_case_insensitively() {
    let err = Policy::parse(
        "[[screen.dnsbl]]\nzone = \"zen.example\"\n[[screen.dnsbl]]\nzone = \"ZEN.example.\"\n",
    )
    .unwrap_err();
    assert_eq!(err.0[0].key, "screen.dnsbl[1].zone");
    assert!(err.0[0].message.contains("twice"), "{err}");
}

#[test]
fn reverse_dns_is_off_by_default_and_wanted_for_reverse_name_entries() {
    let p = Policy::parse("[screen]\n").unwrap();
    assert!(!p.screen.reverse_dns);
    assert!(!p.reverse_dns_wanted());
    let p = Policy::parse("[screen]\nreverse_dns = true\n").unwrap();
    assert!(p.screen.reverse_dns && p.reverse_dns_wanted());
    assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
    let p =
        Policy::parse("[[list]]\naction = \"block\"\nreverse_name = \".example.test\"\n").unwrap();
    assert!(!p.screen.reverse_dns);
    assert!(p.reverse_dns_wanted());
    assert_eq!(
        keys("[screen]\nreverse_dns = \"yes\"\n").len(),
        1,
        "a string is not a boolean"
    );
}
