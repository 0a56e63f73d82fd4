//! A JSON scanner for lines of a known, usual shape, tried before serde_json.
//!
//! Profiling put half of `evalgate gate`'s and of dataset validation's time in serde_json
//! walking the long strings of every line (prompts, responses, explanations) byte by byte,
//! and in allocating them. This scanner finds where a string stops (its closing quote, an
//! escape, or a control byte JSON forbids in strings) 64 bytes at a time (see
//! [`block_stops`]), and borrows what it reads.
//!
//! A reader built on it ([`crate::results`], [`crate::dataset`]) answers only when a line is
//! plain, valid JSON of the shape it expects; on anything else (an error, a duplicate or
//! escaped key, a surrogate escape, a control byte in a string, deep nesting, an unusual
//! number) it steps aside and the caller parses the line with serde_json, which reads it or
//! explains what is wrong. Each reader's tests compare it with its serde_json path on every kind of line.

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

/// `bytes` as text, checked as `std::str::from_utf8` checks it (same error), with SIMD.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        // Rare: std says where the first invalid byte is.
        Err(_) => std::str::from_utf8(bytes),
    }
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

/// The bytes a string search stops at, one bit per byte of `block`: quotes, backslashes,
/// and control bytes (below 0x20), which JSON forbids inside strings.
///
/// Searching each string with `memchr2` cost a call per string, about 70 per Bedrock
/// result line, most of them over keys a few bytes long: a fifth of `evalgate gate`'s time.
/// A mask of 64 bytes serves every string that ends inside it, and checks for control
/// bytes on the way.
fn block_stops(block: &[u8; 64]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // Checked once per block: the answer is cached in an atomic, and the branch always
        // goes the same way.
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: a `#[target_feature]` function requires only that the processor has the
            // feature, which was just checked.
            return unsafe { block_stops_avx2(block) };
        }
        #[allow(unsafe_code)]
        // SAFETY: as above; every x86-64 target guarantees SSE2 (and this line is compiled
        // only for targets that enable it).
        unsafe {
            block_stops_sse2(block)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        block_stops_swar(block)
    }
}

/// [`block_stops`] with AVX2: 32 bytes per comparison, a third of SSE2's instructions
/// (the stop masks were a tenth of `evalgate gate`'s instructions with SSE2).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx2")]
fn block_stops_avx2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let control = _mm256_set1_epi8(0x1f);
    let (halves, _) = block.as_chunks::<32>();
    let mut stops = 0;
    for (i, half) in halves.iter().enumerate() {
        #[allow(unsafe_code)]
        // SAFETY: `half` is 32 readable bytes, and this load has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(half.as_ptr().cast()) };
        let hits = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)),
            // b <= 0x1f exactly when min(b, 0x1f) == b (unsigned).
            _mm256_cmpeq_epi8(_mm256_min_epu8(v, control), v),
        );
        stops |= u64::from(_mm256_movemask_epi8(hits) as u32) << (32 * i);
    }
    stops
}

/// [`block_stops`] with SSE2: 16 bytes per comparison.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn block_stops_sse2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let control = _mm_set1_epi8(0x1f);
    let (words, _) = block.as_chunks::<8>();
    let mut stops = 0;
    for (i, pair) in words.chunks_exact(2).enumerate() {
        // Two 8-byte loads, which the compiler joins into one 16-byte load.
        let v = _mm_set_epi64x(i64::from_le_bytes(pair[1]), i64::from_le_bytes(pair[0]));
        let hits = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            // b <= 0x1f exactly when min(b, 0x1f) == b (unsigned).
            _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
        );
        stops |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * i);
    }
    stops
}

/// [`block_stops`] eight bytes at a time in plain integers, for other processors.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn block_stops_swar(block: &[u8; 64]) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const EACH: u64 = 0x0101_0101_0101_0101;
    // The high bit of each byte of `x` that is zero. Adding to the low 7 bits never carries
    // into the next byte, so each byte is tested on its own.
    let zero = |x: u64| !(((x & LOW) + LOW) | x) & HIGH;
    let (words, _) = block.as_chunks::<8>();
    let mut stops = 0;
    for (i, word) in words.iter().enumerate() {
        let v = u64::from_le_bytes(*word);
        // Below 0x20: the low 7 bits plus 0x60 stay under 0x80, and the high bit is clear.
        let control = !(((v & LOW) + 0x60 * EACH) | v) & HIGH;
        let quote = zero(v ^ (u64::from(b'"') * EACH));
        let backslash = zero(v ^ (u64::from(b'\\') * EACH));
        // Gathers the eight high bits into one byte, byte i's at bit i.
        let hits = (quote | backslash | control) >> 7;
        stops |= (hits.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
    }
    stops
}

