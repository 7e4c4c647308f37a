//! A histogram of durations with atomic buckets: one `fetch_add` per observation and no lock, for counts taken on
//! every request or every streamed chunk (prometheus-client's own histogram takes a lock per observation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts of durations by bucket; `N` bounds, in seconds, ascending, the last one `f64::INFINITY` (so every
/// duration has a bucket).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    /// Per-bucket counts (not cumulative).
    buckets: [AtomicU64; N],
    sum_nanos: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram with these upper bounds (seconds, ascending, the last infinite).
    pub const fn new(bounds: [f64; N]) -> Self {
        Histogram { bounds, buckets: [const { AtomicU64::new(0) }; N], sum_nanos: AtomicU64::new(0) }
    }

    /// Counts `d` in the first bucket whose bound holds it.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|&b| secs <= b).unwrap_or(N - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Each bucket's upper bound with its count (not cumulative), as OpenMetrics encoders take them.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds.iter().copied().zip(&self.buckets).map(|(b, c)| (b, c.load(Ordering::Relaxed))).collect()
    }

    /// The sum of every duration counted, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new([0.001, 0.01, f64::INFINITY]);
        for ms in [0, 1, 2, 10, 11, 5_000] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(h.buckets(), vec![(0.001, 2), (0.01, 2), (f64::INFINITY, 2)]);
        assert!((h.sum_secs() - 5.024).abs() < 1e-9);
    }
}
