//! Lists and rate limits survive the store exactly, in file order.

use mxgate_config::Policy;
use mxgate_store::Store;

#[test]
fn lists_and_rate_limits_round_trip_through_the_store() {
    let text = r#"
[[list]]
action = "block"
client = "198.51.100.0/24"
[[list]]
action = "allow"
helo = ".trusted.example"
[[list]]
action = "block"
recipient = "spamtrap@example.com"
[[rate_limit]]
key = "client_net"
window_s = 60
connections = 30
concurrency = 10
[[rate_limit]]
key = "sender_domain"
window_s = 3600
messages = 1000
recipients = 5000
"#;
    let policy = Policy::parse(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.replace_policy(&policy).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let back = store.policy().unwrap();
    assert_eq!(back, policy);
    assert_eq!(back.to_toml(), policy.to_toml());
}
