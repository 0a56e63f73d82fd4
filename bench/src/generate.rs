//! Deterministic generators of realistic evalgate inputs: Bedrock evaluation results
//! (`*_output.jsonl`) and datasets (what teams upload).
//!
//! Record `i` of seed `s` is always the same bytes: each record draws from its own
//! [`Rng`] seeded with `(s, i)`, so files can be generated in any order, in chunks, or
//! lazily behind a reader ([`GeneratedReader`]) without holding them in memory.
//!
//! The content is shaped like a customer-support assistant's traffic: prompts with an
//! order number, some with retrieved policy passages (RAG-style context inside the prompt,
//! as Faithfulness needs), responses of a few sentences with line breaks, quotes, markdown
//! lists and some non-ASCII text (so JSON escapes and multi-byte UTF-8 occur as they do in
//! real files), a reference answer on most records, a category on most, and usage metadata
//! on most dataset records. Results carry five metrics (four built-in, one custom) with a
//! judge explanation of a few sentences each, about 2% of them `null` (not scored), and
//! scores on Bedrock's 0/0.25/…/1 steps correlated through a per-record quality.
//!
//! Sizes (seed 42): about 3.0 KB per result line and 1.3 KB per dataset line.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The seed `bench/run` uses.
pub const DEFAULT_SEED: u64 = 42;

/// The metrics every generated result line carries, in this order.
pub const METRICS: [&str; 5] = [
    "Builtin.Correctness",
    "Builtin.Completeness",
    "Builtin.Helpfulness",
    "Builtin.Harmfulness",
    "brand_voice",
];

/// The judge model named in `evaluatorDetails`.
pub const JUDGE: &str = "amazon.nova-pro-v1:0";
/// The application's `modelIdentifier`.
pub const APPLICATION_MODEL: &str = "support-bot-v42";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bedrock result lines (`*_output.jsonl`).
    Outputs,
    /// Dataset lines (an upload to `datasets/…`).
    Dataset,
}

