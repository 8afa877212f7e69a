//! Batches of view pairs: a ground image and the aerial image of the same place.

use std::sync::Arc;

use metron_core::split_seed;
use metron_datasets::{Batch, ImageBatch, ImageSource, LoadBatch, Pipeline, decode_batch};

/// `ground.images[i]` and `aerial.images[i]` show the same place.
#[derive(Debug, Clone)]
pub struct ViewPairBatch {
    /// Ground views, `[B, 3, Hg, Wg]`.
    pub ground: ImageBatch,
    /// Aerial views, `[B, 3, Ha, Wa]`, in the order of `ground`.
    pub aerial: ImageBatch,
}

impl Batch for ViewPairBatch {
    fn items(&self) -> usize {
        self.ground.len()
    }
}

/// Loads pair `i` as ground image `i` and aerial image `aerial_of[i]` (`i` when `aerial_of` is
/// empty), each through its own pipeline.
///
/// With `shared_shift` (CVUSA's `aug`, for polar aerial images), one random circular shift of
/// the columns is drawn per pair and applied to both views, so that the pair stays aligned
/// while the heading changes.
pub struct ViewPairs {
    /// Ground images.
    pub ground: Arc<dyn ImageSource>,
    /// Aerial images.
    pub aerial: Arc<dyn ImageSource>,
    /// Pair `i`'s aerial image (VIGOR's positive satellite); empty: pair `i` is aerial `i`.
    pub aerial_of: Vec<usize>,
    /// The ground images' transform (normalisation included).
    pub ground_pipeline: Arc<Pipeline>,
    /// The aerial images' transform (normalisation included).
    pub aerial_pipeline: Arc<Pipeline>,
    /// Rotate both views of a pair by one random heading.
    pub shared_shift: bool,
}

impl std::fmt::Debug for ViewPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewPairs")
            .field("pairs", &self.ground.len())
            .field("shared_shift", &self.shared_shift)
            .finish_non_exhaustive()
    }
}

/// Rotates every image of a planar `[B, 3, H, W]` batch by `shifts[b]` columns to the left.
fn roll_batch_columns(batch: &mut ImageBatch, shifts: &[usize]) {
    let [_, c, h, w] = batch.shape;
    let mut row = vec![0.0f32; w];
    for (b, &shift) in shifts.iter().enumerate() {
        let shift = shift % w.max(1);
        if shift == 0 {
            continue;
        }
        for plane in 0..c * h {
            let start = (b * c * h + plane) * w;
            let line = &mut batch.images[start..start + w];
            row.copy_from_slice(line);
            for (x, v) in line.iter_mut().enumerate() {
                *v = row[(x + shift) % w];
            }
        }
    }
}

impl LoadBatch for ViewPairs {
    type Batch = ViewPairBatch;

    fn len(&self) -> usize {
        self.ground.len()
    }

    fn load(&self, indices: &[usize], seeds: &[u64]) -> metron_datasets::Result<ViewPairBatch> {
        let aerial_indices: Vec<usize> = if self.aerial_of.is_empty() {
            indices.to_vec()
        } else {
            indices.iter().map(|&i| self.aerial_of[i]).collect()
        };
        let aerial_seeds: Vec<u64> = seeds.iter().map(|&s| split_seed(s, 1)).collect();
        // A pair is two images or nothing: a corrupt one stops the epoch with its name.
        let mut ground = decode_batch(&*self.ground, indices, seeds, &self.ground_pipeline, false)?;
        let mut aerial = decode_batch(
            &*self.aerial,
            &aerial_indices,
            &aerial_seeds,
            &self.aerial_pipeline,
            false,
        )?;
        if self.shared_shift {
            let width = ground.shape[3];
            let shifts: Vec<usize> = seeds
                .iter()
                .map(|&s| (split_seed(s, 2) % width.max(1) as u64) as usize)
                .collect();
            if aerial.shape[3] != width {
                return Err(metron_datasets::DatasetError::Layout {
                    path: self
                        .aerial
                        .name(aerial_indices.first().copied().unwrap_or(0)),
                    what: format!(
                        "a shared heading needs views of one width (polar aerial images), got \
                         ground {width} and aerial {}",
                        aerial.shape[3]
                    ),
                });
            }
            roll_batch_columns(&mut ground, &shifts);
            roll_batch_columns(&mut aerial, &shifts);
        }
        Ok(ViewPairBatch { ground, aerial })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use metron_datasets::InMemoryImages;

    fn striped(n: usize) -> Arc<InMemoryImages> {
        let images = (0..n)
            .map(|i| RgbImage::from_fn(8, 2, move |x, _| Rgb([(10 * x + i as u32) as u8; 3])))
            .collect();
        Arc::new(InMemoryImages::new("stripes", images, vec![0; n]).unwrap())
    }

    #[test]
    fn a_shared_heading_rotates_both_views_alike_and_pairs_follow_aerial_of() {
        let pipeline = Arc::new(Pipeline::new(vec![]));
        let pairs = ViewPairs {
            ground: striped(3),
            aerial: striped(3),
            aerial_of: vec![2, 0, 1],
            ground_pipeline: pipeline.clone(),
            aerial_pipeline: pipeline,
            shared_shift: true,
        };
        let b = pairs.load(&[0, 1], &[11, 12]).unwrap();
        assert_eq!(b.aerial.indices, vec![2, 0]);
        let row = |batch: &ImageBatch, item: usize| batch.images[item * 48..item * 48 + 8].to_vec();
        for item in 0..2 {
            let (g, a) = (row(&b.ground, item), row(&b.aerial, item));
            // Each row is 10 x + image index (over 255): equal shifts keep equal differences.
            let shift_g = g
                .iter()
                .position(|&v| v == g.iter().copied().fold(f32::MAX, f32::min));
            let shift_a = a
                .iter()
                .position(|&v| v == a.iter().copied().fold(f32::MAX, f32::min));
            assert_eq!(shift_g, shift_a);
        }
        let again = pairs.load(&[0, 1], &[11, 12]).unwrap();
        assert_eq!(again.ground.images, b.ground.images);
    }
}
