//! A tiny in-process SMTP server on loopback for the unit tests: a
//! multi-line banner and EHLO reply, accepts everything, counts messages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Starts the server on 127.0.0.1:0; returns its address and a message counter.
pub async fn start() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, c.clone()));
        }
    });
    (addr, count)
}

async fn serve(sock: TcpStream, count: Arc<AtomicUsize>) {
    let mut s = BufReader::new(sock);
    let _ = s.get_mut().write_all(b"220-test\r\n220 ready\r\n").await;
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            count.fetch_add(1, Ordering::Relaxed);
            b"250 queued\r\n"
        } else {
            match line.get(..4).unwrap_or("") {
                "EHLO" => b"250-test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go\r\n"
                }
                "QUIT" => {
                    let _ = s.get_mut().write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 ok\r\n",
            }
        };
        if s.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}
