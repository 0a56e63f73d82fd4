//! Bedrock's evaluation results: the `*_output.jsonl` files a completed job writes, read as
//! a stream (one line at a time, bounded memory whatever the file size).
//!
//! One line per prompt (model evaluation, see `docs/gates.md`):
//!
//! ```json
//! {"automatedEvaluationResult":{"scores":[
//!    {"metricName":"Builtin.Correctness","result":0.75,"evaluatorDetails":[{"explanation":"..."}]},
//!    {"metricName":"brand_voice","result":null}]},
//!  "inputRecord":{"prompt":"...","category":"...","referenceResponse":"...","modelResponses":[...]},
//!  "modelResponses":[...]}
//! ```
//!
//! `result: null` (or absent, or not a number) means **not scored**: it is never read as 0.
//! Unknown keys are ignored, so additions to Bedrock's format do not break the reader; a
//! line without `automatedEvaluationResult` or `inputRecord.prompt` is an error naming the
//! file and the line.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

mod scan;

/// Longest line accepted (a record holds a prompt, a response and the judge's explanations).
pub const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

/// A string of a results line: its text, or the text as written when its only escapes are
/// the short ones (`\n`, `\"`…), decoded only when asked for. Prompts are mostly only ever
/// hashed, which reads the pieces between escapes: decoding every prompt into a new string
/// (they nearly all hold line breaks) was an allocation and a copy per record.
#[derive(Debug, Clone)]
pub enum Text<'a> {
    Plain(Cow<'a, str>),
    /// What [`crate::json_scan::Scanner::raw_string`] accepted, with at least one escape.
    Escaped(&'a str),
}

impl<'a> Text<'a> {
    /// The text, decoded.
    pub fn decoded(&self) -> Cow<'a, str> {
        match self {
            Text::Plain(text) => text.clone(),
            Text::Escaped(raw) => Cow::Owned(crate::json_scan::unescape(raw)),
        }
    }

    /// Empty, or only whitespace once decoded.
    pub fn is_blank(&self) -> bool {
        let written = match self {
            Text::Plain(text) => text.as_bytes(),
            Text::Escaped(raw) => raw.as_bytes(),
        };
        // Most texts start with a letter or a digit: no need to decode or trim them.
        if written.first().is_some_and(u8::is_ascii_alphanumeric) {
            return false;
        }
        match self {
            Text::Plain(text) => text.trim().is_empty(),
            Text::Escaped(raw) => {
                let mut chars = raw.chars();
                // The escapes a raw text holds are the short ones: \f \n \r \t are whitespace.
                std::iter::from_fn(|| match chars.next()? {
                    '\\' => Some(matches!(chars.next(), Some('f' | 'n' | 'r' | 't'))),
                    c => Some(c.is_whitespace()),
                })
                .all(|blank| blank)
            }
        }
    }

    /// The decoded text, in pieces.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let (plain, raw) = match self {
            Text::Plain(text) => (Some(text.as_bytes()), ""),
            Text::Escaped(raw) => (None, *raw),
        };
        plain.into_iter().chain(crate::json_scan::unescaped(raw))
    }
}

impl<'a> From<Cow<'a, str>> for Text<'a> {
    fn from(text: Cow<'a, str>) -> Self {
        Text::Plain(text)
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.pieces().flatten().eq(other.pieces().flatten())
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.pieces().flatten().eq(other.as_bytes())
    }
}

/// One judged prompt, borrowing from the line it was read from.
#[derive(Debug, Clone)]
pub struct ResultRecord<'a> {
    pub prompt: Text<'a>,
    pub category: Option<Cow<'a, str>>,
    pub scores: Vec<Score<'a>>,
    /// [`ResultRecord::prompt_hash`], computed when first asked for: most records never
    /// need it (SHA-256 of every prompt was a quarter of the results parser's time).
    hash: OnceCell<u64>,
}

impl PartialEq for ResultRecord<'_> {
    fn eq(&self, other: &Self) -> bool {
        (&self.prompt, &self.category, &self.scores)
            == (&other.prompt, &other.category, &other.scores)
    }
}

