//! One-time pairing (`mxgate cluster pair` / `cluster join`).
//!
//! Box A writes a pending pairing into its data dir ([`PAIRING_FILE`],
//! mode 0600: a random 32-octet secret, an expiry 15 minutes ahead, one
//! use) and prints the code: base64url without padding of A's pin (32
//! octets) followed by the secret (32 octets), 86 characters. Box B
//! connects to A's sync listener with mutual TLS, trusting only the pin in
//! the code, and sends [`Frame::Pair`] with `proof` = HMAC-SHA256(secret,
//! pin A ‖ pin B): the proof binds the code to both keys. A accepts an
//! unknown client key during the handshake only while a pairing is
//! pending; such a connection may send nothing but that frame. With a
//! valid proof A stores B's pin ([`PEER_PIN_FILE`]), deletes the pairing
//! and answers [`Frame::PairOk`]; B then stores A's pin. Anything else
//! gets an [`Frame::Error`] and stores nothing. A wrong proof leaves the
//! pairing pending (guessing a 256-bit secret online is hopeless); a box
//! whose node file has `[sync] peer_key` offers no pairing (that key wins).

use crate::frame::{self, Frame};
use crate::tls::{self, Identity, Pin};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pending pairing of this box (`cluster pair`), in the data dir.
pub const PAIRING_FILE: &str = "pairing";
/// The peer pin learned by pairing, in the data dir (64 hex digits).
pub const PEER_PIN_FILE: &str = "sync_peer_pin";
/// How long a pairing code is good for, unless the operator says otherwise.
pub const DEFAULT_VALID: Duration = Duration::from_secs(15 * 60);
/// The longest a pairing code may be good for.
pub const MAX_VALID: Duration = Duration::from_secs(60 * 60);

/// Serializes the check-and-consume of the pairing file in one process.
static CONSUME: Mutex<()> = Mutex::new(());

/// A pending pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The secret of the code.
    pub secret: [u8; 32],
    /// Unix seconds after which the code is refused.
    pub expires_unix: u64,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// HMAC-SHA256(secret, server pin ‖ client pin).
pub fn proof(secret: &[u8; 32], server: Pin, client: Pin) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut msg = [0u8; 64];
    msg[..32].copy_from_slice(&server.0);
    msg[32..].copy_from_slice(&client.0);
    let tag = ring::hmac::sign(&key, &msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Checks a proof against a pending pairing at `now` (Unix seconds).
///
/// # Errors
/// A message: the code expired, or the proof is wrong.
pub fn verify(
    pending: &Pending,
    now: u64,
    server: Pin,
    client: Pin,
    proof: &[u8; 32],
) -> Result<(), String> {
    if now > pending.expires_unix {
        return Err("the pairing code expired (run `mxgate cluster pair` again)".into());
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &pending.secret);
    let mut msg = [0u8; 64];
    msg[..32].copy_from_slice(&server.0);
    msg[32..].copy_from_slice(&client.0);
    ring::hmac::verify(&key, &msg, proof).map_err(|_| "wrong pairing code".to_string())
}

/// The code printed by `cluster pair`: base64url (no padding) of the
/// server's pin followed by the secret.
pub fn encode_code(pin: Pin, secret: &[u8; 32]) -> String {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&pin.0);
    bytes[32..].copy_from_slice(secret);
    b64_encode(&bytes)
}

/// Parses a code into the server's pin and the secret.
///
/// # Errors
/// A message when it is not a pairing code.
pub fn decode_code(code: &str) -> Result<(Pin, [u8; 32]), String> {
    let bytes = b64_decode(code.trim())
        .filter(|b| b.len() == 64)
        .ok_or_else(|| "not a pairing code (86 base64url characters)".to_string())?;
    let mut pin = [0u8; 32];
    let mut secret = [0u8; 32];
    pin.copy_from_slice(&bytes[..32]);
    secret.copy_from_slice(&bytes[32..]);
    Ok((Pin(pin), secret))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Canonical base64url without padding (unused low bits must be zero).
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6 && acc == 0).then_some(out)
}

