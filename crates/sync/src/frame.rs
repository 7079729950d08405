//! The frames of the sync protocol and their encoding: a `u32` big-endian
//! length, then the frame in postcard, at most [`MAX_FRAME`] bytes.
//!
//! [`Frame::Hello`] is variant 0 and its first field is the protocol
//! version, and that stays so in every later version: a peer can always
//! read the version of a newer peer's Hello ([`hello_version`]) and refuse
//! it with a clear error, even when it cannot decode the rest.

use mxgate_store::{Batch, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version this build speaks. Version 2 added the store
/// schema version to the Hello.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame (its postcard bytes, without the length prefix): 16 MiB,
/// room for a batch at the store's limit (8 MiB as counted by
/// `Change::size`) with postcard's overhead.
pub const MAX_FRAME: usize = 16 << 20;

/// One message between two peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The first frame each side sends. Must stay variant 0 with
    /// `protocol_version` first (see the module doc).
    Hello {
        /// The sender's protocol version ([`PROTOCOL_VERSION`]).
        protocol_version: u32,
        /// The sender's store schema version (`mxgate_store::SCHEMA_VERSION`):
        /// rows only sync between equal schemas.
        schema_version: u32,
        /// The sender's store node id.
        node: NodeId,
        /// The sender's name (`name` in its node file), for logs.
        name: String,
    },
    /// Changes of the sender's log after position `after_seq`, up to
    /// `batch.last_seq`. Within one `epoch` the batches of a connection are
    /// contiguous; a full resend starts a new, larger epoch.
    Changes {
        /// Resend generation: 0 at connect, +1 on each full resend.
        epoch: u32,
        /// The log position the batch continues from.
        after_seq: u64,
        /// The changes.
        batch: Batch,
    },
    /// The receiver applied the sender's log up to `up_to` (a
    /// [`Frame::Changes`]' `batch.last_seq`).
    Ack {
        /// The acknowledged log position.
        up_to: u64,
    },
    /// The sender's per-table digests (`Store::sync_digest`).
    Digest {
        /// Table name to SHA-256.
        tables: BTreeMap<String, [u8; 32]>,
        /// True when the sender had nothing unacknowledged for the
        /// receiver when it computed the digests: only then may a
        /// mismatch be taken for a lost change rather than one in flight.
        quiet: bool,
    },
    /// Asks the receiver to resend its whole log (from position 0) in a
    /// new epoch, because the named table's digests differ.
    NeedTable {
        /// The first table found different (informational: the whole log
        /// is resent).
        table: String,
    },
    /// A refusal; the sender closes the connection after it.
    Error {
        /// What is wrong, for the peer's log.
        text: String,
    },
    /// Pairing (`mxgate cluster join`): the only frame of a pairing
    /// connection, sent by the joining box instead of a Hello. Added after
    /// version 1 shipped as a new last variant: every earlier frame
    /// encodes as before, and an older box answers it with "expected a
    /// Hello frame first".
    Pair {
        /// HMAC-SHA256(secret of the code, server pin ‖ client pin).
        proof: [u8; 32],
    },
    /// The pairing is accepted: the server stored the client's pin and
    /// closes the connection.
    PairOk,
    /// Keepalive, sent every second inside a session: a peer not heard
    /// from for a while (a cut cable, a frozen box) is taken for gone.
    Ping,
}

/// Why a frame could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over [`MAX_FRAME`].
    #[error("sync frame of {len} bytes is over the limit of {max}")]
    Oversize {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("sync frame truncated: the connection ended inside a frame")]
    Truncated,
    /// The bytes are not a frame of this protocol version.
    #[error("malformed sync frame: {0}")]
    Malformed(String),
    /// An I/O error on the connection.
    #[error("sync connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes a frame with its length prefix.
///
/// # Errors
/// [`FrameError::Oversize`] when the frame is over [`MAX_FRAME`].
pub fn encode(frame: &Frame) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(frame, vec![0u8; 4])
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::Oversize {
            len,
            max: MAX_FRAME,
        });
    }
    out[..4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    Ok(out)
}

/// Decodes one frame's postcard bytes (without the length prefix). Every
/// byte must be used: trailing bytes are malformed.
///
/// # Errors
/// [`FrameError::Oversize`] or [`FrameError::Malformed`].
pub fn decode(payload: &[u8]) -> Result<Frame, FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::Oversize {
            len: payload.len(),
            max: MAX_FRAME,
        });
    }
    let (frame, rest) = postcard::take_from_bytes::<Frame>(payload)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after the frame",
            rest.len()
        )));
    }
    Ok(frame)
}