/// One metric's judgement of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Score<'a> {
    pub metric: Cow<'a, str>,
    /// `None`: not scored (`null`, absent, or not a number).
    pub value: Option<f64>,
    /// The judge's explanation, when it gave one: kept as written, like the prompt, since
    /// only the few worst prompts' explanations are ever read (decoding every escaped one
    /// was an allocation per score).
    pub explanation: Option<Text<'a>>,
}

#[cfg(test)]
impl Score<'_> {
    /// The explanation, decoded.
    pub(crate) fn explained(&self) -> Option<Cow<'_, str>> {
        self.explanation.as_ref().map(Text::decoded)
    }
}

impl<'a> ResultRecord<'a> {
    /// The record of a parsed line: a blank category dropped.
    pub fn new(
        prompt: impl Into<Text<'a>>,
        category: Option<Cow<'a, str>>,
        scores: Vec<Score<'a>>,
    ) -> Self {
        ResultRecord {
            prompt: prompt.into(),
            category: non_blank(category),
            scores,
            hash: OnceCell::new(),
        }
    }

    /// `layout::prompt_hash` of the prompt, as a number ([`crate::layout::prompt_hash_value`]).
    pub fn prompt_hash(&self) -> u64 {
        *self
            .hash
            .get_or_init(|| crate::layout::prompt_hash_value(self.prompt.pieces()))
    }
}

/// `text` unless it is empty or only whitespace (categories, explanations).
fn non_blank(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|t| !t.trim().is_empty())
}

/// Reading a results (or other JSON Lines) object failed.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The content is not what it should be: the evaluation's results are unusable.
    #[error("{uri} line {line}: {message}")]
    Content {
        uri: String,
        line: u64,
        message: String,
    },
    /// The bytes could not be read (network, S3): worth retrying.
    #[error("reading {uri} failed after line {line}: {source}")]
    Io {
        uri: String,
        line: u64,
        source: std::io::Error,
    },
}

impl ReadError {
    /// True when the content is at fault (retrying cannot help).
    pub fn is_content(&self) -> bool {
        matches!(self, ReadError::Content { .. })
    }
}

/// Reads JSON Lines one line at a time into a reused buffer: memory is bounded by the
/// longest line ([`MAX_LINE_BYTES`]), not by the object.
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: u64,
    uri: String,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(reader: R, uri: impl Into<String>) -> Self {
        LineReader {
            reader,
            buf: Vec::with_capacity(64 * 1024),
            line: 0,
            uri: uri.into(),
        }
    }

    /// The object's URI, for messages.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The next line (1-based number, bytes without the line break), `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, ReadError> {
        self.buf.clear();
        let mut read_any = false;
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(bytes) => bytes,
                Err(source) => {
                    return Err(ReadError::Io {
                        uri: self.uri.clone(),
                        line: self.line,
                        source,
                    });
                }
            };
            if available.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            // memchr: a byte-at-a-time search was a quarter of `evalgate gate`'s time.
            let (chunk, used, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if self.buf.len() + chunk.len() > MAX_LINE_BYTES {
                return Err(ReadError::Content {
                    uri: self.uri.clone(),
                    line: self.line + 1,
                    message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                });
            }
            self.buf.extend_from_slice(chunk);
            self.reader.consume(used);
            if done {
                break;
            }
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, &self.buf)))
    }

    /// A content error at `line`.
    pub fn content_error(&self, line: u64, message: impl Into<String>) -> ReadError {
        ReadError::Content {
            uri: self.uri.clone(),
            line,
            message: message.into(),
        }
    }
}

/// A JSON number, or `None` for `null` and anything else (strings, booleans, objects…).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LenientNumber(pub Option<f64>);

