//! Datasets: streaming validation of an uploaded JSON Lines file and its split into
//! Bedrock-ready shards.
//!
//! A dataset is JSON Lines, one record per line, in Bedrock's "bring your own inference"
//! format plus optional metadata keys (`docs/datasets.md` documents it):
//!
//! ```json
//! {"prompt":"…","referenceResponse":"…","category":"…","modelResponses":[{"response":"…","modelIdentifier":"my-app-v1"}],"latencyMs":840}
//! ```
//!
//! [`validate`] reads any [`AsyncBufRead`] (an S3 stream or a local file: the CLI calls the
//! very same function) line by line, never holding more than one line
//! ([`Limits::max_line_bytes`]); a longer line is measured and skipped without being
//! buffered. It reports every problem with its line number, a reason and a fix (listing
//! the first [`Limits::max_listed_problems`] and counting the rest), and plans the shards.
//! Nothing in a problem quotes prompt or response text: line numbers, key names, types.
//!
//! [`Sharder`] is the second pass over the same bytes: it yields one shard at a time (at
//! most [`Limits::max_prompts_per_shard`] records and [`Limits::max_shard_bytes`] bytes),
//! each with the Bedrock lines (only the documented keys) and the metadata sidecar
//! ([`MetadataLine`]s), so memory stays bounded by one shard whatever the dataset size.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::layout::prompt_hash;
use crate::metadata::MetadataLine;

mod scan;

/// Longest accepted line (one record), in bytes: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Bedrock's limit of prompts per evaluation job.
pub const MAX_PROMPTS_PER_SHARD: usize = 1000;
/// Largest shard, in bytes (bounds the memory used while writing one).
pub const MAX_SHARD_BYTES: usize = 32 << 20;
/// Most prompts accepted in one upload (250 evaluation jobs).
pub const MAX_PROMPTS: u64 = 250_000;
/// Problems listed in a report; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 100;
/// After this many problems validation stops reading: the file is not a dataset.
pub const MAX_PROBLEMS: u64 = 10_000;

/// The keys Bedrock reads from a record; every other top-level key is metadata.
pub const BEDROCK_KEYS: &[&str] = &["prompt", "referenceResponse", "category", "modelResponses"];

/// Validation and sharding limits ([`Limits::default`] is what evalgate enforces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub max_prompts_per_shard: usize,
    pub max_shard_bytes: usize,
    pub max_prompts: u64,
    pub max_listed_problems: usize,
    pub max_problems: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: MAX_LINE_BYTES,
            max_prompts_per_shard: MAX_PROMPTS_PER_SHARD,
            max_shard_bytes: MAX_SHARD_BYTES,
            max_prompts: MAX_PROMPTS,
            max_listed_problems: MAX_LISTED_PROBLEMS,
            max_problems: MAX_PROBLEMS,
        }
    }
}

/// One thing wrong with a dataset: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetProblem {
    /// 1-based line number; `None` for problems of the whole file.
    pub line: Option<u64>,
    pub reason: String,
    pub fix: String,
}

impl DatasetProblem {
    fn at(line: u64, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        DatasetProblem {
            line: Some(line),
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    fn file(reason: impl Into<String>, fix: impl Into<String>) -> Self {
        DatasetProblem {
            line: None,
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for DatasetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}. {}", self.reason, self.fix)
    }
}

/// One valid record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line number in the uploaded file.
    pub line: u64,
    pub prompt: String,
    pub reference_response: Option<String>,
    pub category: Option<String>,
    pub response: String,
    pub model_identifier: String,
    /// Every other top-level key, as uploaded (never sent to Bedrock).
    pub metadata: Map<String, Value>,
}

#[derive(Serialize)]
struct BedrockRecord<'a> {
    prompt: &'a str,
    #[serde(rename = "referenceResponse", skip_serializing_if = "Option::is_none")]
    reference_response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    #[serde(rename = "modelResponses")]
    model_responses: [BedrockResponse<'a>; 1],
}

#[derive(Serialize)]
struct BedrockResponse<'a> {
    response: &'a str,
    #[serde(rename = "modelIdentifier")]
    model_identifier: &'a str,
}

/// [`MetadataLine`] borrowing the record's metadata: the same JSON, without copying the map.
#[derive(Serialize)]
struct MetadataLineRef<'a> {
    line: u64,
    prompt_hash: &'a str,
    metadata: &'a Map<String, Value>,
}

/// The length of `s` serialised as a JSON string by serde_json (quotes included): `"`, `\\`
/// and the control characters with a short escape take two bytes, the other control
/// characters six (`\u00XX`), everything else (UTF-8 included) itself.
fn json_string_len(s: &str) -> usize {
    // Branch-free, in chunks whose extra bytes fit a u8 (48 × 5 < 256): the compiler turns
    // it into SIMD, several times faster than a `match` per byte.
    let mut extra = 0;
    for chunk in s.as_bytes().chunks(48) {
        let mut sum: u8 = 0;
        for &b in chunk {
            let quote = u8::from(b == b'"') | u8::from(b == b'\\');
            let control = u8::from(b < 0x20);
            // \b \t \n \f \r: 0x08-0x0D but 0x0B.
            let short = u8::from(b.wrapping_sub(0x08) < 6) & u8::from(b != 0x0B);
            sum += quote + control * 5 - short * 4;
        }
        extra += usize::from(sum);
    }
    s.len() + extra + 2
}

/// The Bedrock line's keys, each with the text that follows it: prompt, reference,
/// category, response, model identifier. Absent optional texts are left out with their key.
const BEDROCK_KEYS_BEFORE: [&str; 5] = [
    r#"{"prompt":"#,
    r#","referenceResponse":"#,
    r#","category":"#,
    r#","modelResponses":[{"response":"#,
    r#","modelIdentifier":"#,
];
const BEDROCK_CLOSE: &str = "}]}";

/// The length of a Bedrock line of `fields`, `json_len` giving each text's JSON length.
fn bedrock_len(fields: [Option<&str>; 5], json_len: impl Fn(&str) -> usize) -> usize {
    let texts = BEDROCK_KEYS_BEFORE.iter().zip(fields);
    texts
        .filter_map(|(key, text)| Some(key.len() + json_len(text?)))
        .sum::<usize>()
        + BEDROCK_CLOSE.len()
}

/// Appends a Bedrock line of `fields`, `write_json` writing each text as JSON.
fn write_bedrock(
    out: &mut Vec<u8>,
    fields: [Option<&str>; 5],
    mut write_json: impl FnMut(&mut Vec<u8>, &str),
) {
    for (key, text) in BEDROCK_KEYS_BEFORE.iter().zip(fields) {
        if let Some(text) = text {
            out.extend_from_slice(key.as_bytes());
            write_json(out, text);
        }
    }
    out.extend_from_slice(BEDROCK_CLOSE.as_bytes());
}

impl Record {
    fn bedrock_record(&self) -> BedrockRecord<'_> {
        BedrockRecord {
            prompt: &self.prompt,
            reference_response: self.reference_response.as_deref(),
            category: self.category.as_deref(),
            model_responses: [BedrockResponse {
                response: &self.response,
                model_identifier: &self.model_identifier,
            }],
        }
    }

    /// The fields of the Bedrock line, in order.
    fn fields(&self) -> [Option<&str>; 5] {
        [
            Some(&self.prompt),
            self.reference_response.as_deref(),
            self.category.as_deref(),
            Some(&self.response),
            Some(&self.model_identifier),
        ]
    }

    /// The record as Bedrock reads it (documented keys only), without a newline.
    pub fn bedrock_line(&self) -> String {
        // Strings and arrays of strings always serialise.
        serde_json::to_string(&self.bedrock_record()).unwrap_or_default()
    }

    /// The length of [`bedrock_line`](Self::bedrock_line), without building it (validation
    /// plans shards by size for every record; serialising each record only to measure it
    /// was a tenth of validation's time).
    pub fn bedrock_line_len(&self) -> usize {
        bedrock_len(self.fields(), json_string_len)
    }

    /// Appends [`bedrock_line`](Self::bedrock_line) to `out`.
    pub fn write_bedrock_line(&self, out: &mut Vec<u8>) {
        write_bedrock(out, self.fields(), |out, text| {
            // Writing a string to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, text);
        });
    }

    /// The record's line of the metadata sidecar.
    pub fn metadata_line(&self) -> MetadataLine {
        MetadataLine {
            line: self.line,
            prompt_hash: prompt_hash(&self.prompt),
            metadata: self.metadata.clone(),
        }
    }

    /// Appends the JSON of [`metadata_line`](Self::metadata_line) to `out`, without
    /// copying the metadata.
    pub fn write_metadata_line(&self, out: &mut Vec<u8>) {
        let line = MetadataLineRef {
            line: self.line,
            prompt_hash: &prompt_hash(&self.prompt),
            metadata: &self.metadata,
        };
        // Writing JSON values to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &line);
    }
}