/// [`block_stops`] of every 64 bytes of `bytes` into `words` (emptied first), the last
/// partial block padded with spaces, which are not stops.
fn line_stops(bytes: &[u8], words: &mut Vec<u64>) {
    let (blocks, rest) = bytes.as_chunks::<64>();
    words.clear();
    // Filled in place: with `push` in the loop, LLVM turned the AVX2 masks into byte-by-byte
    // inserts, and `evalgate gate` ran 40% slower.
    words.resize(blocks.len() + usize::from(!rest.is_empty()), 0);
    let (full, tail) = words.split_at_mut(blocks.len());
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if std::arch::is_x86_feature_detected!("avx512bw") {
        #[allow(unsafe_code)]
        // SAFETY: a `#[target_feature]` function requires only that the processor has the
        // feature, which was just checked.
        unsafe {
            line_stops_avx512(blocks, full)
        };
    } else if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            line_stops_avx2(blocks, full)
        };
    } else {
        fill_stops(blocks, full, block_stops);
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    fill_stops(blocks, full, block_stops);
    if let Some(word) = tail.first_mut() {
        let mut block = [b' '; 64];
        block[..rest.len()].copy_from_slice(rest);
        *word = block_stops(&block);
    }
}

fn fill_stops(blocks: &[[u8; 64]], words: &mut [u64], stops: impl Fn(&[u8; 64]) -> u64) {
    for (word, block) in words.iter_mut().zip(blocks) {
        *word = stops(block);
    }
}

/// [`line_stops`]' loop with AVX2 enabled, so that [`block_stops_avx2`] is inlined into it.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx2")]
fn line_stops_avx2(blocks: &[[u8; 64]], words: &mut [u64]) {
    for (word, block) in words.iter_mut().zip(blocks) {
        *word = block_stops_avx2(block);
    }
}

/// [`line_stops`]' loop with AVX-512BW: a block in one load and three comparisons into mask
/// registers, a third of AVX2's instructions (which were 1,300 of the 15,700 instructions per
/// record of `evalgate gate`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "avx512bw")]
fn line_stops_avx512(blocks: &[[u8; 64]], words: &mut [u64]) {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_cmple_epu8_mask, _mm512_loadu_si512, _mm512_set1_epi8,
    };
    let quote = _mm512_set1_epi8(b'"' as i8);
    let backslash = _mm512_set1_epi8(b'\\' as i8);
    let control = _mm512_set1_epi8(0x1f);
    for (word, block) in words.iter_mut().zip(blocks) {
        #[allow(unsafe_code)]
        // SAFETY: `block` is 64 readable bytes, and this load has no alignment requirement.
        let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        *word = _mm512_cmpeq_epi8_mask(v, quote)
            | _mm512_cmpeq_epi8_mask(v, backslash)
            | _mm512_cmple_epu8_mask(v, control);
    }
}

thread_local! {
    /// The last scanner's stop words, lent to the next: a line's words are allocated once
    /// per thread, not once per line.
    static STOP_WORDS: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Stop words kept for reuse at most: 1 MiB of line.
const KEPT_STOP_WORDS: usize = 16 * 1024;

/// A position in one line of JSON.
pub(crate) struct Scanner<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
    /// [`block_stops`] of each 64 bytes of the line, computed once in [`Scanner::new`] in
    /// one loop: computed block by block as strings reached them, with the checks of which
    /// block was loaded, they were a quarter of the parser's instructions.
    stops: Vec<u64>,
}