impl<'de> Deserialize<'de> for LenientNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientNumber(v.is_finite().then_some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientNumber(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientNumber(Some(v as f64)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientNumber(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientNumber(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientNumber(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LenientNumber(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientNumber(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientNumber(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A string borrowed from the line when it has no escapes (serde's own `Cow` support only
/// borrows for bare `Cow` fields, not inside `Option`).
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, rename = "automatedEvaluationResult")]
    automated: Option<RawAutomated<'a>>,
    #[serde(borrow, rename = "inputRecord")]
    input: Option<RawInput<'a>>,
}

#[derive(Deserialize)]
struct RawAutomated<'a> {
    #[serde(borrow, default)]
    scores: Vec<RawScore<'a>>,
}

#[derive(Deserialize)]
struct RawScore<'a> {
    #[serde(borrow, rename = "metricName")]
    metric_name: CowStr<'a>,
    #[serde(default)]
    result: LenientNumber,
    #[serde(borrow, default, rename = "evaluatorDetails")]
    evaluator_details: FirstExplanation<'a>,
}

#[derive(Deserialize)]
struct RawDetail<'a> {
    #[serde(borrow, default)]
    explanation: Option<CowStr<'a>>,
}

/// The first non-blank explanation of `evaluatorDetails`, read without collecting the
/// details into a vector (one allocation per score of every record otherwise).
#[derive(Default)]
struct FirstExplanation<'a>(Option<Text<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstExplanation<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstExplanation<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of evaluator details")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(detail) = seq.next_element::<RawDetail<'a>>()? {
                    if first.is_none() {
                        first = non_blank(detail.explanation.map(|e| e.0)).map(Text::Plain);
                    }
                }
                Ok(FirstExplanation(first))
            }
        }
        deserializer.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawInput<'a> {
    #[serde(borrow)]
    prompt: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    category: Option<CowStr<'a>>,
}

/// serde_json's message without its " at line 1 column N" suffix (lines are ours to number).
pub fn json_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    format!("{text} (column {})", err.column())
}

/// Parses one results line.
pub fn parse_line(bytes: &[u8]) -> Result<ResultRecord<'_>, String> {
    parse_line_into(bytes, Vec::new())
}

/// [`parse_line`], its scores in `scores` (an empty list, whose room is reused).
fn parse_line_into<'a>(
    bytes: &'a [u8],
    scores: Vec<Score<'a>>,
) -> Result<ResultRecord<'a>, String> {
    // One UTF-8 check of the whole line, then parsing text: checking each borrowed string
    // separately (what parsing bytes does) was an eighth of `evalgate gate`'s time.
    let text = crate::json_scan::utf8(bytes).map_err(|e| {
        format!(
            "not a Bedrock evaluation result: the line is not valid UTF-8 (invalid byte at position {} of the line)",
            e.valid_up_to() + 1
        )
    })?;
    // The usual line is scanned; serde_json reads any other, or says what is wrong with it.
    match scan::parse(text, scores) {
        Some(record) => Ok(record),
        None => parse_with_serde(text),
    }
}

/// Parses one results line with serde_json: the reference that `scan` must agree with.
fn parse_with_serde(text: &str) -> Result<ResultRecord<'_>, String> {
    let raw: RawLine<'_> = serde_json::from_str(text)
        .map_err(|e| format!("not a Bedrock evaluation result: {}", json_message(&e)))?;
    let automated = raw.automated.ok_or(
        "no automatedEvaluationResult: this is not a model-evaluation result line (RAG results are not supported)",
    )?;
    let input = raw
        .input
        .ok_or("no inputRecord: Bedrock writes the judged record with every result")?;
    let prompt = input.prompt.ok_or("inputRecord has no prompt")?.0;
    let scores = automated
        .scores
        .into_iter()
        .map(|s| Score {
            metric: s.metric_name.0,
            value: s.result.0,
            explanation: s.evaluator_details.0,
        })
        .collect();
    Ok(ResultRecord::new(
        prompt,
        input.category.map(|c| c.0),
        scores,
    ))
}