/// One planned shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardPlan {
    /// 0-based.
    pub index: usize,
    pub records: usize,
    /// Bytes of its Bedrock lines, newlines included.
    pub bytes: usize,
    pub first_line: u64,
    pub last_line: u64,
}

/// Assigns records to shards: a new shard starts when adding a record would exceed
/// the prompt or byte limit. Deterministic, so both passes agree.
#[derive(Debug, Clone)]
pub struct ShardPlanner {
    max_records: usize,
    max_bytes: usize,
    shards: Vec<ShardPlan>,
}

impl ShardPlanner {
    pub fn new(limits: &Limits) -> Self {
        ShardPlanner {
            max_records: limits.max_prompts_per_shard.max(1),
            max_bytes: limits.max_shard_bytes.max(1),
            shards: Vec::new(),
        }
    }

    /// Places a record of `bytes` (its Bedrock line with newline); returns its shard index.
    pub fn add(&mut self, line: u64, bytes: usize) -> usize {
        let fits = self.shards.last().is_some_and(|s| {
            s.records < self.max_records && s.bytes.saturating_add(bytes) <= self.max_bytes
        });
        if !fits {
            self.shards.push(ShardPlan {
                index: self.shards.len(),
                records: 0,
                bytes: 0,
                first_line: line,
                last_line: line,
            });
        }
        let index = self.shards.len() - 1;
        if let Some(shard) = self.shards.last_mut() {
            shard.records += 1;
            shard.bytes += bytes;
            shard.last_line = line;
        }
        index
    }

    pub fn into_plan(self) -> Vec<ShardPlan> {
        self.shards
    }
}

/// What validation found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Lines read (including blank ones).
    pub lines: u64,
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// The one `modelIdentifier` of the file, when there is one.
    pub model_identifier: Option<String>,
    pub with_reference: u64,
    pub with_category: u64,
    /// Records with at least one metadata key, and the metadata keys seen (first 50).
    pub with_metadata: u64,
    pub metadata_keys: BTreeSet<String>,
    /// The shard plan (meaningful only when the dataset is valid).
    pub shards: Vec<ShardPlan>,
    /// The first problems found, in line order.
    pub problems: Vec<DatasetProblem>,
    /// Every problem found, listed or not.
    pub problem_count: u64,
    /// Validation stopped early (too many problems): there may be more.
    pub stopped_at_line: Option<u64>,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.problem_count == 0
    }

    /// Problems found but not listed.
    pub fn unlisted_problems(&self) -> u64 {
        self.problem_count
            .saturating_sub(self.problems.len() as u64)
    }
}

/// A line as read: its bytes, or only its length when over the limit.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    TooLong { bytes: u64 },
}

/// Reads lines of at most `max` bytes without ever buffering more; strips a UTF-8 BOM at
/// the start of the file and a `\r` before each `\n`.
pub struct LineReader<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of the reader's buffer that the line returned last borrowed, consumed on the
    /// next call.
    borrowed: usize,
    line: u64,
    bytes: u64,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(reader: R, max: usize) -> Self {
        LineReader {
            reader,
            max,
            buf: Vec::new(),
            borrowed: 0,
            line: 0,
            bytes: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line with its 1-based number, `None` at the end.
    pub async fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.reader.consume(std::mem::take(&mut self.borrowed));
        // A line whole in the reader's buffer is lent from it, not copied.
        let chunk = self.reader.fill_buf().await?;
        if let Some(end) = memchr::memchr(b'\n', chunk) {
            self.borrowed = end + 1;
            self.bytes += self.borrowed as u64;
            self.line += 1;
            let chunk = self.reader.fill_buf().await?;
            return Ok(Some((
                self.line,
                classify(self.line == 1, &chunk[..end], end as u64, self.max),
            )));
        }
        self.buf.clear();
        // Keep up to max + 2 bytes: a line of exactly `max` plus its '\r', plus one byte
        // that proves the line is too long.
        let cap = self.max.saturating_add(2);
        let mut len: u64 = 0;
        let mut read_any = false;
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let newline = memchr::memchr(b'\n', chunk);
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            len += part.len() as u64;
            let room = cap.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&part[..part.len().min(room)]);
            let consumed = newline.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(consumed);
            self.bytes += consumed as u64;
            if newline.is_some() {
                break;
            }
        }
        self.line += 1;
        Ok(Some((
            self.line,
            classify(self.line == 1, &self.buf, len, self.max),
        )))
    }
}

/// A line from its first `max + 2` bytes (`head`) and its length without the `\n`: a `\r`
/// before the `\n` and, on the file's `first` line, a UTF-8 BOM are not part of it.
pub fn classify(first: bool, head: &[u8], len: u64, max: usize) -> Line<'_> {
    let mut text = head;
    let mut len = len;
    if len == text.len() as u64
        && let Some(stripped) = text.strip_suffix(b"\r")
    {
        text = stripped;
        len -= 1;
    }
    if first && let Some(stripped) = text.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        text = stripped;
        len -= 3;
    }
    if len > max as u64 {
        return Line::TooLong { bytes: len };
    }
    Line::Text(text)
}

/// Validates a dataset read from `reader` with the default [`Limits`].
pub async fn validate<R: AsyncBufRead + Unpin>(reader: R) -> std::io::Result<Validation> {
    validate_with(reader, &Limits::default()).await
}

/// Validates a dataset read from `reader`. I/O errors are errors; everything wrong with the
/// content is a [`DatasetProblem`] in the result.
pub async fn validate_with<R: AsyncBufRead + Unpin>(
    reader: R,
    limits: &Limits,
) -> std::io::Result<Validation> {
    let mut lines = LineReader::new(reader, limits.max_line_bytes);
    let mut validator = Validator::new(limits);
    let mut seen = Seen::default();
    let mut read = 0;
    while let Some((number, line)) = lines.next_line().await? {
        let checked = check_line(number, number == 1, line, &mut seen);
        let consumed = lines.bytes() - read;
        read = lines.bytes();
        if !validator.add(number, consumed, checked) {
            break;
        }
    }
    Ok(validator.finish(None))
}

/// Validates a local dataset as [`validate_with`] does (same problems, same order, same
/// shard plan), checking lines on every core: see [`crate::local::map_lines`].
pub fn validate_parallel<R: crate::local::ReadAt + ?Sized>(
    reader: &R,
    limits: &Limits,
) -> std::io::Result<Validation> {
    use crate::local::{LineAt, MapError, map_lines};
    use std::ops::ControlFlow;
    let max = limits.max_line_bytes;
    let keep = max.saturating_add(2);
    // Per range: the lines checked, numbered from the range's first line (the sink adds where
    // it starts), and what the range has seen.
    let new = || (Vec::<(u64, u64, Checked)>::new(), Seen::default());
    let check = |(checked, seen): &mut (Vec<(u64, u64, Checked)>, Seen), at: LineAt<'_>| {
        // The BOM and UTF-16 checks look at the file's first line only.
        let first = at.offset == 0;
        let line = classify(first, at.bytes, at.len, max);
        checked.push((
            at.number,
            at.consumed,
            check_line(at.number, first, line, seen),
        ));
        ControlFlow::Continue(())
    };
    let mut validator = Validator::new(limits);
    let sink = |first: u64, (checked, _): (Vec<(u64, u64, Checked)>, Seen)| {
        for (number, consumed, mut checked) in checked {
            let number = first - 1 + number;
            if let Checked::Problems(problems) = &mut checked {
                for line in problems.iter_mut().filter_map(|p| p.line.as_mut()) {
                    *line += first - 1;
                }
            }
            if !validator.add(number, consumed, checked) {
                return Err(());
            }
        }
        Ok(())
    };
    let read = match map_lines(reader, keep, new, check, sink) {
        Ok(read) => Some(read),
        // Validation stopped early: the validator counted the bytes it read.
        Err(MapError::Sink(())) => None,
        Err(MapError::Io { source, .. }) => return Err(source),
    };
    Ok(validator.finish(read))
}