impl Drop for Scanner<'_> {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.stops);
        if words.capacity() <= KEPT_STOP_WORDS {
            STOP_WORDS.set(words);
        }
    }
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut stops = STOP_WORDS.take();
        line_stops(text.as_bytes(), &mut stops);
        Scanner { text, at: 0, stops }
    }

    /// The position of the first quote or backslash from `at` on, inside a string. `None`
    /// at a control byte or at the end of the line: the string is not valid JSON.
    fn find_stop(&self) -> Option<usize> {
        let mut word = self.at / 64;
        let mut from = self.at;
        let mut bits = self.stops.get(word)? >> (self.at % 64);
        while bits == 0 {
            word += 1;
            bits = *self.stops.get(word)?;
            from = word * 64;
        }
        let stop = from + bits.trailing_zeros() as usize;
        (*self.bytes().get(stop)? >= 0x20).then_some(stop)
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips whitespace. Lines as Bedrock and most tools write them have none between
    /// tokens: the loop runs only when there is some (the checks before every token were a
    /// twelfth of the parser's instructions).
    pub(crate) fn whitespace(&mut self) {
        self.token();
    }

    #[inline(never)]
    fn spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
    }

    /// The next byte after any whitespace, not consumed.
    pub(crate) fn token(&mut self) -> Option<u8> {
        let b = self.peek()?;
        if !is_space(b) {
            return Some(b);
        }
        self.spaces();
        self.peek()
    }

    /// Skips whitespace and consumes `byte`.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.token()? == byte).then(|| self.at += 1)
    }

    /// Consumes `bytes` if they are next, exactly (no whitespace skipped): how a reader
    /// takes the keys and punctuation of a shape it expects in one comparison, where reading
    /// them token by token cost tens of instructions a key.
    pub(crate) fn literal(&mut self, bytes: &[u8]) -> Option<()> {
        let next = self.bytes().get(self.at..self.at + bytes.len())?;
        (next == bytes).then(|| self.at += bytes.len())
    }

    /// Skips whitespace and consumes `byte` if it is next.
    pub(crate) fn eat_if(&mut self, byte: u8) -> bool {
        self.eat(byte).is_some()
    }

    /// After a member of an object or array: `Some(true)` past a `,`, `Some(false)` past
    /// `close`, `None` at anything else.
    fn more(&mut self, close: u8) -> Option<bool> {
        let b = self.token()?;
        self.at += 1;
        match b {
            b',' => Some(true),
            _ if b == close => Some(false),
            _ => None,
        }
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
            if !self.more(b'}')? {
                return Some(());
            }
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
            if !self.more(b']')? {
                return Some(());
            }
        }
    }

    /// A key after its opening quote; escaped keys are left to serde_json.
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        let end = self.find_stop()?;
        if self.bytes()[end] != b'"' {
            return None;
        }
        let key = self.text.get(self.at..end)?;
        self.at = end + 1;
        Some(key)
    }

    /// A string value: borrowed when it has no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let end = self.find_stop()?;
            // Both bytes are ASCII, so `start..` and `at..end` split on char boundaries.
            let piece = self.text.get(self.at..end)?;
            self.at = end + 1;
            if self.bytes()[end] == b'"' {
                return Some(match owned {
                    None => Cow::Borrowed(self.text.get(start..self.at - 1)?),
                    Some(mut text) => {
                        text.push_str(piece);
                        Cow::Owned(text)
                    }
                });
            }
            let text = owned.get_or_insert_with(|| String::with_capacity(piece.len() + 64));
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
            let end = self.find_stop()?;
            self.at = end + 1;
            if self.bytes()[end] == b'"' {
                return Some(());
            }
            // The short escapes in line: `escape` is a call, made for each one a response holds.
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                _ => drop(self.escape()?),
            }
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

    /// A number in JSON's grammar: its text, and its value when it is "simple": at most 15
    /// digits and no exponent, where the value is exactly serde_json's (see [`POWERS`]).
    pub(crate) fn number(&mut self) -> Option<(&'a str, Option<f64>)> {
        let b = self.bytes();
        let start = self.at;
        // The digits, read once: checked and summed into `mantissa` in the same pass
        // (wrapping past 19 digits, where the value is not used).
        let mut mantissa = 0u64;
        let mut digits = |at: &mut usize| {
            let from = *at;
            while let Some(&d @ b'0'..=b'9') = b.get(*at) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                *at += 1;
            }
            *at - from
        };
        let mut at = start;
        let negative = b.get(at) == Some(&b'-');
        at += usize::from(negative);
        let leading_zero = b.get(at) == Some(&b'0');
        let whole = digits(&mut at);
        if whole == 0 || (leading_zero && whole > 1) {
            return None;
        }
        let mut fraction = 0;
        if b.get(at) == Some(&b'.') {
            at += 1;
            fraction = digits(&mut at);
            if fraction == 0 {
                return None;
            }
        }
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
        let integer_sign = negative && fraction == 0;
        let value = match POWERS.get(fraction) {
            Some(power) if !exponent && !integer_sign && whole + fraction <= 15 => {
                let value = match (fraction, QUOTIENTS.get(mantissa as usize)) {
                    (0, _) => mantissa as f64,
                    (1, Some([tenths, _])) => *tenths,
                    (2, Some([_, hundredths])) => *hundredths,
                    _ => mantissa as f64 / power,
                };
                Some(if negative { -value } else { value })
            }
            _ => None,
        };
        Some((self.text.get(start..at)?, value))
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
            let end = self.find_stop()?;
            self.at = end + 1;
            if self.bytes()[end] == b'"' {
                return Some((self.text.get(start..end)?, escaped));
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

/// Powers of ten for the numbers [`Scanner::number`] calls simple. Their digits, at most
/// 15, make an integer below 2^53 and the power is at most 10^15: both are exact doubles,
/// so one division rounds once, to the nearest double, which is what `str::parse` and
/// serde_json give, at a fraction of `str::parse`'s cost on scores like `0.75`.
const POWERS: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `[m / 10, m / 100]` for each small mantissa `m`, computed at compile time as at run time
/// (one correctly rounded division): scores such as `0.25` and `1.0` are read from here, where
/// the division drew a third of [`Scanner::number`]'s samples (perf).
const QUOTIENTS: [[f64; 2]; 128] = {
    let mut table = [[0.0; 2]; 128];
    let mut m = 0;
    while m < table.len() {
        table[m] = [m as f64 / 10.0, m as f64 / 100.0];
        m += 1;
    }
    table
};

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stops_by_byte(block: &[u8; 64]) -> u64 {
        (0..64)
            .filter(|&i| matches!(block[i], b'"' | b'\\' | 0..=0x1f))
            .fold(0, |mask, i| mask | 1 << i)
    }

    #[test]
    fn block_stops_are_the_quotes_backslashes_and_control_bytes() {
        // Every byte value at every position, among pseudo-random neighbours.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for value in 0..=255u8 {
            for at in 0..64 {
                let mut block = [0u8; 64];
                for b in &mut block {
                    // Mostly ordinary text, some stops, some bytes with the high bit set.
                    *b = match next() % 8 {
                        0 => b'"',
                        1 => b'\\',
                        2 => (next() % 0x20) as u8,
                        3 => 0x80 | (next() % 0x80) as u8,
                        _ => 0x20 + (next() % 0x5f) as u8,
                    };
                }
                block[at] = value;
                let expected = stops_by_byte(&block);
                assert_eq!(block_stops(&block), expected, "{value:#x} at {at}");
                assert_eq!(block_stops_swar(&block), expected, "{value:#x} at {at}");
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                #[allow(unsafe_code)]
                // SAFETY: SSE2 is guaranteed on this target.
                let sse2 = unsafe { block_stops_sse2(&block) };
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                assert_eq!(sse2, expected, "{value:#x} at {at}");
            }
        }
    }

    #[test]
    fn line_stops_are_each_blocks_stops_whatever_the_length() {
        let text: Vec<u8> = (0..300u32)
            .map(|i| match i % 37 {
                0 => b'"',
                5 => b'\\',
                11 => b'\n',
                17 => 0xc3,
                _ => b'a' + (i % 26) as u8,
            })
            .collect();
        let mut words = vec![u64::MAX; 3];
        for len in [0, 1, 63, 64, 65, 127, 128, 200, 300] {
            let bytes = &text[..len];
            line_stops(bytes, &mut words);
            assert_eq!(words.len(), len.div_ceil(64), "{len}");
            for (i, word) in words.iter().enumerate() {
                let mut block = [b' '; 64];
                let chunk = &bytes[i * 64..bytes.len().min(i * 64 + 64)];
                block[..chunk.len()].copy_from_slice(chunk);
                assert_eq!(*word, stops_by_byte(&block), "{len} word {i}");
            }
            let mut swar = vec![0; len / 64];
            fill_stops(bytes.as_chunks::<64>().0, &mut swar, block_stops_swar);
            assert_eq!(swar[..], words[..len / 64], "{len}");
            // Each vector loop, where this processor has it (`line_stops` took the widest).
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            for (feature, has, lines) in [
                (
                    "avx2",
                    std::is_x86_feature_detected!("avx2"),
                    line_stops_avx2 as unsafe fn(&[[u8; 64]], &mut [u64]),
                ),
                (
                    "avx512bw",
                    std::is_x86_feature_detected!("avx512bw"),
                    line_stops_avx512,
                ),
            ] {
                if has {
                    let mut vector = vec![0; len / 64];
                    #[allow(unsafe_code)]
                    // SAFETY: the processor has the feature, just checked.
                    unsafe {
                        lines(bytes.as_chunks::<64>().0, &mut vector)
                    };
                    assert_eq!(vector, swar, "{feature} {len}");
                }
            }
        }
    }

    #[test]
    fn small_decimals_have_the_values_serde_json_reads() {
        // Every mantissa of the table, with one and two decimals, and just past it.
        for m in 0..200u64 {
            for text in [
                format!("{}.{}", m / 10, m % 10),
                format!("{}.{:02}", m / 100, m % 100),
            ] {
                for text in [text.clone(), format!("-{text}")] {
                    let mut s = Scanner::new(&text);
                    let (_, value) = s.number().expect("a number");
                    let serde: f64 = serde_json::from_str(&text).expect("a number");
                    assert_eq!(value.map(f64::to_bits), Some(serde.to_bits()), "{text}");
                }
            }
        }
        let mut s = Scanner::new("120");
        assert_eq!(s.number().map(|(_, v)| v), Some(Some(120.0)));
    }

    #[test]
    fn literals_are_taken_exactly_or_not_at_all() {
        let mut s = Scanner::new(r#"{"a":1}"#);
        assert_eq!(s.literal(br#"{"b":"#), None);
        assert_eq!(s.at, 0, "nothing consumed");
        assert_eq!(s.literal(br#"{"a":"#), Some(()));
        assert_eq!(s.at, 5);
        assert_eq!(s.literal(b"1}x"), None, "past the end");
        assert_eq!(s.literal(b"1}"), Some(()));
        assert!(s.at_end());
    }

    #[test]
    fn utf8_is_checked_as_std_checks_it() {
        let long = "é—ok ".repeat(40);
        let cases: [&[u8]; 8] = [
            b"",
            b"plain",
            "caf\u{e9} \u{1F600}".as_bytes(),
            long.as_bytes(),
            b"bad \xff byte",
            b"cut \xe2\x80",
            b"overlong \xc0\xaf",
            b"surrogate \xed\xa0\x80",
        ];
        for bytes in cases {
            // Also past the SIMD block sizes, with the bad byte at the end.
            let padded = [long.as_bytes(), bytes].concat();
            for bytes in [bytes, &padded[..]] {
                assert_eq!(utf8(bytes), std::str::from_utf8(bytes), "{bytes:?}");
            }
        }
        assert!(utf8(b"bad \xff byte").is_err());
    }

    #[test]
    fn strings_end_anywhere_in_or_across_blocks() {
        // Strings of every length around a block, starting at every offset in one.
        for offset in 0..70 {
            for len in [0, 1, 2, 30, 62, 63, 64, 65, 66, 127, 128, 129, 200] {
                let body: String = (0..len)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                let text = format!("{}\"{body}\" ", " ".repeat(offset));
                let mut s = Scanner::new(&text);
                s.whitespace();
                assert_eq!(s.string().as_deref(), Some(body.as_str()), "{offset} {len}");
                assert!(s.at_end());
                // Escapes on both sides of block edges, decoded.
                let escaped = format!("{}\"{body}\\n{body}\\\"\" ", " ".repeat(offset));
                let mut s = Scanner::new(&escaped);
                s.whitespace();
                assert_eq!(
                    s.string().as_deref(),
                    Some(format!("{body}\n{body}\"").as_str())
                );
                // Unterminated, or cut by a control byte: not a string.
                let open = format!("{}\"{body}", " ".repeat(offset));
                let mut s = Scanner::new(&open);
                s.whitespace();
                assert_eq!(s.skip_string(), None, "{offset} {len}");
                let tab = format!("{}\"{body}\t{body}\"", " ".repeat(offset));
                let mut s = Scanner::new(&tab);
                s.whitespace();
                assert_eq!(s.skip_string(), None, "{offset} {len}");
            }
        }
    }
}
