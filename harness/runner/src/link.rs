//! A framed, request/response link to a device over any byte stream.
//!
//! A reader thread decodes frames as they arrive, so every wait has a deadline whatever the
//! stream (pipe, socket, tty) supports, and a device that stops answering is a timeout rather
//! than a hang.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use gauntlet_wire::{FrameDecoder, FrameError, Request, Response, encode_frame};

/// Responses carry at most a batch of outputs; anything larger is a broken stream.
const MAX_RESPONSE_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("send to the device: {0}")]
    Send(io::Error),
    #[error("hear from the device within {0:?}")]
    Timeout(Duration),
    #[error("keep the link: the device closed it{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Closed { detail: Option<String> },
    #[error("read a frame from the device: {0}")]
    Corrupt(FrameError),
}

impl LinkError {
    /// The error as a board's failure reason: names the board and what the symptom points to.
    pub fn reason(&self, board: &str) -> String {
        match self {
            LinkError::Send(e) => format!("send to board `{board}`: {e}"),
            LinkError::Timeout(limit) => format!(
                "hear from board `{board}` within {limit:?}: the agent stopped answering (hung, or the link stalled)"
            ),
            LinkError::Closed { detail } => format!(
                "keep the link to board `{board}`: the agent's end closed it{}",
                detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            LinkError::Corrupt(e) => {
                format!("read a frame from board `{board}`: {e} (bytes corrupted on the link)")
            }
        }
    }
}

enum Incoming {
    Message(Response),
    Corrupt(FrameError),
    Closed(Option<io::Error>),
}

pub struct Link {
    writer: Box<dyn Write + Send>,
    incoming: Receiver<Incoming>,
    frame: Vec<u8>,
}

impl Link {
    pub fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Link {
        let (tx, incoming) = mpsc::channel();
        thread::Builder::new()
            .name("gauntlet-link-reader".into())
            .spawn(move || pump(reader, tx))
            .expect("spawn the link reader thread");
        Link {
            writer: Box::new(writer),
            incoming,
            frame: Vec::new(),
        }
    }

    pub fn send(&mut self, request: &Request) -> Result<(), LinkError> {
        self.frame.clear();
        encode_frame(request, &mut self.frame);
        self.writer
            .write_all(&self.frame)
            .and_then(|()| self.writer.flush())
            .map_err(LinkError::Send)
    }

    pub fn recv(&mut self, timeout: Duration) -> Result<Response, LinkError> {
        match self.incoming.recv_timeout(timeout) {
            Ok(Incoming::Message(response)) => Ok(response),
            Ok(Incoming::Corrupt(e)) => Err(LinkError::Corrupt(e)),
            Ok(Incoming::Closed(e)) => Err(LinkError::Closed {
                detail: e.map(|e| e.to_string()),
            }),
            Err(RecvTimeoutError::Timeout) => Err(LinkError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(LinkError::Closed { detail: None }),
        }
    }

    pub fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, LinkError> {
        self.send(request)?;
        self.recv(timeout)
    }
}

fn pump(mut reader: impl Read, tx: mpsc::Sender<Incoming>) {
    let mut decoder = FrameDecoder::new(MAX_RESPONSE_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Incoming::Closed(None));
                return;
            }
            Ok(n) => n,
            // Serial ports and sockets with a read timeout time out on idle lines; that is not
            // the end of the stream.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            Err(e) => {
                let _ = tx.send(Incoming::Closed(Some(e)));
                return;
            }
        };
        decoder.extend(&buf[..n]);
        while let Some(message) = decoder.next_message::<Response>() {
            let item = match message {
                Ok(m) => Incoming::Message(m),
                Err(e) => Incoming::Corrupt(e),
            };
            if tx.send(item).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_silent_device_is_a_timeout_and_a_closed_one_is_closed() {
        let (host, device) = UnixStream::pair().unwrap();
        let mut link = Link::new(host.try_clone().unwrap(), host);
        link.send(&Request::Memory).unwrap();
        assert!(matches!(
            link.recv(Duration::from_millis(20)),
            Err(LinkError::Timeout(_))
        ));
        drop(device);
        assert!(matches!(
            link.recv(Duration::from_secs(5)),
            Err(LinkError::Closed { .. })
        ));
    }

    #[test]
    fn reasons_name_the_board_and_the_symptom() {
        let timeout = LinkError::Timeout(Duration::from_secs(3)).reason("pi4");
        assert!(timeout.contains("board `pi4` within 3s"), "{timeout}");
        assert!(timeout.contains("stopped answering"), "{timeout}");
        let corrupt = LinkError::Corrupt(FrameError::Cobs).reason("pi4");
        assert!(
            corrupt.starts_with("read a frame from board `pi4`: "),
            "{corrupt}"
        );
        assert!(corrupt.contains("corrupted on the link"), "{corrupt}");
    }

    #[test]
    fn a_corrupt_frame_is_reported_and_the_next_response_still_arrives() {
        let (host, mut device) = UnixStream::pair().unwrap();
        let mut link = Link::new(host.try_clone().unwrap(), host);
        let mut wire = Vec::new();
        encode_frame(&Response::Goodbye, &mut wire);
        wire[1] ^= 0xFF;
        encode_frame(&Response::Goodbye, &mut wire);
        device.write_all(&wire).unwrap();
        assert!(matches!(
            link.recv(Duration::from_secs(5)),
            Err(LinkError::Corrupt(_))
        ));
        assert_eq!(
            link.recv(Duration::from_secs(5)).unwrap(),
            Response::Goodbye
        );
    }
}
