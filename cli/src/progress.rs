//! Progress on a terminal, silence when piped.
//!
//! [`Progress`] wraps an [`AsyncBufRead`] and, when standard error is a terminal, redraws one
//! status line at most four times a second with bytes read and, when the size is known, the
//! percentage. Nothing is printed when standard error is not a terminal (CI logs, pipes).

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// A reader that reports how far it got.
pub struct Progress<R> {
    inner: R,
    label: String,
    total: Option<u64>,
    done: u64,
    last: Option<Instant>,
    enabled: bool,
}

impl<R> Progress<R> {
    pub fn new(inner: R, label: impl Into<String>, total: Option<u64>) -> Self {
        Progress {
            inner,
            label: label.into(),
            total,
            done: 0,
            last: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        let mb = self.done as f64 / 1e6;
        match self.total.filter(|t| *t > 0) {
            Some(total) => eprint!(
                "\r{}: {mb:.1} MB of {:.1} MB ({:.0}%)   ",
                self.label,
                total as f64 / 1e6,
                100.0 * self.done as f64 / total as f64
            ),
            None => eprint!("\r{}: {mb:.1} MB   ", self.label),
        }
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        if self.enabled && self.last.is_some() {
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
        self.done += read as u64;
        self.tick();
        poll
    }
}

impl<R: AsyncBufRead + Unpin> AsyncBufRead for Progress<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt);
        self.done += amt as u64;
        self.tick();
    }
}

/// The blocking form, for files read by [`evalgate::local::map_lines`].
impl<R: std::io::Read> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.tick();
        Ok(n)
    }
}

/// Whether progress would be shown (standard error is a terminal).
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}