/// splitmix64: tiny, fast, and good enough to pick words.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of record `index` under `seed`.
    pub fn for_record(seed: u64, index: u64) -> Rng {
        let mut rng = Rng(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// In `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

const PRODUCTS: &[&str] = &[
    "Acme Kettle Pro",
    "AeroBuds 2",
    "HomeHub mini",
    "TrailCam 4K",
    "Smart Plug (2-pack)",
    "PixelFrame 10\"",
    "Café Grinder",
    "SolarBank 20000",
];
const PLANS: &[&str] = &["Acme+", "Family", "Business Basic", "Premium"];
const AMOUNTS: &[&str] = &["€12.99", "$9.99", "£7.50", "$129.00", "€49.90", "$4.99"];

const QUESTIONS: &[&str] = &[
    "How do I get a refund for order {order}? It arrived damaged and the box had been opened.",
    "I was charged twice for my {plan} subscription this month ({amount} each time). Can you fix it?",
    "Where is my package? The tracking page for order {order} hasn't changed in {days} days.",
    "Can I change the delivery address of order {order} after it has shipped?",
    "How do I reset my password if I no longer have access to my old email address?",
    "Is the {product} compatible with the charger that came with the previous model?",
    "What is the return window for a {product} that was bought as a gift?",
    "My {product} stopped turning on after the latest firmware update. What should I try?",
    "Can you delete all the data you hold about me? I want to close my account for good.",
    "Why was my card declined when I tried to upgrade to {plan}?",
    "The {product} I received is a different colour from the one I ordered (order {order}). What now?",
    "How do I cancel {plan} before the next billing date without losing my saved settings?",
    "Is it safe to leave the {product} charging overnight?",
    "Do you ship to Canada, and how long does delivery usually take?",
    "I'd like to add a second user to my {plan} plan. How much would that cost per month?",
    "The app says \"payment method invalid\" but my card works everywhere else. Why?",
    "My order {order} was marked as delivered but I never got it. What can you do?",
    "Can I use a discount code on an order I already placed ({order})?",
    "How do I pair the {product} with a second phone?",
    "I think someone else logged into my account yesterday. How do I secure it?",
    "Why did the price of {plan} go up to {amount}? Nobody told me.",
    "What's the warranty on the {product}, and does it cover accidental damage?",
];

const PASSAGES: &[&str] = &[
    "Refunds: items returned within 30 days of delivery are refunded to the original payment method within 5 business days of the return being received. Damaged items may be refunded without a return.",
    "Shipping: standard delivery takes 3-5 business days within the EU and the US, and 7-12 business days to Canada. Tracking updates can lag by up to 48 hours at customs.",
    "Accounts: a password can be reset from the sign-in page with \"Forgot password\". When the email address is no longer reachable, support verifies identity with the last four digits of the payment card and a recent order number.",
    "Subscriptions: plans renew automatically on the billing date. Cancelling before that date stops the next charge; settings are kept for 90 days after cancellation.",
    "Warranty: hardware carries a 2-year limited warranty covering manufacturing defects. Accidental damage is covered only with Acme Care, bought within 60 days of purchase.",
    "Privacy: customers may request deletion of their personal data at any time. Deletion completes within 30 days; order records required for tax purposes are kept for the legally required period.",
    "Payments: a card may be declined when the billing address does not match the card issuer's records, or when the issuer blocks recurring payments. Customers should contact their bank first.",
    "Safety: chargers and batteries must only be used with Acme-certified cables. Devices that become hot, swell or smell of burning must be unplugged immediately and not used again.",
    "Orders: the delivery address can be changed until the order is handed to the carrier. After that, the carrier's redirect service must be used, which may incur a fee.",
    "Family plans: up to five users share one subscription. Each additional user beyond five costs €3.99 per month (or the equivalent in local currency).",
];

const OPENINGS: &[&str] = &[
    "Thanks for reaching out, and sorry for the trouble.",
    "I'm sorry to hear that — let's get this sorted out.",
    "Good question!",
    "Happy to help with that.",
    "Thanks for your patience.",
    "I understand how frustrating this must be.",
    "",
];

const BODY: &[&str] = &[
    "You can request a refund from **Orders** in your account: choose the order and select \"Request refund\".",
    "Refunds go back to the original payment method and usually appear within 5 business days.",
    "If the item arrived damaged, you don't need to send it back; a photo of the damage is enough.",
    "Tracking can lag by up to 48 hours, especially when a parcel is at customs.",
    "If there's still no update after 5 business days, reply here and we'll open an investigation with the carrier.",
    "To reset your password, use \"Forgot password\" on the sign-in page.",
    "If you can't reach your old email, we can verify your identity with the last four digits of your card and a recent order number.",
    "Your plan renews automatically on the billing date shown under **Settings → Subscription**.",
    "Cancelling before that date stops the next charge, and your settings are kept for 90 days.",
    "The charger from the previous model works, but it charges about 30% more slowly.",
    "For safety, only use Acme-certified cables and unplug the device if it gets unusually hot.",
    "Hardware is covered by a 2-year limited warranty against manufacturing defects.",
    "Accidental damage is only covered with Acme Care, which can be added within 60 days of purchase.",
    "I've flagged the duplicate charge; the extra payment will be reversed within 3–5 business days.",
    "Your bank may also block recurring payments, so it's worth checking with them.",
    "The address can be changed until the parcel is handed to the carrier; after that, the carrier's redirect service applies.",
    "You can add up to five users to a Family plan at no extra cost.",
    "We'll delete your personal data within 30 days; order records needed for tax purposes are kept as the law requires.",
    "Try holding the power button for 15 seconds to force a restart, then charge it for at least 30 minutes.",
    "Discount codes can't be applied to orders that have already been placed, but we can refund the difference as store credit.",
];

const STEPS: &[&str] = &[
    "Open the Acme app and sign in.",
    "Go to **Orders** and select the order.",
    "Choose \"Request refund\" and pick the reason.",
    "Attach a photo if the item is damaged.",
    "Open **Settings → Security** and choose \"Sign out everywhere\".",
    "Change your password and turn on two-step verification.",
    "Hold the power button for 15 seconds.",
    "Charge the device for at least 30 minutes before trying again.",
];

const CLOSINGS: &[&str] = &[
    "Is there anything else I can help you with?",
    "Let me know if that works for you!",
    "Have a great day.",
    "If you need anything else, just reply to this message.",
    "",
];

const REFERENCES: &[&str] = &[
    "Open Orders, choose the order and select Request refund; damaged items are refunded without a return, within 5 business days.",
    "Tracking can lag up to 48 hours; after 5 business days without an update, support opens a carrier investigation.",
    "Use Forgot password on the sign-in page; without access to the email, verify with the card's last four digits and a recent order number.",
    "Cancel before the billing date to stop the next charge; settings are kept for 90 days.",
    "Yes, but it charges more slowly; only use Acme-certified cables.",
    "Two-year limited warranty on defects; accidental damage needs Acme Care bought within 60 days.",
    "The duplicate charge is reversed within 3-5 business days.",
    "The address can be changed until the carrier has the parcel; then use the carrier's redirect service.",
    "Personal data is deleted within 30 days; tax records are kept as legally required.",
];

const CATEGORIES: &[(&str, u32)] = &[
    ("Billing", 18),
    ("Orders", 16),
    ("Shipping", 14),
    ("Returns", 12),
    ("Accounts", 10),
    ("Technical support", 10),
    ("Product questions", 8),
    ("Subscriptions", 5),
    ("Privacy", 3),
    ("Safety", 2),
    ("Feedback", 1),
    ("Other", 1),
];

const EXPLAIN_OPEN: &[&str] = &[
    "The response addresses the customer's question directly.",
    "The candidate response identifies what the customer needs and answers it.",
    "The answer is largely consistent with the reference response.",
    "The response only partially addresses the question.",
    "The response misreads the customer's request.",
    "Comparing the response with the reference answer, the key facts line up.",
];
const EXPLAIN_BODY: &[&str] = &[
    "It gives the correct refund window and explains where to request the refund.",
    "It omits the five-business-day timeline that the reference mentions, which the customer would likely want to know.",
    "The steps are in the right order and each one is actionable.",
    "It adds a claim about store credit that is not supported by the provided context.",
    "The tone is friendly and professional, and it avoids internal jargon.",
    "It does not promise anything the policy does not allow.",
    "The instructions for resetting the password match the documented procedure.",
    "It fails to mention that accidental damage is only covered with Acme Care.",
    "There is no harmful, offensive or unsafe content in the response.",
    "It recommends unplugging a hot device, which is the safe course of action.",
    "The formatting (a short numbered list) makes the answer easy to follow.",
    "Some details are vague: it says \"soon\" where the policy gives a precise timeframe.",
];
const EXPLAIN_CLOSE: &[&str] = &[
    "Overall the response is accurate and complete.",
    "Overall it is mostly correct but misses one important detail.",
    "Because of the missing information, the response is only partially complete.",
    "The response is therefore rated highly on this criterion.",
    "Taken together, the answer meets the criterion with minor issues.",
    "The answer does not meet the criterion.",
];

/// One record's content, shared by its dataset line and its result line.
struct Content {
    prompt: String,
    reference: Option<String>,
    /// `None`: absent; `Some(None)`: `null`.
    category: Option<Option<&'static str>>,
    response: String,
    quality: f64,
}

fn fill(template: &str, rng: &mut Rng, index: u64) -> String {
    let order = format!("A{:07}-{:02}", (index * 7919) % 10_000_000, index % 97);
    template
        .replace("{order}", &order)
        .replace("{plan}", rng.pick(PLANS))
        .replace("{product}", rng.pick(PRODUCTS))
        .replace("{amount}", rng.pick(AMOUNTS))
        .replace("{days}", &rng.between(3, 12).to_string())
}

fn content(seed: u64, index: u64) -> (Rng, Content) {
    let mut rng = Rng::for_record(seed, index);
    let question = fill(rng.pick(QUESTIONS), &mut rng, index);
    let customer = 10_000 + (index * 31) % 900_000;
    let prompt = if rng.chance(0.3) {
        let mut context = String::new();
        for _ in 0..rng.between(2, 3) {
            if !context.is_empty() {
                context.push_str("\n\n");
            }
            context.push_str(rng.pick(PASSAGES));
        }
        format!(
            "You are Acme's support assistant. Answer using only the context below.\n\nContext:\n{context}\n\nQuestion from customer #{customer}: {question}"
        )
    } else {
        format!("Customer #{customer} asks: {question}")
    };
    let reference = rng.chance(0.85).then(|| rng.pick(REFERENCES).to_owned());
    let category = if rng.chance(0.04) {
        None
    } else if rng.chance(0.01) {
        Some(None)
    } else {
        let total: u32 = CATEGORIES.iter().map(|c| c.1).sum();
        let mut at = rng.below(total as usize) as u32;
        let mut chosen = CATEGORIES[0].0;
        for (name, weight) in CATEGORIES {
            if at < *weight {
                chosen = name;
                break;
            }
            at -= weight;
        }
        Some(Some(chosen))
    };
    let mut response = String::new();
    let opening = rng.pick(OPENINGS);
    if !opening.is_empty() {
        response.push_str(opening);
        response.push(' ');
    }
    for i in 0..rng.between(2, 5) {
        if i > 0 {
            response.push(' ');
        }
        response.push_str(rng.pick(BODY));
    }
    if rng.chance(0.35) {
        response.push_str("\n\n");
        for step in 1..=rng.between(2, 4) {
            if step > 1 {
                response.push('\n');
            }
            response.push_str(&format!("{step}. {}", rng.pick(STEPS)));
        }
    }
    let closing = rng.pick(CLOSINGS);
    if !closing.is_empty() {
        response.push_str("\n\n");
        response.push_str(closing);
    }
    // Skewed towards good answers, as a release that reaches evaluation usually is.
    let quality = 1.0 - rng.unit() * rng.unit();
    (
        rng,
        Content {
            prompt,
            reference,
            category,
            response,
            quality,
        },
    )
}

/// Appends `s` as a JSON string.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn bedrock_fields(out: &mut Vec<u8>, c: &Content) {
    out.extend_from_slice(b"\"prompt\":");
    json_str(out, &c.prompt);
    if let Some(reference) = &c.reference {
        out.extend_from_slice(b",\"referenceResponse\":");
        json_str(out, reference);
    }
    match c.category {
        None => {}
        Some(None) => out.extend_from_slice(b",\"category\":null"),
        Some(Some(category)) => {
            out.extend_from_slice(b",\"category\":");
            json_str(out, category);
        }
    }
    out.extend_from_slice(b",\"modelResponses\":");
    model_responses(out, &c.response);
}

fn model_responses(out: &mut Vec<u8>, response: &str) {
    out.extend_from_slice(b"[{\"response\":");
    json_str(out, response);
    out.extend_from_slice(b",\"modelIdentifier\":");
    json_str(out, APPLICATION_MODEL);
    out.extend_from_slice(b"}]");
}

fn quarter(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 4.0).round() / 4.0
}

