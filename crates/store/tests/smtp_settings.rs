//! The smtp-mode settings of pools and listeners survive the store exactly.

use mxgate_config::Policy;
use mxgate_store::Store;

#[test]
fn smtp_and_relay_settings_round_trip_through_the_store() {
    let text = r#"
[[pool]]
name = "mta"
client_identity = "xclient"
backend_tls = "verify"
backend_tls_name = "mx.example.com"
[[pool.server]]
name = "a"
address = "127.0.0.1:2525"
[[listener]]
name = "mx"
bind = "127.0.0.1:25"
pool = "mta"
hostname = "mx1.example.com"
max_message_size = 10240000
max_recipients = 500
max_errors = 10
max_line_length = 2000
starttls = false
command_timeout_ms = 60000
data_timeout_ms = 120000
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
    assert!(back.to_toml().contains("client_identity = \"xclient\""));
}
