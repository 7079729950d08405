//! Black-box tests of the command line: configuration errors (exit 2, every
//! error named), policy import/export, version, and the demo.

mod support;

use std::path::Path;
use std::time::Duration;
use support::gateway::{mxgate_output, write_file, SmtpClient};
use support::temp_dir;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn the_examples_are_valid() {
    let ex = examples();
    for policy in ["policy.toml", "policy-smtp.toml", "policy-filtering.toml"] {
        let (code, out) = mxgate_output(&[
            "check-config",
            "--config",
            ex.join("node.toml").to_str().unwrap(),
            "--policy",
            ex.join(policy).to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{policy}: {out}");
        assert!(out.contains("configuration ok"), "{out}");
    }
}

#[test]
fn invalid_settings_exit_2_naming_file_key_and_what_is_valid() {
    let dir = temp_dir("cli");
    let node = write_file(
        dir.path(),
        "node.toml",
        "name = \"gw a\"\ndata_dir = \"/d\"\n",
    );
    let policy = write_file(
        dir.path(),
        "policy.toml",
        "[[pool]]\nname = \"mta\"\n[[pool.server]]\nname = \"a\"\naddress = \"10.0.0.1:25\"\nweight = 300\n\
         [[listener]]\nname = \"mx\"\nbind = \"0.0.0.0:25\"\npool = \"nope\"\n",
    );
    let (code, out) = mxgate_output(&[
        "check-config",
        "--config",
        node.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    let node_s = node.display().to_string();
    let policy_s = policy.display().to_string();
    assert!(
        out.contains(&format!("{node_s}: name: \"gw a\" is not a valid name")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{policy_s}: pool[mta].server[a].weight: 300 is out of range: must be 0..256"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{policy_s}: listener[mx].pool: no pool is called \"nope\""
        )),
        "{out}"
    );
    assert!(out.contains("3 errors found; nothing was changed"), "{out}");

    // A syntax error names the line.
    let bad = write_file(
        dir.path(),
        "bad.toml",
        "[[pool]]\nname = \"a\"\nweight = \n",
    );
    let (code, out) = mxgate_output(&[
        "check-config",
        "--config",
        node.to_str().unwrap(),
        "--policy",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        out.contains(&format!("{}: line 3:", bad.display())),
        "{out}"
    );
}

#[test]
fn policy_import_is_all_or_nothing_and_export_round_trips() {
    let dir = temp_dir("cli");
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let example = examples().join("policy.toml");
    let (code, out) = mxgate_output(&[
        "policy",
        "import",
        "--data",
        data_s,
        example.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 pools, 2 servers, 1 listeners, 1 relay domains"),
        "{out}"
    );

    let first = dir.path().join("first.toml");
    let (code, out) = mxgate_output(&[
        "policy",
        "export",
        "--data",
        data_s,
        first.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    // Re-importing the export and exporting again gives the same bytes.
    let (code, _) = mxgate_output(&[
        "policy",
        "import",
        "--data",
        data_s,
        first.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, second) = mxgate_output(&["policy", "export", "--data", data_s]);
    assert_eq!(code, 0);
    let first_text = std::fs::read_to_string(&first).unwrap();
    assert!(
        second.contains(&first_text),
        "export is stable:\n{first_text}\n---\n{second}"
    );
    assert!(
        first_text.contains("address = \"10.0.0.11:25\""),
        "{first_text}"
    );

    // An invalid file changes nothing.
    let bad = write_file(
        dir.path(),
        "bad.toml",
        "[[pool]]\nname = \"x\"\ncheck = { fall = 0 }\n",
    );
    let (code, out) = mxgate_output(&["policy", "import", "--data", data_s, bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("pool[x].check.fall"), "{out}");
    let (_, after) = mxgate_output(&["policy", "export", "--data", data_s]);
    assert!(after.contains(&first_text), "the store is unchanged");

    // Exporting from a directory without a store is an error, not an empty policy.
    let (code, out) = mxgate_output(&[
        "policy",
        "export",
        "--data",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no mxgate store here"), "{out}");
}

#[test]
fn version_names_the_target() {
    let (code, out) = mxgate_output(&["version"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("mxgate {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("linux"), "{out}");
}

#[test]
fn the_demo_delivers_a_message_and_stops_cleanly_on_ctrl_c() {
    let dir = temp_dir("demo");
    // A guarded process: killed even when an assertion fails.
    let mut demo = support::Proc::spawn(
        "demo",
        support::mxgate(&[
            "demo",
            "--smtp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--smtp-mode",
            "127.0.0.1:0",
            "--dir",
            dir.path().to_str().unwrap(),
        ]),
    );
    demo.wait_for_line("Ctrl-C stops", Duration::from_secs(30));
    let printed = demo.stdout();
    let address = |label: &str| {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|rest| rest.trim().parse::<std::net::SocketAddr>().unwrap())
    };
    let smtp = address("SMTP, l4 mode (PROXY v2 to the sinks)");
    let smtp_mode = address("SMTP, smtp mode (STARTTLS, relay check)");
    let smtp = smtp.expect("the demo prints its SMTP address");
    // The sinks need one health check to come up; retry until 220.
    let banner = support::poll(Duration::from_secs(10), || {
        let mut c = SmtpClient::connect(smtp).ok()?;
        let b = c.reply().ok()?;
        if b.starts_with("220") {
            Some(c)
        } else {
            None
        }
    });
    let mut c = banner.expect("demo answers 220");
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    let queued = c
        .send_mail("demo@example.test", "postmaster@example.test", "hello")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    c.command("QUIT").unwrap();
    drop(c);
    // The smtp-mode listener answers itself and relays to a sink.
    let mut c =
        SmtpClient::connect(smtp_mode.expect("the demo prints its smtp-mode address")).unwrap();
    assert!(c.reply().unwrap().starts_with("220 demo ESMTP"));
    assert!(c.command("EHLO client.test").unwrap().contains("STARTTLS"));
    let queued = c
        .send_mail("demo@example.test", "postmaster@example.test", "hello")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    c.command("QUIT").unwrap();
    drop(c);
    let stored: Vec<String> = ["mta1", "mta2"]
        .iter()
        .flat_map(|m| {
            std::fs::read_dir(dir.path().join(m).join("new"))
                .into_iter()
                .flatten()
        })
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:#?}");
    for m in &stored {
        assert!(m.contains("X-Sink-Client: 127.0.0.1\r\n"), "{m}");
    }
    let relayed = stored.iter().filter(|m| m.contains("by demo (mxgate)"));
    assert_eq!(relayed.count(), 1, "{stored:#?}");

    demo.signal("INT");
    let status = demo.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", demo.output());
}