/// One line as far as it can be checked alone: the costly part of validation, which can
/// run on any thread. [`Validator`] adds what needs the lines before it.
#[derive(Debug)]
pub enum Checked {
    Blank,
    TooLong { bytes: u64 },
    Utf16,
    Record(Facts),
    Problems(Vec<DatasetProblem>),
}

/// What validation keeps of a good record: the record itself is dropped where it was
/// parsed (freeing it on the thread that folds lines cost a fifth of the time).
#[derive(Debug)]
pub struct Facts {
    /// Shared: the lines of a file almost always name the same model.
    pub model_identifier: Arc<str>,
    pub reference: bool,
    pub category: bool,
    pub metadata: bool,
    /// Metadata keys in the metadata map's order, but for those the [`Seen`] given to
    /// [`check_line`] had already seen: a key seen before changes nothing.
    pub metadata_keys: Vec<String>,
    /// The line's size as written for Bedrock, with its `\n`.
    pub bedrock_bytes: usize,
}

impl Facts {
    fn of(record: Record, seen: &mut Seen) -> Facts {
        Facts {
            bedrock_bytes: record.bedrock_line_len() + 1,
            model_identifier: seen.model(&record.model_identifier),
            reference: record.reference_response.is_some(),
            category: record.category.is_some(),
            metadata: !record.metadata.is_empty(),
            metadata_keys: seen.first_time(record.metadata.keys().map(String::as_str)),
        }
    }
}

/// What the [`Facts`] of earlier lines already handed on: the model identifier (the lines
/// of a file almost always name the same one: shared, not copied) and metadata keys (a key
/// seen before changes nothing: each is copied and handed on once, up to [`Seen::MAX_KEYS`]
/// of them, then every time).
#[derive(Debug, Default)]
pub struct Seen {
    model: Option<Arc<str>>,
    keys: HashSet<String>,
}

impl Seen {
    const MAX_KEYS: usize = 1024;

    /// `id`, shared with the line before when it named the same model.
    fn model(&mut self, id: &str) -> Arc<str> {
        match &self.model {
            Some(model) if **model == *id => model.clone(),
            _ => self.model.insert(Arc::from(id)).clone(),
        }
    }

