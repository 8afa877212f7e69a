//! CGD's m-per-class sampler: random classes, up to m random samples each, per batch.

use rand::Rng as _;
use rand::seq::SliceRandom as _;

use crate::classes::{check_batch_layout, group_by_class};
use crate::error::SamplerError;
use crate::sampler::{BatchSampler, epoch_rng};

const NAME: &str = "MPerClassSampler";

/// Batches of randomly chosen classes with up to `m` samples each, as CGD (leftthomas/CGD,
/// `utils.MPerClassSampler`) draws them.
///
/// # Semantics
///
/// Every batch is drawn independently of the others, exactly as CGD's loop: pick a class
/// uniformly among those not yet in this batch, add `min(m, class size)` distinct samples of it
/// chosen uniformly at random, and repeat until the batch holds at least `batch_size` items;
/// then truncate to `batch_size` (only the last class added can lose samples) and shuffle the
/// batch. An epoch is `floor(N / batch_size)` such batches.
///
/// Because batches are independent, an epoch neither covers the dataset nor avoids repeats
/// across batches: small classes are drawn as often as large ones, so a skewed dataset's large
/// classes are under-visited (the usual complaint about pytorch-metric-learning's sampler of
/// the same name). [`CoveringMPerClassSampler`](crate::CoveringMPerClassSampler) is the variant
/// that visits every sample once per epoch.
#[derive(Debug, Clone)]
pub struct MPerClassSampler {
    classes: Vec<Vec<usize>>,
    batch_size: usize,
    m: usize,
    batches: usize,
    seed: u64,
}

impl MPerClassSampler {
    /// CGD's default batch size.
    pub const DEFAULT_BATCH_SIZE: usize = 128;
    /// CGD's default samples per class.
    pub const DEFAULT_M: usize = 4;

    /// A sampler over `labels` (the class id of each dataset index; any ids, not necessarily
    /// contiguous).
    ///
    /// # Semantics
    ///
    /// Refuses an empty dataset, `batch_size == 0`, `m == 0`, a `batch_size` that is not a
    /// multiple of `m` (CGD asserts the same), and datasets whose classes together offer
    /// `sum_c min(|c|, m) < batch_size` samples, on which CGD's loop would never end.
    pub fn new(
        labels: &[usize],
        batch_size: usize,
        m: usize,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        check_batch_layout(NAME, labels.len(), batch_size, m)?;
        let classes = group_by_class(labels);
        let available: usize = classes.iter().map(|c| c.len().min(m)).sum();
        if available < batch_size {
            return Err(SamplerError::TooFewSamplesPerBatch {
                sampler: NAME,
                classes: classes.len(),
                available,
                per_class: m,
                batch_size,
            });
        }
        Ok(Self {
            batches: labels.len() / batch_size,
            classes,
            batch_size,
            m,
            seed,
        })
    }

    /// Items per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The most samples one class contributes to a batch.
    pub fn m(&self) -> usize {
        self.m
    }
}

impl BatchSampler for MPerClassSampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.seed, epoch);
        let n_classes = self.classes.len();
        // Scratch copies permuted in place: a partial Fisher-Yates over any arrangement still
        // draws a uniform subset, so they need no reset between batches.
        let mut class_order: Vec<usize> = (0..n_classes).collect();
        let mut pools = self.classes.clone();
        let mut out = Vec::with_capacity(self.batches);
        for _ in 0..self.batches {
            let mut batch = Vec::with_capacity(self.batch_size + self.m);
            let mut used = 0;
            // `new` checked that all classes together fill a batch, so `used < n_classes`
            // whenever the batch is short; the guard only keeps this loop panic-free.
            while batch.len() < self.batch_size && used < n_classes {
                let pick = rng.random_range(used..n_classes);
                class_order.swap(used, pick);
                let pool = &mut pools[class_order[used]];
                used += 1;
                let take = self.m.min(pool.len());
                for t in 0..take {
                    let r = rng.random_range(t..pool.len());
                    pool.swap(t, r);
                }
                batch.extend_from_slice(&pool[..take]);
            }
            batch.truncate(self.batch_size);
            batch.shuffle(&mut rng);
            out.push(batch);
        }
        out
    }

    fn batches_per_epoch(&self) -> usize {
        self.batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_inputs() {
        let labels = [0, 0, 1, 1, 2, 2];
        assert_eq!(
            MPerClassSampler::new(&[], 4, 2, 0).unwrap_err(),
            SamplerError::EmptyDataset { sampler: NAME }
        );
        assert_eq!(
            MPerClassSampler::new(&labels, 0, 2, 0).unwrap_err(),
            SamplerError::ZeroBatchSize { sampler: NAME }
        );
        assert_eq!(
            MPerClassSampler::new(&labels, 4, 0, 0).unwrap_err(),
            SamplerError::ZeroPerClass { sampler: NAME }
        );
        assert_eq!(
            MPerClassSampler::new(&labels, 5, 2, 0).unwrap_err(),
            SamplerError::NotDivisible {
                sampler: NAME,
                batch_size: 5,
                per_class: 2
            }
        );
        // Three classes of two samples offer 6 < 8 even with m = 4.
        let err = MPerClassSampler::new(&labels, 8, 4, 0).unwrap_err();
        assert_eq!(
            err,
            SamplerError::TooFewSamplesPerBatch {
                sampler: NAME,
                classes: 3,
                available: 6,
                per_class: 4,
                batch_size: 8
            }
        );
        assert!(err.to_string().contains("only 6 samples"));
        assert!(MPerClassSampler::new(&labels, 6, 2, 0).is_ok());
    }

    #[test]
    fn whole_small_dataset_in_one_batch() {
        // Exactly enough: every class must be taken whole.
        let labels = [5, 5, 9, 9, 9, 1];
        let s = MPerClassSampler::new(&labels, 6, 3, 3).unwrap();
        assert_eq!(s.batches_per_epoch(), 1);
        let mut batch = s.epoch(0).remove(0);
        batch.sort_unstable();
        assert_eq!(batch, vec![0, 1, 2, 3, 4, 5]);
    }
}
