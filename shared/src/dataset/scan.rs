//! The dataset reader on [`crate::json_scan`]: a record line of the usual shape that passes
//! every check of [`super::parse_record`], with its texts as written in the line. Anything
//! else (a problem, a duplicate or escaped key, an escape serde_json would write another
//! way) is `None`, and the line goes to [`super::parse_record`], which reads it or lists its
//! problems. The tests compare the two on every kind of line.
//!
//! Texts stay as written because the sharder writes them back: a text whose only escapes
//! are the ones serde_json writes is its own JSON, so a Bedrock line is copied, not decoded
//! and escaped again.

use std::io::Write;

use serde_json::Value;

use super::{
    Facts, METADATA_CHECKED, Seen, bedrock_len, is_valid_model_identifier, looks_like_bedrock_key,
    metadata_problem, write_bedrock,
};
use crate::json_scan::{Scanner, has_control_byte, once, unescaped};
use crate::layout::prompt_hash_of_pieces;

/// A valid record, borrowed from its line. Each text is as written (see
/// [`Scanner::raw_string`]): its JSON is itself in quotes.
#[derive(Debug, PartialEq)]
pub(super) struct Raw<'a> {
    pub prompt: &'a str,
    pub reference: Option<&'a str>,
    pub category: Option<&'a str>,
    pub response: &'a str,
    pub model_identifier: &'a str,
    /// The other top-level keys with their values as written, sorted by key (the order of
    /// the metadata map).
    pub metadata: Vec<(&'a str, &'a str)>,
}

/// The record on `text`, when it is of the usual shape and valid.
pub(super) fn parse(text: &str) -> Option<Raw<'_>> {
    if has_control_byte(text.as_bytes()) {
        return None;
    }
    let mut s = Scanner::new(text);
    let (mut prompt, mut reference, mut category, mut responses) = (None, None, None, None);
    let mut metadata = Vec::new();
    s.object(|s, key| match key {
        "prompt" => once(&mut prompt, s.raw_string()),
        "referenceResponse" => once(&mut reference, s.nullable(Scanner::raw_string)),
        "category" => once(&mut category, s.nullable(Scanner::raw_string)),
        "modelResponses" => once(&mut responses, only_response(s)),
        _ => {
            metadata.push((key, s.raw_value()?));
            Some(())
        }
    })?;
    if !s.at_end() {
        return None;
    }
    let (prompt, (response, model_identifier)) = (prompt?, responses?);
    let (reference, category) = (reference.flatten(), category.flatten());
    let filled = |text: Option<&str>| text.is_none_or(|t| !blank(t));
    if blank(prompt)
        || blank(response)
        || !filled(reference)
        || !filled(category)
        || !is_valid_model_identifier(model_identifier)
    {
        return None;
    }
    metadata.sort_unstable_by_key(|(key, _)| *key);
    // A repeated key keeps its last value in serde_json's reading.
    if metadata.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return None;
    }
    for &(key, value) in &metadata {
        if key == "conversationTurns" || looks_like_bedrock_key(key).is_some() {
            return None;
        }
        let checked = METADATA_CHECKED.contains(&key);
        // serde_json refuses numbers beyond f64's range, which the scanner passes over:
        // they need an exponent or over 300 digits.
        let in_range = value.starts_with('"')
            || (value.len() <= 300 && !value.bytes().any(|b| matches!(b, b'e' | b'E')));
        if !in_range || (checked && !fine_as_written(key, value)) {
            let value: Value = serde_json::from_str(value).ok()?;
            if metadata_problem(0, key, &value).is_some() {
                return None;
            }
        }
    }
    Some(Raw {
        prompt,
        reference,
        category,
        response,
        model_identifier,
        metadata,
    })
}

