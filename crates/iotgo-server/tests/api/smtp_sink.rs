//! A small SMTP server for the e-mail tests: it speaks enough of SMTP for lettre
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH) and keeps every
//! message it is given, so a test can read the links the IoTgo server mailed.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One message as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The envelope's recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message (headers and body), dot-stuffing undone, quoted-printable decoded.
    pub data: String,
}

impl Received {
    /// The 64-hex-digit token of the link to `page` in this message.
    pub(crate) fn token(&self, page: &str) -> String {
        let marker = format!("/{page}?token=");
        let at = self
            .data
            .find(&marker)
            .unwrap_or_else(|| panic!("no {page} link in {}", self.data));
        self.data[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect()
    }
}

/// The messages; the lock is never held across an await.
#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// A running sink; it stops with the test's runtime.
pub(crate) struct SmtpSink {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    inbox: Arc<Inbox>,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1.
    pub(crate) async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("addr").port();
        let inbox = Arc::new(Inbox::default());
        let shared = inbox.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, shared.clone()));
            }
        });
        SmtpSink { port, inbox }
    }

    /// `smtp_url` for the IoTgo server: no TLS, no password.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every message received so far.
    pub(crate) fn messages(&self) -> Vec<Received> {
        self.inbox.messages.lock().expect("sink lock").clone()
    }

    /// Waits (up to 10 s) until `n` messages have arrived, and returns them all.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let arrived = self.inbox.arrived.notified();
                let got = self.messages();
                if got.len() >= n {
                    return got;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{n} mails did not arrive: {:?}", self.messages()))
    }
}

async fn session(socket: TcpStream, inbox: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                let addr = line
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(addr, _)| addr.to_owned())
                    .unwrap_or_default();
                to.push(addr);
                b"250 OK\r\n"
            }
            "RSET" => {
                to.clear();
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let data = if data.contains("Content-Transfer-Encoding: quoted-printable") {
                    quoted_printable(&data)
                } else {
                    data
                };
                let received = Received {
                    to: std::mem::take(&mut to),
                    data,
                };
                inbox.messages.lock().expect("sink lock").push(received);
                inbox.arrived.notify_waiters();
                b"250 OK\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Decodes quoted-printable text: soft line breaks joined, `=XX` turned into its byte.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
