//! The plain sampler: a seeded shuffle of every index, cut into batches (PyTorch's
//! `DataLoader(shuffle=True)`), for losses that need no class structure in a batch
//! (classification losses, proxies, self-supervised pairs).

use rand::seq::SliceRandom;

use crate::sampler::epoch_rng;
use crate::{BatchSampler, SamplerError};

/// Every index `0..len` once per epoch in a seeded random order, in batches of `batch_size`;
/// the last, shorter batch is kept unless `drop_last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShuffleSampler {
    len: usize,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
}

impl ShuffleSampler {
    /// Errors: an empty dataset, a zero batch size, or (with `drop_last`) fewer items than
    /// one batch.
    pub fn new(
        len: usize,
        batch_size: usize,
        drop_last: bool,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        const NAME: &str = "ShuffleSampler";
        if len == 0 {
            return Err(SamplerError::EmptyDataset { sampler: NAME });
        }
        if batch_size == 0 {
            return Err(SamplerError::ZeroBatchSize { sampler: NAME });
        }
        if drop_last && len < batch_size {
            return Err(SamplerError::FewerItemsThanBatch {
                sampler: NAME,
                items: len,
                batch_size,
            });
        }
        Ok(ShuffleSampler {
            len,
            batch_size,
            drop_last,
            seed,
        })
    }
}

impl BatchSampler for ShuffleSampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut epoch_rng(self.seed, epoch));
        let mut batches: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if self.drop_last && !self.len.is_multiple_of(self.batch_size) {
            batches.pop();
        }
        batches
    }

    fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_once_per_epoch_in_a_seeded_order() {
        let s = ShuffleSampler::new(10, 4, false, 7).unwrap();
        let e = s.epoch(0);
        assert_eq!(e.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = e.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(e, s.epoch(0));
        assert_ne!(e, s.epoch(1));
        assert_ne!(e, ShuffleSampler::new(10, 4, false, 8).unwrap().epoch(0));
        assert_eq!(s.batches_per_epoch(), 3);
        let d = ShuffleSampler::new(10, 4, true, 7).unwrap();
        assert_eq!(d.epoch(3).len(), d.batches_per_epoch());
        assert!(d.epoch(3).iter().all(|b| b.len() == 4));
        assert!(ShuffleSampler::new(0, 4, false, 0).is_err());
        assert!(ShuffleSampler::new(3, 0, false, 0).is_err());
        assert!(ShuffleSampler::new(3, 4, true, 0).is_err());
        assert_eq!(
            ShuffleSampler::new(3, 4, false, 0).unwrap().epoch(0).len(),
            1
        );
    }
}
