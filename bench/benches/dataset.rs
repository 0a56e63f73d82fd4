//! Benchmark: validate a generated dataset, then split it into Bedrock shards and metadata
//! sidecars: submit-evaluation's two passes (`dataset::validate_with`, then
//! `dataset::Sharder`), and report time and heap memory.
//!
//! ```text
//! cargo bench -p evalgate-bench --bench dataset                         # 1k and 20k records
//! EVALGATE_BENCH_FULL=1 cargo bench -p evalgate-bench --bench dataset   # 1k, 100k and 1M
//! ```
//!
//! The dataset (about 1.3 KB per record, most with usage metadata) is generated as it is
//! read, once per pass, so the file never sits in memory. Shards are counted, not stored
//! (submit-evaluation uploads each one and drops it). The 250,000-prompt upload limit is
//! lifted (`evalgate_bench::shard::bench_limits`) so that 1M records can be sharded; every
//! other check runs. Heap: the peak of live heap bytes during the run (a counting global
//! allocator), which includes the one shard being built (at most 1,000 records).

use std::time::Instant;

use evalgate_bench::alloc;
use evalgate_bench::generate::{DEFAULT_SEED, GeneratedReader, Kind};
use evalgate_bench::shard::{bench_limits, validate_and_shard};
use tokio::io::BufReader;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{:>10}  {:>9}  {:>9}  {:>12}  {:>8}  {:>7}  {:>14}",
        "records", "MB", "seconds", "records/s", "MB/s", "shards", "peak heap"
    );
    for records in evalgate_bench::sizes() {
        let mut first = GeneratedReader::new(Kind::Dataset, DEFAULT_SEED, records);
        let mut second = GeneratedReader::new(Kind::Dataset, DEFAULT_SEED, records);
        let before = alloc::start();
        let started = Instant::now();
        let summary = runtime
            .block_on(validate_and_shard(
                // The read buffer `S3Store::open` uses.
                BufReader::with_capacity(64 * 1024, &mut first),
                BufReader::with_capacity(64 * 1024, &mut second),
                &bench_limits(),
                |_| Ok(()),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        let seconds = started.elapsed().as_secs_f64();
        let peak_heap = alloc::peak_since(before);
        assert_eq!(summary.problems, 0);
        assert_eq!(summary.records, records);
        assert_eq!(summary.shards, records.div_ceil(1000));
        let megabytes = first.bytes as f64 / 1e6;
        println!(
            "{:>10}  {:>9.1}  {:>9.2}  {:>12.0}  {:>8.1}  {:>7}  {:>10.1} KiB",
            records,
            megabytes,
            seconds,
            records as f64 / seconds,
            megabytes / seconds,
            summary.shards,
            peak_heap as f64 / 1024.0,
        );
    }
}