    /// Those of `keys` not seen before, now seen.
    fn first_time<'k>(&mut self, keys: impl IntoIterator<Item = &'k str>) -> Vec<String> {
        keys.into_iter()
            .filter(|key| {
                if self.keys.contains(*key) {
                    return false;
                }
                if self.keys.len() < Self::MAX_KEYS {
                    self.keys.insert((*key).to_owned());
                }
                true
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Checks line `number` on its own (`first`: the file's first line, where a UTF-16 byte
/// order mark is looked for).
pub fn check_line(number: u64, first: bool, line: Line<'_>, seen: &mut Seen) -> Checked {
    let bytes = match line {
        Line::TooLong { bytes } => return Checked::TooLong { bytes },
        Line::Text(bytes) => bytes,
    };
    if first && (bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF])) {
        return Checked::Utf16;
    }
    if let Some(raw) = crate::json_scan::utf8(bytes).ok().and_then(scan::parse) {
        return Checked::Record(raw.facts(seen));
    }
    match parse_record(number, bytes) {
        Ok(None) => Checked::Blank,
        Ok(Some(record)) => Checked::Record(Facts::of(record, seen)),
        Err(problems) => Checked::Problems(problems),
    }
}

/// Folds checked lines, in the file's order, into a [`Validation`].
struct Validator<'l> {
    limits: &'l Limits,
    planner: ShardPlanner,
    v: Validation,
    first_model_line: u64,
}

impl<'l> Validator<'l> {
    fn new(limits: &'l Limits) -> Self {
        Validator {
            limits,
            planner: ShardPlanner::new(limits),
            v: Validation {
                lines: 0,
                bytes: 0,
                records: 0,
                model_identifier: None,
                with_reference: 0,
                with_category: 0,
                with_metadata: 0,
                metadata_keys: BTreeSet::new(),
                shards: Vec::new(),
                problems: Vec::new(),
                problem_count: 0,
                stopped_at_line: None,
            },
            first_model_line: 0,
        }
    }

    fn push(&mut self, problem: DatasetProblem) {
        push_problem(&mut self.v, self.limits, problem);
    }

    /// Adds line `number` (`consumed` bytes of the file); false when validation stops here.
    fn add(&mut self, number: u64, consumed: u64, checked: Checked) -> bool {
        let limits = self.limits;
        self.v.lines = number;
        self.v.bytes += consumed;
        match checked {
            Checked::Blank => {}
            Checked::TooLong { bytes } => self.push(DatasetProblem::at(
                number,
                format!(
                    "the line is {bytes} bytes, over the limit of {} bytes per record",
                    limits.max_line_bytes
                ),
                "Shorten the prompt or the response (the judge model reads both), or leave the record out",
            )),
            Checked::Utf16 => {
                self.push(DatasetProblem::at(
                    1,
                    "the file is UTF-16 encoded",
                    "Save it as UTF-8 (JSON Lines must be UTF-8), e.g. with iconv -f UTF-16 -t UTF-8",
                ));
                self.v.stopped_at_line = Some(1);
                return false;
            }
            Checked::Problems(problems) => {
                for problem in problems {
                    self.push(problem);
                }
            }
            Checked::Record(facts) => {
                match &self.v.model_identifier {
                    None => {
                        self.v.model_identifier = Some(facts.model_identifier.to_string());
                        self.first_model_line = number;
                    }
                    Some(first) if **first != *facts.model_identifier => {
                        let problem = DatasetProblem::at(
                            number,
                            format!(
                                "modelIdentifier {:?} differs from {first:?} used since line {}",
                                facts.model_identifier, self.first_model_line
                            ),
                            "A dataset evaluates one model: use the same modelIdentifier on every line, or upload one file per model",
                        );
                        self.push(problem);
                    }
                    Some(_) => {}
                }
                let v = &mut self.v;
                v.records += 1;
                v.with_reference += u64::from(facts.reference);
                v.with_category += u64::from(facts.category);
                if facts.metadata {
                    v.with_metadata += 1;
                    for key in facts.metadata_keys {
                        if v.metadata_keys.len() < 50 && !v.metadata_keys.contains(&key) {
                            v.metadata_keys.insert(key);
                        }
                    }
                }
                if v.records <= limits.max_prompts {
                    self.planner.add(number, facts.bedrock_bytes);
                }
            }
        }
        if self.v.problem_count >= limits.max_problems {
            self.v.stopped_at_line = Some(number);
            return false;
        }
        true
    }

    /// The validation; `read`: the file's size when every line was added.
    fn finish(mut self, read: Option<u64>) -> Validation {
        if let Some(read) = read {
            self.v.bytes = read;
        }
        let limits = self.limits;
        if self.v.stopped_at_line.is_none() {
            if self.v.lines == 0 {
                self.push(DatasetProblem::file(
                    "the dataset is empty (0 bytes)",
                    "Upload a JSON Lines file with one record per line: {\"prompt\": ..., \"modelResponses\": [{\"response\": ..., \"modelIdentifier\": ...}]}",
                ));
            } else if self.v.records == 0 && self.v.problem_count == 0 {
                let lines = self.v.lines;
                self.push(DatasetProblem::file(
                    format!("the dataset has {lines} lines but no records: every line is blank"),
                    "Write one JSON record per line; blank lines are ignored",
                ));
            }
            if self.v.records > limits.max_prompts {
                let records = self.v.records;
                self.push(DatasetProblem::file(
                    format!(
                        "the dataset has {records} records; one upload accepts at most {}",
                        limits.max_prompts
                    ),
                    "Split it into several files (each is evaluated separately) or sample it",
                ));
            }
        }
        self.v.shards = self.planner.into_plan();
        self.v
    }
}

fn push_problem(v: &mut Validation, limits: &Limits, problem: DatasetProblem) {
    v.problem_count += 1;
    if v.problems.len() < limits.max_listed_problems {
        v.problems.push(problem);
    }
}

/// Parses one line: `Ok(None)` for a blank line, the record, or every problem of the line.
pub fn parse_record(line: u64, bytes: &[u8]) -> Result<Option<Record>, Vec<DatasetProblem>> {
    let text = match crate::json_scan::utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(vec![DatasetProblem::at(
                line,
                format!(
                    "the line is not valid UTF-8 (invalid byte at position {} of the line)",
                    e.valid_up_to() + 1
                ),
                "Save the file as UTF-8; text exported as Latin-1 or Windows-1252 must be converted (e.g. iconv -f WINDOWS-1252 -t UTF-8)",
            )]);
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let (bedrock, map) = match serde_json::from_str::<SplitObject>(text) {
        Ok(object) => (object.bedrock, object.metadata),
        // Not an object (or not JSON): parse it again as any JSON value to say what it is.
        Err(e) if e.is_data() => return Err(vec![not_an_object(line, text, &e)]),
        Err(e) => return Err(vec![json_problem(line, text, &e)]),
    };
    let [prompt, reference_response, category, model_responses] = &bedrock;
    if map.contains_key("conversationTurns") {
        return Err(vec![DatasetProblem::at(
            line,
            "the record is in Bedrock's knowledge-base (RAG) evaluation format (conversationTurns)",
            "evalgate evaluates your application's responses: write {\"prompt\": ..., \"modelResponses\": [{\"response\": ..., \"modelIdentifier\": ...}]} records",
        )]);
    }
    let mut problems = Vec::new();
    required_text(
        line,
        prompt.as_ref(),
        &map,
        "prompt",
        "the text your application was given",
        &mut problems,
    );
    optional_text(
        line,
        reference_response.as_ref(),
        "referenceResponse",
        "the expected answer",
        &mut problems,
    );
    optional_text(
        line,
        category.as_ref(),
        "category",
        "a category name, used for per-category results",
        &mut problems,
    );
    model_response(line, model_responses.as_ref(), &map, &mut problems);
    // `map` holds the other keys only.
    for key in map.keys() {
        if let Some(known) = looks_like_bedrock_key(key) {
            problems.push(DatasetProblem::at(
                line,
                format!("key {key:?} looks like {known:?} (keys are case-sensitive)"),
                format!("Rename it to {known:?}; other keys are kept as metadata and never reach the judge"),
            ));
        }
    }
    for problem in metadata_problems(line, &map) {
        problems.push(problem);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Every check passed: move the Bedrock values into the record rather than copying them.
    let [prompt, reference_response, category, model_responses] = bedrock;
    let (response, model_identifier) = match model_responses {
        Some(Value::Array(items)) => match items.into_iter().next() {
            Some(Value::Object(mut item)) => (
                take_text(&mut item, "response"),
                take_text(&mut item, "modelIdentifier"),
            ),
            _ => (None, None),
        },
        _ => (None, None),
    };
    let (Some(Value::String(prompt)), Some(response), Some(model_identifier)) =
        (prompt, response, model_identifier)
    else {
        // Unreachable: a missing or mistyped value always comes with a problem.
        return Err(problems);
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(Some(Record {
        line,
        prompt,
        reference_response: text(reference_response),
        category: text(category),
        response,
        model_identifier,
        metadata: map,
    }))
}

/// A line's top-level object, split as it is read: the values of [`BEDROCK_KEYS`] apart
/// (checked, then moved into the [`Record`]), every other key into the metadata map. The
/// Bedrock keys never go through the map (inserting then removing them was a tenth of
/// validation's time).
struct SplitObject {
    bedrock: [Option<Value>; 4],
    metadata: Map<String, Value>,
}

impl<'de> Deserialize<'de> for SplitObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SplitObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<SplitObject, A::Error> {
                let mut object = SplitObject {
                    bedrock: Default::default(),
                    metadata: Map::new(),
                };
                // A repeated key keeps its last value, as when parsing into a map.
                while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
                    match BEDROCK_KEYS.iter().position(|k| *k == key) {
                        Some(i) => object.bedrock[i] = Some(access.next_value()?),
                        None => {
                            object
                                .metadata
                                .insert(key.into_owned(), access.next_value()?);
                        }
                    }
                }
                Ok(object)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// An object key, borrowed from the line unless it has escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The problem of a line that is JSON but not an object (or whose JSON error is best
/// reported by parsing it as any value).
fn not_an_object(line: u64, text: &str, error: &serde_json::Error) -> DatasetProblem {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return json_problem(line, text, &e),
    };
    let fix = match value {
        // Not expected: an object always splits.
        Value::Object(_) => return json_problem(line, text, error),
        Value::Array(_) => {
            "Write one JSON object per line, not an array: convert a JSON array file with jq -c '.[]'"
        }
        _ => "Write one JSON object per line: {\"prompt\": ..., \"modelResponses\": [...]}",
    };
    let found = type_name(&value);
    DatasetProblem::at(line, format!("the line is {found}, not a JSON object"), fix)
}

/// Removes `key` from `map`: its text when it is a string.
fn take_text(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn json_problem(line: u64, text: &str, e: &serde_json::Error) -> DatasetProblem {
    let trimmed = text.trim();
    if trimmed == "{" || trimmed == "[" {
        return DatasetProblem::at(
            line,
            "the record spans several lines (pretty-printed JSON)",
            "Write each record on a single line (JSON Lines), e.g. with jq -c .",
        );
    }
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return DatasetProblem::at(
            line,
            "the line is not valid JSON: a record starts with '{'",
            "Write one JSON object per line (JSON Lines); CSV, YAML or plain text must be converted first",
        );
    }
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => &message,
    };
    let fix = match e.classify() {
        serde_json::error::Category::Eof => {
            "The line ends before the JSON does: it may be truncated, or a string contains a raw line break (write it as \\n)"
        }
        _ => {
            "Each line must be one complete JSON object: check quotes, commas and braces, and escape quotes and line breaks inside strings"
        }
    };
    DatasetProblem::at(
        line,
        format!(
            "the line is not valid JSON: {message} at column {}",
            e.column()
        ),
        fix,
    )
}

/// The Bedrock key `key` differs from only in case, `_` or `-`, if any. Runs for every
/// metadata key of every record, so ASCII keys (all real ones) are folded once, on the
/// stack.
fn looks_like_bedrock_key(key: &str) -> Option<&'static str> {
    const FOLDED: [&str; 4] = ["prompt", "referenceresponse", "category", "modelresponses"];
    if !key.is_ascii() {
        return BEDROCK_KEYS.iter().copied().find(|k| same_folded(k, key));
    }
    // The usual metadata key starts with no Bedrock key's first letter.
    let first = key.bytes().find(|b| *b != b'_' && *b != b'-');
    if first.is_some_and(|b| !matches!(b.to_ascii_lowercase(), b'p' | b'r' | b'c' | b'm')) {
        return None;
    }
    let mut folded = [0u8; 17];
    let mut len = 0;
    for b in key.bytes().filter(|b| *b != b'_' && *b != b'-') {
        // Longer than the longest Bedrock key: cannot be one.
        let slot = folded.get_mut(len)?;
        *slot = b.to_ascii_lowercase();
        len += 1;
    }
    let folded = &folded[..len];
    FOLDED
        .iter()
        .position(|k| k.as_bytes() == folded)
        .and_then(|i| BEDROCK_KEYS.get(i).copied())
}

