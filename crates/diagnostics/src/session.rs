//! The steps every SMTP conversation of the diagnostics starts and ends
//! with: connect, banner, EHLO, and the polite QUIT.

use crate::millis;
use crate::steps::{SmtpReply, StepTiming, Steps};
use mxgate_balance::check::{CheckError, Conn, Step};
use mxgate_smtp::Reply;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Opens the TCP connection, recorded as the `connect` step.
pub(crate) async fn connect(
    addr: SocketAddr,
    steps: &mut Steps,
    deadline: Instant,
) -> Option<Conn<TcpStream>> {
    let connecting = async {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => Err(CheckError::Timeout {
                step: Step::Connect,
            }),
            Ok(Err(source)) => Err(CheckError::Connect { source }),
            Ok(Ok(tcp)) => Ok(tcp),
        }
    };
    let tcp = steps.run(Step::Connect, connecting).await?;
    let _ = tcp.set_nodelay(true);
    Some(Conn::new(tcp, deadline))
}

/// The banner and the EHLO reply as far as they were read.
pub(crate) struct Greeting {
    pub(crate) banner: Option<SmtpReply>,
    pub(crate) reply: Option<Reply>,
}

/// Reads the banner and says EHLO (as `step`). On a refused banner or EHLO
/// the conversation ends with QUIT and `steps` holds the error.
pub(crate) async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    steps: &mut Steps,
    helo: &str,
    step: Step,
) -> Option<Greeting> {
    let banner = steps
        .exchange(Step::Banner, None, conn.reply(Step::Banner), 220)
        .await?;
    let mut greeting = Greeting {
        banner: Some(SmtpReply::from(&banner)),
        reply: None,
    };
    if steps.failed() {
        quit(conn, steps).await;
        return Some(greeting);
    }
    let command = format!("EHLO {helo}\r\n");
    let reply = conn.command(&command, step);
    greeting.reply = steps.exchange(step, Some(&command), reply, 250).await;
    if greeting.reply.is_some() && steps.failed() {
        quit(conn, steps).await;
    }
    Some(greeting)
}

/// Says QUIT and records the 221 (a missing one is not a failure of the
/// probe, only shown).
pub(crate) async fn quit<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, steps: &mut Steps) {
    let started = Instant::now();
    let got = conn.command("QUIT\r\n", Step::Quit).await;
    steps.list.push(StepTiming {
        step: Step::Quit.to_string(),
        command: Some("QUIT".to_owned()),
        reply: got.as_ref().ok().map(SmtpReply::from),
        millis: millis(started.elapsed()),
        ok: got.is_ok_and(|r| r.code == 221),
    });
}
