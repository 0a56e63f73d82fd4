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
use std::ops::ControlFlow;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
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

/// One `read`, retried when interrupted by a signal.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    retried(|| reader.read(buf))
}

/// `read`'s outcome, `read` retried while a signal interrupts it.
fn retried(mut read: impl FnMut() -> std::io::Result<usize>) -> std::io::Result<usize> {
    loop {
        match read() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => return read,
        }
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

/// The bytes of a file each worker takes at a time: large enough that claiming one costs
/// nothing next to parsing it (hundreds of records), small enough that the ranges in flight
/// add only a few MB to the process.
pub const CHUNK: usize = 256 * 1024;

/// What a worker reads past the end of its range to finish the range's last line, at first:
/// a line or two. Reading a whole [`BUFFER`] there copied half a range twice.
const TAIL: usize = 16 * 1024;

/// A source read at explicit positions: each worker of [`map_lines`] reads its own part of
/// the file, with no cursor to share and no thread in between.
pub trait ReadAt: Sync {
    /// Reads into `buf` from `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        #[cfg(unix)]
        return std::os::unix::fs::FileExt::read_at(self, buf, offset);
        #[cfg(windows)]
        return std::os::windows::fs::FileExt::seek_read(self, buf, offset);
        #[cfg(not(any(unix, windows)))]
        {
            let _ = (buf, offset);
            Err(std::io::ErrorKind::Unsupported.into())
        }
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|at| self.get(at..))
            .unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        (**self).read_at(buf, offset)
    }
}

/// One line of a file, as [`map_lines`] hands it to the mapping function.
#[derive(Debug, Clone, Copy)]
pub struct LineAt<'a> {
    /// 1-based within the worker's range: the file's line number is this plus the number
    /// the sink is given with the range's results, less one.
    pub number: u64,
    /// Where the line starts in the file (0: the file's first line).
    pub offset: u64,
    /// The line without its `\n`: its first `keep` bytes when it is longer than that.
    pub bytes: &'a [u8],
    /// The line's length without its `\n`: more than `bytes.len()` when too long to hold.
    pub len: u64,
    /// Bytes of the file the line takes, its `\n` included when it has one.
    pub consumed: u64,
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

/// Maps every line of `reader` on one worker per core and passes the results to `sink` in
/// the file's order; returns the bytes of the lines read.
///
/// Each worker claims the next [`CHUNK`] of the file, reads it itself (at its position) and
/// calls `line` on every line that starts in it, into an accumulator made by `new`. The
/// accumulator goes to `sink` with the file's number of the range's first line: workers
/// cannot know it, since earlier ranges may still be in flight, so [`LineAt::number`]
/// counts from the range's start. The worker that completes the range the sink waits for
/// runs the sink itself. A reading thread, a sink thread and the wake-ups between them cost
/// a tenth of `evalgate gate`'s time, and the reading thread's copy reached the parsing
/// core cold.
///
/// Lines longer than `keep` are measured, not held: memory stays bounded by the cores, the
/// chunk size and `keep`. `line` breaking ends the read after that range's results are
/// sunk, as does `sink` failing (its error is returned).
pub fn map_lines<R, A, E, N, L, S>(
    reader: &R,
    keep: usize,
    new: N,
    line: L,
    sink: S,
) -> Result<u64, MapError<E>>
where
    R: ReadAt + ?Sized,
    A: Send,
    E: Send,
    N: Fn() -> A + Sync,
    L: Fn(&mut A, LineAt<'_>) -> ControlFlow<()> + Sync,
    S: FnMut(u64, A) -> Result<(), E> + Send,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    let shared = Shared {
        queue: Mutex::new(Queue {
            done: BTreeMap::new(),
            claimed: 0,
            sunk: 0,
            waiting: 0,
            stop: false,
        }),
        room: Condvar::new(),
        // Ranges claimed but not yet sunk: bounds memory when one range is slow.
        ahead: workers as u64 * 2,
        sink: Mutex::new(Sink {
            sink,
            next: 0,
            line: 1,
            bytes: 0,
            end: None,
        }),
    };
    let work = || {
        // A panicking worker must not leave the others waiting for its range.
        let _stop_on_panic = StopOnPanic(&shared);
        let mut buf = Buf::default();
        while let Some(k) = shared.claim() {
            let mut acc = new();
            let outcome = map_range(reader, k, keep, &mut buf, &mut acc, &line);
            let last = !matches!(outcome, Outcome::Mapped { stopped: false, .. });
            shared.deposit(k, outcome, acc);
            if last {
                return;
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(work);
        }
        work();
    });
    // Every range was sunk by the worker that deposited it, or by one that held the sink;
    // this drain only covers what a stopped worker left.
    shared.drain();
    let sink = shared
        .sink
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match sink.end {
        Some(Err(e)) => Err(e),
        Some(Ok(())) | None => Ok(sink.bytes),
    }
}

