//! The lean DynamoDB client's HTTP/1.1 connections ([`super::wire`]): a request goes out in
//! one write on a kept-alive connection (TLS for `https` endpoints), its answer is read on
//! the same task, and the connection goes back to a small pool. No connection task, no
//! channel between tasks: hyper's pooled client spent about half of the lean client's CPU
//! on a call (docs/performance.md). Every read is bounded: 16 KB of status line and headers,
//! 16 MB of body.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest status line and headers read.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// Largest body read: a `BatchWriteItem`'s unprocessed items (25 of 400 KB) fit.
pub(super) const MAX_BODY: usize = 16 << 20;
/// Connections kept idle at most, and for how long (DynamoDB closes idle ones after about
/// a minute).
const MAX_IDLE: usize = 64;
const IDLE_FOR: Duration = Duration::from_secs(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A byte stream a connection runs on: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    since: Instant,
}

/// One endpoint's connections.
pub(super) struct Endpoint {
    /// `host[:port]`, for the `host` header and signing.
    pub(super) host: String,
    /// Where to connect: `host:port`.
    address: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    idle: Mutex<Vec<Conn>>,
}

/// An answer: its status and body.
pub(super) type Answer = (u16, Vec<u8>);

/// Why an exchange failed: `Stale` when a kept connection turned out closed before any
/// byte of an answer came (the request is sent again on a new one).
enum Failure {
    Stale(String),
    Failed(String),
}