/// Whether checked metadata `key`'s in-range value `raw` passes [`metadata_problem`],
/// judged from its text; `false` when that takes serde_json (which then decides).
fn fine_as_written(key: &str, raw: &str) -> bool {
    let b = raw.as_bytes();
    match key {
        _ if raw == "null" => true,
        // At most 19 digits: within u64.
        "inputTokens" | "outputTokens" => b.len() <= 19 && b.iter().all(u8::is_ascii_digit),
        // A number without a sign.
        "latencyMs" | "cost" => b.first().is_some_and(u8::is_ascii_digit),
        "userId" => matches!(b.first(), Some(b'"' | b'-' | b'0'..=b'9')),
        _ => false,
    }
}

/// `modelResponses` of exactly one response with only its two keys: (response, identifier).
fn only_response<'a>(s: &mut Scanner<'a>) -> Option<(&'a str, &'a str)> {
    let mut one = None;
    s.array(|s| {
        let (mut response, mut identifier) = (None, None);
        s.object(|s, key| match key {
            "response" => once(&mut response, s.raw_string()),
            "modelIdentifier" => once(&mut identifier, s.raw_string()),
            _ => None,
        })?;
        once(&mut one, Some((response?, identifier?)))
    })?;
    one
}

/// Whether a text as written is empty or white space once decoded (`str::trim`'s test).
fn blank(raw: &str) -> bool {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let white = match c {
            '\\' => matches!(chars.next(), Some('f' | 'n' | 'r' | 't')),
            c => c.is_whitespace(),
        };
        if !white {
            return false;
        }
    }
    true
}

impl Raw<'_> {
    /// What validation keeps of the record.
    pub(super) fn facts(&self, seen: &mut Seen) -> Facts {
        Facts {
            bedrock_bytes: self.bedrock_line_len() + 1,
            model_identifier: seen.model(self.model_identifier),
            reference: self.reference.is_some(),
            category: self.category.is_some(),
            metadata: !self.metadata.is_empty(),
            metadata_keys: seen.first_time(self.metadata.iter().map(|(key, _)| *key)),
        }
    }

    /// The fields of the Bedrock line, in order.
    fn fields(&self) -> [Option<&str>; 5] {
        [
            Some(self.prompt),
            self.reference,
            self.category,
            Some(self.response),
            Some(self.model_identifier),
        ]
    }

    /// The length of the record's Bedrock line, without its newline.
    pub(super) fn bedrock_line_len(&self) -> usize {
        bedrock_len(self.fields(), |text| text.len() + 2)
    }

    /// Appends the record's Bedrock line: its texts copied as written.
    pub(super) fn write_bedrock_line(&self, out: &mut Vec<u8>) {
        write_bedrock(out, self.fields(), |out, text| {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        });
    }

    /// Appends the record's metadata sidecar line ([`super::MetadataLine`]), `line` being
    /// its line number: the JSON serde_json writes, with values copied where serde_json
    /// would write them as they are written.
    pub(super) fn write_metadata_line(&self, line: u64, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(b"{\"line\":");
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{line}");
        out.extend_from_slice(b",\"prompt_hash\":\"");
        out.extend_from_slice(prompt_hash_of_pieces(unescaped(self.prompt)).as_bytes());
        out.extend_from_slice(b"\",\"metadata\":{");
        for (i, &(key, value)) in self.metadata.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Keys have no escapes (the scanner leaves those to serde_json).
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            write_value(out, value)?;
        }
        out.extend_from_slice(b"}}");
        Some(())
    }
}

/// Appends the JSON value `raw` as serde_json writes it once read.
fn write_value(out: &mut Vec<u8>, raw: &str) -> Option<()> {
    if as_serde_writes(raw) {
        out.extend_from_slice(raw.as_bytes());
        return Some(());
    }
    // A plain decimal fraction: `Scanner::number` gives serde_json's value for it, without
    // building a `Value`.
    let mut s = Scanner::new(raw);
    if raw.contains('.')
        && let Some((_, Some(value))) = s.number()
        && s.at_end()
    {
        return serde_json::to_writer(&mut *out, &value).ok();
    }
    let value: Value = serde_json::from_str(raw).ok()?;
    serde_json::to_writer(&mut *out, &value).ok()
}

