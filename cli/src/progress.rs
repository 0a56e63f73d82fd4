//! Progress on a terminal, silence when piped.
//!
//! [`Progress`] wraps an [`AsyncBufRead`] and, when standard error is a terminal, redraws one
//! status line at most four times a second with bytes read and, when the size is known, the
//! percentage. Nothing is printed when standard error is not a terminal (CI logs, pipes).

use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// A reader that reports how far it got.
pub struct Progress<R> {
    inner: R,
    label: String,
    total: Option<u64>,
    /// Bytes read, and when the line was last drawn: shared by the workers of
    /// [`evalgate::local::map_lines`].
    state: Mutex<(u64, Option<Instant>)>,
    enabled: bool,
}

impl<R> Progress<R> {
    pub fn new(inner: R, label: impl Into<String>, total: Option<u64>) -> Self {
        Progress {
            inner,
            label: label.into(),
            total,
            state: Mutex::new((0, None)),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Moves the count of bytes read with `advance` and redraws the line when it is due.
    fn tick(&self, advance: impl FnOnce(&mut u64)) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (done, last) = &mut *state;
        advance(done);
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < Duration::from_millis(250)) {
            return;
        }
        *last = Some(now);
        let mb = *done as f64 / 1e6;
        match self.total.filter(|t| *t > 0) {
            Some(total) => eprint!(
                "\r{}: {mb:.1} MB of {:.1} MB ({:.0}%)   ",
                self.label,
                total as f64 / 1e6,
                100.0 * *done as f64 / total as f64
            ),
            None => eprint!("\r{}: {mb:.1} MB   ", self.label),
        }
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        let drawn = self
            .state
            .get_mut()
            .map_or(true, |(_, last)| last.is_some());
        if self.enabled && drawn {
            // Clear the status line so the report starts on a clean line.
            eprint!("\r\x1b[2K");
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Progress<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.tick(|done| *done += read as u64);
        poll
    }
}

impl<R: AsyncBufRead + Unpin> AsyncBufRead for Progress<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt);
        self.tick(|done| *done += amt as u64);
    }
}

/// The form for files read at positions by [`evalgate::local::map_lines`]'s workers: how
/// far into the file the reads have reached.
impl<R: evalgate::local::ReadAt> evalgate::local::ReadAt for Progress<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.tick(|done| *done = (*done).max(offset + n as u64));
        Ok(n)
    }
}

/// Whether progress would be shown (standard error is a terminal).
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}
