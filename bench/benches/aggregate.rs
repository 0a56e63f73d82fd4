//! Benchmark: stream generated Bedrock results through the results parser into the
//! aggregation check-gates and `evalgate gate` use, and report time and heap memory.
//!
//! ```text
//! cargo bench -p evalgate-bench --bench aggregate                         # 1k and 20k records
//! EVALGATE_BENCH_FULL=1 cargo bench -p evalgate-bench --bench aggregate   # 1k, 100k and 1M
//! ```
//!
//! The records come from `evalgate_bench::generate` (about 3 KB each: five metrics with
//! judge explanations, nulls, categories) behind an `AsyncRead`, generated as they are read,
//! so the file never sits in memory and the heap figures are the aggregation's own. The
//! aggregation is configured from `bench/fixtures/policy.yaml` by `gating::aggregate_config`,
//! exactly as check-gates configures it. Heap use is measured with a counting global
//! allocator: the peak of live heap bytes during the run, above what was live before it.
//! With per-prompt score collection (what the regressed-prompts gate needs) memory grows
//! with the number of prompts, by design: that run is reported separately.
//!
//! Time includes generating the records (a few hundred MB/s); `bench/run` measures the
//! CLI on files instead, with ratios to `wc -l` and to a Python reference.

use std::time::Instant;

use evalgate::aggregate::Aggregator;
use evalgate::gating::aggregate_config;
use evalgate::policy::Policy;
use evalgate::results::read_results;
use evalgate_bench::alloc;
use evalgate_bench::generate::{DEFAULT_SEED, GeneratedReader, Kind};
use tokio::io::BufReader;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const POLICY: &str = include_str!("../fixtures/policy.yaml");

struct Run {
    records: u64,
    megabytes: f64,
    seconds: f64,
    peak_heap: usize,
    mean: f64,
}

async fn run(policy: &Policy, records: u64, collect_prompt_scores: bool) -> Run {
    let config = aggregate_config(policy, false, collect_prompt_scores);
    // The generator's own buffer is the bench's, not the aggregation's: allocate it first.
    let mut generated = GeneratedReader::new(Kind::Outputs, DEFAULT_SEED, records);
    let before = alloc::start();
    let started = Instant::now();
    let mut aggregator = Aggregator::new(config);
    // The same 64 KiB read buffer `S3Store::open` uses.
    let reader = BufReader::with_capacity(64 * 1024, &mut generated);
    let n = read_results(reader, "bench", |r| {
        aggregator.add(r).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let aggregates = aggregator.finish();
    let seconds = started.elapsed().as_secs_f64();
    let peak_heap = alloc::peak_since(before);
    let c = &aggregates.metrics["Builtin.Correctness"];
    assert_eq!(n, records);
    assert_eq!(c.prompts, records);
    assert_eq!(c.scored + c.unscored, records);
    assert!(
        c.unscored > 0 && c.unscored < records / 10,
        "{}",
        c.unscored
    );
    if let Some(scores) = &aggregates.prompt_scores {
        assert!(scores.len() as u64 > records * 4);
    }
    Run {
        records: n,
        megabytes: generated.bytes as f64 / 1e6,
        seconds,
        peak_heap,
        mean: c.mean.unwrap_or(f64::NAN),
    }
}

fn main() {
    let policy = Policy::parse("bench/fixtures/policy.yaml", POLICY)
        .unwrap_or_else(|e| panic!("the bench policy is invalid: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{:>10}  {:>14}  {:>9}  {:>9}  {:>12}  {:>8}  {:>14}  {:>6}",
        "records", "prompt scores", "MB", "seconds", "records/s", "MB/s", "peak heap", "mean"
    );
    let sizes = evalgate_bench::sizes();
    let largest = sizes.last().copied().unwrap_or(1000);
    let runs = sizes
        .iter()
        .map(|n| (*n, false))
        .chain([(largest / 10, true), (largest, true)]);
    for (records, collect) in runs {
        let r = runtime.block_on(run(&policy, records, collect));
        println!(
            "{:>10}  {:>14}  {:>9.1}  {:>9.2}  {:>12.0}  {:>8.1}  {:>10.1} KiB  {:>6.4}",
            r.records,
            if collect {
                "collected"
            } else {
                "not collected"
            },
            r.megabytes,
            r.seconds,
            r.records as f64 / r.seconds,
            r.megabytes / r.seconds,
            r.peak_heap as f64 / 1024.0,
            r.mean
        );
    }
}
