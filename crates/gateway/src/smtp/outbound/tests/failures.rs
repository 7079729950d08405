//! Backends that die, stall or cannot be reached: the right [`RelayError`],
//! the session dropped, the slot given back, and never a final `.`.

use super::fake::{lines, start, Op::*};
use super::*;

/// Runs a transaction against a backend that stops after `script`; the
/// error of the first failing step.
async fn dies(script: Vec<Op>, settings: OutboundSettings) -> (RelayError, Vec<String>) {
    let (addr, log, task) = start(vec![script]).await;
    let pool = pool(&[addr]);
    let mut b = Backend::new(Arc::clone(&pool), identity(), settings);
    let err = async {
        b.mail("a@x", "").await?;
        b.rcpt("b@y", "").await?;
        b.data_start().await?;
        b.data_chunk(b"Subject: x\r\n\r\n").await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.data_chunk(b"body\r\n").await?;
        b.data_end().await
    }
    .await
    .expect_err("the transaction must fail");
    b.abort().await;
    finish(task).await;
    assert_eq!(b.server(), None, "a failed session is dropped");
    assert_eq!(pool.server("s1").unwrap().active_sessions(), 0);
    (err, lines(&log, 0))
}

#[tokio::test]
async fn backend_dies_after_mail() {
    let (err, _) = dies(script(&[&greeting("250 fake"), &[Read]]), plain()).await;
    assert!(matches!(err, RelayError::Io { step: "MAIL", .. }), "{err}");
}

#[tokio::test]
async fn backend_dies_after_rcpt() {
    let (err, _) = dies(script(&[&greeting("250 fake"), &[Read, OK, Read]]), plain()).await;
    assert!(matches!(err, RelayError::Io { step: "RCPT", .. }), "{err}");
}

#[tokio::test]
async fn backend_dies_mid_data() {
    let s = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK, Read, Say("354 go on"), Read],
    ]);
    let (err, seen) = dies(s, plain()).await;
    assert!(
        matches!(
            err,
            RelayError::Io {
                step: "message data" | "end of data",
                ..
            }
        ),
        "{err}"
    );
    assert!(!seen.iter().any(|l| l == "."), "{seen:?}");
}

#[tokio::test]
async fn backend_dies_before_the_final_reply() {
    let s = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK, Read, Say("354 go on"), Data],
    ]);
    let (err, _) = dies(s, plain()).await;
    assert!(
        matches!(
            err,
            RelayError::Io {
                step: "end of data",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn final_reply_timeout() {
    let s = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK, Read, Say("354 go on"), Data, Sleep(500)],
    ]);
    let mut st = plain();
    st.data_end_timeout = Duration::from_millis(100);
    let (err, _) = dies(s, st).await;
    assert!(
        matches!(
            err,
            RelayError::Timeout {
                step: "end of data",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("mta/s1"), "{err}");
}

#[tokio::test]
async fn abort_mid_data_closes_without_the_dot() {
    let s = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK, Read, Say("354 go on"), Drain],
    ]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(pool(&[addr]), identity(), plain());
    b.mail("a@x", "").await.unwrap();
    b.rcpt("b@y", "").await.unwrap();
    b.data_start().await.unwrap();
    b.data_chunk(b"Subject: half\r\n").await.unwrap();
    b.abort().await;
    finish(task).await;
    let seen = lines(&log, 0);
    assert_eq!(&seen[seen.len() - 2..], ["Subject: half", "<EOF>"]);
    assert!(!seen.iter().any(|l| l == "." || l == "QUIT"), "{seen:?}");
}

#[tokio::test]
async fn dead_server_then_the_next() {
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let s = script(&[&greeting("250 fake"), &[Read, OK], BYE]);
    let (addr, _log, task) = start(vec![s]).await;
    let mut b = Backend::new(pool(&[dead, addr]), identity(), plain());
    assert_eq!(b.mail("a@x", "").await.unwrap().code, 250);
    assert_eq!(b.server().as_deref(), Some("mta/s2"));
    b.abort().await;
    finish(task).await;
}

#[tokio::test]
async fn no_server_at_all() {
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut b = Backend::new(pool(&[dead]), identity(), plain());
    let err = b.mail("a@x", "").await.unwrap_err();
    assert!(matches!(err, RelayError::NoBackend(_)), "{err}");
    assert_eq!(err.to_reply().code, 451);
}

#[tokio::test]
async fn crlf_in_an_address_is_refused_before_sending() {
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut b = Backend::new(pool(&[dead]), identity(), plain());
    let err = b.mail("a@x>\r\nRCPT TO:<evil", "").await.unwrap_err();
    assert!(matches!(err, RelayError::Protocol { step: "MAIL", .. }));
}