/// The protocol version of a Hello frame's bytes, read without decoding the
/// rest (so that a newer peer's Hello can be refused by version). `None`
/// when the bytes do not start like a Hello.
pub fn hello_version(payload: &[u8]) -> Option<u32> {
    let (variant, rest) = postcard::take_from_bytes::<u32>(payload).ok()?;
    if variant != 0 {
        return None;
    }
    postcard::take_from_bytes::<u32>(rest).ok().map(|(v, _)| v)
}

/// Reads one frame's payload: `Ok(None)` at a clean end of stream (before a
/// length prefix).
///
/// # Errors
/// [`FrameError::Oversize`] (before reading the payload),
/// [`FrameError::Truncated`] or [`FrameError::Io`].
pub async fn read_payload<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::Oversize {
            len,
            max: MAX_FRAME,
        });
    }
    let mut payload = vec![0u8; len];
    match r.read_exact(&mut payload).await {
        Ok(_) => Ok(Some(payload)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Encodes and writes one frame, then flushes.
///
/// # Errors
/// [`FrameError::Oversize`] or [`FrameError::Io`].
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    frame: &Frame,
) -> Result<(), FrameError> {
    let bytes = encode(frame)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxgate_store::{Change, Hlc, Value};

    fn sample_batch() -> Batch {
        let mut row = BTreeMap::new();
        row.insert("domain".to_string(), Value::Text("example.org".into()));
        row.insert("position".to_string(), Value::Integer(3));
        Batch {
            from: NodeId(7),
            changes: vec![Change {
                table: "relay_domains".into(),
                pk: "[\"example.org\"]".into(),
                hlc: Hlc(123 << 16),
                node: NodeId(7),
                row: Some(row),
            }],
            last_seq: 9,
            more: false,
        }
    }

    fn frames() -> Vec<Frame> {
        let mut tables = BTreeMap::new();
        tables.insert("pools".to_string(), [5u8; 32]);
        vec![
            Frame::Hello {
                protocol_version: PROTOCOL_VERSION,
                schema_version: 7,
                node: NodeId(42),
                name: "gw-a".into(),
            },
            Frame::Changes {
                epoch: 2,
                after_seq: 4,
                batch: sample_batch(),
            },
            Frame::Ack { up_to: 9 },
            Frame::Digest {
                tables,
                quiet: true,
            },
            Frame::NeedTable {
                table: "pools".into(),
            },
            Frame::Error { text: "no".into() },
            Frame::Pair { proof: [3u8; 32] },
            Frame::PairOk,
            Frame::Ping,
        ]
    }

    #[tokio::test]
    async fn every_frame_round_trips_through_the_stream() {
        let mut wire = Vec::new();
        for f in frames() {
            write_frame(&mut wire, &f).await.unwrap();
        }
        let mut r = &wire[..];
        for f in frames() {
            let payload = read_payload(&mut r).await.unwrap().unwrap();
            assert_eq!(decode(&payload).unwrap(), f);
        }
        assert!(read_payload(&mut r).await.unwrap().is_none());
    }

    #[test]
    fn the_version_of_a_hello_is_readable_even_when_the_rest_is_not() {
        let bytes = encode(&Frame::Hello {
            protocol_version: 99,
            schema_version: 7,
            node: NodeId(1),
            name: "x".into(),
        })
        .unwrap();
        assert_eq!(hello_version(&bytes[4..]), Some(99));
        // A newer Hello with fields this version does not know.
        let mut newer = postcard::to_allocvec(&(0u32, 2u32)).unwrap();
        newer.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(hello_version(&newer), Some(2));
        let ack = encode(&Frame::Ack { up_to: 1 }).unwrap();
        assert_eq!(hello_version(&ack[4..]), None);
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error_not_a_clean_end() {
        let bytes = encode(&Frame::Ack { up_to: 1_000_000 }).unwrap();
        for cut in 1..bytes.len() {
            let mut r = &bytes[..cut];
            assert!(
                matches!(read_payload(&mut r).await, Err(FrameError::Truncated)),
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversize_length_is_refused_before_reading_the_payload() {
        let len = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
        let mut r = &len[..];
        assert!(matches!(
            read_payload(&mut r).await,
            Err(FrameError::Oversize { .. })
        ));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        assert!(matches!(decode(&[0xff; 8]), Err(FrameError::Malformed(_))));
        assert!(matches!(decode(&[]), Err(FrameError::Malformed(_))));
        let mut bytes = encode(&Frame::Ack { up_to: 1 }).unwrap()[4..].to_vec();
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(FrameError::Malformed(_))));
    }
}
