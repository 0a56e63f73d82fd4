//! Benchmark: stream Bedrock results files of 10,000 to 1,000,000 records through the
//! results parser into the aggregation, and report time and heap memory.
//!
//! ```text
//! cargo bench -p evalgate --bench aggregate
//! ```
//!
//! The records are generated on the fly behind an `AsyncRead` (about 700 bytes each, shaped
//! like Bedrock's output: two scored metrics with explanations, a category, the prompt and
//! the response), so the file itself never sits in memory and the figures are the
//! aggregation's own. Heap use is measured with a counting global allocator: the peak of
//! live heap bytes during the run, above what was live before it. With per-prompt score
//! collection (what regression checks need) memory grows with the number of prompts, by
//! design: that run is reported separately.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system one.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use evalgate::aggregate::{AggregateConfig, Aggregator};
use evalgate::results::read_results;
use tokio::io::{AsyncRead, BufReader, ReadBuf};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Generates `total` result lines lazily.
struct Generated {
    total: usize,
    next: usize,
    chunk: Vec<u8>,
    offset: usize,
}

const CATEGORIES: [&str; 6] = [
    "Billing", "Accounts", "Shipping", "Returns", "Safety", "Other",
];
const SCORES: [&str; 6] = ["1.0", "0.75", "0.5", "1.0", "null", "0.25"];

impl Generated {
    fn new(total: usize) -> Self {
        Generated {
            total,
            next: 0,
            chunk: Vec::with_capacity(1 << 20),
            offset: 0,
        }
    }

    fn refill(&mut self) {
        self.chunk.clear();
        self.offset = 0;
        while self.next < self.total && self.chunk.len() < (1 << 20) - 2048 {
            let i = self.next;
            let line = format!(
                concat!(
                    r#"{{"automatedEvaluationResult":{{"scores":["#,
                    r#"{{"metricName":"Builtin.Correctness","result":{},"evaluatorDetails":[{{"modelIdentifier":"amazon.nova-pro-v1:0","explanation":"The response covers the reference's main points but omits the refund window; it is mostly correct for request {}."}}]}},"#,
                    r#"{{"metricName":"Builtin.Harmfulness","result":{},"evaluatorDetails":[{{"modelIdentifier":"amazon.nova-pro-v1:0","explanation":"No harmful content was found in the response."}}]}}]}},"#,
                    r#""inputRecord":{{"prompt":"Customer {} asks: how do I get a refund for order {} that arrived damaged?","referenceResponse":"Open Orders, choose the order and select Request refund within 30 days.","category":"{}","modelResponses":[{{"response":"Go to Orders, pick the order and choose Request refund.","modelIdentifier":"support-bot-v42"}}]}},"#,
                    r#""modelResponses":[{{"response":"Go to Orders, pick the order and choose Request refund.","modelIdentifier":"support-bot-v42"}}]}}"#,
                    "\n"
                ),
                SCORES[i % SCORES.len()],
                i,
                if i.is_multiple_of(50) { "1.0" } else { "0" },
                i,
                i * 7,
                CATEGORIES[i % CATEGORIES.len()],
            );
            self.chunk.extend_from_slice(line.as_bytes());
            self.next += 1;
        }
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.offset >= self.chunk.len() {
            self.refill();
        }
        let available = &self.chunk[self.offset..];
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.offset += n;
        Poll::Ready(Ok(()))
    }
}

struct Run {
    records: u64,
    seconds: f64,
    peak_heap: usize,
    mean: f64,
}

async fn run(records: usize, collect_prompt_scores: bool) -> Run {
    let config = AggregateConfig {
        critical_categories: vec!["Safety".into()],
        collect_prompt_scores,
        ..AggregateConfig::default()
    };
    // The generator's own buffer is the bench's, not the aggregation's: allocate it first.
    let generated = Generated::new(records);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    let mut aggregator = Aggregator::new(config);
    // The same 64 KiB read buffer `S3Store::open` uses.
    let reader = BufReader::with_capacity(64 * 1024, generated);
    let n = read_results(reader, "bench", |r| {
        aggregator.add(r).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let aggregates = aggregator.finish();
    let seconds = started.elapsed().as_secs_f64();
    let peak_heap = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let c = &aggregates.metrics["Builtin.Correctness"];
    assert_eq!(n as usize, records);
    assert_eq!(c.prompts as usize, records);
    // One sixth of the results are null: counted as unscored, never averaged.
    assert_eq!(
        c.unscored as usize,
        records / 6 + usize::from(records % 6 > 4)
    );
    Run {
        records: n,
        seconds,
        peak_heap,
        mean: c.mean.unwrap_or(f64::NAN),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{:>10}  {:>14}  {:>9}  {:>12}  {:>14}  {:>6}",
        "records", "prompt scores", "seconds", "records/s", "peak heap", "mean"
    );
    for (records, collect) in [
        (10_000, false),
        (100_000, false),
        (1_000_000, false),
        (100_000, true),
        (1_000_000, true),
    ] {
        let r = runtime.block_on(run(records, collect));
        println!(
            "{:>10}  {:>14}  {:>9.2}  {:>12.0}  {:>11.1} KiB  {:>6.4}",
            r.records,
            if collect {
                "collected"
            } else {
                "not collected"
            },
            r.seconds,
            r.records as f64 / r.seconds,
            r.peak_heap as f64 / 1024.0,
            r.mean
        );
    }
}
