//! Standard output that a closed pipe (`gauntlet runs list | head`) turns neither into a panic
//! nor into an error: what no reader takes is dropped, and the command still exits with its
//! outcome's code (`println!` would panic, exit 101, and hide the outcome).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Standard output; writes after its reader went away succeed and go nowhere.
pub struct Quiet;

/// What a write to standard output returns once its reader is gone: `dropped`, as if it worked.
fn unless_reader_gone<T>(result: io::Result<T>, dropped: T) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(dropped)
        }
        other => other,
    }
}

impl Write for Quiet {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if READER_GONE.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        unless_reader_gone(io::stdout().lock().write(buf), buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if READER_GONE.load(Ordering::Relaxed) {
            return Ok(());
        }
        unless_reader_gone(io::stdout().lock().flush(), ())
    }
}

/// `println!` through [`Quiet`]. Other write errors (a full disk behind a redirect) are not
/// the command's outcome either: the results and the store carry that.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::stdout::Quiet, $($arg)*);
    }};
}
pub(crate) use say;
