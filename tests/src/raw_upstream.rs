//! An upstream HTTP server that records every byte it receives, per
//! connection, and answers each request it reads (Transfer-Encoding over
//! Content-Length, as RFC 9112 says) with `200 ok`, keeping the connection
//! open so a proxy's pool may reuse it. Tests parse what it recorded both
//! ways a server might, to show exactly what reached it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// How a server decides a request's framing when both headers are present.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// Content-Length wins (a lax server).
    ContentLengthFirst,
    /// Transfer-Encoding wins (RFC 9112 §6.3).
    TransferEncodingFirst,
}

/// One request as a server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Request line and header lines, as received.
    pub head: String,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Parsed {
    /// The values of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

type Recordings = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

/// A running recording upstream (plain HTTP).
#[derive(Debug, Clone)]
pub struct RawUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    conns: Recordings,
}

struct Tee<S> {
    inner: S,
    rec: Arc<Mutex<Vec<u8>>>,
}

impl<S: Read> Read for Tee<S> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.rec.lock().unwrap().extend_from_slice(&b[..n]);
        Ok(n)
    }
}

impl<S: Write> Write for Tee<S> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl RawUpstream {
    /// Starts on a free port of `ip`.
    pub fn start(ip: IpAddr) -> RawUpstream {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Recordings = Arc::default();
        let all = conns.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let rec = Arc::new(Mutex::new(Vec::new()));
                all.lock().unwrap().push(rec.clone());
                std::thread::spawn(move || serve(Tee { inner: tcp, rec }));
            }
        });
        RawUpstream { addr, conns }
    }

    /// `ip:port`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Everything received so far, one entry per connection.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}

fn serve(s: impl Read + Write) {
    let mut r = BufReader::new(s);
    while let Ok(Some(_)) = parse_one(&mut r, Framing::TransferEncodingFirst) {
        let w = r.get_mut();
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .and_then(|_| w.flush())
            .is_err()
        {
            break;
        }
    }
}

/// Every request in `bytes` as a server preferring `framing` reads them, and
/// how many bytes no request accounts for.
pub fn parse_all(mut bytes: &[u8], framing: Framing) -> (Vec<Parsed>, usize) {
    let mut out = Vec::new();
    while let Ok(Some(p)) = parse_one(&mut bytes, framing) {
        out.push(p);
    }
    (out, bytes.len())
}

fn parse_one(r: &mut impl BufRead, framing: Framing) -> io::Result<Option<Parsed>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let probe = Parsed {
        head: head.clone(),
        body: Vec::new(),
    };
    let chunked = probe
        .header("transfer-encoding")
        .last()
        .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"));
    let length = probe
        .header("content-length")
        .first()
        .and_then(|v| v.parse::<usize>().ok());
    let use_chunked = match framing {
        Framing::TransferEncodingFirst => chunked,
        Framing::ContentLengthFirst => chunked && length.is_none(),
    };
    let mut body = Vec::new();
    if use_chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            if n == 0 {
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l)? == 0 || l == "\r\n" {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk)?;
            body.extend(chunk);
            r.read_exact(&mut [0; 2])?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Parsed { head, body }))
}
