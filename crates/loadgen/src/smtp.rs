//! The client side of one SMTP conversation: send a command line, read a
//! (possibly multi-line) reply, check its code.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line accepted; a longer one means the peer is not SMTP.
const MAX_LINE: usize = 4096;

/// One client connection to an SMTP server.
pub struct Client {
    /// Buffered reads over the socket; writes go through `get_mut()`.
    stream: BufReader<TcpStream>,
    /// Reused line buffer, so a session allocates once.
    line: Vec<u8>,
}

impl Client {
    /// Connects to `target` with Nagle off (every command is one small write).
    ///
    /// # Errors
    /// When the TCP connect fails.
    pub async fn connect(target: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(target)
            .await
            .with_context(|| format!("connect {target}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        Ok(Self {
            stream: BufReader::with_capacity(1024, stream),
            line: Vec::with_capacity(256),
        })
    }

    /// Reads one whole reply (all `NNN-` continuation lines and the final
    /// `NNN ` line) and returns its code.
    ///
    /// # Errors
    /// On end of stream, an over-long line or a line that does not start
    /// with a three-digit code, or a continuation line whose code differs.
    pub async fn read_reply(&mut self) -> Result<u16> {
        let mut first: Option<u16> = None;
        loop {
            self.line.clear();
            let n = (&mut self.stream)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut self.line)
                .await
                .context("read reply")?;
            if n == 0 {
                bail!("connection closed while waiting for a reply");
            }
            if !self.line.ends_with(b"\n") {
                bail!("reply line longer than {MAX_LINE} bytes");
            }
            let (code, last) = parse_reply_line(&self.line)?;
            match first {
                None => first = Some(code),
                Some(c) if c != code => bail!("multi-line reply mixes codes {c} and {code}"),
                Some(_) => {}
            }
            if last {
                return Ok(code);
            }
        }
    }

    /// Reads a reply and fails unless its code is `want`.
    ///
    /// # Errors
    /// As [`Client::read_reply`], or when the code differs (`what` names the step).
    pub async fn expect(&mut self, want: u16, what: &str) -> Result<()> {
        let code = self.read_reply().await.with_context(|| what.to_owned())?;
        if code != want {
            bail!("{what}: got {code}, wanted {want}");
        }
        Ok(())
    }

    /// Writes `bytes` as they are (a command line with its CRLF, or a body).
    ///
    /// # Errors
    /// When the socket write fails.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .get_mut()
            .write_all(bytes)
            .await
            .context("write")
    }

    /// Sends `line` and expects reply code `want`.
    ///
    /// # Errors
    /// As [`Client::send`] and [`Client::expect`].
    pub async fn command(&mut self, line: &[u8], want: u16, what: &str) -> Result<()> {
        self.send(line).await?;
        self.expect(want, what).await
    }
}

/// Parses one reply line: its code, and whether it is the last line
/// (`NNN ` or bare `NNN`) rather than a continuation (`NNN-`).
///
/// # Errors
/// When the line does not start with three digits followed by space,
/// hyphen or end of line.
pub fn parse_reply_line(line: &[u8]) -> Result<(u16, bool)> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let digits = text.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let Some(digits) = digits else {
        bail!("not an SMTP reply: {:?}", String::from_utf8_lossy(text));
    };
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match text.get(3) {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        Some(_) => bail!("not an SMTP reply: {:?}", String::from_utf8_lossy(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_last_and_continuation_lines() {
        assert_eq!(parse_reply_line(b"250 ok\r\n").unwrap(), (250, true));
        assert_eq!(
            parse_reply_line(b"250-PIPELINING\r\n").unwrap(),
            (250, false)
        );
        assert_eq!(parse_reply_line(b"221\r\n").unwrap(), (221, true));
        assert_eq!(parse_reply_line(b"354 go\n").unwrap(), (354, true));
    }

    #[test]
    fn refuses_non_replies() {
        assert!(parse_reply_line(b"hello\r\n").is_err());
        assert!(parse_reply_line(b"25\r\n").is_err());
        assert!(parse_reply_line(b"250x\r\n").is_err());
    }
}
