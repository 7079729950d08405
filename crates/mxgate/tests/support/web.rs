//! An HTTPS client for the web UI and API of an `mxgate run` under test:
//! trusts the box's own certificate (`<data_dir>/web/cert.pem`), keeps the
//! session cookie and the CSRF token after [`WebClient::login`], and speaks
//! plain HTTP/1.1 (one request per connection) so tests see exact status
//! codes and headers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// The admin every test gateway gets before it starts (`mxgate user add`).
pub const ADMIN: &str = "admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// A client of one box's web listener.
#[derive(Clone)]
pub struct WebClient {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    cookie: Option<String>,
    /// The session's CSRF token, after a login.
    pub csrf: Option<String>,
}

impl WebClient {
    /// A client of `addr` trusting the certificate in `data_dir`.
    ///
    /// # Panics
    /// When the certificate cannot be read.
    pub fn new(addr: SocketAddr, data_dir: &Path) -> WebClient {
        let cert_path = data_dir.join("web").join("cert.pem");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&cert_path)
            .unwrap_or_else(|e| panic!("{}: {e}", cert_path.display()))
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        WebClient {
            addr,
            tls: Arc::new(tls),
            cookie: None,
            csrf: None,
        }
    }

    /// Logs in; keeps the cookie and the CSRF token when it worked.
    ///
    /// # Panics
    /// When the box does not answer.
    pub fn login(&mut self, name: &str, password: &str) -> Response {
        self.try_login(name, password)
            .unwrap_or_else(|e| panic!("login at {}: {e}", self.addr))
    }

    /// [`WebClient::login`], or the error when the box does not answer.
    pub fn try_login(&mut self, name: &str, password: &str) -> std::io::Result<Response> {
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        let r = self.try_send(
            "POST",
            "/api/v1/login",
            &[],
            Some(("application/json", body.as_bytes())),
        )?;
        if r.status == 200 {
            self.cookie = r
                .header("set-cookie")
                .and_then(|c| c.split(';').next())
                .map(str::to_string);
            self.csrf = r.json()["csrf"].as_str().map(str::to_string);
        }
        Ok(r)
    }

    /// Forgets the session (the next requests go without cookie).
    pub fn forget_session(&mut self) {
        self.cookie = None;
        self.csrf = None;
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.send("GET", path, &[], None)
    }

    /// `method path` with a JSON body and the CSRF header (when logged in).
    pub fn json(&self, method: &str, path: &str, body: &Value) -> Response {
        let csrf = self.csrf.clone().unwrap_or_default();
        let headers: Vec<(&str, &str)> = if self.csrf.is_some() {
            vec![("X-CSRF-Token", csrf.as_str())]
        } else {
            vec![]
        };
        self.send(
            method,
            path,
            &headers,
            Some(("application/json", body.to_string().as_bytes())),
        )
    }

    /// `POST path` with a form body (`fields` URL-encoded as given).
    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let body = body.join("&");
        self.send(
            "POST",
            path,
            &[],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
    }

    /// One request over a new TLS connection.
    ///
    /// # Panics
    /// When the box does not answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Response {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} https://{}{path}: {e}", self.addr))
    }

    /// [`WebClient::send`], or the error when the box does not answer.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<Response> {
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::from(self.addr.ip());
        let conn = rustls::ClientConnection::new(Arc::clone(&self.tls), name)
            .map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(&request_bytes(
            method,
            path,
            self.cookie.as_deref(),
            headers,
            body,
        ))?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A server that closes without close_notify after a whole answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e),
        }
        parse_response(&raw).ok_or_else(|| std::io::Error::other("malformed HTTP answer"))
    }
}

/// The bytes of an HTTP/1.1 request (`Connection: close`).
pub fn request_bytes(
    method: &str,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut out = Vec::new();
    match body {
        Some((kind, bytes)) => {
            head.push_str(&format!(
                "Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            ));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(bytes);
        }
        None => {
            head.push_str("Content-Length: 0\r\n\r\n");
            out.extend_from_slice(head.as_bytes());
        }
    }
    out
}

/// Status, headers and body (chunked transfer decoded) of a raw answer.
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a form value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Creates user `name` with `role` in the store of `data_dir` with
/// `mxgate user add` (the password on standard input).
///
/// # Panics
/// When the command fails.
pub fn add_user(data_dir: &Path, name: &str, role: &str, password: &str) {
    use std::process::Stdio;
    let mut child = super::mxgate(&[
        "user",
        "add",
        "--data",
        data_dir.to_str().unwrap(),
        name,
        "--role",
        role,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("run mxgate user add");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mxgate user add: {}",
        super::output_text(&out)
    );
}

/// A client of `gw`'s web UI logged in as the first admin, once the box
/// has made its web certificate (that is, once it is serving).
///
/// # Panics
/// When the certificate does not appear within 20 s or the login fails.
pub fn admin(gw: &super::gateway::Gateway) -> WebClient {
    let cert = gw.data_dir().join("web").join("cert.pem");
    super::poll(Duration::from_secs(20), || cert.exists().then_some(()))
        .expect("the web UI certificate is made");
    let mut c = gw.web_client();
    let r = c.login(ADMIN, ADMIN_PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    c
}

/// A self-signed certificate for mx.example.test and its key, PEM.
pub fn self_signed() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["mx.example.test".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}
