//! The reading side of a connection: MQTT packets out of the socket's bytes, the first
//! of which must be a CONNECT of MQTT 3.1.1.

use crate::shutdown::Counted;
use bytes::BytesMut;
use rumqttc::mqttbytes::Error;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet};
use tokio::io::{AsyncReadExt, ReadHalf};

/// The reading side: packets out of the socket's bytes.
pub(super) struct Reader {
    io: ReadHalf<Counted>,
    buf: BytesMut,
    /// Largest packet accepted.
    max: usize,
}

impl Reader {
    /// A reader of `io` that takes packets up to `max` bytes.
    pub(super) fn new(io: ReadHalf<Counted>, max: usize) -> Reader {
        Reader {
            io,
            buf: BytesMut::with_capacity(256),
            max,
        }
    }

    /// The next packet. Cancel-safe: bytes read stay in the buffer.
    pub(super) async fn next(&mut self) -> Result<Packet, Error> {
        loop {
            if !self.buf.is_empty() {
                match Packet::read(&mut self.buf, self.max) {
                    Err(Error::InsufficientBytes(_)) => {}
                    done => return done,
                }
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// The first packet, which must be a CONNECT of MQTT 3.1.1; the return code of the
    /// refusal when it is of another version.
    pub(super) async fn connect(&mut self) -> Result<Result<Connect, ConnectReturnCode>, Error> {
        loop {
            match protocol_level(&self.buf) {
                Some(4) => break,
                // Not a CONNECT: no MQTT client, nothing to answer.
                Some(0) => return Err(Error::InvalidProtocol),
                Some(_) => return Ok(Err(ConnectReturnCode::RefusedProtocolVersion)),
                None => {}
            }
            if self.buf.len() > 16 {
                // Long enough for a CONNECT's header: this is something else.
                return Err(Error::InvalidProtocol);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        match self.next().await? {
            Packet::Connect(connect) => Ok(Ok(connect)),
            _ => Err(Error::InvalidProtocol),
        }
    }
}

/// The protocol level of the CONNECT at the start of `buf` (4: MQTT 3.1.1, 5: MQTT 5,
/// 3: MQTT 3.1; 0: not a CONNECT); `None` while too few bytes came to tell.
fn protocol_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return Some(0);
    }
    // The remaining length: 1 to 4 bytes, 7 bits each.
    let mut i = 1;
    while buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return Some(0);
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]));
    buf.get(i + 3 + name_len).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_levels_are_read_from_the_connect_header() {
        let mut v4 = BytesMut::new();
        let mut connect = Connect::new("c");
        connect.keep_alive = 30;
        Packet::Connect(connect).write(&mut v4, 1024).unwrap();
        assert_eq!(protocol_level(&v4), Some(4));
        assert_eq!(protocol_level(&v4[..5]), None);
        let mut v5 = v4.to_vec();
        v5[8] = 5;
        assert_eq!(protocol_level(&v5), Some(5));
        assert_eq!(protocol_level(b"GET / HTTP/1.1\r\n"), Some(0));
        assert_eq!(
            protocol_level(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Some(0)
        );
    }
}
