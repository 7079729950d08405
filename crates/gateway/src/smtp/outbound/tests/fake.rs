//! Scripted fake backends on 127.0.0.1: each accepted connection runs the
//! next script, line by line, and records every line it received.

use super::super::conn::Io;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One step of a script.
#[derive(Debug, Clone)]
pub(super) enum Op {
    /// Write this text; `\n` is turned into CRLF and one is appended.
    Say(&'static str),
    /// Read one line and record it.
    Read,
    /// Read exactly this many bytes and record them as `raw:<hex>`.
    Raw(usize),
    /// Read message lines up to and including `.`, recording each.
    Data,
    /// Record every line until the client closes, then `<EOF>`.
    Drain,
    /// Run a TLS server handshake with a fresh self-signed certificate.
    Tls,
    /// Sleep this many milliseconds.
    Sleep(u64),
}

/// What the fake received, per connection.
pub(super) type Log = Arc<Mutex<Vec<Vec<String>>>>;

/// Starts a fake that serves one connection per script, in order.
pub(super) async fn start(scripts: Vec<Vec<Op>>) -> (SocketAddr, Log, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let task = tokio::spawn(async move {
        for script in scripts {
            let (tcp, _) = listener.accept().await.unwrap();
            let index = {
                let mut all = record.lock().unwrap();
                all.push(Vec::new());
                all.len() - 1
            };
            run(Box::new(tcp), script, &record, index).await;
        }
    });
    (addr, log, task)
}

/// The lines connection `index` received.
pub(super) fn lines(log: &Log, index: usize) -> Vec<String> {
    log.lock().unwrap().get(index).cloned().unwrap_or_default()
}

async fn run(stream: Box<dyn Io>, script: Vec<Op>, log: &Log, index: usize) {
    let note = |s: String| log.lock().unwrap()[index].push(s);
    let mut io = BufReader::new(stream);
    for op in script {
        match op {
            Op::Say(text) => {
                let wire = format!("{}\r\n", text.replace('\n', "\r\n"));
                if io.get_mut().write_all(wire.as_bytes()).await.is_err() {
                    note("<write failed>".into());
                    return;
                }
            }
            Op::Read => match read_line(&mut io).await {
                Some(line) => note(line),
                None => return note("<EOF>".into()),
            },
            Op::Raw(n) => {
                let mut buf = vec![0u8; n];
                if io.read_exact(&mut buf).await.is_err() {
                    return note("<EOF>".into());
                }
                let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
                note(format!("raw:{hex}"));
            }
            Op::Data => loop {
                match read_line(&mut io).await {
                    Some(line) => {
                        let end = line == ".";
                        note(line);
                        if end {
                            break;
                        }
                    }
                    None => return note("<EOF>".into()),
                }
            },
            Op::Drain => {
                while let Some(line) = read_line(&mut io).await {
                    note(line);
                }
                return note("<EOF>".into());
            }
            Op::Tls => {
                assert!(io.buffer().is_empty(), "client sent data before TLS");
                let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
                let tls = acceptor.accept(io.into_inner()).await.unwrap();
                note("<TLS>".into());
                io = BufReader::new(Box::new(tls));
            }
            Op::Sleep(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
        }
    }
}

async fn read_line(io: &mut BufReader<Box<dyn Io>>) -> Option<String> {
    let mut line = String::new();
    match io.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["mx.example.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    Arc::new(config)
}