/// How a worker's range went.
enum Outcome {
    /// `lines` lines mapped (`bytes` of the file); `stopped`: the mapping function broke.
    Mapped {
        lines: u64,
        bytes: u64,
        stopped: bool,
    },
    /// Reading failed after `lines` lines of the range, which were mapped.
    Failed { lines: u64, source: std::io::Error },
    /// The range starts past the end of the file.
    End,
}

struct Queue<A> {
    /// Ranges mapped but not yet sunk.
    done: BTreeMap<u64, (Outcome, A)>,
    /// Ranges handed out, and sunk.
    claimed: u64,
    sunk: u64,
    /// Workers waiting for room.
    waiting: usize,
    stop: bool,
}

struct Sink<S, E> {
    sink: S,
    /// The next range to sink, the number of its first line, and bytes sunk.
    next: u64,
    line: u64,
    bytes: u64,
    /// Set when reading is over: at the end of the file, or at an error.
    end: Option<Result<(), MapError<E>>>,
}

struct Shared<A, S, E> {
    queue: Mutex<Queue<A>>,
    room: Condvar,
    ahead: u64,
    sink: Mutex<Sink<S, E>>,
}

impl<A, S, E> Shared<A, S, E> {
    fn queue(&self) -> MutexGuard<'_, Queue<A>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stop(&self) {
        let mut queue = self.queue();
        queue.stop = true;
        self.room.notify_all();
    }
}

impl<A, S, E> Shared<A, S, E>
where
    S: FnMut(u64, A) -> Result<(), E>,
{
    /// The next range to map, once the sink is close enough behind; `None` once stopped.
    fn claim(&self) -> Option<u64> {
        let mut queue = self.queue();
        while !queue.stop && queue.claimed - queue.sunk >= self.ahead {
            queue.waiting += 1;
            queue = self
                .room
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting -= 1;
        }
        if queue.stop {
            return None;
        }
        queue.claimed += 1;
        Some(queue.claimed - 1)
    }

    fn deposit(&self, k: u64, range: Outcome, acc: A) {
        self.queue().done.insert(k, (range, acc));
        self.drain();
    }

    /// Sinks the ranges that are next in order, unless another worker is doing so.
    fn drain(&self) {
        loop {
            let mut sink = match self.sink.try_lock() {
                Ok(sink) => sink,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            while sink.end.is_none() {
                let next = sink.next;
                let Some((range, acc)) = self.queue().done.remove(&next) else {
                    break;
                };
                sink.next += 1;
                self.sink_one(&mut sink, range, acc);
                let mut queue = self.queue();
                queue.sunk = sink.next;
                if queue.waiting > 0 {
                    self.room.notify_all();
                }
            }
            let (next, over) = (sink.next, sink.end.is_some());
            drop(sink);
            if over {
                self.stop();
                return;
            }
            // A range deposited while this worker held the sink found it taken: sink it now.
            if !self.queue().done.contains_key(&next) {
                return;
            }
        }
    }

    fn sink_one(&self, sink: &mut Sink<S, E>, range: Outcome, acc: A) {
        let first = sink.line;
        match range {
            Outcome::Mapped {
                lines,
                bytes,
                stopped,
            } => {
                sink.line += lines;
                sink.bytes += bytes;
                match (sink.sink)(first, acc) {
                    Err(e) => sink.end = Some(Err(MapError::Sink(e))),
                    Ok(()) if stopped => sink.end = Some(Ok(())),
                    Ok(()) => {}
                }
            }
            Outcome::Failed { lines, source } => {
                sink.end = Some(match (sink.sink)(first, acc) {
                    Err(e) => Err(MapError::Sink(e)),
                    Ok(()) => Err(MapError::Io {
                        line: first - 1 + lines,
                        source,
                    }),
                });
            }
            Outcome::End => sink.end = Some(Ok(())),
        }
    }
}

struct StopOnPanic<'s, A, S, E>(&'s Shared<A, S, E>);