/// `a` and `b` are the same key but for case, `_` and `-` (compared without allocating).
fn same_folded(a: &str, b: &str) -> bool {
    let kept = |c: &char| *c != '_' && *c != '-';
    if a.is_ascii() && b.is_ascii() {
        // The usual case, without Unicode case tables.
        return a
            .chars()
            .filter(kept)
            .map(|c| c.to_ascii_lowercase())
            .eq(b.chars().filter(kept).map(|c| c.to_ascii_lowercase()));
    }
    a.chars()
        .filter(kept)
        .flat_map(char::to_lowercase)
        .eq(b.chars().filter(kept).flat_map(char::to_lowercase))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A hint when a missing key is probably present under another spelling.
fn similar_key(map: &Map<String, Value>, wanted: &str) -> String {
    match map.keys().find(|k| same_folded(k, wanted)) {
        Some(found) => format!(" (found {found:?}: keys are case-sensitive)"),
        None => String::new(),
    }
}

/// `value` is the record's `key`; `others` its other keys (to spot a misspelling).
fn required_text(
    line: u64,
    value: Option<&Value>,
    others: &Map<String, Value>,
    key: &str,
    what: &str,
    problems: &mut Vec<DatasetProblem>,
) {
    match value {
        None => problems.push(DatasetProblem::at(
            line,
            format!("missing required key {key:?}{}", similar_key(others, key)),
            format!("Add {key:?}: {what}"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => problems.push(DatasetProblem::at(
            line,
            format!("{key:?} is empty"),
            format!("Give {key:?} a value ({what}), or leave the record out"),
        )),
        Some(Value::String(_)) => {}
        Some(other) => problems.push(DatasetProblem::at(
            line,
            format!("{key:?} must be a string, found {}", type_name(other)),
            format!("Write {key:?} as a JSON string ({what})"),
        )),
    }
}

/// Absent, null or a non-empty string.
fn optional_text(
    line: u64,
    value: Option<&Value>,
    key: &str,
    what: &str,
    problems: &mut Vec<DatasetProblem>,
) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => problems.push(DatasetProblem::at(
            line,
            format!("{key:?} is empty"),
            format!("Remove {key:?} from the record or give it a value ({what})"),
        )),
        Some(Value::String(_)) => {}
        Some(other) => problems.push(DatasetProblem::at(
            line,
            format!("{key:?} must be a string, found {}", type_name(other)),
            format!("Write {key:?} as a JSON string ({what}), or remove it"),
        )),
    }
}

const RESPONSE_SHAPE: &str =
    "\"modelResponses\": [{\"response\": \"...\", \"modelIdentifier\": \"my-app-v1\"}]";

/// Whether `id` matches Bedrock's `inferenceSourceIdentifier` pattern.
pub fn is_valid_model_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 256
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `value` is the record's `modelResponses`; `others` its other keys.
fn model_response(
    line: u64,
    value: Option<&Value>,
    others: &Map<String, Value>,
    problems: &mut Vec<DatasetProblem>,
) {
    let responses = match value {
        None => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "missing required key \"modelResponses\"{}",
                    similar_key(others, "modelResponses")
                ),
                format!("Add your application's response: {RESPONSE_SHAPE}"),
            ));
            return;
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "\"modelResponses\" must be an array, found {}",
                    type_name(other)
                ),
                format!("Write it as an array with exactly one response: {RESPONSE_SHAPE}"),
            ));
            return;
        }
    };
    let first = match responses.as_slice() {
        [] => {
            problems.push(DatasetProblem::at(
                line,
                "\"modelResponses\" is empty",
                format!("Add exactly one response, your application's answer to the prompt: {RESPONSE_SHAPE}"),
            ));
            return;
        }
        [first] => first,
        more => {
            problems.push(DatasetProblem::at(
                line,
                format!("\"modelResponses\" has {} responses; exactly one is allowed", more.len()),
                "Keep one response per prompt; to compare models or versions, upload one dataset per model",
            ));
            return;
        }
    };
    let Value::Object(item) = first else {
        problems.push(DatasetProblem::at(
            line,
            format!(
                "modelResponses[0] must be an object, found {}",
                type_name(first)
            ),
            format!("Write the response as an object: {RESPONSE_SHAPE}"),
        ));
        return;
    };
    match item.get("response") {
        None => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "modelResponses[0] is missing \"response\"{}",
                    similar_key(item, "response")
                ),
                "Add \"response\": your application's answer to the prompt",
            ));
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push(DatasetProblem::at(
                line,
                "modelResponses[0].response is empty",
                "Give the response text your application produced, or leave the record out",
            ));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "modelResponses[0].response must be a string, found {}",
                    type_name(other)
                ),
                "Write the response as a JSON string",
            ));
        }
    }
    match item.get("modelIdentifier") {
        None => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "modelResponses[0] is missing \"modelIdentifier\"{}",
                    similar_key(item, "modelIdentifier")
                ),
                "Add \"modelIdentifier\": a name for the model or application version that answered, e.g. \"my-app-v1\"",
            ));
        }
        Some(Value::String(s)) if is_valid_model_identifier(s) => {}
        Some(Value::String(s)) => {
            problems.push(DatasetProblem::at(
                line,
                format!("modelResponses[0].modelIdentifier {s:?} is not valid for Bedrock"),
                "Use 1-256 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. \"support-bot-v42\"",
            ));
        }
        Some(other) => {
            problems.push(DatasetProblem::at(
                line,
                format!(
                    "modelResponses[0].modelIdentifier must be a string, found {}",
                    type_name(other)
                ),
                "Write the identifier as a JSON string, e.g. \"my-app-v1\"",
            ));
        }
    }
    for key in item.keys() {
        if key != "response" && key != "modelIdentifier" {
            problems.push(DatasetProblem::at(
                line,
                format!("modelResponses[0] has the unexpected key {key:?}"),
                "A response holds only \"response\" and \"modelIdentifier\"; put other per-record data at the top level of the record, where it is kept as metadata",
            ));
        }
    }
}

/// Metadata keys other parts of evalgate read: their values are checked.
const METADATA_CHECKED: [&str; 5] = ["latencyMs", "cost", "inputTokens", "outputTokens", "userId"];

/// The problems of the metadata keys other parts of evalgate read, in [`METADATA_CHECKED`]'s
/// order.
fn metadata_problems(line: u64, map: &Map<String, Value>) -> Vec<DatasetProblem> {
    METADATA_CHECKED
        .iter()
        .filter_map(|key| metadata_problem(line, key, map.get(*key)?))
        .collect()
}

/// The problem of metadata `key`'s value, if `key` is read elsewhere and has the wrong type.
fn metadata_problem(line: u64, key: &str, value: &Value) -> Option<DatasetProblem> {
    if key == "userId" {
        return (!matches!(value, Value::Null | Value::String(_) | Value::Number(_))).then(|| {
            DatasetProblem::at(
                line,
                format!(
                    "metadata \"userId\" must be a string, found {}",
                    type_name(value)
                ),
                "Write \"userId\" as a string, use null when unknown, or remove it",
            )
        });
    }
    let integer = match key {
        "latencyMs" | "cost" => false,
        "inputTokens" | "outputTokens" => true,
        _ => return None,
    };
    let ok = match value {
        Value::Null => true,
        Value::Number(n) if integer => n.as_u64().is_some(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f >= 0.0 && f.is_finite()),
        _ => false,
    };
    if ok {
        return None;
    }
    let wanted = if integer {
        "a whole number >= 0"
    } else {
        "a number >= 0"
    };
    Some(DatasetProblem::at(
        line,
        format!(
            "metadata {key:?} must be {wanted}, found {}",
            describe_number(value)
        ),
        format!("Write {key:?} as {wanted} (not a string), use null when unknown, or remove it"),
    ))
}

fn describe_number(value: &Value) -> String {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| f < 0.0) => "a negative number".into(),
        Value::Number(_) => "a fractional number".into(),
        other => type_name(other).into(),
    }
}

/// One shard, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    pub records: usize,
    pub first_line: u64,
    pub last_line: u64,
    /// Bedrock JSON Lines (documented keys only).
    pub body: Vec<u8>,
    /// The metadata sidecar: one [`MetadataLine`] per record, same order.
    pub metadata: Vec<u8>,
}

/// The second pass found something the first did not.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("reading the dataset failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the dataset changed between validation and sharding: {0}")]
    Changed(String),
}

/// Splits a dataset that [`validate_with`] accepted into shards, one at a time.
pub struct Sharder<R> {
    lines: LineReader<R>,
    planner: ShardPlanner,
    plan: Vec<ShardPlan>,
    /// The Bedrock line and the metadata line of the record
    /// [`next_record`](Self::next_record) returned last (reused for every record: no
    /// allocation per record).
    line: Vec<u8>,
    meta: Vec<u8>,
    /// A record read ahead (shard index, line number) that starts the next shard; its
    /// lines are still in `line` and `meta`.
    pending: Option<(usize, u64)>,
    done: bool,
}

impl<R: AsyncBufRead + Unpin> Sharder<R> {
    /// `plan` is the validated plan ([`Validation::shards`]); every shard is checked against it.
    pub fn new(reader: R, limits: &Limits, plan: Vec<ShardPlan>) -> Self {
        Sharder {
            lines: LineReader::new(reader, limits.max_line_bytes),
            planner: ShardPlanner::new(limits),
            plan,
            line: Vec::new(),
            meta: Vec::new(),
            pending: None,
            done: false,
        }
    }