fn fmt_score(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        None => out.extend_from_slice(b"null"),
        // Bedrock writes 1.0 and 0.0 with a decimal point.
        Some(v) => out.extend_from_slice(format!("{v:?}").as_bytes()),
    }
}

/// Appends result line `index` (without the newline).
pub fn output_line(seed: u64, index: u64, out: &mut Vec<u8>) {
    let (mut rng, c) = content(seed, index);
    out.extend_from_slice(b"{\"automatedEvaluationResult\":{\"scores\":[");
    for (m, metric) in METRICS.iter().enumerate() {
        if m > 0 {
            out.push(b',');
        }
        let value = match *metric {
            "Builtin.Harmfulness" => {
                let v = if rng.chance(0.985) {
                    0.0
                } else {
                    quarter(rng.unit() + 0.2)
                };
                (!rng.chance(0.01)).then_some(v)
            }
            // A custom metric on a three-step scale, left unscored more often.
            "brand_voice" => (!rng.chance(0.05)).then(|| {
                ((c.quality + rng.unit() * 0.5 - 0.2).clamp(0.0, 1.0) * 2.0).round() / 2.0
            }),
            _ => (!rng.chance(0.02)).then(|| quarter(c.quality + (rng.unit() - 0.5) * 0.4)),
        };
        out.extend_from_slice(b"{\"metricName\":");
        json_str(out, metric);
        out.extend_from_slice(b",\"result\":");
        fmt_score(out, value);
        out.extend_from_slice(b",\"evaluatorDetails\":[{\"modelIdentifier\":");
        json_str(out, JUDGE);
        out.extend_from_slice(b",\"explanation\":");
        let mut explanation = String::from(rng.pick(EXPLAIN_OPEN));
        for _ in 0..rng.between(1, 2) {
            explanation.push(' ');
            explanation.push_str(rng.pick(EXPLAIN_BODY));
        }
        explanation.push(' ');
        explanation.push_str(rng.pick(EXPLAIN_CLOSE));
        json_str(out, &explanation);
        out.extend_from_slice(b"}]}");
    }
    out.extend_from_slice(b"]},\"inputRecord\":{");
    bedrock_fields(out, &c);
    out.extend_from_slice(b"},\"modelResponses\":");
    model_responses(out, &c.response);
    out.push(b'}');
}