/// Creates a pending pairing in `data_dir`, good for `valid` from `now`
/// (replacing any earlier one), creating this box's sync key if needed;
/// returns the code.
///
/// # Errors
/// A message on an I/O error, when no random secret can be drawn, or when
/// `valid` is zero or longer than [`MAX_VALID`].
pub fn create(data_dir: &Path, now: u64, valid: Duration) -> Result<String, String> {
    if valid.is_zero() || valid > MAX_VALID {
        return Err(format!(
            "a pairing code must be valid for 1 to {} seconds, not {}",
            MAX_VALID.as_secs(),
            valid.as_secs()
        ));
    }
    let identity = Identity::load_or_create(data_dir)?;
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| "cannot draw a random pairing secret".to_string())?;
    let text = format!("{} {}\n", Pin(secret), now.saturating_add(valid.as_secs()));
    tls::write_private(&data_dir.join(PAIRING_FILE), text.as_bytes())?;
    Ok(encode_code(identity.pin, &secret))
}

/// The pending pairing of `data_dir`, if any.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn load(data_dir: &Path) -> Result<Option<Pending>, String> {
    let path = data_dir.join(PAIRING_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = || format!("{}: not a pairing file", path.display());
    let mut parts = text.split_whitespace();
    let secret = Pin::from_hex(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
    let expires_unix = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok(Some(Pending {
        secret: secret.0,
        expires_unix,
    }))
}

/// True when `data_dir` holds an unexpired pairing.
pub fn pending(data_dir: &Path) -> bool {
    matches!(load(data_dir), Ok(Some(p)) if now_unix() <= p.expires_unix)
}

/// The peer pin stored by pairing in `data_dir`, if any.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn stored_pin(data_dir: &Path) -> Result<Option<Pin>, String> {
    let path = data_dir.join(PEER_PIN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Pin::from_hex(t.trim())
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Stores the peer's pin in `data_dir` (mode 0600).
///
/// # Errors
/// A message naming the file on an I/O error.
pub fn store_pin(data_dir: &Path, pin: Pin) -> Result<(), String> {
    tls::write_private(&data_dir.join(PEER_PIN_FILE), format!("{pin}\n").as_bytes())
}

/// Server side: checks `proof` from the client key `client` against the
/// pending pairing of `data_dir`; on success stores the client's pin and
/// consumes the pairing. Nothing is stored on failure.
///
/// # Errors
/// A message for the client and the log.
pub fn accept(
    data_dir: &Path,
    server: Pin,
    client: Pin,
    proof: &[u8; 32],
    now: u64,
) -> Result<(), String> {
    let _guard = CONSUME.lock().unwrap_or_else(|e| e.into_inner());
    let pending = load(data_dir)?.ok_or_else(|| {
        "no pairing is pending (the code was used or never made; run `mxgate cluster pair`)"
            .to_string()
    })?;
    verify(&pending, now, server, client, proof)?;
    store_pin(data_dir, client)?;
    let path = data_dir.join(PAIRING_FILE);
    std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Client side (`cluster join`): connects to `peer` (HOST:PORT), trusting
/// only the pin in `code`, proves the code, and on success stores the
/// peer's pin in `data_dir`. Creates this box's sync key if needed.
/// Returns the peer's pin.
///
/// # Errors
/// A message: a bad code, a connection or TLS error, or the peer's refusal.
pub async fn join(data_dir: &Path, peer: &str, code: &str) -> Result<Pin, String> {
    let (server, secret) = decode_code(code)?;
    let identity = Identity::load_or_create(data_dir)?;
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(&identity, server)?);
    let name = rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).expect("static name");
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(peer)
            .await
            .map_err(|e| format!("cannot connect to {peer}: {e}"))?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{peer} refused the pairing: TLS: {e}"))?;
        frame::write_frame(
            &mut tls,
            &Frame::Pair {
                proof: proof(&secret, server, identity.pin),
            },
        )
        .await
        .map_err(|e| format!("{peer} refused the pairing: {e}"))?;
        // A peer that already trusts this key opens a session (a Hello)
        // and then refuses the Pair frame: skip the Hello.
        for _ in 0..2 {
            let payload = frame::read_payload(&mut tls)
                .await
                .map_err(|e| {
                    format!(
                        "{peer} refused the pairing: {e} (the code is used, expired \
                         or for another box?)"
                    )
                })?
                .ok_or_else(|| format!("{peer} closed the connection without an answer"))?;
            match frame::decode(&payload) {
                Ok(Frame::PairOk) => return Ok(()),
                Ok(Frame::Error { text }) => {
                    return Err(format!("{peer} refused the pairing: {text}"))
                }
                Ok(Frame::Hello { .. }) => {}
                Ok(other) => {
                    return Err(format!("{peer} answered {other:?}, not a pairing answer"))
                }
                Err(e) => return Err(format!("{peer}: {e}")),
            }
        }
        Err(format!("{peer} did not answer the pairing"))
    };
    tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .map_err(|_| format!("{peer}: no pairing answer within 15 s"))??;
    store_pin(data_dir, server)?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_is_canonical() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = b64_encode(&bytes);
            assert_eq!(b64_decode(&s).unwrap(), bytes);
        }
        let s = b64_encode(&[0xff; 64]);
        assert_eq!(s.len(), 86);
        // The last character carries 2 bits; non-zero unused bits are refused.
        assert!(b64_decode(&format!("{}_", &s[..85])).is_none());
        assert!(b64_decode("a=").is_none());
    }

    #[test]
    fn a_proof_binds_the_secret_and_both_keys() {
        let (a, b, c) = (Pin([1; 32]), Pin([2; 32]), Pin([3; 32]));
        let pending = Pending {
            secret: [9; 32],
            expires_unix: 1_000,
        };
        let p = proof(&pending.secret, a, b);
        assert!(verify(&pending, 1_000, a, b, &p).is_ok());
        assert_eq!(
            verify(&pending, 1_001, a, b, &p).unwrap_err(),
            "the pairing code expired (run `mxgate cluster pair` again)"
        );
        assert_eq!(
            verify(&pending, 10, a, c, &p).unwrap_err(),
            "wrong pairing code"
        );
        assert_eq!(
            verify(&pending, 10, c, b, &p).unwrap_err(),
            "wrong pairing code"
        );
        assert_eq!(
            verify(&pending, 10, b, a, &p).unwrap_err(),
            "wrong pairing code"
        );
        let other = proof(&[8; 32], a, b);
        assert_eq!(
            verify(&pending, 10, a, b, &other).unwrap_err(),
            "wrong pairing code"
        );
    }

    #[test]
    fn a_code_carries_the_pin_and_the_secret() {
        let code = encode_code(Pin([7; 32]), &[5; 32]);
        assert_eq!(code.len(), 86);
        assert_eq!(decode_code(&code).unwrap(), (Pin([7; 32]), [5; 32]));
        assert!(decode_code(&code[..85]).is_err());
        assert!(decode_code("hello").is_err());
    }

    #[test]
    fn accept_consumes_the_pairing_once_and_stores_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let now = 5_000;
        let code = create(dir.path(), now, DEFAULT_VALID).unwrap();
        let (server, secret) = decode_code(&code).unwrap();
        let client = Pin([4; 32]);
        let bad = proof(&[0; 32], server, client);
        assert_eq!(
            accept(dir.path(), server, client, &bad, now).unwrap_err(),
            "wrong pairing code"
        );
        assert_eq!(stored_pin(dir.path()).unwrap(), None);
        let good = proof(&secret, server, client);
        let late = now + DEFAULT_VALID.as_secs() + 1;
        assert!(accept(dir.path(), server, client, &good, late)
            .unwrap_err()
            .contains("expired"));
        assert_eq!(stored_pin(dir.path()).unwrap(), None);
        accept(dir.path(), server, client, &good, now).unwrap();
        assert_eq!(stored_pin(dir.path()).unwrap(), Some(client));
        assert_eq!(load(dir.path()).unwrap(), None);
        assert!(accept(dir.path(), server, client, &good, now)
            .unwrap_err()
            .contains("no pairing is pending"));
    }
}