/// Streams a results object into `on_record`; returns the number of records. Blank lines
/// are skipped; any other unreadable line stops the read with a [`ReadError::Content`].
pub async fn read_results<R, F>(reader: R, uri: &str, mut on_record: F) -> Result<u64, ReadError>
where
    R: AsyncBufRead + Unpin,
    F: FnMut(&ResultRecord<'_>) -> Result<(), String>,
{
    let mut lines = LineReader::new(reader, uri);
    let mut records = 0;
    loop {
        let (number, bytes) = match lines.next_line().await? {
            Some(line) => line,
            None => break,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outcome = parse_line(bytes).and_then(|record| on_record(&record));
        if let Err(message) = outcome {
            return Err(lines.content_error(number, message));
        }
        records += 1;
    }
    Ok(records)
}

/// Reads a local results file as [`read_results`] does (same records in the same order,
/// same checks, same errors), parsing on every core: see [`crate::local::map_lines`].
/// `every_hash`: the callback asks every record for its [`ResultRecord::prompt_hash`] (as
/// per-prompt score collection does), so the workers compute them.
pub fn read_results_parallel<R, F>(
    reader: &R,
    uri: &str,
    every_hash: bool,
    mut on_record: F,
) -> Result<u64, ReadError>
where
    R: crate::local::ReadAt + ?Sized,
    F: FnMut(&ResultRecord<'_>) -> Result<(), String> + Send,
{
    use crate::local::{LineAt, MapError, map_lines};
    use std::ops::ControlFlow;
    let too_long = format!("the line is longer than {MAX_LINE_BYTES} bytes");
    // Packs handed back for reuse: they keep the capacity they grew to.
    let spare = std::sync::Mutex::new(Vec::<Packed>::new());
    let new = || {
        let mut packed = spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default();
        packed.clear();
        packed
    };
    // Line numbers are counted from the range's first line: the sink adds where it starts.
    let parse = |packed: &mut Packed, at: LineAt<'_>| {
        if at.len > MAX_LINE_BYTES as u64 {
            packed.error = Some((at.number, too_long.clone()));
            return ControlFlow::Break(());
        }
        let line = at.bytes.strip_suffix(b"\r").unwrap_or(at.bytes);
        if line.iter().all(u8::is_ascii_whitespace) {
            return ControlFlow::Continue(());
        }
        match packed.parse(line) {
            Ok(record) => {
                if every_hash {
                    // Kept on the record, and packed with it.
                    record.prompt_hash();
                }
                packed.push(at.number, record);
                ControlFlow::Continue(())
            }
            Err(message) => {
                packed.error = Some((at.number, message));
                ControlFlow::Break(())
            }
        }
    };
    let mut count = 0;
    let content = |line, message| ReadError::Content {
        uri: uri.to_owned(),
        line,
        message,
    };
    let sink = |first: u64, packed: Packed| {
        let mut outcome = Ok(());
        // One list of scores for the piece's records, refilled for each.
        let mut scores = Vec::new();
        for i in 0..packed.records.len() {
            let (number, record) = packed.record(i, scores);
            if let Err(message) = on_record(&record) {
                outcome = Err(content(first - 1 + number, message));
                break;
            }
            scores = record.scores;
            count += 1;
        }
        if outcome.is_ok()
            && let Some((number, message)) = &packed.error
        {
            outcome = Err(content(first - 1 + number, message.clone()));
        }
        if let Ok(mut spare) = spare.lock() {
            spare.push(packed);
        }
        outcome
    };
    match map_lines(reader, MAX_LINE_BYTES, new, parse, sink) {
        Ok(_) => Ok(count),
        Err(MapError::Sink(e)) => Err(e),
        Err(MapError::Io { line, source }) => Err(ReadError::Io {
            uri: uri.to_owned(),
            line,
            source,
        }),
    }
}

/// The records of one range of a file, their text copied into one string: a few
/// allocations per piece, where owned records took several per record (and freeing them on
/// another thread than the one that allocated them was a tenth of `evalgate gate`'s time).
#[derive(Default)]
struct Packed {
    text: String,
    records: Vec<PackedRecord>,
    scores: Vec<PackedScore>,
    /// The line that ended the range early (numbered within the range), and why.
    error: Option<(u64, String)>,
    /// An empty list with room for a record's scores, handed to the next line parsed:
    /// allocating one per record was two allocations per record.
    spare: Vec<Score<'static>>,
}

type Span = std::ops::Range<usize>;

/// A [`Text`] packed: its span, and whether it is a [`Text::Escaped`].
type PackedText = (Span, bool);

struct PackedRecord {
    number: u64,
    hash: Option<u64>,
    prompt: PackedText,
    category: Option<Span>,
    scores: Span,
}

struct PackedScore {
    metric: Span,
    value: Option<f64>,
    explanation: Option<PackedText>,
}

impl Packed {
    fn clear(&mut self) {
        self.text.clear();
        self.records.clear();
        self.scores.clear();
        self.error = None;
    }

    fn put(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn put_text(&mut self, text: &Text<'_>) -> PackedText {
        match text {
            Text::Plain(text) => (self.put(text), false),
            Text::Escaped(raw) => (self.put(raw), true),
        }
    }

    fn text(&self, (span, escaped): &PackedText) -> Text<'_> {
        let text = &self.text[span.clone()];
        match escaped {
            true => Text::Escaped(text),
            false => Text::Plain(Cow::Borrowed(text)),
        }
    }

    /// Parses `line` into a record, its scores in the spare list.
    fn parse<'l>(&mut self, line: &'l [u8]) -> Result<ResultRecord<'l>, String> {
        parse_line_into(line, recycle(std::mem::take(&mut self.spare)))
    }

    /// Packs `record`, with its prompt hash if it has been computed, and keeps its list of
    /// scores for the next line.
    fn push(&mut self, number: u64, record: ResultRecord<'_>) {
        let first_score = self.scores.len();
        for score in &record.scores {
            let packed = PackedScore {
                metric: self.put(&score.metric),
                value: score.value,
                explanation: score.explanation.as_ref().map(|e| self.put_text(e)),
            };
            self.scores.push(packed);
        }
        let packed = PackedRecord {
            number,
            hash: record.hash.get().copied(),
            prompt: self.put_text(&record.prompt),
            category: record.category.as_deref().map(|c| self.put(c)),
            scores: first_score..self.scores.len(),
        };
        self.records.push(packed);
        self.spare = recycle(record.scores);
    }

    /// The `i`th record, borrowing its text; its scores fill `scores` (emptied first).
    fn record<'p>(&'p self, i: usize, mut scores: Vec<Score<'p>>) -> (u64, ResultRecord<'p>) {
        let r = &self.records[i];
        let text = |span: &Span| Cow::Borrowed(&self.text[span.clone()]);
        scores.clear();
        scores.extend(self.scores[r.scores.clone()].iter().map(|s| Score {
            metric: text(&s.metric),
            value: s.value,
            explanation: s.explanation.as_ref().map(|e| self.text(e)),
        }));
        // Not `ResultRecord::new`: the category was filtered when the record was parsed.
        let record = ResultRecord {
            prompt: self.text(&r.prompt),
            category: r.category.as_ref().map(text),
            scores,
            hash: r.hash.map_or_else(OnceCell::new, OnceCell::from),
        };
        (r.number, record)
    }
}

