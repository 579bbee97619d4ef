//! Standard output of the commands, and its reader going away. `ladder presets list | head`
//! closes the pipe early; Rust ignores SIGPIPE, so the next write fails with `EPIPE`.
//! That is not a failure of the command: [`Stdout`] marks it, and the binary ends quietly
//! with 0 on [`is_closed`] errors (as ripgrep does). SIGPIPE itself stays ignored: a
//! broken S3 or Kubernetes connection must be an error to retry, not a killed process.

use std::io::{self, Write};

/// Locked stdout whose `EPIPE` errors carry [`StdoutClosed`].
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub fn lock() -> Self {
        Self(io::stdout().lock())
    }
}

/// The reader of standard output went away.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe { io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed) } else { e }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(mark)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Whether `err` comes from writing to a standard output nobody reads any more. (The
/// `io::Error` must be in the chain itself: `serde_json::to_writer`'s error hides it, so
/// handlers print a serialised string instead.)
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().and_then(io::Error::get_ref).is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_closed() {
        let closed = anyhow::Error::new(mark(io::Error::from(io::ErrorKind::BrokenPipe))).context("printing the plan");
        assert!(is_closed(&closed));
        // A broken connection elsewhere (S3, Kubernetes) is a real failure.
        let socket = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed(&socket));
    }
}
