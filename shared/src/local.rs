//! Local files, read on the calling thread.
//!
//! `tokio::fs::File` hands every read to tokio's blocking pool and copies the bytes twice
//! (pool buffer, then the reader's buffer). The CLI runs one task on a current-thread
//! runtime and reads files that are usually in the page cache, where a read takes
//! microseconds: the thread hand-off and the extra copy were a fifth of `evalgate gate`'s
//! time. [`open`] reads straight into the reader's buffer instead.
//!
//! [`map_lines`] spreads the parsing of a large local file over the machine's cores, and
//! hands the results back in the file's order: what the CLI's `gate` and `validate` do with
//! local files, where parsing JSON is nearly all the work.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Mutex, mpsc};
use std::task::{Context, Poll};

use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// The read buffer for local files. Measured on Linux with aligned buffers ([`read_buffer`]),
/// reads of 64 KiB to 1 MiB cost the same system time (an earlier measurement that favoured
/// 128 KiB over 256 KiB was of misaligned buffers).
pub const BUFFER: usize = 128 * 1024;

/// A zeroed read buffer of `len` bytes that starts on a 64-byte boundary. Linux copies
/// file pages three times slower into a buffer that starts 16 bytes into a page, which is
/// where glibc puts every allocation of 128 KiB or more (measured: 0.21 s against 0.06 s of
/// system time to read 330 MB); aligned, the copy runs at full speed.
fn read_buffer(len: usize) -> (Vec<u8>, Range<usize>) {
    let bytes = vec![0; len + ALIGN];
    let start = aligned_start(&bytes, 0);
    (bytes, start..start + len)
}

const ALIGN: usize = 64;

/// The first index of `buf` (below [`ALIGN`]) from which `ahead` bytes on is an
/// [`ALIGN`]-byte boundary.
fn aligned_start(buf: &[u8], ahead: usize) -> usize {
    (ALIGN - (buf.as_ptr() as usize + ahead) % ALIGN) % ALIGN
}

/// A [`std::fs::File`] read through a [`read_buffer`] of [`BUFFER`] bytes, as an
/// [`AsyncBufRead`] whose reads complete immediately.
pub struct LocalFile {
    file: std::fs::File,
    buf: Vec<u8>,
    /// The aligned part of `buf`.
    window: Range<usize>,
    /// Unconsumed bytes: `buf[window.start + pos..window.start + filled]`.
    pos: usize,
    filled: usize,
}

impl LocalFile {
    pub fn new(file: std::fs::File) -> Self {
        let (buf, window) = read_buffer(BUFFER);
        LocalFile {
            file,
            buf,
            window,
            pos: 0,
            filled: 0,
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.window.start + self.pos..self.window.start + self.filled]
    }

    fn fill(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = read_some(&mut self.file, &mut self.buf[self.window.clone()])?;
            self.pos = 0;
        }
        Ok(self.available())
    }
}

impl AsyncRead for LocalFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let available = this.fill()?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncBufRead for LocalFile {
    fn poll_fill_buf(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        Poll::Ready(self.get_mut().fill())
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.pos = (this.pos + amt).min(this.filled);
    }
}

/// Opens `path`; also returns its size when known (for progress).
pub fn open_file(path: &Path) -> std::io::Result<(std::fs::File, Option<u64>)> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((file, size))
}

/// Opens `path` for buffered reading; also returns its size when known.
pub fn open(path: &Path) -> std::io::Result<(LocalFile, Option<u64>)> {
    let (file, size) = open_file(path)?;
    Ok((LocalFile::new(file), size))
}

/// Bytes of whole lines handed to a worker at a time: large enough that hand-offs cost
/// nothing next to parsing (hundreds of records), small enough that the pieces in flight
/// add only a few MB to the process (1 MB pieces took peak RSS from 9 to 40 MB).
pub const CHUNK: usize = 256 * 1024;

/// A part of a file, in the file's order.
#[derive(Debug)]
pub enum Piece {
    /// Whole lines, numbered from `first`; each ends with `\n` except perhaps the file's last.
    Lines { first: u64, bytes: Chunk },
    /// A line longer than the `keep` given to [`map_lines`], never held whole: its first
    /// `keep` bytes and its length (without the `\n`).
    TooLong {
        line: u64,
        head: Vec<u8>,
        bytes: u64,
    },
}