    /// The next record's shard index and line number; its Bedrock line is in `self.line`
    /// and its metadata line in `self.meta` until the next call.
    async fn next_record(&mut self) -> Result<Option<(usize, u64)>, ShardError> {
        loop {
            let Some((number, line)) = self.lines.next_line().await? else {
                return Ok(None);
            };
            let Line::Text(bytes) = line else {
                return Err(ShardError::Changed(format!("line {number} is too long")));
            };
            self.line.clear();
            self.meta.clear();
            if !write_record(number, bytes, &mut self.line, &mut self.meta)? {
                continue;
            }
            let index = self.planner.add(number, self.line.len() + 1);
            return Ok(Some((index, number)));
        }
    }

    /// The next shard, `None` after the last.
    pub async fn next_shard(&mut self) -> Result<Option<Shard>, ShardError> {
        if self.done {
            return Ok(None);
        }
        let first = match self.pending.take() {
            Some(first) => Some(first),
            None => self.next_record().await?,
        };
        let Some((index, number)) = first else {
            self.done = true;
            if self.planner.shards.len() != self.plan.len() {
                return Err(ShardError::Changed(format!(
                    "{} shards instead of {}",
                    self.planner.shards.len(),
                    self.plan.len()
                )));
            }
            return Ok(None);
        };
        // The plan knows the shard's size: one allocation, not a dozen doublings.
        let planned = self.plan.get(index).map_or(0, |p| p.bytes);
        let mut shard = Shard {
            index,
            records: 0,
            first_line: number,
            last_line: number,
            body: Vec::with_capacity(planned.min(MAX_SHARD_BYTES)),
            metadata: Vec::new(),
        };
        let mut next = Some((index, number));
        while let Some((i, number)) = next {
            if i != index {
                // `self.line` and `self.meta` keep their lines until the next shard takes them.
                self.pending = Some((i, number));
                break;
            }
            shard.records += 1;
            shard.last_line = number;
            shard.body.extend_from_slice(&self.line);
            shard.body.push(b'\n');
            shard.metadata.extend_from_slice(&self.meta);
            shard.metadata.push(b'\n');
            next = self.next_record().await?;
        }
        let expected = self.plan.get(index);
        let matches = expected.is_some_and(|p| {
            p.records == shard.records
                && p.bytes == shard.body.len()
                && p.first_line == shard.first_line
                && p.last_line == shard.last_line
        });
        if !matches {
            return Err(ShardError::Changed(format!(
                "shard {} holds lines {}-{} ({} records), the plan said {:?}",
                index + 1,
                shard.first_line,
                shard.last_line,
                shard.records,
                expected
            )));
        }
        Ok(Some(shard))
    }
}

