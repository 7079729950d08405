//! Peer sync between two boxes in the lab's network namespaces (the
//! topology of `support/vrrp_lab.rs`: A 10.77.0.1 and B 10.77.0.2 on a
//! bridge), over their real interfaces rather than loopback: one-time-code
//! pairing from B's namespace, an edit on either box reaching the other, a
//! partition (B's bridge port unplugged, both boxes up and edited), and
//! convergence after the cable is back. Needs root and `ip netns`; skips
//! otherwise. All traffic stays inside the namespaces the test creates.

mod support;

use std::path::Path;
use std::time::Duration;

use support::gateway::mxgate_output;
use support::netns::skip_unless_netns;
use support::vrrp_lab::{curl_missing, Lab, MxBox, LOOPBACK_L4_POLICY, START};
use support::{mxgate_bin, poll};

const SYNC_PORT: u16 = 4747;
const WAIT: Duration = Duration::from_secs(20);

/// `[sync]` for a box whose peer is at `peer` (after the box's `[vrrp]`).
fn sync_section(peer: &str) -> String {
    format!("\n[sync]\nlisten = \"0.0.0.0:{SYNC_PORT}\"\npeer = \"{peer}:{SYNC_PORT}\"\n")
}

fn export(data: &Path) -> String {
    let (code, out) = mxgate_output(&["policy", "export", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    out
}

/// Imports the lab's l4 policy plus relay domain `domain` on a box.
fn import_with_domain(data: &Path, domain: &str) {
    let file = data.parent().unwrap().join(format!("{domain}.toml"));
    let policy = format!("{LOOPBACK_L4_POLICY}\n[relay]\ndomains = [\"{domain}\"]\n");
    std::fs::write(&file, policy).unwrap();
    let (code, out) = mxgate_output(&[
        "policy",
        "import",
        "--data",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
}

fn wait_same(a: &MxBox, b: &MxBox, what: &str, check: impl Fn(&str) -> bool) -> String {
    let same = poll(WAIT, || {
        let (ea, eb) = (export(&a.data_dir()), export(&b.data_dir()));
        (ea == eb && check(&ea)).then_some(ea)
    });
    same.unwrap_or_else(|| {
        panic!(
            "{what}: not converged\nA:\n{}\nB:\n{}\nA log:\n{}\nB log:\n{}",
            export(&a.data_dir()),
            export(&b.data_dir()),
            a.run.output(),
            b.run.output()
        )
    })
}

#[test]
fn paired_boxes_sync_across_the_bridge_and_converge_after_a_partition() {
    let test = "paired_boxes_sync_across_the_bridge_and_converge_after_a_partition";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let lab = Lab::new();
    let a = MxBox::start(&lab.a, "gw-a", 150, &sync_section("10.77.0.2"));
    let b = MxBox::start(&lab.b, "gw-b", 100, &sync_section("10.77.0.1"));
    let up = |peer: &str| format!("mxgate_sync_peer_up{{peer=\"{peer}:{SYNC_PORT}\"}}");

    // Pairing: the code from A's console, joined from B's namespace.
    let (rc, out) = mxgate_output(&["cluster", "pair", "--data", a.data_dir().to_str().unwrap()]);
    assert_eq!(rc, 0, "{out}");
    let code = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 86)
        .expect("a pairing code")
        .to_string();
    let join = lab
        .b
        .command(
            mxgate_bin(),
            &[
                "cluster",
                "join",
                "--data",
                b.data_dir().to_str().unwrap(),
                "--peer",
                &format!("10.77.0.1:{SYNC_PORT}"),
                &code,
            ],
        )
        .output()
        .unwrap();
    assert!(join.status.success(), "{join:?}");
    a.wait_metric(&up("10.77.0.2"), 1.0, START);
    b.wait_metric(&up("10.77.0.1"), 1.0, START);

    // An edit on either box reaches the other.
    import_with_domain(&a.data_dir(), "from-a.test");
    wait_same(&a, &b, "A's edit on B", |e| e.contains("from-a.test"));
    import_with_domain(&b.data_dir(), "from-b.test");
    wait_same(&a, &b, "B's edit on A", |e| e.contains("from-b.test"));

    // Partition: B's cable out of the bridge; both boxes keep running and
    // are edited (A's import, then B's).
    lab.unplug("pb");
    a.wait_metric(&up("10.77.0.2"), 0.0, WAIT);
    import_with_domain(&a.data_dir(), "during-partition-a.test");
    std::thread::sleep(Duration::from_millis(50));
    import_with_domain(&b.data_dir(), "during-partition-b.test");
    assert!(!export(&a.data_dir()).contains("during-partition-b.test"));
    assert!(!export(&b.data_dir()).contains("during-partition-a.test"));

    // Heal: both end identical (per-row last writer wins, docs/sync.md),
    // with B's later import in it.
    lab.plug("pb");
    a.wait_metric(&up("10.77.0.2"), 1.0, WAIT);
    let merged = wait_same(&a, &b, "after the partition", |e| {
        e.contains("during-partition-b.test")
    });
    assert!(!merged.contains("from-b.test"), "{merged}");
}