impl Piece {
    /// The lines of a [`Piece::Lines`], numbered, without their `\n`.
    pub fn lines(first: u64, bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
        let mut rest = bytes;
        let mut number = first;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            number += 1;
            Some((number - 1, line))
        })
    }
}

/// [`map_lines`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError<E> {
    /// Reading failed after `line` lines.
    #[error("reading failed after line {line}: {source}")]
    Io { line: u64, source: std::io::Error },
    /// The sink stopped with an error.
    #[error(transparent)]
    Sink(E),
}

/// Reads `reader` in [`Piece`]s, maps each with `map` on one worker thread per core, and
/// passes the results to `sink` in the file's order; returns the bytes read. Lines longer
/// than `keep` bytes arrive as [`Piece::TooLong`], so memory stays bounded by the cores, the
/// chunk size and `keep`. When `sink` fails, reading stops and the error is returned.
pub fn map_lines<R, U, E, M, S>(
    reader: R,
    keep: usize,
    map: M,
    mut sink: S,
) -> Result<u64, MapError<E>>
where
    R: Read + Send,
    U: Send,
    M: Fn(&Piece) -> U + Sync,
    S: FnMut(U) -> Result<(), E>,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    // Pieces read but not yet sunk: bounds memory when one piece is slow to map.
    let in_flight = workers * 2;
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Piece)>(in_flight);
    // Mapped pieces' buffers go back to the reader: a fresh one per piece cost page faults
    // and the copies of growing it.
    let spare = Spare(Mutex::new(Vec::new()), in_flight + 2);
    // Workers take turns at the one queue.
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(u64, U)>();
        let (ticket_tx, ticket_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            // Cannot fail: the channel has room for every ticket and its receiver is alive.
            let _ = ticket_tx.send(());
        }
        let spare = &spare;
        let reading = scope.spawn(move || {
            let mut seq = 0;
            read_pieces(reader, keep, spare, |piece| {
                // No ticket: the sink stopped, so reading stops too.
                ticket_rx.recv().ok()?;
                work_tx.send((seq, piece)).ok()?;
                seq += 1;
                Some(())
            })
        });
        for _ in 0..workers {
            let (done_tx, work_rx, map) = (done_tx.clone(), &work_rx, &map);
            scope.spawn(move || {
                loop {
                    let job = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, piece)) = job else { return };
                    let mapped = map(&piece);
                    if let Piece::Lines { bytes, .. } = piece {
                        spare.give(bytes);
                    }
                    if done_tx.send((seq, mapped)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut ticket_tx = Some(ticket_tx);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        let mut outcome = Ok(());
        for (seq, mapped) in done_rx {
            waiting.insert(seq, mapped);
            while let Some(mapped) = waiting.remove(&next) {
                next += 1;
                if outcome.is_err() {
                    continue;
                }
                outcome = sink(mapped);
                match (&outcome, &ticket_tx) {
                    (Ok(()), Some(tx)) => {
                        let _ = tx.send(());
                    }
                    // Dropping the tickets stops the reader; the workers then run dry.
                    _ => ticket_tx = None,
                }
            }
        }
        let read = match reading.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        outcome.map_err(MapError::Sink)?;
        read.map_err(|(line, source)| MapError::Io { line, source })
    })
}

/// Bytes read from a file: a buffer, zeroed once and reused, that the file is read into
/// directly, its data placed so that every read lands on a 64-byte boundary (see
/// [`read_buffer`]). Derefs to the data.
pub struct Chunk {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.len)
    }
}

impl Chunk {
    /// Room for a read of up to `len` bytes after the data (grown, zeroed, when short).
    fn room(&mut self, len: usize) -> &mut [u8] {
        let end = self.start + self.len;
        if self.buf.len() < end + len {
            self.buf.resize(end + len, 0);
        }
        &mut self.buf[end..end + len]
    }

    /// Reads once into [`Chunk::room`]; returns the bytes read.
    fn read_from(&mut self, reader: &mut impl Read) -> std::io::Result<usize> {
        let n = read_some(reader, self.room(BUFFER))?;
        self.len += n;
        Ok(n)
    }
}

