//! A JSON scanner for lines of a known, usual shape, tried before serde_json.
//!
//! Profiling put half of `evalgate gate`'s and of dataset validation's time in serde_json
//! walking the long strings of every line (prompts, responses, explanations) byte by byte,
//! and in allocating them. This scanner finds the end of a string with `memchr` (SIMD),
//! checks the line once up front for the control bytes JSON forbids inside strings instead
//! of at every byte, and borrows what it reads.
//!
//! A reader built on it ([`crate::results`], [`crate::dataset`]) answers only when a line is
//! plain, valid JSON of the shape it expects; on anything else (an error, a duplicate or
//! escaped key, a surrogate escape, a raw tab, deep nesting, an unusual number) it steps
//! aside and the caller parses the line with serde_json, which reads it or explains what is
//! wrong. Each reader's tests compare it with its serde_json path on every kind of line.

use std::borrow::Cow;

/// Deeper nesting inside ignored values is left to serde_json.
const MAX_DEPTH: u32 = 64;

/// Any byte below 0x20: invalid inside a JSON string, rare between tokens (tabs). Written
/// as a branch-free fold so that it compiles to vector instructions.
pub(crate) fn has_control_byte(bytes: &[u8]) -> bool {
    bytes
        .chunks(64)
        .any(|c| c.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0)
}

/// Keeps the value of a key met for the first time. A key met twice is left to serde_json
/// (which rejects it, or keeps the last value, depending on the reader).
pub(crate) fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// A position in one line of JSON.
pub(crate) struct Scanner<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    pub(crate) fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace and consumes `byte`.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Skips whitespace and consumes `byte` if it is next.
    pub(crate) fn eat_if(&mut self, byte: u8) -> bool {
        self.eat(byte).is_some()
    }

    /// `{ "key": value, ... }`, calling `field` with the scanner before each value.
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            self.eat(b'"')?;
            let key = self.key()?;
            self.eat(b':')?;
            self.whitespace();
            field(self, key)?;
            if self.eat_if(b'}') {
                return Some(());
            }
            self.eat(b',')?;
        }
    }

    /// `[ value, ... ]`, calling `element` with the scanner before each value.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            self.whitespace();
            element(self)?;
            if self.eat_if(b']') {
                return Some(());
            }
            self.eat(b',')?;
        }
    }

    /// A key after its opening quote; escaped keys are left to serde_json.
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        let rest = &self.bytes()[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        let key = self.text.get(self.at..self.at + end)?;
        self.at += end + 1;
        Some(key)
    }

    /// A string value: borrowed when it has no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let rest = &self.bytes()[self.at..];
            let end = memchr::memchr2(b'"', b'\\', rest)?;
            // Both bytes are ASCII, so `start..` and `at..at + end` split on char boundaries.
            let piece = self.text.get(self.at..self.at + end)?;
            self.at += end + 1;
            if rest[end] == b'"' {
                return Some(match owned {
                    None => Cow::Borrowed(self.text.get(start..self.at - 1)?),
                    Some(mut text) => {
                        text.push_str(piece);
                        Cow::Owned(text)
                    }
                });
            }
            let text = owned.get_or_insert_with(|| String::with_capacity(rest.len().min(4096)));
            text.push_str(piece);
            text.push(self.escape()?);
        }
    }

    /// The character of an escape, after its backslash. Surrogates (`\ud83d`) are left to
    /// serde_json, which checks their pairing.
    pub(crate) fn escape(&mut self) -> Option<char> {
        let b = self.peek()?;
        self.at += 1;
        Some(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.text.get(self.at..self.at + 4)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                self.at += 4;
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
            }
            _ => return None,
        })
    }

    /// A string value that is not kept: escapes are checked, nothing is copied.
    pub(crate) fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let rest = &self.bytes()[self.at..];
            let end = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += end + 1;
            if rest[end] == b'"' {
                return Some(());
            }
            self.escape()?;
        }
    }

    /// `null` → `None`, a string → `Some`.
    pub(crate) fn nullable_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.nullable(Self::string)
    }

    /// `null` → `None`, else `read`'s value.
    pub(crate) fn nullable<T>(&mut self, read: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bytes()[self.at..].starts_with(b"null") {
            self.at += 4;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// Any JSON value, checked and passed over.
    pub(crate) fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.whitespace();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => {
                let rest = &self.bytes()[self.at..];
                let word = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|w| rest.starts_with(w))?;
                self.at += word.len();
                Some(())
            }
        }
    }

    /// A number in JSON's grammar: its text, and whether it is "simple": at most 15 digits
    /// and no exponent, so that `str::parse` and serde_json agree on its value exactly.
    pub(crate) fn number(&mut self) -> Option<(&'a str, bool)> {
        let start = self.at;
        let b = self.bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while b.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        let mut at = self.at;
        let negative = b.get(at) == Some(&b'-');
        at += usize::from(negative);
        let leading_zero = b.get(at) == Some(&b'0');
        let whole = digits(&mut at);
        if whole == 0 || (leading_zero && whole > 1) {
            return None;
        }
        let fraction = if b.get(at) == Some(&b'.') {
            at += 1;
            match digits(&mut at) {
                0 => return None,
                n => Some(n),
            }
        } else {
            None
        };
        let mut exponent = false;
        if let Some(b'e' | b'E') = b.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = b.get(at) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return None;
            }
            exponent = true;
        }
        self.at = at;
        // serde_json reads `-0` as the integer 0, `str::parse` as -0.0.
        let integer_sign = negative && fraction.is_none();
        let simple = !exponent && !integer_sign && whole + fraction.unwrap_or(0) <= 15;
        Some((self.text.get(start..at)?, simple))
    }

    /// A string value as written, without its quotes, when its only escapes are the short
    /// ones serde_json writes itself (`\"` `\\` `\b` `\f` `\n` `\r` `\t`): then serde_json
    /// would write its text back exactly as it is here. Any other escape is `None`.
    pub(crate) fn raw_string(&mut self) -> Option<&'a str> {
        self.raw_string_escaped().map(|(raw, _)| raw)
    }

    /// [`Scanner::raw_string`], and whether it holds an escape (found on the way, so the
    /// caller need not search the text again).
    pub(crate) fn raw_string_escaped(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = &self.bytes()[self.at..];
            let end = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += end + 1;
            if rest[end] == b'"' {
                return Some((self.text.get(start..self.at - 1)?, escaped));
            }
            let (b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') = self.peek()? else {
                return None;
            };
            self.at += 1;
            escaped = true;
        }
    }

    /// Any JSON value, checked and passed over: its text.
    pub(crate) fn raw_value(&mut self) -> Option<&'a str> {
        self.whitespace();
        let start = self.at;
        self.skip(1)?;
        self.text.get(start..self.at)
    }

    /// Whitespace, then the end of the text.
    pub(crate) fn at_end(&mut self) -> bool {
        self.whitespace();
        self.at == self.text.len()
    }
}

