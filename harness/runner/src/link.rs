//! A framed, request/response link to a device over any byte stream.
//!
//! A reader thread decodes frames as they arrive and a writer thread sends them, so every wait
//! and every write has a deadline whatever the stream (pipe, socket, tty) supports: a device that
//! stops answering is a timeout, and one that stops reading (a request larger than the pipe's
//! buffer, half written) is a timeout that says so, rather than a hang.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gauntlet_wire::{FrameDecoder, FrameError, Request, Response, encode_frame};

/// Responses carry at most a batch of outputs; anything larger is a broken stream.
const MAX_RESPONSE_FRAME: usize = 64 * 1024 * 1024;
/// Requests queued for the writer. A session keeps at most two in flight before it waits for a
/// response (whose deadline covers the writes), so a full queue means the device stopped reading.
const QUEUED_REQUESTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("send to the device: {0}")]
    Send(io::Error),
    #[error("hear from the device within {0:?}")]
    Timeout(Duration),
    #[error(
        "hear from the device within {limit:?}: it stopped reading ({unsent} bytes of requests unsent)"
    )]
    NotReading { limit: Duration, unsent: usize },
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
            LinkError::NotReading { limit, unsent } => format!(
                "hear from board `{board}` within {limit:?}: the agent stopped answering and stopped reading its requests ({unsent} bytes unsent; hung, or the link stalled)"
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
    /// Boxed: a hello with its runtimes is far larger than the other variants.
    Message(Box<Response>),
    Corrupt(FrameError),
    Closed(Option<io::Error>),
    /// From the writer: a request could not be sent.
    WriteFailed(io::Error),
}

/// What the writer thread has not done yet, and why it stopped, for the caller to see.
#[derive(Default)]
struct Outbox {
    /// Bytes handed to the writer and not yet written and flushed.
    unsent: AtomicUsize,
    failed: Mutex<Option<(io::ErrorKind, String)>>,
}

pub struct Link {
    outgoing: SyncSender<Vec<u8>>,
    outbox: Arc<Outbox>,
    incoming: Receiver<Incoming>,
}

impl Link {
    pub fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Link {
        let (tx, incoming) = mpsc::channel();
        let write_failures = tx.clone();
        thread::Builder::new()
            .name("gauntlet-link-reader".into())
            .spawn(move || pump(reader, tx))
            .expect("spawn the link reader thread");
        let (outgoing, frames) = mpsc::sync_channel(QUEUED_REQUESTS);
        let outbox = Arc::new(Outbox::default());
        let state = Arc::clone(&outbox);
        thread::Builder::new()
            .name("gauntlet-link-writer".into())
            .spawn(move || write_frames(writer, frames, &state, &write_failures))
            .expect("spawn the link writer thread");
        Link {
            outgoing,
            outbox,
            incoming,
        }
    }

    /// Queues `request` for the writer and returns at once; the deadline of the next
    /// [`recv`](Link::recv) bounds its writing.
    pub fn send(&mut self, request: &Request) -> Result<(), LinkError> {
        if let Some((kind, message)) =
            &*self.outbox.failed.lock().unwrap_or_else(|p| p.into_inner())
        {
            return Err(LinkError::Send(io::Error::new(*kind, message.clone())));
        }
        let mut frame = Vec::new();
        encode_frame(request, &mut frame);
        let len = frame.len();
        self.outbox.unsent.fetch_add(len, Ordering::SeqCst);
        match self.outgoing.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.outbox.unsent.fetch_sub(len, Ordering::SeqCst);
                Err(LinkError::NotReading {
                    limit: Duration::ZERO,
                    unsent: self.outbox.unsent.load(Ordering::SeqCst),
                })
            }
            Err(TrySendError::Disconnected(_)) => Err(LinkError::Closed {
                detail: Some("the link's writer stopped".into()),
            }),
        }
    }

    pub fn recv(&mut self, timeout: Duration) -> Result<Response, LinkError> {
        match self.incoming.recv_timeout(timeout) {
            Ok(Incoming::Message(response)) => Ok(*response),
            Ok(Incoming::Corrupt(e)) => Err(LinkError::Corrupt(e)),
            Ok(Incoming::Closed(e)) => Err(LinkError::Closed {
                detail: e.map(|e| e.to_string()),
            }),
            Ok(Incoming::WriteFailed(e)) => Err(LinkError::Send(e)),
            Err(RecvTimeoutError::Timeout) => match self.outbox.unsent.load(Ordering::SeqCst) {
                0 => Err(LinkError::Timeout(timeout)),
                unsent => Err(LinkError::NotReading {
                    limit: timeout,
                    unsent,
                }),
            },
            Err(RecvTimeoutError::Disconnected) => Err(LinkError::Closed { detail: None }),
        }
    }

    pub fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, LinkError> {
        self.send(request)?;
        self.recv(timeout)
    }
}

/// Writes queued frames until the link is dropped. A write that blocks (the device stopped
/// reading) blocks only this thread; it ends when the device's end closes.
fn write_frames(
    mut writer: impl Write,
    frames: Receiver<Vec<u8>>,
    outbox: &Outbox,
    failures: &mpsc::Sender<Incoming>,
) {
    for frame in frames {
        if let Err(e) = writer.write_all(&frame).and_then(|()| writer.flush()) {
            *outbox.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((e.kind(), e.to_string()));
            // Wakes a caller waiting for the response this request would have had.
            let _ = failures.send(Incoming::WriteFailed(e));
            return;
        }
        outbox.unsent.fetch_sub(frame.len(), Ordering::SeqCst);
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
                Ok(m) => Incoming::Message(Box::new(m)),
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
    fn a_device_that_stops_reading_is_a_timeout_that_says_so() {
        let (host, device) = UnixStream::pair().unwrap();
        let mut link = Link::new(host.try_clone().unwrap(), host);
        // Far more than a socket buffer holds, so the write cannot finish while nobody reads.
        let request = Request::Infer(gauntlet_wire::InferRequest {
            slot: 0,
            seq: 1,
            window_len: 1024,
            data: vec![0.5; 1 << 20],
        });
        link.send(&request).unwrap();
        match link.recv(Duration::from_millis(50)) {
            Err(LinkError::NotReading { limit, unsent }) => {
                assert_eq!(limit, Duration::from_millis(50));
                assert!(unsent > 0);
            }
            other => panic!("expected NotReading, got {other:?}"),
        }
        let reason = link
            .recv(Duration::from_millis(10))
            .unwrap_err()
            .reason("pi4");
        assert!(reason.contains("board `pi4` within 10ms"), "{reason}");
        assert!(reason.contains("stopped reading"), "{reason}");
        // The device's end going away ends the blocked write, and the link says why.
        drop(device);
        assert!(matches!(
            link.recv(Duration::from_secs(5)),
            Err(LinkError::Send(_) | LinkError::Closed { .. })
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
