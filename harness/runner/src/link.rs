//! A framed, request/response link to a device over any byte stream.
//!
//! Every wait and every write has a deadline whatever the stream (pipe, socket, tty) supports:
//! a device that stops answering is a timeout, and one that stops reading (a request larger
//! than the stream's buffer, half written) is a timeout that says so, rather than a hang.
//!
//! Two ways to keep that promise. Streams with a file descriptor (pipes, sockets) are driven
//! from the calling thread: [`Link::send`] writes what the stream takes without blocking and
//! [`Link::recv`] waits in `poll(2)` for the response and for room to write the rest, so a
//! response wakes the caller itself. A reader and a writer thread would cost a scheduler
//! hand-off at each end of every request, which at batch 1 was most of the harness's overhead.
//! Other streams (a boxed serial port) keep a reader thread that decodes frames as they arrive
//! and a writer thread that sends them.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gauntlet_wire::{FrameDecoder, FrameError, Request, Response, encode_frame};

/// Responses carry at most a batch of outputs; anything larger is a broken stream.
const MAX_RESPONSE_FRAME: usize = 64 * 1024 * 1024;
/// Requests waiting to be written. A session keeps at most four in flight before it waits for a
/// response (whose deadline covers the writes), so a full queue means the device stopped reading.
const QUEUED_REQUESTS: usize = 4;
/// One read's buffer: a pipe's default capacity, so a burst of responses is taken in one read.
const READ_BYTES: usize = 64 * 1024;

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

/// One end of a device's stream as the link sees it: a file descriptor it may wait on in
/// `poll(2)` and write to without blocking, or none (the link then gives the stream threads).
pub trait LinkEnd {
    fn descriptor(&self) -> Option<RawFd> {
        None
    }
}

macro_rules! descriptor_ends {
    ($($end:ty),*) => {$(
        impl LinkEnd for $end {
            fn descriptor(&self) -> Option<RawFd> {
                Some(self.as_raw_fd())
            }
        }
    )*};
}

// Kernel objects without a user-space buffer: a write the kernel accepted is on its way.
descriptor_ends!(ChildStdin, ChildStdout, TcpStream, UnixStream);

impl LinkEnd for Box<dyn serialport::SerialPort> {}
impl LinkEnd for Box<dyn Read + Send> {}
impl LinkEnd for Box<dyn Write + Send> {}

pub struct Link(Driver);

enum Driver {
    Polled(Box<Polled>),
    Threaded(Threaded),
}

impl Link {
    pub fn new<R, W>(reader: R, writer: W) -> Link
    where
        R: Read + LinkEnd + Send + 'static,
        W: Write + LinkEnd + Send + 'static,
    {
        if let (Some(read_fd), Some(write_fd)) = (reader.descriptor(), writer.descriptor())
            && let Ok(writer_flags) = make_nonblocking(write_fd)
        {
            return Link(Driver::Polled(Box::new(Polled {
                reader: Box::new(reader),
                writer: Box::new(writer),
                read_fd,
                write_fd,
                writer_flags,
                decoder: FrameDecoder::new(MAX_RESPONSE_FRAME),
                buf: vec![0; READ_BYTES],
                outbox: Vec::new(),
                written: 0,
                ends: VecDeque::new(),
                failed: None,
                closed: None,
            })));
        }
        Link(Driver::Threaded(Threaded::new(reader, writer)))
    }

    /// Queues `request` and returns at once: written now as far as the stream takes it without
    /// blocking, the rest while waiting; the deadline of the next [`recv`](Link::recv) bounds
    /// its writing.
    pub fn send(&mut self, request: &Request) -> Result<(), LinkError> {
        match &mut self.0 {
            Driver::Polled(p) => p.send(request),
            Driver::Threaded(t) => t.send(request),
        }
    }

    pub fn recv(&mut self, timeout: Duration) -> Result<Response, LinkError> {
        match &mut self.0 {
            Driver::Polled(p) => p.recv(timeout),
            Driver::Threaded(t) => t.recv(timeout),
        }
    }

    pub fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, LinkError> {
        self.send(request)?;
        self.recv(timeout)
    }
}