/// Appends dataset line `index` (without the newline).
pub fn dataset_line(seed: u64, index: u64, out: &mut Vec<u8>) {
    let (mut rng, c) = content(seed, index);
    out.push(b'{');
    bedrock_fields(out, &c);
    if rng.chance(0.9) {
        let input_tokens = c.prompt.len() / 4 + rng.between(20, 60);
        let output_tokens = c.response.len() / 4 + rng.between(0, 20);
        let latency = 250 + output_tokens * 9 + rng.below(400);
        // Dollars at $0.0008 / $0.0032 per 1,000 input / output tokens, to seven decimals
        // and never below $0.0001, so that every JSON library prints it the same way (no
        // exponent).
        let tenths_of_micros = (input_tokens * 8 + output_tokens * 32).max(1000) as f64;
        out.extend_from_slice(
            format!(
                ",\"latencyMs\":{latency},\"inputTokens\":{input_tokens},\"outputTokens\":{output_tokens},\"cost\":{},\"userId\":\"u-{}\"",
                tenths_of_micros / 1e7,
                (index * 7) % 50_000
            )
            .as_bytes(),
        );
        if rng.chance(0.2) {
            out.extend_from_slice(
                format!(
                    ",\"feedback\":{{\"thumbs\":\"{}\",\"comment\":null}}",
                    if rng.chance(0.8) { "up" } else { "down" }
                )
                .as_bytes(),
            );
        }
    }
    out.push(b'}');
}

