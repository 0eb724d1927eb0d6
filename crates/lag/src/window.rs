//! [`Window`]: the bounded ring of a partition's latest samples.

use std::collections::VecDeque;

use crate::evaluator::Commit;

/// One look at a partition's committed offset, as the monitor took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// What Burrow's rules read: the committed offset, the lag, and as
    /// the commit's time the last moment the group was seen committing
    /// (see the crate's documentation).
    pub commit: Commit,
    pub high_watermark: u64,
    /// When the sample was taken (milliseconds since the epoch).
    pub sampled_at_ms: i64,
}

impl AsRef<Commit> for Sample {
    fn as_ref(&self) -> &Commit {
        &self.commit
    }
}

/// The last `capacity` samples of a partition, oldest first.
#[derive(Debug, Clone)]
pub struct Window {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Window {
    /// An empty window of `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Window {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds a sample, forgetting the oldest when full.
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples, oldest first, in one slice (rotates the ring in place
    /// when it wrapped: at most `capacity` copies).
    pub fn as_slice(&mut self) -> &[Sample] {
        self.samples.make_contiguous()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: u64) -> Sample {
        Sample {
            commit: Commit {
                offset,
                timestamp_ms: offset as i64,
                lag: Some(0),
            },
            high_watermark: offset,
            sampled_at_ms: offset as i64,
        }
    }

    #[test]
    fn keeps_the_latest_in_order() {
        let mut w = Window::new(3);
        assert!(w.is_empty());
        for o in 0..5 {
            w.push(sample(o));
        }
        assert_eq!(w.len(), 3);
        let offsets: Vec<u64> = w.as_slice().iter().map(|s| s.commit.offset).collect();
        assert_eq!(offsets, vec![2, 3, 4]);
        assert_eq!(w.last().map(|s| s.commit.offset), Some(4));
        assert_eq!(Window::new(0).capacity(), 1);
    }
}