/// Sets `O_NONBLOCK` on `fd` and answers its flags before.
fn make_nonblocking(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL and F_SETFL take and return ints and touch no memory of ours; `fd` is
    // open, owned by the end that answered it.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

fn send_error((kind, message): &(io::ErrorKind, String)) -> LinkError {
    LinkError::Send(io::Error::new(*kind, message.clone()))
}

/// A link driven from the calling thread over file descriptors.
struct Polled {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    read_fd: RawFd,
    write_fd: RawFd,
    /// The writer's flags before the link made it non-blocking, restored when the link goes:
    /// copies of a descriptor (a socket's clone) share them.
    writer_flags: libc::c_int,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    /// Encoded requests; the bytes before `written` are on the stream.
    outbox: Vec<u8>,
    written: usize,
    /// Where each request not yet wholly written ends in `outbox`.
    ends: VecDeque<usize>,
    failed: Option<(io::ErrorKind, String)>,
    /// The stream ended, with the read error that ended it if any.
    closed: Option<Option<String>>,
}

impl Polled {
    fn send(&mut self, request: &Request) -> Result<(), LinkError> {
        if let Some(failed) = &self.failed {
            return Err(send_error(failed));
        }
        if self.ends.len() > QUEUED_REQUESTS {
            return Err(LinkError::NotReading {
                limit: Duration::ZERO,
                unsent: self.unsent(),
            });
        }
        if self.written > 0 && self.written >= self.outbox.len() / 2 {
            self.outbox.drain(..self.written);
            self.ends.iter_mut().for_each(|end| *end -= self.written);
            self.written = 0;
        }
        encode_frame(request, &mut self.outbox);
        self.ends.push_back(self.outbox.len());
        self.write_ready();
        // A failed write is the next recv's to report, after the responses that came before it.
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Response, LinkError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.decoder.next_message::<Response>() {
                return message.map_err(LinkError::Corrupt);
            }
            if let Some(failed) = &self.failed {
                return Err(send_error(failed));
            }
            if let Some(detail) = &self.closed {
                return Err(LinkError::Closed {
                    detail: detail.clone(),
                });
            }
            if !self.wait(deadline.saturating_duration_since(Instant::now()))
                && Instant::now() >= deadline
            {
                return Err(match self.unsent() {
                    0 => LinkError::Timeout(timeout),
                    unsent => LinkError::NotReading {
                        limit: timeout,
                        unsent,
                    },
                });
            }
        }
    }

    fn unsent(&self) -> usize {
        self.outbox.len() - self.written
    }

    /// Waits up to `left` for a response's bytes, or room for unsent requests, and takes what
    /// is ready. Answers whether anything was.
    fn wait(&mut self, left: Duration) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: self.read_fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.write_fd,
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        let watched = if self.unsent() > 0 { 2 } else { 1 };
        // Rounded up: a wait that ends before its deadline is only repeated.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` outlives the call and holds at least `watched` entries.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), watched as libc::nfds_t, ms) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                self.closed = Some(Some(format!("wait for the device: {e}")));
            }
            return e.kind() != io::ErrorKind::Interrupted;
        }
        if fds[1].revents != 0 {
            self.write_ready();
        }
        if fds[0].revents != 0 {
            self.read_ready();
        }
        ready > 0
    }

    /// Writes unsent requests until the stream would block.
    fn write_ready(&mut self) {
        while self.unsent() > 0 && self.failed.is_none() {
            match self.writer.write(&self.outbox[self.written..]) {
                Ok(0) => {
                    self.failed =
                        Some((io::ErrorKind::WriteZero, "the stream took no bytes".into()))
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.failed = Some((e.kind(), e.to_string())),
            }
        }
        while self.ends.front().is_some_and(|&end| end <= self.written) {
            self.ends.pop_front();
        }
        if self.unsent() == 0 {
            self.outbox.clear();
            self.written = 0;
        }
    }

    /// One read: the caller polls before each, so a reader that blocks is never waited on.
    fn read_ready(&mut self) {
        match self.reader.read(&mut self.buf) {
            Ok(0) => self.closed = Some(None),
            Ok(n) => self.decoder.extend(&self.buf[..n]),
            // The socket's clone shares the writer's non-blocking flag.
            Err(e) if idle(&e) => {}
            Err(e) => self.closed = Some(Some(e.to_string())),
        }
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        // SAFETY: as in `make_nonblocking`; the writer, and so its descriptor, is still open.
        unsafe {
            libc::fcntl(self.write_fd, libc::F_SETFL, self.writer_flags);
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

/// A link over a stream the caller cannot wait on: a reader thread decodes frames as they
/// arrive and a writer thread sends them.
struct Threaded {
    outgoing: SyncSender<Vec<u8>>,
    outbox: Arc<Outbox>,
    incoming: Receiver<Incoming>,
}

impl Threaded {
    fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Threaded {
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
        Threaded {
            outgoing,
            outbox,
            incoming,
        }
    }

    fn send(&mut self, request: &Request) -> Result<(), LinkError> {
        if let Some(failed) = &*self.outbox.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(send_error(failed));
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

    fn recv(&mut self, timeout: Duration) -> Result<Response, LinkError> {
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

/// A read that found nothing, which is not the end of the stream: serial ports and sockets with
/// a read timeout time out on idle lines, and a non-blocking descriptor has nothing yet.
fn idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
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
            Err(e) if idle(&e) => continue,
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

    /// A socket end that hides its descriptor, so the link gives it threads.
    struct Opaque(UnixStream);

    impl Read for Opaque {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Opaque {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl LinkEnd for Opaque {}

    /// A link to a fresh device end, over each driver: (driver's name, link, device end).
    fn links() -> [(&'static str, Link, UnixStream); 2] {
        let pair = || UnixStream::pair().unwrap();
        let ((polled, polled_device), (threaded, threaded_device)) = (pair(), pair());
        let polled_link = Link::new(polled.try_clone().unwrap(), polled);
        let threaded_link = Link::new(Opaque(threaded.try_clone().unwrap()), Opaque(threaded));
        assert!(matches!(polled_link.0, Driver::Polled(_)));
        assert!(matches!(threaded_link.0, Driver::Threaded(_)));
        [
            ("polled", polled_link, polled_device),
            ("threaded", threaded_link, threaded_device),
        ]
    }

    fn infer(seq: u32, values: usize) -> Request {
        Request::Infer(gauntlet_wire::InferRequest {
            slot: 0,
            seq,
            window_len: 1024,
            data: vec![0.5; values],
        })
    }

    fn assert_closed(driver: &str, link: &mut Link) {
        let answer = link.recv(Duration::from_secs(5));
        assert!(
            matches!(answer, Err(LinkError::Closed { .. })),
            "{driver}: {answer:?}"
        );
    }

    #[test]
    fn a_silent_device_is_a_timeout_and_a_closed_one_is_closed() {
        for (driver, mut link, mut device) in links() {
            link.send(&Request::Memory).unwrap();
            // The device takes the request (so none is left unsent) and says nothing.
            let mut byte = [1u8];
            while byte[0] != 0 {
                device.read_exact(&mut byte).unwrap();
            }
            assert!(
                matches!(
                    link.recv(Duration::from_millis(20)),
                    Err(LinkError::Timeout(_))
                ),
                "{driver}"
            );
            drop(device);
            assert_closed(driver, &mut link);
        }
    }

    #[test]
    fn a_device_that_stops_reading_is_a_timeout_that_says_so() {
        for (driver, mut link, device) in links() {
            // Far more than a socket buffer holds, so the write cannot finish while nobody reads.
            link.send(&infer(1, 1 << 20)).unwrap();
            match link.recv(Duration::from_millis(50)) {
                Err(LinkError::NotReading { limit, unsent }) => {
                    assert_eq!(limit, Duration::from_millis(50), "{driver}");
                    assert!(unsent > 0, "{driver}");
                }
                other => panic!("{driver}: expected NotReading, got {other:?}"),
            }
            let reason = link
                .recv(Duration::from_millis(10))
                .unwrap_err()
                .reason("pi4");
            assert!(
                reason.contains("board `pi4` within 10ms"),
                "{driver}: {reason}"
            );
            assert!(reason.contains("stopped reading"), "{driver}: {reason}");
            // The device's end going away ends the blocked write, and the link says why.
            drop(device);
            assert!(
                matches!(
                    link.recv(Duration::from_secs(5)),
                    Err(LinkError::Send(_) | LinkError::Closed { .. })
                ),
                "{driver}"
            );
        }
    }

    #[test]
    fn requests_beyond_the_queue_are_refused_while_the_device_reads_none() {
        for (driver, mut link, _device) in links() {
            let mut refused = None;
            for seq in 0..64 {
                if let Err(e) = link.send(&infer(seq, 1 << 16)) {
                    refused = Some((seq, e));
                    break;
                }
            }
            match refused {
                Some((seq, LinkError::NotReading { limit, unsent })) => {
                    assert!(
                        seq > QUEUED_REQUESTS as u32,
                        "{driver}: refused request {seq}"
                    );
                    assert_eq!(limit, Duration::ZERO, "{driver}");
                    assert!(unsent > 0, "{driver}");
                }
                other => panic!("{driver}: expected a refusal, got {other:?}"),
            }
        }
    }

    /// A device that reads requests as they come and answers each: the link writes a request
    /// larger than the socket holds while it waits, and pipelined answers arrive in order.
    #[test]
    fn a_request_larger_than_the_stream_holds_is_written_while_waiting() {
        for (driver, mut link, device) in links() {
            let echo = thread::spawn(move || {
                let mut device = device;
                let mut decoder = FrameDecoder::new(MAX_RESPONSE_FRAME);
                let mut buf = vec![0; 4096];
                let mut answered = 0;
                while answered < 3 {
                    let n = device.read(&mut buf).unwrap();
                    decoder.extend(&buf[..n]);
                    while let Some(request) = decoder.next_message::<Request>() {
                        let Request::Infer(request) = request.unwrap() else {
                            panic!("expected inference requests");
                        };
                        let mut wire = Vec::new();
                        encode_frame(
                            &Response::Marked {
                                marker: gauntlet_wire::Marker::WindowStart(request.seq),
                                device_time_ns: request.data.len() as u64,
                            },
                            &mut wire,
                        );
                        device.write_all(&wire).unwrap();
                        answered += 1;
                    }
                }
            });
            let sizes = [1 << 18, 3, 1 << 16];
            for (seq, &values) in sizes.iter().enumerate() {
                link.send(&infer(seq as u32, values)).unwrap();
            }
            for (seq, &values) in sizes.iter().enumerate() {
                assert_eq!(
                    link.recv(Duration::from_secs(30)).unwrap(),
                    Response::Marked {
                        marker: gauntlet_wire::Marker::WindowStart(seq as u32),
                        device_time_ns: values as u64
                    },
                    "{driver}"
                );
            }
            echo.join().unwrap();
        }
    }

    #[test]
    fn responses_sent_before_the_device_closed_arrive_before_the_close() {
        for (driver, mut link, mut device) in links() {
            let mut wire = Vec::new();
            encode_frame(&Response::Goodbye, &mut wire);
            encode_frame(&Response::Goodbye, &mut wire);
            device.write_all(&wire).unwrap();
            drop(device);
            for _ in 0..2 {
                assert_eq!(
                    link.recv(Duration::from_secs(5)).unwrap(),
                    Response::Goodbye,
                    "{driver}"
                );
            }
            assert_closed(driver, &mut link);
        }
    }

    #[test]
    fn a_polled_link_leaves_the_stream_blocking_when_it_goes() {
        let (host, _device) = UnixStream::pair().unwrap();
        // The caller's copy shares the descriptor's flags with the link's.
        let nonblocking = || {
            // SAFETY: F_GETFL touches no memory of ours; `host` is open.
            let flags = unsafe { libc::fcntl(host.as_raw_fd(), libc::F_GETFL) };
            assert!(flags >= 0);
            flags & libc::O_NONBLOCK != 0
        };
        let link = Link::new(host.try_clone().unwrap(), host.try_clone().unwrap());
        assert!(matches!(link.0, Driver::Polled(_)));
        assert!(nonblocking());
        drop(link);
        assert!(!nonblocking());
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
        for (driver, mut link, mut device) in links() {
            let mut wire = Vec::new();
            encode_frame(&Response::Goodbye, &mut wire);
            wire[1] ^= 0xFF;
            encode_frame(&Response::Goodbye, &mut wire);
            device.write_all(&wire).unwrap();
            assert!(
                matches!(
                    link.recv(Duration::from_secs(5)),
                    Err(LinkError::Corrupt(_))
                ),
                "{driver}"
            );
            assert_eq!(
                link.recv(Duration::from_secs(5)).unwrap(),
                Response::Goodbye,
                "{driver}"
            );
        }
    }
}