/// Whether serde_json writes the JSON value `raw` back exactly as it is: a string with
/// only its escapes, `null`, `true`, `false`, or an integer within i64 (not `-0`, which it
/// writes `0`). Floats, arrays and objects are not: it rewrites them.
fn as_serde_writes(raw: &str) -> bool {
    let b = raw.as_bytes();
    match b.first() {
        Some(b'"') => {
            let mut s = Scanner::new(raw);
            s.raw_string().is_some() && s.at_end()
        }
        Some(b'n' | b't' | b'f') => true,
        Some(b'-' | b'0'..=b'9') => {
            let digits = b.strip_prefix(b"-").unwrap_or(b);
            raw != "-0" && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MetadataLine, parse_record};
    use super::*;
    use crate::json_scan::unescape;

    /// A realistic line: escapes, non-ASCII text, metadata of every JSON type.
    const LINE: &str = r#"{"prompt":"Context:\nPlans renew.\n\nQ: \"Why?\" ¿Qué? \\ done","referenceResponse":"They renew on the billing date.","category":"Billing","modelResponses":[{"response":"Thanks!\r\n1. Open **Settings → Security**.\tb\f","modelIdentifier":"support-bot-v42"}],"latencyMs":1939,"inputTokens":244,"outputTokens":159,"cost":0.000704,"userId":"u-0","tags":["a",{"b":[1,-2.5e3,true,false,null]}],"n":null,"f":[0.1,-0.25,1.0,100.50,0.30000000000000004]}"#;

    /// `scan` must either step aside or give exactly what `parse_record` gives: the same
    /// validation facts, the same Bedrock line and the same metadata line.
    fn agrees(text: &str) -> bool {
        let Some(raw) = parse(text) else {
            return false;
        };
        let record = match parse_record(7, text.as_bytes()) {
            Ok(Some(record)) => record,
            other => panic!("scan read a line parse_record does not accept ({other:?}): {text}"),
        };
        let facts = raw.facts(&mut Seen::default());
        let expected = super::super::Facts::of(record.clone(), &mut Seen::default());
        assert_eq!(facts.bedrock_bytes, expected.bedrock_bytes, "{text}");
        assert_eq!(facts.model_identifier, expected.model_identifier, "{text}");
        assert_eq!(facts.reference, expected.reference, "{text}");
        assert_eq!(facts.category, expected.category, "{text}");
        assert_eq!(facts.metadata, expected.metadata, "{text}");
        assert_eq!(facts.metadata_keys, expected.metadata_keys, "{text}");
        let mut line = Vec::new();
        raw.write_bedrock_line(&mut line);
        assert_eq!(line, record.bedrock_line().as_bytes(), "{text}");
        let mut meta = Vec::new();
        raw.write_metadata_line(7, &mut meta).expect("metadata");
        let mut expected = Vec::new();
        record.write_metadata_line(&mut expected);
        assert_eq!(meta, expected, "{text}");
        true
    }

    #[test]
    fn reads_the_usual_line_as_parse_record_does() {
        assert!(agrees(LINE));
        let raw = parse(LINE).expect("scanned");
        assert_eq!(raw.category, Some("Billing"));
        assert_eq!(
            raw.metadata.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [
                "cost",
                "f",
                "inputTokens",
                "latencyMs",
                "n",
                "outputTokens",
                "tags",
                "userId"
            ]
        );
        let back: MetadataLine = {
            let mut meta = Vec::new();
            raw.write_metadata_line(7, &mut meta).expect("metadata");
            serde_json::from_slice(&meta).expect("JSON")
        };
        assert_eq!(back.line, 7);
        assert_eq!(
            back.prompt_hash,
            crate::layout::prompt_hash("Context:\nPlans renew.\n\nQ: \"Why?\" ¿Qué? \\ done")
        );
        // Without optional keys, and with nulls for them.
        for text in [
            r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#,
            r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}],"a":-0,"b":1.50,"c":-7,"d":123456789012345678901,"e":{"z":1,"y":[ 2.0e1 ]},"f":"\"\u00e9","g":true,"h":false,"cost":1E2,"latencyMs":0.0,"inputTokens":0,"userId":-3.5e-1}"#,
            r#"{ "prompt" : "p" , "referenceResponse" : null , "category" : null , "modelResponses" : [ { "modelIdentifier" : "m" , "response" : "r" } ] } "#,
        ] {
            assert!(agrees(text), "{text}");
        }
    }

    #[test]
    fn lines_with_problems_or_of_other_shapes_go_to_parse_record() {
        let response = r#""modelResponses":[{"response":"r","modelIdentifier":"m"}]"#;
        let cases = [
            // Problems, which parse_record lists.
            String::new(),
            "   ".into(),
            "{".into(),
            "[]".into(),
            "{}".into(),
            format!(r#"{{{response}}}"#),
            format!(r#"{{"prompt":" \n\t\f ",{response}}}"#),
            format!(r#"{{"prompt":"\u00a0",{response}}}"#),
            format!(r#"{{"prompt":7,{response}}}"#),
            format!(r#"{{"prompt":"p","referenceResponse":"  ",{response}}}"#),
            format!(r#"{{"prompt":"p","category":3,{response}}}"#),
            r#"{"prompt":"p","modelResponses":[]}"#.into(),
            r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"},{"response":"r","modelIdentifier":"m"}]}"#.into(),
            r#"{"prompt":"p","modelResponses":[{"response":" ","modelIdentifier":"m"}]}"#.into(),
            r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"-m"}]}"#.into(),
            r#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m","x":1}]}"#.into(),
            r#"{"prompt":"p","modelResponses":{"response":"r","modelIdentifier":"m"}}"#.into(),
            format!(r#"{{"prompt":"p",{response},"Prompt":"q"}}"#),
            format!(r#"{{"prompt":"p",{response},"conversationTurns":[]}}"#),
            format!(r#"{{"prompt":"p",{response},"latencyMs":-1}}"#),
            format!(r#"{{"prompt":"p",{response},"inputTokens":1.5}}"#),
            format!(r#"{{"prompt":"p",{response},"cost":"0.1"}}"#),
            format!(r#"{{"prompt":"p",{response},"userId":[1]}}"#),
            format!(r#"{{"prompt":"p",{response}}} x"#),
            format!(r#"{{"prompt":"p\q",{response}}}"#),
            // Valid, but read by serde_json: repeated or escaped keys, other escapes, a
            // raw tab, an out-of-range number.
            format!(r#"{{"prompt":"p","prompt":"q",{response}}}"#),
            format!(r#"{{"prompt":"p",{response},"tag":1,"tag":2}}"#),
            format!(r#"{{"pr\u006fmpt":"p",{response}}}"#),
            format!(r#"{{"prompt":"caf\u00e9",{response}}}"#),
            format!(r#"{{"prompt":"a\/b",{response}}}"#),
            format!("{{\"prompt\":\"p\",\t{response}}}"),
            format!(r#"{{"prompt":"p",{response},"latencyMs":1e400}}"#),
            format!(r#"{{"prompt":"p",{response},"x":[1e400]}}"#),
            format!(r#"{{"prompt":"p",{response},"x":{}}}"#, "9".repeat(400)),
        ];
        for text in &cases {
            assert!(parse(text).is_none(), "left to parse_record: {text}");
        }
    }

    #[test]
    fn blank_is_trim_is_empty() {
        for text in [
            "",
            " ",
            "\\n\\t\\r\\f",
            "\u{a0}\u{3000}",
            "a",
            "\\b",
            "\\\"",
            " x ",
            "\\\\",
        ] {
            assert_eq!(blank(text), unescape(text).trim().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn every_small_corruption_is_read_as_parse_record_reads_it() {
        // Each one-byte deletion and insertion of a JSON-significant byte, everywhere in the
        // line: the scanner never accepts a line parse_record rejects, nor reads one otherwise.
        let variants = crate::json_scan::small_corruptions(LINE);
        let scanned = variants.iter().filter(|text| agrees(text)).count();
        // Not vacuous: most changes inside texts leave a line that both accept.
        assert!(
            scanned > variants.len() / 10,
            "{scanned} of {}",
            variants.len()
        );
    }
}
