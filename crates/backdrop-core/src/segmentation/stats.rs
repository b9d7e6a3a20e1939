//! Rolling timing statistics (median / p95 over the last N samples), no allocation per sample.

/// A fixed-size ring of the most recent samples (ms).
#[derive(Clone)]
pub struct Rolling {
    samples: Vec<f64>,
    next: usize,
    filled: usize,
}

impl Rolling {
    /// A ring holding the last `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self {
            samples: vec![0.0; capacity.max(1)],
            next: 0,
            filled: 0,
        }
    }
    /// Adds one sample.
    pub fn push(&mut self, value: f64) {
        self.samples[self.next] = value;
        self.next = (self.next + 1) % self.samples.len();
        self.filled = (self.filled + 1).min(self.samples.len());
    }
    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.filled
    }
    /// True when no sample was pushed.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }
    /// The `q` quantile (0..1, nearest rank) of the held samples; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.filled == 0 {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples[..self.filled].to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let idx = ((q.clamp(0.0, 1.0) * (self.filled - 1) as f64).round()) as usize;
        Some(sorted[idx])
    }
    /// Median of the held samples.
    pub fn median(&self) -> Option<f64> {
        self.quantile(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_over_the_window() {
        let mut r = Rolling::new(5);
        assert_eq!(r.median(), None);
        for v in [9.0, 1.0, 5.0, 3.0, 7.0] {
            r.push(v);
        }
        assert_eq!(r.median(), Some(5.0));
        assert_eq!(r.quantile(1.0), Some(9.0));
        // the oldest sample (9.0) falls out
        r.push(2.0);
        assert_eq!(r.len(), 5);
        assert_eq!(r.quantile(1.0), Some(7.0));
        assert_eq!(r.median(), Some(3.0));
    }
}
