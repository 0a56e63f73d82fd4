//! Local files, read on the calling thread.
//!
//! `tokio::fs::File` hands every read to tokio's blocking pool and copies the bytes twice
//! (pool buffer, then the reader's buffer). The CLI runs one task on a current-thread
//! runtime and reads files that are usually in the page cache, where a read takes
//! microseconds: the thread hand-off and the extra copy were a fifth of `evalgate gate`'s
//! time. [`open`] reads straight into the reader's buffer instead.

use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, BufReader, ReadBuf};

/// The read buffer for local files. Measured on Linux: 256 KiB reads cost twice the kernel
/// time of 128 KiB ones (the copy no longer fits the CPU's cache), and smaller ones gain
/// nothing.
pub const BUFFER: usize = 128 * 1024;

/// A [`std::fs::File`] as an [`AsyncRead`] that completes every read immediately.
pub struct LocalFile(std::fs::File);

impl AsyncRead for LocalFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// Opens `path` for buffered reading; also returns its size when known.
pub fn open(path: &Path) -> std::io::Result<(BufReader<LocalFile>, Option<u64>)> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((BufReader::with_capacity(BUFFER, LocalFile(file)), size))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncBufReadExt as _;

    use super::*;

    #[tokio::test]
    async fn reads_every_line_of_a_file_larger_than_the_buffer() {
        let dir = std::env::temp_dir().join(format!("evalgate-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lines.txt");
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 2 * BUFFER);
        std::fs::write(&path, &text).unwrap();
        let (reader, size) = open(&path).unwrap();
        assert_eq!(size, Some(text.len() as u64));
        let mut lines = reader.lines();
        let mut n = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            assert_eq!(line, format!("line {n}"));
            n += 1;
        }
        assert_eq!(n, 100_000);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(open(&path).is_err());
    }
}