/// Buffers of pieces already mapped, kept for reuse (at most `.1` of them).
struct Spare(Mutex<Vec<Vec<u8>>>, usize);

impl Spare {
    /// A chunk holding `head`, with room for a chunk's worth of reads more.
    fn take(&self, head: &[u8]) -> Chunk {
        let reused = self.0.lock().ok().and_then(|mut spare| spare.pop());
        let mut buf = reused.unwrap_or_default();
        let need = ALIGN + head.len() + CHUNK + BUFFER;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        // Reads go after `head`: start it where they land on the boundary.
        let start = aligned_start(&buf, head.len());
        buf[start..start + head.len()].copy_from_slice(head);
        Chunk {
            buf,
            start,
            len: head.len(),
        }
    }

    fn give(&self, chunk: Chunk) {
        if let Ok(mut spare) = self.0.lock()
            && spare.len() < self.1
        {
            spare.push(chunk.buf);
        }
    }
}

/// Reads `reader` into pieces and hands each to `emit` until it returns `None`.
/// Fails with the number of lines read before the error.
fn read_pieces<R: Read>(
    mut reader: R,
    keep: usize,
    spare: &Spare,
    mut emit: impl FnMut(Piece) -> Option<()>,
) -> Result<u64, (u64, std::io::Error)> {
    let mut buf = spare.take(&[]);
    // The number of the first line in `buf`, and bytes read in all.
    let mut line = 1;
    let mut total = 0u64;
    let io = |line: u64, source| (line - 1, source);
    // Reads land in the piece itself: a copy through a small staging buffer cost a fifth
    // of the reading thread's time once reads were aligned.
    loop {
        let mut n = 0;
        while n < CHUNK {
            let got = buf.read_from(&mut reader).map_err(|e| io(line, e))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        total += n as u64;
        if n == 0 {
            if !buf.is_empty() {
                let _ = emit(Piece::Lines {
                    first: line,
                    bytes: buf,
                });
            }
            return Ok(total);
        }
        // Whole lines go out once a chunk's worth is buffered; the partial last line stays.
        let mut end = memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1);
        if end >= CHUNK {
            if send_lines(&mut buf, end, &mut line, spare, &mut emit).is_none() {
                return Ok(total);
            }
            end = 0;
        }
        let partial = buf.len() - end;
        if partial > keep {
            // A line too long to hold: send what comes before it, then skip to its end.
            if end > 0 && send_lines(&mut buf, end, &mut line, spare, &mut emit).is_none() {
                return Ok(total);
            }
            let head = buf[..keep].to_vec();
            let mut bytes = buf.len() as u64;
            buf.len = 0;
            loop {
                let n = buf.read_from(&mut reader).map_err(|e| io(line, e))?;
                total += n as u64;
                if n == 0 {
                    break;
                }
                match memchr::memchr(b'\n', &buf) {
                    Some(i) => {
                        bytes += i as u64;
                        // What follows the line's end starts the next piece.
                        let rest = spare.take(&buf[i + 1..]);
                        spare.give(std::mem::replace(&mut buf, rest));
                        break;
                    }
                    None => {
                        bytes += n as u64;
                        buf.len = 0;
                    }
                }
            }
            if emit(Piece::TooLong { line, head, bytes }).is_none() {
                return Ok(total);
            }
            line += 1;
        }
    }
}

/// One `read`, retried when interrupted by a signal.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => return read,
        }
    }
}

