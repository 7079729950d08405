//! Tests of the web UI's accounts, sessions and audit log in the store:
//! the first admin is created once, sessions expire and follow their user,
//! users sync between two stores and sessions do not.

use crate::{Role, Store};
use serde_json::json;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn the_first_admin_is_created_only_once() {
    let (_dir, store) = open();
    assert!(!store.has_admin().unwrap());
    assert!(store.create_first_admin("root", "$argon2id$hash1").unwrap());
    assert!(store.has_admin().unwrap());
    assert!(!store
        .create_first_admin("other", "$argon2id$hash2")
        .unwrap());
    let users = store.users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].role),
        ("root", Role::Admin)
    );
}

#[test]
fn create_user_refuses_a_taken_name_and_delete_ends_its_sessions() {
    let (_dir, store) = open();
    assert!(store.create_user("ro", Role::Readonly, "h1").unwrap());
    assert!(!store.create_user("ro", Role::Admin, "h2").unwrap());
    let creds = store.user_credentials("ro").unwrap().unwrap();
    assert_eq!(
        (creds.role, creds.password_hash.as_str()),
        (Role::Readonly, "h1")
    );
    store.create_web_session("tok", "ro", "csrf1", 60).unwrap();
    let s = store.touch_web_session("tok", 60).unwrap().unwrap();
    assert_eq!(
        (s.user.as_str(), s.role, s.csrf.as_str()),
        ("ro", Role::Readonly, "csrf1")
    );
    assert!(store.delete_user("ro").unwrap());
    assert!(!store.delete_user("ro").unwrap());
    assert_eq!(store.touch_web_session("tok", 60).unwrap(), None);
}

#[test]
fn expired_sessions_and_logged_out_sessions_are_not_found() {
    let (_dir, store) = open();
    store.create_user("a", Role::Admin, "h").unwrap();
    store.create_web_session("old", "a", "c", -1).unwrap();
    assert_eq!(store.touch_web_session("old", 60).unwrap(), None);
    store.create_web_session("new", "a", "c", 60).unwrap();
    assert!(store.touch_web_session("new", 60).unwrap().is_some());
    store.delete_web_session("new").unwrap();
    assert_eq!(store.touch_web_session("new", 60).unwrap(), None);
    // A new password ends every session of the user.
    store.create_web_session("s2", "a", "c", 60).unwrap();
    assert!(store.set_user_password("a", "h2").unwrap());
    assert_eq!(store.touch_web_session("s2", 60).unwrap(), None);
}

#[test]
fn audit_log_lists_newest_first_with_details() {
    let (_dir, store) = open();
    store
        .audit("admin", "server.add", "mta/mta3", &json!({"weight": 2}))
        .unwrap();
    store
        .audit("admin", "server.remove", "mta/mta3", &json!({}))
        .unwrap();
    let log = store.audit_log(10).unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["server.remove", "server.add"]);
    assert_eq!(log[1].detail["weight"], 2);
    assert_eq!(log[1].user, "admin");
}

#[test]
fn users_sync_to_the_peer_and_sessions_do_not() {
    let (_a_dir, a) = open();
    let (_b_dir, b) = open();
    a.create_user("admin", Role::Admin, "hash").unwrap();
    a.create_web_session("tok", "admin", "c", 60).unwrap();
    let batch = a.sync_changes_since(0, 1000).unwrap();
    let tables: Vec<_> = batch.changes.iter().map(|c| c.table.as_str()).collect();
    assert_eq!(tables, ["users"]);
    b.apply_remote(&batch).unwrap();
    assert_eq!(
        b.user_credentials("admin").unwrap().unwrap().password_hash,
        "hash"
    );
    assert_eq!(b.touch_web_session("tok", 60).unwrap(), None);
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}
