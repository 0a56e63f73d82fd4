//! evalgate's benchmarks: what `bench/run` and the `cargo bench` targets share.
//!
//! * [`generate`]: deterministic, realistic Bedrock results and datasets at any size.
//! * [`shard`]: validation then sharding of a local dataset, exactly submit-evaluation's two
//!   passes (`evalgate::dataset::validate_with`, then `evalgate::dataset::Sharder`).
//! * [`sizes`]: the record counts the `cargo bench` targets use (quick by default, the
//!   issue's sizes with `EVALGATE_BENCH_FULL=1`).
//!
//! The full run, with the ratios to `wc -l` and to the Python references, is `bench/run`;
//! the README's "Performance" section explains every figure.

pub mod alloc;
pub mod generate;
pub mod shard;

/// `EVALGATE_BENCH_FULL=1`: run the `cargo bench` targets at 1k, 100k and 1M records
/// instead of the quick 1k and 20k.
pub fn sizes() -> Vec<u64> {
    let full = std::env::var("EVALGATE_BENCH_FULL").is_ok_and(|v| v == "1" || v == "true");
    if full {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000, 20_000]
    }
}