/// Emits the whole lines `buf[..end]` as a piece numbered from `*line`, keeps the rest in
/// `buf`, and moves `*line` past them.
fn send_lines(
    buf: &mut Chunk,
    end: usize,
    line: &mut u64,
    spare: &Spare,
    emit: &mut impl FnMut(Piece) -> Option<()>,
) -> Option<()> {
    let rest = spare.take(&buf[end..]);
    buf.len = end;
    let lines = memchr::memchr_iter(b'\n', buf).count() as u64;
    let bytes = std::mem::replace(buf, rest);
    emit(Piece::Lines {
        first: *line,
        bytes,
    })?;
    *line += lines;
    Some(())
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
        assert_eq!(reader.buf[reader.window.clone()].as_ptr() as usize % 64, 0);
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

    /// Every line of `text` as `map_lines` delivers it: (number, bytes) or (number, "TOO LONG n").
    fn mapped(text: &[u8], keep: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let read = map_lines(
            std::io::Cursor::new(text.to_vec()),
            keep,
            |piece| match piece {
                Piece::Lines { first, bytes } => Piece::lines(*first, bytes)
                    .map(|(n, line)| (n, line.to_vec()))
                    .collect::<Vec<_>>(),
                Piece::TooLong { line, head, bytes } => {
                    assert_eq!(head.len(), keep);
                    vec![(*line, format!("TOO LONG {bytes}").into_bytes())]
                }
            },
            |lines| {
                out.extend(lines);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(read, text.len() as u64);
        out
    }

    #[test]
    fn maps_every_line_in_order_across_chunks() {
        // Lines of varied length, so chunk ends fall anywhere; more than a few chunks.
        let text: String = (0..40_000)
            .map(|i| format!("{i}:{}\n", "x".repeat(i % 300)))
            .collect();
        assert!(text.len() > 5 * CHUNK);
        let got = mapped(text.as_bytes(), 1000);
        assert_eq!(got.len(), 40_000);
        for (i, (number, line)) in got.iter().enumerate() {
            assert_eq!(*number, i as u64 + 1);
            assert_eq!(line, format!("{i}:{}", "x".repeat(i % 300)).as_bytes());
        }
    }

    #[test]
    fn reads_land_on_a_64_byte_boundary_after_the_kept_head() {
        let spare = Spare(Mutex::new(Vec::new()), 2);
        for head in [&b""[..], b"abc", &[7; 100]] {
            let mut chunk = spare.take(head);
            assert_eq!(&*chunk, head);
            assert_eq!(chunk.room(BUFFER).as_ptr() as usize % 64, 0);
            assert!(chunk.room(CHUNK + BUFFER).len() == CHUNK + BUFFER);
            spare.give(chunk);
        }
    }

    #[test]
    fn a_last_line_without_newline_and_an_empty_file() {
        assert_eq!(
            mapped(b"a\n\nb", 10),
            vec![(1, b"a".to_vec()), (2, b"".to_vec()), (3, b"b".to_vec())]
        );
        assert!(mapped(b"", 10).is_empty());
    }

    #[test]
    fn lines_too_long_to_hold_are_measured_not_kept() {
        let long = "y".repeat(3 * CHUNK + 5);
        let text = format!("short\n{long}\nafter\n{long}");
        let got = mapped(text.as_bytes(), 100);
        let expected = format!("TOO LONG {}", long.len());
        assert_eq!(
            got,
            vec![
                (1, b"short".to_vec()),
                (2, expected.clone().into_bytes()),
                (3, b"after".to_vec()),
                (4, expected.into_bytes()),
            ]
        );
    }

    #[test]
    fn a_failing_sink_stops_the_read() {
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let mut sunk = 0;
        let result = map_lines(
            std::io::Cursor::new(text.into_bytes()),
            100,
            |piece| match piece {
                Piece::Lines { first, bytes } => Piece::lines(*first, bytes).count(),
                Piece::TooLong { .. } => 1,
            },
            |n| {
                sunk += n;
                if sunk > 50_000 { Err("enough") } else { Ok(()) }
            },
        );
        assert!(matches!(result, Err(MapError::Sink("enough"))));
        assert!(sunk < 200_000);
    }

    #[test]
    fn read_errors_name_the_last_line_read() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                self.0 -= 1;
                let line = b"0123456789abcde\n";
                let n = line.len().min(buf.len());
                buf[..n].copy_from_slice(&line[..n]);
                Ok(n)
            }
        }
        let result = map_lines(Failing(3), 100, |_| (), |()| Ok::<_, ()>(()));
        match result {
            Err(MapError::Io { line, source }) => {
                assert_eq!(line, 0, "nothing was handed on before the error");
                assert_eq!(source.to_string(), "disk gone");
            }
            other => panic!("{other:?}"),
        }
    }
}
