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

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system one.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use evalgate_bench::generate::{DEFAULT_SEED, GeneratedReader, Kind};
use evalgate_bench::shard::{bench_limits, validate_and_shard};
use tokio::io::BufReader;

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
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
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
        let peak_heap = PEAK.load(Ordering::Relaxed).saturating_sub(before);
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