/// An empty list of scores with `scores`' allocation, for scores of another lifetime (the
/// standard library collects a vector's `into_iter` in place when the types match).
fn recycle<'b>(mut scores: Vec<Score<'_>>) -> Vec<Score<'b>> {
    scores.clear();
    // `filter` would keep the lifetime: the point is the new one.
    #[allow(clippy::unnecessary_filter_map)]
    scores.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"automatedEvaluationResult":{"scores":[{"metricName":"Builtin.Correctness","result":0.75,"evaluatorDetails":[{"modelIdentifier":"amazon.nova-pro-v1:0","explanation":"Mostly right."}]},{"metricName":"brand_voice","result":null,"evaluatorDetails":[{"explanation":""}]},{"metricName":"Builtin.Harmfulness","result":0}]},"inputRecord":{"prompt":"What is 2+2?","referenceResponse":"4","category":"Math","modelResponses":[{"response":"4","modelIdentifier":"app"}]},"modelResponses":[{"response":"4","modelIdentifier":"app"}]}"#;

    #[test]
    fn parses_a_bedrock_result_line() {
        let r = parse_line(LINE.as_bytes()).unwrap();
        assert_eq!(
            crate::layout::prompt_hash_hex(r.prompt_hash()),
            crate::layout::prompt_hash("What is 2+2?")
        );
        assert_eq!(r.category.as_deref(), Some("Math"));
        assert_eq!(r.scores.len(), 3);
        assert_eq!(r.scores[0].value, Some(0.75));
        assert_eq!(r.scores[0].explained().as_deref(), Some("Mostly right."));
        assert_eq!(r.scores[1].value, None, "null is not scored");
        assert_eq!(
            r.scores[1].explanation, None,
            "empty explanations are dropped"
        );
        assert_eq!(r.scores[2].value, Some(0.0), "an integer 0 is a real score");
        // Borrowed, not copied, when the text has no escapes.
        assert!(matches!(r.prompt, Text::Plain(Cow::Borrowed(_))));
    }

    #[test]
    fn the_first_non_blank_explanation_is_kept() {
        let line = r#"{"automatedEvaluationResult":{"scores":[{"metricName":"m","result":1,"evaluatorDetails":[{"explanation":"  "},{"modelIdentifier":"j"},{"explanation":"Second \"judge\"."},{"explanation":"Third."}]},{"metricName":"n","result":1,"evaluatorDetails":[]}]},"inputRecord":{"prompt":"p"}}"#;
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(
            r.scores[0].explained().as_deref(),
            Some("Second \"judge\".")
        );
        assert_eq!(r.scores[1].explanation, None);
        // Not an array: the line is rejected, as before.
        let line = r#"{"automatedEvaluationResult":{"scores":[{"metricName":"m","result":1,"evaluatorDetails":{"explanation":"x"}}]},"inputRecord":{"prompt":"p"}}"#;
        assert!(parse_line(line.as_bytes()).is_err());
    }

    #[test]
    fn odd_results_count_as_not_scored() {
        for result in [
            r#""result":"high""#,
            r#""result":true"#,
            r#""result":{"x":1}"#,
            "",
        ] {
            let line = format!(
                r#"{{"automatedEvaluationResult":{{"scores":[{{"metricName":"m"{}{result}}}]}},"inputRecord":{{"prompt":"p"}}}}"#,
                if result.is_empty() { "" } else { "," }
            );
            let r = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(r.scores[0].value, None, "{line}");
        }
    }

    #[test]
    fn unusable_lines_are_explained() {
        for (line, expected) in [
            ("not json", "not a Bedrock evaluation result"),
            (
                r#"{"inputRecord":{"prompt":"p"}}"#,
                "no automatedEvaluationResult",
            ),
            (
                r#"{"automatedEvaluationResult":{"scores":[]}}"#,
                "no inputRecord",
            ),
            (
                r#"{"automatedEvaluationResult":{"scores":[]},"inputRecord":{"category":"x"}}"#,
                "no prompt",
            ),
            (
                r#"{"automatedEvaluationResult":{"scores":[{"result":1}]},"inputRecord":{"prompt":"p"}}"#,
                "metricName",
            ),
        ] {
            let err = parse_line(line.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
        // Latin-1 text where UTF-8 belongs: the byte is located.
        let err = parse_line(b"{\"inputRecord\":{\"prompt\":\"caf\xe9\"}}").unwrap_err();
        assert!(
            err.ends_with("not valid UTF-8 (invalid byte at position 30 of the line)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn streams_lines_and_names_the_bad_one() {
        let text = format!("{LINE}\n\n{LINE}\r\n{{oops\n{LINE}\n");
        let mut seen = 0;
        let err = read_results(text.as_bytes(), "s3://b/x_output.jsonl", |_| {
            seen += 1;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(seen, 2);
        assert!(err.is_content());
        let message = err.to_string();
        assert!(
            message.starts_with("s3://b/x_output.jsonl line 4: not a Bedrock evaluation result"),
            "{message}"
        );
        // Without a trailing newline the last line still counts.
        let text = format!("{LINE}\n{LINE}");
        let n = read_results(text.as_bytes(), "u", |_| Ok(()))
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(read_results(&b""[..], "u", |_| Ok(())).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn reads_lines_split_across_buffer_refills() {
        // A tiny buffer forces every line to span many fill_buf calls.
        let text = format!("{LINE}\n{LINE}\n");
        let reader = tokio::io::BufReader::with_capacity(7, text.as_bytes());
        let mut prompts = Vec::new();
        let n = read_results(reader, "u", |r| {
            prompts.push(r.prompt.decoded().into_owned());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(prompts, ["What is 2+2?", "What is 2+2?"]);
    }

    #[test]
    fn a_recycled_list_of_scores_keeps_its_room() {
        let line = String::from(LINE);
        let record = parse_line(line.as_bytes()).unwrap();
        let (room, at) = (record.scores.capacity(), record.scores.as_ptr() as usize);
        let recycled: Vec<Score<'static>> = recycle(record.scores);
        drop(line);
        assert!(recycled.is_empty());
        assert_eq!(recycled.capacity(), room);
        assert_eq!(recycled.as_ptr() as usize, at, "the same allocation");
    }

    /// The record, owning its text (to keep it past its line), and its prompt hash.
    fn owned(r: &ResultRecord<'_>) -> (ResultRecord<'static>, u64) {
        let own = |text: &Cow<'_, str>| Cow::Owned(text.to_string());
        let scores = r
            .scores
            .iter()
            .map(|s| Score {
                metric: own(&s.metric),
                value: s.value,
                explanation: s
                    .explanation
                    .as_ref()
                    .map(|e| Text::Plain(own(&e.decoded()))),
            })
            .collect();
        let prompt = own(&r.prompt.decoded());
        let record = ResultRecord::new(prompt, r.category.as_ref().map(own), scores);
        (record, r.prompt_hash())
    }

    type Seen = (Vec<(ResultRecord<'static>, u64)>, Result<u64, String>);

    /// Both readers over `text` (the parallel one with its workers hashing prompts or not):
    /// the records each saw, and how each ended.
    async fn both(text: &str, every_hash: bool) -> [Seen; 2] {
        let mut seq = Vec::new();
        let end = read_results(text.as_bytes(), "u", |r| {
            seq.push(owned(r));
            Ok(())
        })
        .await
        .map_err(|e| e.to_string());
        let mut par = Vec::new();
        let par_end = read_results_parallel(text.as_bytes(), "u", every_hash, |r| {
            par.push(owned(r));
            Ok(())
        })
        .map_err(|e| e.to_string());
        [(seq, end), (par, par_end)]
    }

    #[tokio::test]
    async fn the_parallel_reader_sees_what_the_streaming_one_sees() {
        // Several chunks' worth, with distinct prompts, blank lines and CRLF line ends.
        let text: String = (0..6000)
            .map(|i| {
                let line = LINE.replace("What is 2+2?", &format!("Question {i}"));
                match i % 7 {
                    0 => format!("{line}\r\n"),
                    1 => format!("{line}\n\n"),
                    _ => format!("{line}\n"),
                }
            })
            .collect();
        assert!(text.len() > 2 * crate::local::CHUNK);
        for every_hash in [false, true] {
            let [seq, par] = both(&text, every_hash).await;
            assert_eq!(seq.1, Ok(6000));
            assert_eq!(seq, par, "every_hash: {every_hash}");
        }

        // The same error at the same line, after the same records.
        let broken = format!("{text}{{oops\n{LINE}\n");
        let [seq, par] = both(&broken, false).await;
        let message = seq.1.clone().unwrap_err();
        let bad_line = text.matches('\n').count() + 1;
        assert!(
            message.starts_with(&format!("u line {bad_line}: not a Bedrock")),
            "{message}"
        );
        assert_eq!(seq, par);

        // An error from the callback stops both at the same record.
        let mut seen = 0;
        let err = read_results_parallel(text.as_bytes(), "u", false, |_| {
            seen += 1;
            if seen == 4500 {
                Err("stop here".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(seen, 4500);
        assert!(err.to_string().ends_with(": stop here"), "{err}");
    }
}