impl Endpoint {
    /// The endpoint of `uri` (`http://` or `https://`); TLS checks certificates against
    /// `roots` (the web's roots, [`webpki_roots`], unless a test gives its own).
    pub(super) fn new(
        uri: &http::Uri,
        roots: Option<rustls::RootCertStore>,
    ) -> Result<Self, String> {
        let authority = uri.authority().ok_or("the endpoint has no host")?;
        let name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if name.is_empty() || authority.as_str().bytes().any(|b| b.is_ascii_control()) {
            return Err("the endpoint's host is not usable".into());
        }
        let (tls, port) = match uri.scheme_str() {
            Some("https") => {
                let roots = roots.unwrap_or_else(|| rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                });
                let mut config = rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let server = ServerName::try_from(name.to_owned())
                    .map_err(|e| format!("the endpoint's host {name:?}: {e}"))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                (
                    Some((connector, server)),
                    authority.port_u16().unwrap_or(443),
                )
            }
            Some("http") => (None, authority.port_u16().unwrap_or(80)),
            other => return Err(format!("the endpoint's scheme {other:?} is not http(s)")),
        };
        let address = match name.contains(':') {
            true => format!("[{name}]:{port}"),
            false => format!("{name}:{port}"),
        };
        Ok(Self {
            host: authority.as_str().to_owned(),
            address,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` (a whole HTTP/1.1 request, head and body) and reads its answer.
    pub(super) async fn send(&self, request: &[u8]) -> Result<Answer, String> {
        if let Some(mut conn) = self.take() {
            match conn.exchange(request).await {
                Ok((answer, keep)) => {
                    self.keep(conn, keep);
                    return Ok(answer);
                }
                Err(Failure::Stale(_)) => {}
                Err(Failure::Failed(e)) => return Err(e),
            }
        }
        let mut conn = self.connect().await?;
        match conn.exchange(request).await {
            Ok((answer, keep)) => {
                self.keep(conn, keep);
                Ok(answer)
            }
            Err(Failure::Stale(e) | Failure::Failed(e)) => Err(e),
        }
    }

    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() < IDLE_FOR {
                return Some(conn);
            }
        }
        None
    }

    fn keep(&self, mut conn: Conn, keep: bool) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if keep && idle.len() < MAX_IDLE {
            conn.since = Instant::now();
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let connecting = async {
            let tcp = TcpStream::connect(&self.address)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.address))?;
            tcp.set_nodelay(true)
                .map_err(|e| format!("connecting to {}: {e}", self.address))?;
            let io: Box<dyn Io> = match &self.tls {
                None => Box::new(tcp),
                Some((connector, server)) => Box::new(
                    (connector.connect(server.clone(), tcp).await)
                        .map_err(|e| format!("TLS with {}: {e}", self.address))?,
                ),
            };
            Ok::<_, String>(io)
        };
        let io = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                format!(
                    "connecting to {} took over {CONNECT_TIMEOUT:?}",
                    self.address
                )
            })??;
        Ok(Conn {
            io,
            buf: Vec::with_capacity(16 * 1024),
            since: Instant::now(),
        })
    }
}

/// How an answer's body is framed.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Writes `request`, reads the answer; says whether the connection can be kept.
    async fn exchange(&mut self, request: &[u8]) -> Result<(Answer, bool), Failure> {
        if let Err(e) = self.io.write_all(request).await {
            return Err(Failure::Stale(format!("sending: {e}")));
        }
        if let Err(e) = self.io.flush().await {
            return Err(Failure::Stale(format!("sending: {e}")));
        }
        self.buf.clear();
        let (status, framing, close, start) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = head.code.unwrap_or(0);
                    let (framing, close) = framing(&head).map_err(Failure::Failed)?;
                    // No body for these, whatever the headers say.
                    let framing = match status {
                        100..=199 | 204 | 304 => Framing::Length(0),
                        _ => framing,
                    };
                    break (status, framing, close, n);
                }
                Ok(httparse::Status::Partial) if self.buf.len() >= MAX_HEAD => {
                    return Err(Failure::Failed(format!(
                        "the answer's head is over {MAX_HEAD} bytes"
                    )));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(Failure::Failed(format!("the answer's head: {e}"))),
            }
            match self.fill().await {
                Ok(0) if self.buf.is_empty() => {
                    return Err(Failure::Stale("the connection closed".into()));
                }
                Ok(0) => return Err(Failure::Failed("the answer ended in its head".into())),
                Ok(_) => {}
                Err(e) if self.buf.is_empty() => {
                    return Err(Failure::Stale(format!("reading: {e}")));
                }
                Err(e) => return Err(Failure::Failed(format!("reading: {e}"))),
            }
        };
        if status == 100 {
            return Err(Failure::Failed(
                "an interim answer (100) was not asked for".into(),
            ));
        }
        let failed = |e: String| Failure::Failed(e);
        let (body, keep) = match framing {
            Framing::Length(n) => (self.body(start, n).await.map_err(failed)?, !close),
            Framing::Chunked => (self.chunked(start).await.map_err(failed)?, !close),
            Framing::UntilClose => (self.rest(start).await.map_err(failed)?, false),
        };
        Ok(((status, body), keep))
    }

    /// Reads more into the buffer; the count read (0 at the end of the stream).
    async fn fill(&mut self) -> std::io::Result<usize> {
        self.buf.reserve(16 * 1024);
        self.io.read_buf(&mut self.buf).await
    }

    /// Reads until the buffer holds `end` bytes.
    async fn fill_to(&mut self, end: usize) -> Result<(), String> {
        while self.buf.len() < end {
            match self.fill().await {
                Ok(0) => return Err("the answer ended early".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
        Ok(())
    }

    async fn body(&mut self, start: usize, length: usize) -> Result<Vec<u8>, String> {
        if length > MAX_BODY {
            return Err(format!("the answer's body is over {MAX_BODY} bytes"));
        }
        self.fill_to(start + length).await?;
        if self.buf.len() > start + length {
            return Err("the answer is followed by bytes nobody asked for".into());
        }
        Ok(self.buf[start..].to_vec())
    }

    async fn rest(&mut self, start: usize) -> Result<Vec<u8>, String> {
        loop {
            if self.buf.len() - start > MAX_BODY {
                return Err(format!("the answer's body is over {MAX_BODY} bytes"));
            }
            match self.fill().await {
                Ok(0) => return Ok(self.buf[start..].to_vec()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// A chunked body from `start`: each chunk's size in hex on its own line, the data and
    /// a line end, up to a chunk of size 0 and the (ignored) trailers.
    async fn chunked(&mut self, start: usize) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        let mut at = start;
        loop {
            let line_end = self.line(at).await?;
            let line = std::str::from_utf8(&self.buf[at..line_end - 2]).unwrap_or("");
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("a chunk size {size:?} that is not hex"))?;
            at = line_end;
            if size == 0 {
                // Trailers, if any, up to an empty line.
                loop {
                    let end = self.line(at).await?;
                    let empty = end - at == 2;
                    at = end;
                    if empty {
                        break;
                    }
                }
                if self.buf.len() > at {
                    return Err("the answer is followed by bytes nobody asked for".into());
                }
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(format!("the answer's body is over {MAX_BODY} bytes"));
            }
            self.fill_to(at + size + 2).await?;
            if &self.buf[at + size..at + size + 2] != b"\r\n" {
                return Err("a chunk does not end with a line end".into());
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }

    /// The end (past `\r\n`) of the line starting at `at`, reading as needed; a line is at
    /// most 4 KB.
    async fn line(&mut self, at: usize) -> Result<usize, String> {
        loop {
            if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                return Ok(at + i + 2);
            }
            if self.buf.len() - at > 4096 {
                return Err("a chunk line is over 4 KB".into());
            }
            self.fill_to(self.buf.len() + 1).await?;
        }
    }
}

/// The body's framing and whether the server closes the connection after it.
fn framing(head: &httparse::Response<'_, '_>) -> Result<(Framing, bool), String> {
    let mut length = None;
    let mut chunked = false;
    let mut close = head.version == Some(0);
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("a content-length that is not a number")?;
            if length.is_some_and(|l| l != n) {
                return Err("two different content-lengths".into());
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = (h.value.split(|b| *b == b','))
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.trim_ascii();
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    Ok(match (chunked, length) {
        (true, _) => (Framing::Chunked, close),
        (false, Some(n)) => (Framing::Length(n), close),
        (false, None) => (Framing::UntilClose, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncBufReadExt as _;

    const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";

    /// Reads one request (head and a `content-length` body) off `io`; false at its end.
    async fn read_request<R: AsyncRead + Unpin>(io: &mut tokio::io::BufReader<R>) -> bool {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        io.read_exact(&mut body).await.is_ok()
    }

    /// A plain server on a free port answering each request with `answer`, `per_conn`
    /// requests a connection before it closes it; counts connections.
    async fn server(answer: &'static [u8], per_conn: usize) -> (http::Uri, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut io = tokio::io::BufReader::new(stream);
                    for _ in 0..per_conn {
                        if !read_request(&mut io).await {
                            return;
                        }
                        if io.get_mut().write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (uri, accepted)
    }

    #[tokio::test]
    async fn keeps_connections_unless_closed_and_replaces_one_the_server_closed() {
        // (answer, requests the server takes per connection, connections four calls open)
        let cases: [(&'static [u8], usize, usize); 2] = [
            // Two requests a connection: the third found its kept connection closed and
            // went out again on a new one.
            (b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n{\"a\"", 2, 2),
            // The server says it closes: nothing is kept.
            (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 4\r\n\r\n{\"a\"",
                5,
                4,
            ),
        ];
        for (answer, per_conn, connections) in cases {
            let (uri, accepted) = server(answer, per_conn).await;
            let endpoint = Endpoint::new(&uri, None).unwrap();
            for _ in 0..4 {
                let (status, body) = endpoint.send(REQUEST).await.unwrap();
                assert_eq!((status, body.as_slice()), (200, &b"{\"a\""[..]));
            }
            assert_eq!(accepted.load(Ordering::SeqCst), connections, "{per_conn}");
        }
    }

    #[tokio::test]
    async fn reads_a_chunked_answer() {
        let answer = b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n\
            5\r\n{\"a\":\r\n3;ext=1\r\n 1}\r\n0\r\nx-trailer: y\r\n\r\n";
        let (uri, _) = server(answer, 5).await;
        let endpoint = Endpoint::new(&uri, None).unwrap();
        for _ in 0..2 {
            let (status, body) = endpoint.send(REQUEST).await.unwrap();
            assert_eq!((status, body.as_slice()), (400, &b"{\"a\": 1}"[..]));
        }
    }

    #[tokio::test]
    async fn bad_answers_are_errors_not_waits() {
        let endless: &'static [u8] = Box::leak(
            [
                &b"HTTP/1.1 200 OK\r\nx-long: "[..],
                &vec![b'a'; MAX_HEAD + 10],
                b"\r\n\r\n",
            ]
            .concat()
            .into_boxed_slice(),
        );
        let cases: [(&'static [u8], &str); 4] = [
            (endless, "head is over"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
                "body is over",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "not hex",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                "two different",
            ),
        ];
        for (answer, why) in cases {
            let (uri, _) = server(answer, 1).await;
            let endpoint = Endpoint::new(&uri, None).unwrap();
            let error = tokio::time::timeout(Duration::from_secs(5), endpoint.send(REQUEST))
                .await
                .expect("an answer, not a wait")
                .unwrap_err();
            assert!(error.contains(why), "{why}: {error}");
        }
    }

    #[tokio::test]
    async fn speaks_tls_to_an_https_endpoint_and_checks_its_certificate() {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        crate::sdk::install_crypto_provider();
        let cert =
            CertificateDer::from_pem_slice(include_bytes!("../../testdata/localhost.crt")).unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../testdata/localhost.key")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut io = tokio::io::BufReader::new(tls);
                    while read_request(&mut io).await {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"t\":1}";
                        if io.get_mut().write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let uri: http::Uri = format!("https://localhost:{port}").parse().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let endpoint = Endpoint::new(&uri, Some(roots)).unwrap();
        for _ in 0..2 {
            let (status, body) = endpoint.send(REQUEST).await.unwrap();
            assert_eq!((status, body.as_slice()), (200, &b"{\"t\":1}"[..]));
        }
        // The web's roots do not vouch for the test's certificate.
        let untrusted = Endpoint::new(&uri, None).unwrap();
        let error = untrusted.send(REQUEST).await.unwrap_err();
        assert!(error.contains("TLS"), "{error}");
    }
}