impl<A, S, E> Drop for StopOnPanic<'_, A, S, E> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// A worker's read buffer: the bytes of the file from `pos`, placed so that each read lands
/// on a 64-byte boundary (see [`read_buffer`]), zeroed once and reused for every range.
#[derive(Default)]
struct Buf {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
    pos: u64,
}

impl Buf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// Keeps only `data()[from..]`, now starting at file offset `pos + from`.
    fn keep_from(&mut self, from: usize) {
        let kept = self.len - from;
        let start = aligned_start(&self.bytes, kept);
        let old = self.start + from;
        self.bytes.copy_within(old..old + kept, start);
        self.start = start;
        self.len = kept;
        self.pos += from as u64;
    }

    /// Starts over at file offset `pos`, empty.
    fn reset(&mut self, pos: u64) {
        self.start = aligned_start(&self.bytes, 0);
        self.len = 0;
        self.pos = pos;
    }

    /// Reads up to `want` bytes that follow the data; returns how many (0 at the end).
    fn read_more(
        &mut self,
        reader: &(impl ReadAt + ?Sized),
        want: usize,
    ) -> std::io::Result<usize> {
        if self.bytes.len() < self.start + self.len + want {
            // Growing may move the bytes: place the data again so that reads stay aligned.
            self.bytes.resize(ALIGN + self.len + want, 0);
            let start = aligned_start(&self.bytes, self.len);
            self.bytes
                .copy_within(self.start..self.start + self.len, start);
            self.start = start;
        }
        let mut got = 0;
        while got < want {
            let end = self.start + self.len;
            let offset = self.pos + self.len as u64;
            let n = retried(|| reader.read_at(&mut self.bytes[end..end + want - got], offset))?;
            if n == 0 {
                break;
            }
            self.len += n;
            got += n;
        }
        Ok(got)
    }
}