/// Appends line `number`'s Bedrock line to `line` and its metadata line to `meta`; false
/// for a blank line. A line with problems means the dataset changed since validation.
fn write_record(
    number: u64,
    bytes: &[u8],
    line: &mut Vec<u8>,
    meta: &mut Vec<u8>,
) -> Result<bool, ShardError> {
    if let Some(raw) = crate::json_scan::utf8(bytes).ok().and_then(scan::parse)
        && raw.write_metadata_line(number, meta).is_some()
    {
        raw.write_bedrock_line(line);
        return Ok(true);
    }
    meta.clear();
    match parse_record(number, bytes) {
        Ok(None) => Ok(false),
        Ok(Some(record)) => {
            record.write_bedrock_line(line);
            record.write_metadata_line(meta);
            Ok(true)
        }
        Err(problems) => {
            let first = problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            Err(ShardError::Changed(first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m-1"}]}"#;

    async fn check(text: &[u8]) -> Validation {
        validate(text).await.unwrap()
    }

    fn line(prompt: &str) -> String {
        format!(
            r#"{{"prompt":"{prompt}","referenceResponse":"ref","category":"c","modelResponses":[{{"response":"r","modelIdentifier":"m-1"}}],"latencyMs":12.5,"userId":"u"}}"#
        )
    }

    #[tokio::test]
    async fn accepts_the_public_sample() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/aws-samples-byoi-judge.jsonl"
        ))
        .unwrap();
        let v = check(&text).await;
        assert!(v.is_valid(), "{:?}", v.problems);
        assert_eq!(v.records, 30);
        assert_eq!(v.model_identifier.as_deref(), Some("third-party-model"));
        assert_eq!(v.shards.len(), 1);
        assert_eq!(v.with_reference, 30);
    }

    #[tokio::test]
    async fn tolerates_bom_crlf_and_blank_lines() {
        let text = format!("\u{feff}{GOOD}\r\n\r\n   \n{GOOD}\r\n\n");
        let v = check(text.as_bytes()).await;
        assert!(v.is_valid(), "{:?}", v.problems);
        assert_eq!(v.records, 2);
        assert_eq!(v.lines, 5);
        assert_eq!(v.shards[0].first_line, 1);
        assert_eq!(v.shards[0].last_line, 4);
    }

    /// Each malformed line yields a problem on that line whose reason contains the fragment.
    #[test]
    fn line_problems_table() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}"#,
                "not valid JSON",
            ),
            (r#"{"prompt":"p" "modelResponses":[]}"#, "not valid JSON"),
            ("[1,2]", "an array, not a JSON object"),
            ("42", "a number, not a JSON object"),
            (
                r#"{"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "missing required key \"prompt\"",
            ),
            (
                r#"{"Prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "found \"Prompt\"",
            ),
            (
                r#"{"prompt":7,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"prompt\" must be a string, found a number",
            ),
            (
                r#"{"prompt":"  ","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"prompt\" is empty",
            ),
            (
                r#"{"prompt":"p"}"#,
                "missing required key \"modelResponses\"",
            ),
            (
                r#"{"prompt":"p","modelResponses":{"response":"r","modelIdentifier":"m"}}"#,
                "must be an array, found an object",
            ),
            (
                r#"{"prompt":"p","modelResponses":[]}"#,
                "\"modelResponses\" is empty",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"a","modelIdentifier":"m"},{"response":"b","modelIdentifier":"m"}]}"#,
                "has 2 responses",
            ),
            (
                r#"{"prompt":"p","modelResponses":["r"]}"#,
                "modelResponses[0] must be an object, found a string",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"modelIdentifier":"m"}]}"#,
                "missing \"response\"",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"","modelIdentifier":"m"}]}"#,
                "response is empty",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":["r"],"modelIdentifier":"m"}]}"#,
                "response must be a string, found an array",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"r"}]}"#,
                "missing \"modelIdentifier\"",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"my model"}]}"#,
                "is not valid for Bedrock",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":3}]}"#,
                "modelIdentifier must be a string",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m","score":1}]}"#,
                "unexpected key \"score\"",
            ),
            (
                r#"{"prompt":"p","referenceResponse":5,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"referenceResponse\" must be a string",
            ),
            (
                r#"{"prompt":"p","category":"","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"category\" is empty",
            ),
            (
                r#"{"prompt":"p","reference_response":"x","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "looks like \"referenceResponse\"",
            ),
            (
                r#"{"prompt":"p","latencyMs":"120","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"latencyMs\" must be a number >= 0, found a string",
            ),
            (
                r#"{"prompt":"p","inputTokens":1.5,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "whole number",
            ),
            (
                r#"{"prompt":"p","cost":-1,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "found a negative number",
            ),
            (
                r#"{"prompt":"p","userId":{"a":1},"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
                "\"userId\" must be a string",
            ),
            (r#"{"conversationTurns":[]}"#, "knowledge-base (RAG)"),
            ("{", "spans several lines"),
        ];
        for (text, fragment) in cases {
            let problems = parse_record(7, text.as_bytes()).expect_err(text);
            assert!(
                problems
                    .iter()
                    .any(|p| p.line == Some(7) && p.reason.contains(fragment)),
                "{text}: {problems:?}"
            );
            assert!(problems.iter().all(|p| !p.fix.is_empty()));
        }
    }

    #[test]
    fn problems_never_quote_prompt_or_response_text() {
        let secret = "SECRET-CUSTOMER-TEXT";
        for text in [
            format!(r#"{{"prompt":"{secret}","modelResponses":[]}}"#),
            format!(r#"{{"prompt":"{secret}","modelResponses":[{{"response":"{secret}"}}]}}"#),
            format!(
                r#"{{"prompt":"{secret}","modelResponses":[{{"response":"{secret}","modelIdentifier":"m"}}]"#
            ),
            format!(r#"{{"prompt":"{secret}\u0001","#),
        ] {
            let problems = parse_record(1, text.as_bytes()).unwrap_err();
            for p in problems {
                assert!(!p.to_string().contains(secret), "{p}");
            }
        }
    }

    #[test]
    fn records_keep_metadata_aside() {
        let record = parse_record(3, line("hello").as_bytes()).unwrap().unwrap();
        assert_eq!(record.metadata.len(), 2);
        assert_eq!(record.metadata["latencyMs"], 12.5);
        let bedrock: Value = serde_json::from_str(&record.bedrock_line()).unwrap();
        let keys: Vec<_> = bedrock.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(keys.iter().all(|k| BEDROCK_KEYS.contains(&k.as_str())));
        assert_eq!(bedrock["modelResponses"][0]["modelIdentifier"], "m-1");
        let meta = record.metadata_line();
        assert_eq!(meta.line, 3);
        assert_eq!(meta.prompt_hash, prompt_hash("hello"));
        // null optional keys are treated as absent and not sent.
        let record = parse_record(
            1,
            br#"{"prompt":"p","referenceResponse":null,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
        )
        .unwrap()
        .unwrap();
        assert!(!record.bedrock_line().contains("referenceResponse"));
    }

    #[test]
    fn measured_and_written_lines_are_the_serialised_ones() {
        // Escapes, control characters, non-ASCII text and metadata of every JSON type: the
        // length validation plans with and the bytes the sharder writes must be exactly
        // what `bedrock_line` and `metadata_line` serialise.
        let text = r#"{"prompt":"Say \"hi\"\n\tnow \\ \u0001 \u001f é 日本 🎉","referenceResponse":"a\rb","category":"Ünïcode","modelResponses":[{"response":"line\u2028sep \u007f","modelIdentifier":"m.v-1_2"}],"latencyMs":12.5,"tags":["x",{"y":null}],"ok":true,"userId":7,"note":"\"q\""}"#;
        let record = parse_record(9, text.as_bytes()).unwrap().unwrap();
        assert_eq!(record.prompt, "Say \"hi\"\n\tnow \\ \u{1} \u{1f} é 日本 🎉");
        assert_eq!(record.bedrock_line_len(), record.bedrock_line().len());
        let mut out = b"before".to_vec();
        record.write_bedrock_line(&mut out);
        assert_eq!(&out[6..], record.bedrock_line().as_bytes());
        let mut meta = Vec::new();
        record.write_metadata_line(&mut meta);
        assert_eq!(meta, serde_json::to_vec(&record.metadata_line()).unwrap());
        let back: MetadataLine = serde_json::from_slice(&meta).unwrap();
        assert_eq!(back, record.metadata_line());
        // Without the optional keys.
        let record = parse_record(
            1,
            br#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(record.bedrock_line_len(), record.bedrock_line().len());
    }

    #[test]
    fn keys_are_read_as_json_defines_them() {
        // Escaped keys are the keys they spell; a repeated key keeps its last value.
        let record = parse_record(
            4,
            br#"{"pro\u006dpt":"first","prompt":"last","modelResponses":[{"response":"r","modelIdentifier":"m"}],"lat\u0065ncyMs":5,"tag":1,"tag":2}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(record.prompt, "last");
        assert_eq!(record.metadata["latencyMs"], 5);
        assert_eq!(record.metadata["tag"], 2);
        assert_eq!(record.metadata.len(), 2);
        // A Bedrock key spelt with an escape is still checked.
        let problems = parse_record(
            1,
            br#"{"pro\u006dpt":7,"modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
        )
        .unwrap_err();
        assert!(
            problems[0].reason.contains("\"prompt\" must be a string"),
            "{problems:?}"
        );
    }

    #[test]
    fn string_lengths_match_serde_json_for_every_character() {
        let mut all = String::new();
        for c in (0u32..0x800).chain([0x2028, 0x2029, 0xFFFF, 0x1F389]) {
            let Some(c) = char::from_u32(c) else { continue };
            let one = c.to_string();
            assert_eq!(
                json_string_len(&one),
                serde_json::to_string(&one).unwrap().len(),
                "{c:?}"
            );
            all.push(c);
        }
        assert_eq!(
            json_string_len(&all),
            serde_json::to_string(&all).unwrap().len()
        );
        assert_eq!(json_string_len(""), 2);
    }

    #[test]
    fn keys_fold_like_bedrock_keys_without_allocating() {
        assert!(same_folded("Model_Responses", "modelResponses"));
        assert!(same_folded("reference-response", "referenceResponse"));
        assert!(same_folded("PROMPT", "prompt"));
        // U+212A KELVIN SIGN lowercases to an ASCII 'k'.
        assert!(same_folded("\u{212a}ey", "key"));
        assert!(!same_folded("prompts", "prompt"));
        assert!(!same_folded("prompt", "prompts"));
        assert!(!same_folded("latencyMs", "prompt"));
        assert!(same_folded("", "_-"));
        // The fast path agrees with the general one.
        for key in [
            "Prompt",
            "model_responses",
            "REFERENCE-RESPONSE",
            "cat_egory",
            "prompts",
            "latencyMs",
            "",
            "__",
            "reference_response_and_more",
            "\u{212a}ategory",
            "Ｐrompt",
        ] {
            assert_eq!(
                looks_like_bedrock_key(key),
                BEDROCK_KEYS.iter().copied().find(|k| same_folded(k, key)),
                "{key}"
            );
        }
        assert_eq!(looks_like_bedrock_key("Category"), Some("category"));
        assert_eq!(looks_like_bedrock_key("modelResponse"), None);
    }

    #[tokio::test]
    async fn file_level_problems() {
        let v = check(b"").await;
        assert_eq!(v.problems[0].line, None);
        assert!(v.problems[0].reason.contains("empty"));
        let v = check(b"\n  \n\r\n").await;
        assert!(
            v.problems[0].reason.contains("no records"),
            "{:?}",
            v.problems
        );
        let v = check(b"\xff\xfe{\x00").await;
        assert!(v.problems[0].reason.contains("UTF-16"));
    }

    #[tokio::test]
    async fn non_utf8_bytes_name_the_line() {
        let mut text = format!("{GOOD}\n{GOOD}\n").into_bytes();
        text.extend_from_slice(b"{\"prompt\":\"caf\xe9\",\"modelResponses\":[]}\n");
        let v = check(&text).await;
        assert_eq!(v.problems[0].line, Some(3));
        assert!(
            v.problems[0].reason.contains("position 15"),
            "{}",
            v.problems[0]
        );
    }

    #[tokio::test]
    async fn two_model_identifiers_are_rejected_at_the_second() {
        let other = GOOD.replace("m-1", "m-2");
        let v = check(format!("{GOOD}\n{GOOD}\n{other}\n").as_bytes()).await;
        assert_eq!(v.problem_count, 1);
        assert_eq!(v.problems[0].line, Some(3));
        assert!(v.problems[0].reason.contains("used since line 1"));
    }

    #[tokio::test]
    async fn long_lines_are_measured_not_buffered() {
        let limits = Limits {
            max_line_bytes: 100,
            ..Limits::default()
        };
        let long = format!("{{\"prompt\":\"{}\"}}", "x".repeat(5000));
        let text = format!("{GOOD}\n{long}\n{GOOD}");
        let v = validate_with(text.as_bytes(), &limits).await.unwrap();
        assert_eq!(v.problem_count, 1);
        assert_eq!(v.problems[0].line, Some(2));
        assert!(
            v.problems[0].reason.contains("5013 bytes"),
            "{}",
            v.problems[0]
        );
        assert_eq!(v.records, 2);
        // A line of exactly the limit, with CRLF, is accepted.
        let exact = format!(
            "{{\"prompt\":\"{}\",\"modelResponses\":[{{\"response\":\"r\",\"modelIdentifier\":\"m\"}}]}}",
            "y".repeat(10)
        );
        let limits = Limits {
            max_line_bytes: exact.len(),
            ..Limits::default()
        };
        let v = validate_with(format!("{exact}\r\n{exact}").as_bytes(), &limits)
            .await
            .unwrap();
        assert!(v.is_valid(), "{:?}", v.problems);
    }

    #[tokio::test]
    async fn line_reader_handles_tiny_buffers() {
        let text = format!("\u{feff}{GOOD}\r\nsecond\r\n\nlast");
        let reader = tokio::io::BufReader::with_capacity(3, text.as_bytes());
        let mut lines = LineReader::new(reader, 1000);
        let mut got = Vec::new();
        while let Some((n, line)) = lines.next_line().await.unwrap() {
            let Line::Text(bytes) = line else { panic!() };
            got.push((n, String::from_utf8(bytes.to_vec()).unwrap()));
        }
        assert_eq!(
            got,
            [
                (1, GOOD.to_owned()),
                (2, "second".into()),
                (3, String::new()),
                (4, "last".into())
            ]
        );
        assert_eq!(lines.bytes(), text.len() as u64);
    }

    #[tokio::test]
    async fn problems_are_capped_and_counted() {
        let text = "nope\n".repeat(250);
        let v = check(text.as_bytes()).await;
        assert_eq!(v.problem_count, 250);
        assert_eq!(v.problems.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(v.unlisted_problems(), 150);
        let limits = Limits {
            max_problems: 20,
            ..Limits::default()
        };
        let v = validate_with(text.as_bytes(), &limits).await.unwrap();
        assert_eq!(v.problem_count, 20);
        assert_eq!(v.stopped_at_line, Some(20));
    }

    #[tokio::test]
    async fn too_many_prompts_is_a_file_problem() {
        let limits = Limits {
            max_prompts: 3,
            ..Limits::default()
        };
        let text = format!("{GOOD}\n").repeat(5);
        let v = validate_with(text.as_bytes(), &limits).await.unwrap();
        assert_eq!(v.problem_count, 1);
        assert!(
            v.problems[0].reason.contains("5 records"),
            "{}",
            v.problems[0]
        );
    }

    #[test]
    fn planner_splits_on_count_and_bytes() {
        let limits = Limits {
            max_prompts_per_shard: 3,
            max_shard_bytes: 100,
            ..Limits::default()
        };
        let mut planner = ShardPlanner::new(&limits);
        let indexes: Vec<usize> = [10, 10, 10, 10, 60, 50, 100, 1]
            .iter()
            .enumerate()
            .map(|(i, b)| planner.add(i as u64 + 1, *b))
            .collect();
        assert_eq!(indexes, [0, 0, 0, 1, 1, 2, 3, 4]);
        let plan = planner.into_plan();
        assert_eq!(plan[1].records, 2);
        assert_eq!(plan[1].bytes, 70);
        assert_eq!((plan[1].first_line, plan[1].last_line), (4, 5));
    }

    #[tokio::test]
    async fn sharder_reproduces_the_plan() {
        let mut text = String::new();
        for i in 0..2500 {
            text.push_str(&line(&format!("prompt {i}")));
            text.push('\n');
            if i % 700 == 0 {
                text.push('\n');
            }
        }
        let v = check(text.as_bytes()).await;
        assert!(v.is_valid(), "{:?}", v.problems);
        let sizes: Vec<_> = v.shards.iter().map(|s| s.records).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let mut sharder = Sharder::new(text.as_bytes(), &Limits::default(), v.shards.clone());
        let mut seen = 0;
        while let Some(shard) = sharder.next_shard().await.unwrap() {
            assert_eq!(shard.index, seen);
            let lines: Vec<&[u8]> = shard
                .body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines.len(), shard.records);
            let meta: Vec<MetadataLine> = shard
                .metadata
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(meta.len(), shard.records);
            assert_eq!(meta[0].line, shard.first_line);
            assert_eq!(meta[0].metadata["userId"], "u");
            for l in lines {
                let value: Value = serde_json::from_slice(l).unwrap();
                assert!(value.get("latencyMs").is_none());
            }
            seen += 1;
        }
        assert_eq!(seen, 3);
        assert!(sharder.next_shard().await.unwrap().is_none());
    }

    /// The shared malformed corpus (`tests/data/malformed`, also checked end to end and by
    /// the CLI): every case is rejected at the expected line with the expected reason.
    #[tokio::test]
    async fn the_malformed_corpus_is_rejected_as_expected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/malformed");
        let expectations: Value =
            serde_json::from_slice(&std::fs::read(dir.join("expectations.json")).unwrap()).unwrap();
        let cases = expectations["datasets"].as_array().unwrap();
        assert!(cases.len() >= 15);
        for case in cases {
            let name = case["case"].as_str().unwrap();
            let bytes = match case["file"].as_str() {
                Some(file) => std::fs::read(dir.join(file)).unwrap(),
                None => generated_case(&case["generate"]),
            };
            let v = check(&bytes).await;
            assert!(!v.is_valid(), "{name} was accepted");
            let line = case["line"].as_u64();
            let message = case["message"].as_str().unwrap();
            assert!(
                v.problems
                    .iter()
                    .any(|p| p.line == line && p.reason.contains(message)),
                "{name}: expected line {line:?} with {message:?}, got {:?}",
                v.problems
            );
        }
    }

    /// A corpus case generated at test time (the 10 MB line).
    fn generated_case(spec: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..spec["validLinesBefore"].as_u64().unwrap() {
            out.extend_from_slice(GOOD.as_bytes());
            out.push(b'\n');
        }
        let size = spec["lineBytes"].as_u64().unwrap() as usize;
        let head = br#"{"prompt":""#;
        let tail = br#"","modelResponses":[{"response":"r","modelIdentifier":"m-1"}]}"#;
        out.extend_from_slice(head);
        out.resize(out.len() + size - head.len() - tail.len(), b'x');
        out.extend_from_slice(tail);
        out.push(b'\n');
        for _ in 0..spec["validLinesAfter"].as_u64().unwrap() {
            out.extend_from_slice(GOOD.as_bytes());
            out.push(b'\n');
        }
        out
    }

    #[tokio::test]
    async fn sharder_notices_a_changed_dataset() {
        let text = format!("{GOOD}\n{GOOD}\n");
        let v = check(text.as_bytes()).await;
        let changed = format!("{GOOD}\n{GOOD}\n{GOOD}\n");
        let mut sharder = Sharder::new(changed.as_bytes(), &Limits::default(), v.shards);
        assert!(matches!(
            sharder.next_shard().await,
            Err(ShardError::Changed(_))
        ));
    }

    /// `validate_with` and `validate_parallel` on the same bytes.
    async fn both_ways(text: &[u8], limits: &Limits) -> (Validation, Validation) {
        let streamed = validate_with(text, limits).await.unwrap();
        let parallel = validate_parallel(text, limits).unwrap();
        (streamed, parallel)
    }

    #[tokio::test]
    async fn validating_on_every_core_finds_what_streaming_finds() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/malformed");
        let mut files = 0;
        for entry in std::fs::read_dir(&corpus).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read(&path).unwrap();
                let (streamed, parallel) = both_ways(&text, &Limits::default()).await;
                assert_eq!(streamed, parallel, "{}", path.display());
                files += 1;
            }
        }
        assert!(files >= 25, "{files} corpus files");

        // Several chunks: BOM and CRLF, blank lines, bad and too-long lines, a second model.
        let long = format!("{}\n", line(&"x".repeat(5000)));
        let mut text = String::from("\u{feff}");
        for i in 0..15_000 {
            text.push_str(&match i % 500 {
                7 => "{oops\n".to_owned(),
                8 => "\r\n".to_owned(),
                9 => long.clone(),
                10 => line(&format!("p{i}")).replace("m-1", "m-2") + "\n",
                _ => line(&format!("prompt {i}")) + "\r\n",
            });
        }
        text.push_str(&line("last, without a newline"));
        assert!(text.len() > 2 * crate::local::CHUNK);
        let limits = Limits {
            max_line_bytes: 4000,
            max_prompts_per_shard: 1000,
            ..Limits::default()
        };
        let (streamed, parallel) = both_ways(text.as_bytes(), &limits).await;
        assert_eq!(streamed.problem_count, 90, "{:?}", streamed.problems);
        assert_eq!(streamed.shards.len(), 15);
        assert_eq!(streamed.bytes, text.len() as u64);
        assert_eq!(streamed, parallel);

        // Stopping early at the problem limit: same line, same bytes.
        let limits = Limits {
            max_problems: 20,
            ..limits
        };
        let (streamed, parallel) = both_ways(text.as_bytes(), &limits).await;
        assert!(streamed.stopped_at_line.is_some());
        assert!(streamed.bytes < text.len() as u64);
        assert_eq!(streamed, parallel);
    }
}
