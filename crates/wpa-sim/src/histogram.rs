//! Wait times as a log-linear histogram: constant memory, ~0.8% relative
//! error, so 86 million waits cost 86 thousand additions (one per bucket of
//! messages dispatched together), not 86 million.

/// Values below this are kept exactly (one bin per tick).
const LINEAR_LIMIT: u64 = 128;
/// Sub-bins per power of two above [`LINEAR_LIMIT`] (7 bits of mantissa).
const SUB_BINS: u64 = 64;

/// A histogram of wait times, counted in simulation ticks.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct WaitHistogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn bin_of(value: u64) -> usize {
    if value < LINEAR_LIMIT {
        return value as usize;
    }
    // value >= 128: exponent e >= 7; keep the top 7 bits (64 sub-bins).
    let exponent = 63 - u64::from(value.leading_zeros());
    let mantissa = (value >> (exponent - 6)) - SUB_BINS;
    (LINEAR_LIMIT + (exponent - 7) * SUB_BINS + mantissa) as usize
}

/// The smallest and largest value falling into `bin`.
fn bin_range(bin: usize) -> (u64, u64) {
    let bin = bin as u64;
    if bin < LINEAR_LIMIT {
        return (bin, bin);
    }
    let exponent = (bin - LINEAR_LIMIT) / SUB_BINS + 7;
    let mantissa = (bin - LINEAR_LIMIT) % SUB_BINS + SUB_BINS;
    let low = mantissa << (exponent - 6);
    let width = 1u64 << (exponent - 6);
    (low, low + width - 1)
}

impl WaitHistogram {
    /// Counts `count` messages that waited `ticks`.
    #[inline]
    pub(crate) fn record(&mut self, ticks: u64, count: u64) {
        if count == 0 {
            return;
        }
        let bin = bin_of(ticks);
        if bin >= self.counts.len() {
            self.counts.resize(bin + 1, 0);
        }
        self.counts[bin] += count;
        self.total += count;
        self.max = self.max.max(ticks);
    }

    /// The largest wait recorded, exactly.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The wait below which a fraction `q` of messages fall (nearest rank),
    /// reported as the middle of its bin (exact below 128 ticks).
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bin_range(bin);
                let high = high.min(self.max);
                return (low as f64 + high as f64) / 2.0;
            }
        }
        self.max as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_values_contiguously() {
        let mut expected_low = 0;
        for bin in 0..2_000 {
            let (low, high) = bin_range(bin);
            assert_eq!(low, expected_low, "bin {bin}");
            assert!(high >= low);
            assert_eq!(bin_of(low), bin);
            assert_eq!(bin_of(high), bin);
            expected_low = high + 1;
        }
    }

    #[test]
    fn quantiles_are_exact_for_small_values_and_close_for_large() {
        let mut histogram = WaitHistogram::default();
        for value in 0..100 {
            histogram.record(value, 1);
        }
        assert_eq!(histogram.quantile(0.5), 49.0);
        assert_eq!(histogram.quantile(0.99), 98.0);
        assert_eq!(histogram.max(), 99);
        let mut big = WaitHistogram::default();
        big.record(1_000_000, 10);
        let estimate = big.quantile(0.5);
        assert!((estimate - 1e6).abs() / 1e6 < 0.01, "{estimate}");
    }
}