/// Maps the lines that start in range `k` (bytes `k * CHUNK` to `(k + 1) * CHUNK`), reading
/// past its end to finish the last one.
fn map_range<A, L>(
    reader: &(impl ReadAt + ?Sized),
    k: u64,
    keep: usize,
    buf: &mut Buf,
    acc: &mut A,
    line: &L,
) -> Outcome
where
    L: Fn(&mut A, LineAt<'_>) -> ControlFlow<()>,
{
    let start = k * CHUNK as u64;
    let end = start + CHUNK as u64;
    // From a whole cache line before the range (keeping reads aligned in the file too):
    // a line starts in the range after each `\n` from byte `start - 1` on.
    let before = if k == 0 { 0 } else { ALIGN };
    buf.reset(start - before as u64);
    let mut count = Count::default();
    match buf.read_more(reader, CHUNK + before) {
        Err(e) => return count.failed(e),
        // Nothing from `start` on (for the first range, `before` is 0: an empty file).
        Ok(n) if n <= before => return Outcome::End,
        Ok(_) => {}
    }
    let mut at = 0;
    if k > 0 {
        let data = buf.data();
        let look = &data[before - 1..data.len().min(before - 1 + CHUNK)];
        match memchr::memchr(b'\n', look) {
            Some(i) => at = before + i,
            // Inside a line that started in an earlier range.
            None => return count.mapped(false),
        }
    }
    loop {
        let offset = buf.pos + at as u64;
        if offset >= end {
            break;
        }
        let data = buf.data();
        if let Some(i) = memchr::memchr(b'\n', &data[at..]) {
            let held = &data[at..at + i.min(keep)];
            let flow = count.emit(line, acc, offset, held, i as u64, i as u64 + 1);
            at += i + 1;
            if flow.is_break() {
                return count.mapped(true);
            }
            continue;
        }
        // The line goes on past the buffer: keep what there is of it and read on.
        let partial = data.len() - at;
        buf.keep_from(at);
        at = 0;
        if partial > keep {
            // Too long to hold: keep its head, measure the rest.
            let head = buf.data()[..keep].to_vec();
            let mut len = partial as u64;
            let newline = loop {
                buf.keep_from(buf.len);
                match buf.read_more(reader, BUFFER) {
                    Err(e) => return count.failed(e),
                    Ok(0) => break false,
                    Ok(n) => match memchr::memchr(b'\n', buf.data()) {
                        Some(i) => {
                            len += i as u64;
                            at = i + 1;
                            break true;
                        }
                        None => len += n as u64,
                    },
                }
            };
            let flow = count.emit(line, acc, offset, &head, len, len + u64::from(newline));
            if flow.is_break() || !newline {
                return count.mapped(flow.is_break());
            }
            continue;
        }
        let want = if partial < TAIL { TAIL } else { BUFFER };
        match buf.read_more(reader, want) {
            Err(e) => return count.failed(e),
            Ok(0) => {
                // The file's last line, without a `\n`.
                if partial > 0 {
                    let held = &buf.data()[..partial.min(keep)];
                    let flow = count.emit(line, acc, offset, held, partial as u64, partial as u64);
                    return count.mapped(flow.is_break());
                }
                break;
            }
            Ok(_) => {}
        }
    }
    count.mapped(false)
}

/// Lines and bytes of a range mapped so far.
#[derive(Default)]
struct Count {
    lines: u64,
    bytes: u64,
}

impl Count {
    /// Hands one line to `line`, numbered within its range.
    fn emit<A, L>(
        &mut self,
        line: &L,
        acc: &mut A,
        offset: u64,
        bytes: &[u8],
        len: u64,
        consumed: u64,
    ) -> ControlFlow<()>
    where
        L: Fn(&mut A, LineAt<'_>) -> ControlFlow<()>,
    {
        self.lines += 1;
        self.bytes += consumed;
        let at = LineAt {
            number: self.lines,
            offset,
            bytes,
            len,
            consumed,
        };
        line(acc, at)
    }

    fn mapped(&self, stopped: bool) -> Outcome {
        Outcome::Mapped {
            lines: self.lines,
            bytes: self.bytes,
            stopped,
        }
    }

    fn failed(&self, source: std::io::Error) -> Outcome {
        Outcome::Failed {
            lines: self.lines,
            source,
        }
    }
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

    /// Every line of `text` as `map_lines` delivers it: (file line number, offset, bytes
    /// held, length, bytes consumed), and the bytes it reports.
    type Seen = (u64, u64, Vec<u8>, u64, u64);

    fn mapped(text: &[u8], keep: usize) -> (Vec<Seen>, u64) {
        let mut out = Vec::new();
        let read = map_lines(
            text,
            keep,
            Vec::new,
            |lines: &mut Vec<Seen>, at| {
                assert_eq!(at.bytes.len() as u64, at.len.min(keep as u64));
                lines.push((at.number, at.offset, at.bytes.to_vec(), at.len, at.consumed));
                ControlFlow::Continue(())
            },
            |first, lines: Vec<Seen>| {
                out.extend(
                    lines
                        .into_iter()
                        .map(|(n, o, b, l, c)| (first - 1 + n, o, b, l, c)),
                );
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        (out, read)
    }

    /// What `mapped` should see: split on `\n`, the last line without one if not empty.
    fn expected(text: &[u8], keep: usize) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let newline = offset + line.len() < text.len();
            if !newline && line.is_empty() {
                break;
            }
            let held = line[..line.len().min(keep)].to_vec();
            let consumed = line.len() as u64 + u64::from(newline);
            out.push((
                i as u64 + 1,
                offset as u64,
                held,
                line.len() as u64,
                consumed,
            ));
            offset += line.len() + 1;
        }
        out
    }

    #[test]
    fn maps_every_line_in_order_across_chunks() {
        // Lines of varied length, so chunk ends fall anywhere; more than a few chunks.
        let text: String = (0..40_000)
            .map(|i| format!("{i}:{}\n", "x".repeat(i % 300)))
            .collect();
        assert!(text.len() > 5 * CHUNK);
        let (got, read) = mapped(text.as_bytes(), 1000);
        assert_eq!(read, text.len() as u64);
        assert_eq!(got.len(), 40_000);
        assert_eq!(got, expected(text.as_bytes(), 1000));
    }

    #[test]
    fn lines_that_meet_the_range_edges() {
        // A line ending on the last byte of a range, one starting on its first, one
        // starting on its last, and lines across several ranges.
        let mut text = vec![b'a'; CHUNK - 1];
        text.push(b'\n');
        text.extend(vec![b'b'; CHUNK - 2]);
        text.push(b'\n');
        text.extend(vec![b'c'; 3 * CHUNK + 7]);
        text.extend(b"\n\n\nd");
        for keep in [10, CHUNK, 4 * CHUNK] {
            let (got, read) = mapped(&text, keep);
            assert_eq!(read, text.len() as u64);
            assert_eq!(got, expected(&text, keep), "keep {keep}");
            assert_eq!(got.len(), 6);
        }
    }

    #[test]
    fn a_last_line_without_newline_and_an_empty_file() {
        let (got, read) = mapped(b"a\n\nb", 10);
        assert_eq!(read, 4);
        assert_eq!(got, expected(b"a\n\nb", 10));
        assert_eq!(got[2], (3, 3, b"b".to_vec(), 1, 1));
        assert_eq!(mapped(b"", 10), (vec![], 0));
        assert_eq!(mapped(b"\n", 10).0, vec![(1, 0, vec![], 0, 1)]);
    }

    #[test]
    fn lines_too_long_to_hold_are_measured_not_kept() {
        let long = "y".repeat(3 * CHUNK + 5);
        let text = format!("short\n{long}\nafter\n{long}");
        let (got, _) = mapped(text.as_bytes(), 100);
        assert_eq!(got, expected(text.as_bytes(), 100));
        assert_eq!(got[1].2, vec![b'y'; 100]);
        assert_eq!(got[1].3, long.len() as u64);
        assert_eq!(got[3].4, long.len() as u64, "no newline after the last");
    }

    /// A mapping function that counts lines.
    fn count_lines(n: &mut u64, _: LineAt<'_>) -> ControlFlow<()> {
        *n += 1;
        ControlFlow::Continue(())
    }

    #[test]
    fn a_failing_sink_stops_the_read() {
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let mut sunk = 0;
        let result = map_lines(
            text.as_bytes(),
            100,
            || 0,
            count_lines,
            |_, n| {
                sunk += n;
                if sunk > 50_000 { Err("enough") } else { Ok(()) }
            },
        );
        assert!(matches!(result, Err(MapError::Sink("enough"))));
        assert!(sunk < 200_000);
    }

    #[test]
    fn a_break_ends_the_read_after_its_range() {
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let mut sunk = Vec::new();
        let result = map_lines(
            text.as_bytes(),
            100,
            Vec::new,
            |lines: &mut Vec<u64>, at| {
                lines.push(at.number);
                match at.bytes == b"line 70000" {
                    true => ControlFlow::Break(()),
                    false => ControlFlow::Continue(()),
                }
            },
            |first, lines: Vec<u64>| {
                sunk.extend(lines.iter().map(|n| first - 1 + n));
                Ok::<_, ()>(())
            },
        );
        assert!(result.is_ok());
        assert_eq!(sunk.len(), 70_001);
        assert!(sunk.iter().enumerate().all(|(i, n)| *n == i as u64 + 1));
    }

    #[test]
    fn read_errors_name_the_last_line_read() {
        /// 16-byte lines, and an error for any read that reaches byte `fail`.
        struct Failing(u64);
        impl ReadAt for Failing {
            fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
                if offset + buf.len() as u64 > self.0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = if (offset + i as u64) % 16 == 15 {
                        b'\n'
                    } else {
                        b'x'
                    };
                }
                Ok(buf.len())
            }
        }
        let mut sunk = 0;
        let result = map_lines(
            &Failing(5 * CHUNK as u64),
            100,
            || 0,
            count_lines,
            |_, n| {
                sunk += n;
                Ok::<_, ()>(())
            },
        );
        match result {
            Err(MapError::Io { line, source }) => {
                assert_eq!(source.to_string(), "disk gone");
                assert_eq!(line, sunk, "the lines read before the error were all sunk");
                assert_eq!(line % (CHUNK as u64 / 16), 0, "whole ranges: {line}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_land_on_a_64_byte_boundary() {
        let text: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        let mut buf = Buf::default();
        buf.reset(64);
        assert_eq!(buf.read_more(&text[..], CHUNK).unwrap(), CHUNK);
        assert_eq!(buf.data().as_ptr() as usize % 64, 0);
        // Keeping a tail of any length places it so that the next read is aligned.
        for tail in [3, 100, 0] {
            let from = buf.len - tail;
            let pos = buf.pos + from as u64;
            buf.keep_from(from);
            assert_eq!(buf.pos, pos);
            let end = buf.data().as_ptr() as usize + buf.data().len();
            assert_eq!(end % 64, 0);
            let n = buf.read_more(&text[..], TAIL).unwrap();
            assert_eq!(buf.data(), &text[pos as usize..pos as usize + buf.len]);
            assert_eq!(n, TAIL);
        }
    }
}
