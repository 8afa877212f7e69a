//! Seeded k-means (Lloyd's algorithm) for the NMI / AMI of an embedding.
//!
//! Initialisation is k-means++ (D^2 sampling), which avoids the bad local optima that random
//! seeding falls into even on well separated data. Its cost is k passes over the data, so for
//! very large problems (N * k above [`KMEANS_PP_LIMIT`], e.g. SOP's 11,316 classes) it falls
//! back to sampling distinct points at random, as faiss (which pytorch-metric-learning uses)
//! does. Assignment steps reuse the blocked kNN engine, so memory stays O((N + k) * d).

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand::seq::index::sample;
use rayon::prelude::*;

use crate::knn::{KnnOptions, knn};
use crate::scan::Compute;
use crate::{Error, Real, Result, Similarity};

/// Above this many point-centre pairs, initialisation samples points at random instead of
/// running k-means++.
pub const KMEANS_PP_LIMIT: usize = 50_000_000;

/// Squared distance accumulated in f64.
fn dist_sq<T: Real>(a: ndarray::ArrayView1<'_, T>, b: ndarray::ArrayView1<'_, T>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x.to_f64() - y.to_f64();
            d * d
        })
        .sum()
}

/// k-means++ seeding: each next centre is drawn with probability proportional to the squared
/// distance to the nearest centre chosen so far.
fn kmeans_pp<T: Real>(x: ArrayView2<'_, T>, k: usize, rng: &mut metron_core::Rng) -> Vec<usize> {
    let n = x.nrows();
    let mut chosen = vec![rng.random_range(0..n)];
    let mut nearest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| dist_sq(x.row(i), x.row(chosen[0])))
        .collect();
    while chosen.len() < k {
        let total: f64 = nearest.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                if target < d {
                    pick = i;
                    break;
                }
                target -= d;
            }
            pick
        } else {
            // Fewer distinct points than clusters: any unchosen point will do.
            (0..n).find(|i| !chosen.contains(i)).unwrap_or(0)
        };
        chosen.push(next);
        let c = x.row(next);
        nearest
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, d)| *d = d.min(dist_sq(x.row(i), c)));
    }
    chosen
}

/// Settings of [`kmeans`].
#[derive(Debug, Clone)]
pub struct KMeansConfig {
    /// Number of clusters k, `1..=N`.
    pub n_clusters: usize,
    /// Seed of the initial centroids (k-means++ while N * k <= [`KMEANS_PP_LIMIT`], a random
    /// sample beyond).
    pub seed: u64,
    /// Upper bound on Lloyd iterations; it stops earlier once no point changes cluster.
    pub max_iter: usize,
    /// Independent restarts (seeds derived from `seed`); the lowest-inertia one is kept.
    pub n_init: usize,
    /// Where the point-to-centroid distances of the assignment step are computed.
    pub compute: Compute,
}

impl KMeansConfig {
    /// `n_clusters` clusters from `seed`: at most 100 iterations, one run, on the CPU.
    pub fn new(n_clusters: usize, seed: u64) -> Self {
        KMeansConfig {
            n_clusters,
            seed,
            max_iter: 100,
            n_init: 1,
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
    /// Assignment steps the kept run made, at most `max_iter`.
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
    let mut best: Option<KMeansResult> = None;
    for run in 0..config.n_init.max(1) {
        let seed = if run == 0 {
            config.seed
        } else {
            metron_core::split_seed(config.seed, run as u64)
        };
        let result = kmeans_once(x, config, seed)?;
        if best.as_ref().is_none_or(|b| result.inertia < b.inertia) {
            best = Some(result);
        }
    }
    Ok(best.expect("at least one run"))
}

fn kmeans_once<T: Real>(
    x: ArrayView2<'_, T>,
    config: &KMeansConfig,
    seed: u64,
) -> Result<KMeansResult> {
    let (n, d) = x.dim();
    let k = config.n_clusters;
    if k == 0 || k > n {
        return Err(Error::InvalidArgument(format!(
            "k-means needs 1 <= clusters <= points, got {k} clusters for {n} points"
        )));
    }
    let mut rng = metron_core::rng_from_seed(seed);
    let mut centroids = Array2::from_elem((k, d), T::ZERO);
    let seeds = if n.saturating_mul(k) <= KMEANS_PP_LIMIT {
        kmeans_pp(x, k, &mut rng)
    } else {
        sample(&mut rng, n, k).into_vec()
    };
    for (c, i) in seeds.into_iter().enumerate() {
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
        // deterministic repair; the ranking is only built when some cluster is empty.
        let mut far: Vec<usize> = Vec::new();
        if counts.contains(&0) {
            far = (0..n).collect();
            far.sort_by(|&a, &b| {
                nn.values[b]
                    .partial_cmp(&nn.values[a])
                    .expect("finite")
                    .then(a.cmp(&b))
            });
        }
        let mut far = far.into_iter();
        for ((mut centroid, &count), sum) in centroids
            .outer_iter_mut()
            .zip(&counts)
            .zip(sums.outer_iter())
        {
            if count == 0 {
                if let Some(i) = far.next() {
                    centroid
                        .iter_mut()
                        .zip(x.row(i))
                        .for_each(|(dst, v)| *dst = *v);
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
