//! Deterministic pseudo-randomness: splitmix64, for fault injection and identifiers.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ApiError;

/// One splitmix64 step: a well-mixed 64-bit value from `x`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from 53 bits of `x`.
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A thread-safe stream: the n-th draw is `splitmix64(seed + n * golden)`, so a seed and an
/// order of calls give the same values every run.
#[derive(Debug)]
pub struct Stream {
    seed: u64,
    counter: AtomicU64,
}

impl Stream {
    pub fn new(seed: u64) -> Self {
        Stream {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    pub fn next_u64(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        splitmix64(
            self.seed
                .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        )
    }

    /// `len` characters of `[a-z0-9]` (a job id).
    pub fn id(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        let mut bits = self.next_u64();
        for i in 0..len {
            if i % 10 == 9 {
                bits = self.next_u64();
            }
            out.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
        out
    }

    /// A version-4-shaped UUID (output file names, request ids).
    pub fn uuid(&self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Which errors `--fault-rate` injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Throttling,
    Internal,
}

/// Injects ThrottlingException / InternalServerException into a share of requests.
///
/// The n-th request (in arrival order, counting every operation but `/ping`) fails when
/// `unit(splitmix64(seed + n·φ)) < rate`; which error it gets is chosen by the next bits of the
/// same draw among the configured kinds. With a fixed seed and request order, the same requests
/// fail every run. An injected fault happens before the operation runs: the request has no
/// effect, as a throttled request has none at the service.
#[derive(Debug)]
pub struct Faults {
    rate: f64,
    kinds: Vec<FaultKind>,
    stream: Stream,
}

impl Faults {
    pub fn new(rate: f64, kinds: Vec<FaultKind>, seed: u64) -> Self {
        Faults {
            rate,
            kinds,
            stream: Stream::new(seed),
        }
    }

    /// The fault for the next request, if it gets one.
    pub fn next(&self) -> Option<ApiError> {
        if self.rate <= 0.0 || self.kinds.is_empty() {
            return None;
        }
        let draw = self.stream.next_u64();
        if unit(draw) >= self.rate {
            return None;
        }
        let kind = self.kinds[(draw & 0xff) as usize % self.kinds.len()];
        Some(match kind {
            FaultKind::Throttling => ApiError::Throttling(
                "Too many requests, please wait before trying again. (fault injected by bedrock-local --fault-rate)".into(),
            ),
            FaultKind::Internal => ApiError::InternalServer(
                "The service encountered an internal error. Try your request again. (fault injected by bedrock-local --fault-rate)".into(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // splitmix64 with state 0: the first outputs of the reference implementation.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn faults_are_deterministic_for_a_seed_and_near_the_rate() {
        let pattern = |seed| {
            let f = Faults::new(0.3, vec![FaultKind::Throttling, FaultKind::Internal], seed);
            (0..1000)
                .map(|_| f.next().map(|e| e.type_name()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
        let faults = pattern(7).iter().filter(|f| f.is_some()).count();
        assert!((240..=360).contains(&faults), "{faults}");
        let throttles = pattern(7)
            .iter()
            .filter(|f| **f == Some("ThrottlingException"))
            .count();
        assert!(
            throttles > 50 && throttles < faults - 50,
            "{throttles} of {faults}"
        );
        let always = Faults::new(1.0, vec![FaultKind::Internal], 1);
        assert!((0..100).all(|_| matches!(always.next(), Some(ApiError::InternalServer(_)))));
        let never = Faults::new(0.0, vec![FaultKind::Internal], 1);
        assert!((0..100).all(|_| never.next().is_none()));
    }

    #[test]
    fn ids_and_uuids_have_the_right_shape() {
        let s = Stream::new(42);
        let id = s.id(12);
        assert_eq!(id.len(), 12);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(id, s.id(12));
        let u = s.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }
}
