//! Seeded k-means (Lloyd's algorithm) for the NMI / AMI of an embedding.
//!
//! Initialisation samples distinct points at random, as faiss (which pytorch-metric-learning
//! uses) does; k-means++ would cost O(N * k * d) serial work before the first iteration, too
//! much for SOP's 11,316 classes. Assignment steps reuse the blocked kNN engine, so memory stays
//! O((N + k) * d).

use ndarray::{Array2, ArrayView2};
use rand::seq::index::sample;

use crate::knn::{KnnOptions, knn};
use crate::scan::Compute;
use crate::{Error, Real, Result, Similarity};

/// Settings of [`kmeans`].
#[derive(Debug, Clone)]
pub struct KMeansConfig {
    pub n_clusters: usize,
    pub seed: u64,
    /// Upper bound on Lloyd iterations; it stops earlier once no point changes cluster.
    pub max_iter: usize,
    pub compute: Compute,
}

impl KMeansConfig {
    pub fn new(n_clusters: usize, seed: u64) -> Self {
        KMeansConfig {
            n_clusters,
            seed,
            max_iter: 100,
            compute: Compute::Cpu,
        }
    }
}

/// A k-means solution.
#[derive(Debug, Clone)]
pub struct KMeansResult {
    /// Cluster of each point, `0..n_clusters`.
    pub assignment: Vec<i64>,
    /// `[n_clusters, d]`.
    pub centroids: Array2<f64>,
    pub iterations: usize,
    /// Sum of squared distances of the points to their centroids.
    pub inertia: f64,
}

/// Clusters the rows of `x` into `config.n_clusters` groups; the same seed gives the same
/// clustering.
///
/// # Shapes
/// - `x`: `[N, d]` with `N >= n_clusters`.
pub fn kmeans<T: Real>(x: ArrayView2<'_, T>, config: &KMeansConfig) -> Result<KMeansResult> {
    let (n, d) = x.dim();
    let k = config.n_clusters;
    if k == 0 || k > n {
        return Err(Error::InvalidArgument(format!(
            "k-means needs 1 <= clusters <= points, got {k} clusters for {n} points"
        )));
    }
    let mut rng = metron_core::rng_from_seed(config.seed);
    let mut centroids = Array2::from_elem((k, d), T::ZERO);
    for (c, i) in sample(&mut rng, n, k).into_iter().enumerate() {
        centroids.row_mut(c).assign(&x.row(i));
    }
    let options = KnnOptions::new(Similarity::SquaredL2).with_compute(config.compute.clone());
    let mut assignment = vec![usize::MAX; n];
    let mut iterations = 0;
    let mut inertia;
    loop {
        let nn = knn(x, centroids.view(), 1, &options)?;
        iterations += 1;
        let changed = nn
            .indices
            .iter()
            .zip(&assignment)
            .filter(|(a, b)| a != b)
            .count();
        assignment.copy_from_slice(&nn.indices);
        inertia = nn.values.iter().map(|v| v.to_f64()).sum::<f64>();
        if changed == 0 || iterations >= config.max_iter {
            break;
        }
        // Update step in f64: means of many points lose digits in f32.
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for (i, &c) in assignment.iter().enumerate() {
            counts[c] += 1;
            for (s, v) in sums.row_mut(c).iter_mut().zip(x.row(i)) {
                *s += v.to_f64();
            }
        }
        // An empty cluster takes over the point farthest from its centroid, the usual
        // deterministic repair.
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| {
            nn.values[b]
                .partial_cmp(&nn.values[a])
                .expect("finite")
                .then(a.cmp(&b))
        });
        let mut far = far.into_iter();
        for ((mut centroid, &count), sum) in centroids
            .outer_iter_mut()
            .zip(&counts)
            .zip(sums.outer_iter())
        {
            if count == 0 {
                if let Some(i) = far.next() {
                    centroid.iter_mut().zip(x.row(i)).for_each(|(dst, v)| *dst = *v);
                }
                continue;
            }
            let inv = 1.0 / count as f64;
            centroid
                .iter_mut()
                .zip(sum)
                .for_each(|(dst, s)| *dst = T::from_f64(s * inv));
        }
    }
    Ok(KMeansResult {
        assignment: assignment.into_iter().map(|c| c as i64).collect(),
        centroids: centroids.mapv(|v| v.to_f64()),
        iterations,
        inertia,
    })
}