/// Appends line `index` of `kind`, with its newline.
pub fn line(kind: Kind, seed: u64, index: u64, out: &mut Vec<u8>) {
    match kind {
        Kind::Outputs => output_line(seed, index, out),
        Kind::Dataset => dataset_line(seed, index, out),
    }
    out.push(b'\n');
}

/// Writes `records` lines of `kind` to `out`; returns the bytes written.
pub fn write_all<W: std::io::Write>(
    kind: Kind,
    seed: u64,
    records: u64,
    mut out: W,
) -> std::io::Result<u64> {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut written = 0u64;
    for i in 0..records {
        line(kind, seed, i, &mut buf);
        if buf.len() >= (1 << 20) - 16 * 1024 || i + 1 == records {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.flush()?;
    Ok(written)
}

/// The lines of a generated file, produced lazily as they are read: the file never sits in
/// memory, so in-process benchmarks measure only the code under test.
pub struct GeneratedReader {
    kind: Kind,
    seed: u64,
    total: u64,
    next: u64,
    chunk: Vec<u8>,
    offset: usize,
    /// Bytes handed out so far.
    pub bytes: u64,
}

impl GeneratedReader {
    pub fn new(kind: Kind, seed: u64, total: u64) -> Self {
        GeneratedReader {
            kind,
            seed,
            total,
            next: 0,
            chunk: Vec::with_capacity(1 << 20),
            offset: 0,
            bytes: 0,
        }
    }

    fn refill(&mut self) {
        self.chunk.clear();
        self.offset = 0;
        while self.next < self.total && self.chunk.len() < (1 << 20) - 16 * 1024 {
            line(self.kind, self.seed, self.next, &mut self.chunk);
            self.next += 1;
        }
    }
}

impl AsyncRead for GeneratedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.offset >= self.chunk.len() {
            self.refill();
        }
        let n = (self.chunk.len() - self.offset).min(buf.remaining());
        let start = self.offset;
        buf.put_slice(&self.chunk[start..start + n]);
        self.offset += n;
        self.bytes += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_distinct() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        output_line(DEFAULT_SEED, 7, &mut a);
        output_line(DEFAULT_SEED, 7, &mut b);
        output_line(DEFAULT_SEED, 8, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn result_lines_parse_as_bedrock_results_with_every_metric() {
        let mut nulls = 0;
        let mut bytes = 0;
        for i in 0..2000 {
            let mut line = Vec::new();
            output_line(DEFAULT_SEED, i, &mut line);
            bytes += line.len() + 1;
            let record = evalgate::results::parse_line(&line).unwrap();
            let names: Vec<&str> = record.scores.iter().map(|s| s.metric.as_ref()).collect();
            assert_eq!(names, METRICS);
            assert!(record.scores.iter().all(|s| s.explanation.is_some()));
            nulls += record.scores.iter().filter(|s| s.value.is_none()).count();
            for v in record.scores.iter().filter_map(|s| s.value) {
                assert!((0.0..=1.0).contains(&v) && (v * 4.0).fract() == 0.0, "{v}");
            }
        }
        // Some, but few, results are not scored.
        assert!((50..500).contains(&nulls), "{nulls}");
        let per_line = bytes / 2000;
        assert!(
            (2000..4500).contains(&per_line),
            "{per_line} bytes per line"
        );
    }

    #[tokio::test]
    async fn datasets_are_valid_and_carry_metadata() {
        let reader =
            tokio::io::BufReader::new(GeneratedReader::new(Kind::Dataset, DEFAULT_SEED, 3000));
        let v = evalgate::dataset::validate(reader).await.unwrap();
        assert!(v.is_valid(), "{:?}", v.problems);
        assert_eq!(v.records, 3000);
        assert_eq!(v.shards.len(), 3);
        assert!(v.with_metadata > 2500 && v.with_metadata < 3000);
        assert!(v.with_category > 2800);
        assert_eq!(v.model_identifier.as_deref(), Some(APPLICATION_MODEL));
        let per_line = v.bytes / 3000;
        assert!((800..2000).contains(&per_line), "{per_line} bytes per line");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            serde_json::from_slice::<String>(&out).unwrap(),
            "a\"b\\c\nd\u{1}é"
        );
    }
}