/// The text of a [`Scanner::raw_string`], in pieces: the runs between escapes and the
/// character of each escape.
pub(crate) fn unescaped(raw: &str) -> impl Iterator<Item = &[u8]> {
    let mut rest = raw.as_bytes();
    let mut escaped: Option<&'static [u8]> = None;
    std::iter::from_fn(move || {
        if let Some(c) = escaped.take() {
            return Some(c);
        }
        if rest.is_empty() {
            return None;
        }
        let Some(i) = memchr::memchr(b'\\', rest) else {
            return Some(std::mem::take(&mut rest));
        };
        let run = &rest[..i];
        escaped = Some(match rest.get(i + 1) {
            Some(b'b') => b"\x08",
            Some(b'f') => b"\x0c",
            Some(b'n') => b"\n",
            Some(b'r') => b"\r",
            Some(b't') => b"\t",
            Some(b'"') => b"\"",
            // `\\`: the only other escape `raw_string` admits.
            _ => b"\\",
        });
        rest = rest.get(i + 2..).unwrap_or_default();
        Some(run)
    })
}

/// The text of a [`Scanner::raw_string`], decoded.
pub(crate) fn unescape(raw: &str) -> String {
    let mut bytes = Vec::with_capacity(raw.len());
    for piece in unescaped(raw) {
        bytes.extend_from_slice(piece);
    }
    // Escapes decode to ASCII and the runs between them are whole characters: never lossy.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every one-byte deletion of `line`, and every insertion of a byte that means something in
/// JSON, at every position: the lines on which a reader's tests compare it with serde_json.
#[cfg(test)]
pub(crate) fn small_corruptions(line: &str) -> Vec<String> {
    let mut variants = Vec::new();
    for at in (0..=line.len()).filter(|&i| line.is_char_boundary(i)) {
        if let Some(c) = line[at..].chars().next() {
            variants.push(format!("{}{}", &line[..at], &line[at + c.len_utf8()..]));
        }
        for b in [
            "\"", "\\", "{", "}", "[", "]", ",", ":", "0", "-", ".", "e", " ", "n", "u", "t",
        ] {
            variants.push(format!("{}{b}{}", &line[..at], &line[at..]));
        }
    }
    variants
}
