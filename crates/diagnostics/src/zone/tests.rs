//! Zone lines for both modes, exact, and the validation of every field.

use super::*;

fn host(name: &str, addresses: &[&str]) -> MxHostSpec {
    MxHostSpec {
        name: name.to_owned(),
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

fn request(mode: DeployMode, hosts: Vec<MxHostSpec>) -> ZoneRequest {
    ZoneRequest {
        domain: "Example.com.".to_owned(),
        mode,
        hosts,
        mta_sts_id: "20260101T000000".to_owned(),
        tls_rpt_rua: None,
        migrating: false,
    }
}

#[test]
fn active_passive_publishes_one_mx_on_the_vip_with_long_ttls() {
    let r = request(
        DeployMode::ActivePassive,
        vec![host("mx.example.com", &["2001:db8::25", "192.0.2.25"])],
    );
    let report = zone_records(&r).unwrap();
    assert_eq!(
        report.zone_text,
        "example.com. 3600 IN MX 10 mx.example.com.\n\
         mx.example.com. 3600 IN A 192.0.2.25\n\
         mx.example.com. 3600 IN AAAA 2001:db8::25\n\
         mta-sts.example.com. 3600 IN A 192.0.2.25\n\
         mta-sts.example.com. 3600 IN AAAA 2001:db8::25\n\
         _mta-sts.example.com. 300 IN TXT \"v=STSv1; id=20260101T000000\"\n\
         _smtp._tls.example.com. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.com\"\n"
    );
    assert_eq!(report.ttl_advice[0].ttl, LONG_TTL);
    assert!(report.ttl_advice[0].reason.contains("VIP"));
    assert!(report.notes[0].contains("https://mta-sts.example.com/.well-known/mta-sts.txt"));
}

#[test]
fn active_active_publishes_equal_priorities_with_short_ttls() {
    let mut r = request(
        DeployMode::ActiveActive,
        vec![
            host("mx1.example.com", &["192.0.2.11"]),
            host("MX2.example.com", &["192.0.2.12"]),
        ],
    );
    r.tls_rpt_rua = Some("mailto:reports@example.net".to_owned());
    let report = zone_records(&r).unwrap();
    assert_eq!(
        report.zone_text,
        "example.com. 300 IN MX 10 mx1.example.com.\n\
         example.com. 300 IN MX 10 mx2.example.com.\n\
         mx1.example.com. 300 IN A 192.0.2.11\n\
         mx2.example.com. 300 IN A 192.0.2.12\n\
         mta-sts.example.com. 3600 IN A 192.0.2.11\n\
         mta-sts.example.com. 3600 IN A 192.0.2.12\n\
         _mta-sts.example.com. 300 IN TXT \"v=STSv1; id=20260101T000000\"\n\
         _smtp._tls.example.com. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:reports@example.net\"\n"
    );
    assert_eq!(report.records[0].rtype, "MX");
    assert_eq!(
        report.records[0].line(),
        "example.com. 300 IN MX 10 mx1.example.com."
    );
    assert!(report.ttl_advice[0].reason.contains("remove its records"));
}

#[test]
fn a_migration_shortens_the_mx_ttl_and_private_addresses_get_a_note() {
    let mut r = request(
        DeployMode::ActivePassive,
        vec![host("mx.example.com", &["10.0.0.25"])],
    );
    r.migrating = true;
    let report = zone_records(&r).unwrap();
    assert_eq!(report.records[0].ttl, SHORT_TTL);
    assert!(report.ttl_advice[0].reason.contains("moving"));
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("10.0.0.25") && n.contains("private")));
}

#[test]
fn every_bad_field_is_named() {
    let r = ZoneRequest {
        domain: "nodot".to_owned(),
        mode: DeployMode::ActiveActive,
        hosts: vec![host("mx_1.example.com", &[])],
        mta_sts_id: "not-alnum".to_owned(),
        tls_rpt_rua: Some("tlsrpt@example.com".to_owned()),
        migrating: false,
    };
    let errors = zone_records(&r).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "domain",
            "hosts",
            "hosts[0].name",
            "hosts[0].addresses",
            "mta_sts_id",
            "tls_rpt_rua"
        ]
    );
    let twice = request(
        DeployMode::ActiveActive,
        vec![
            host("mx.example.com", &["192.0.2.1"]),
            host("MX.example.com.", &["127.0.0.1"]),
        ],
    );
    let errors = zone_records(&twice).unwrap_err();
    assert_eq!(errors[0].field, "hosts[1].name");
    assert!(errors[0].reason.contains("twice"));
    assert_eq!(
        errors[1].reason,
        "127.0.0.1 cannot receive mail from the internet"
    );
}

#[test]
fn requests_round_trip_through_json() {
    let json = r#"{"domain":"example.com","mode":"active-passive",
        "hosts":[{"name":"mx.example.com","addresses":["192.0.2.25"]}],
        "mta_sts_id":"1767225600","tls_rpt_rua":null,"migrating":false}"#;
    let r: ZoneRequest = serde_json::from_str(json).unwrap();
    assert_eq!(r.mode, DeployMode::ActivePassive);
    assert!(zone_records(&r).is_ok());
}
