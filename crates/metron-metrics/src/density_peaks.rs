//! Density-peak clustering on an exact kNN graph: the inference rule of Hi-LANDER (Xing et al.,
//! "Learning Hierarchical Graph Neural Networks for Image Clustering", ICCV 2021), which the
//! PSS paper clusters with, run on raw cosine similarities instead of the edge probabilities of
//! its trained GNN. It needs no number of clusters, which is why it stands in for Hi-LANDER
//! rather than k-means.
//!
//! Per level, every node gets a density (the mean similarity to its k neighbours) and links to
//! its most similar denser neighbour; the trees of these links are the clusters. Each cluster
//! then becomes a node of the next level, until a level merges nothing. Memory stays O(N k):
//! the kNN scan works in blocks and only the neighbour lists are kept.

use ndarray::{Array2, ArrayView2};

use crate::knn::{KnnOptions, Neighbors, knn, knn_self};
use crate::{Error, Real, Result, Similarity};

/// Settings of [`density_peak_clusters`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DensityPeakConfig {
    /// Neighbours per node in the kNN graph of every level; clamped to the node count less one.
    pub k: usize,
    /// A node links only to neighbours at cosine similarity `>=` this: the stand-in for
    /// Hi-LANDER's edge-probability threshold, and what keeps later levels from merging
    /// distinct clusters. The default 0.0 blocks only links to dissimilar (negative cosine)
    /// neighbours.
    pub link_threshold: f64,
    /// Most levels to build, at least 1: level 1 clusters the rows, each later level the
    /// clusters of the level before.
    pub levels: usize,
}

impl DensityPeakConfig {
    /// `k` neighbours, link threshold 0.0, at most 10 levels.
    pub fn new(k: usize) -> Self {
        DensityPeakConfig {
            k,
            link_threshold: 0.0,
            levels: 10,
        }
    }

    /// Links only neighbours at cosine similarity `>= link_threshold`.
    pub fn with_link_threshold(mut self, link_threshold: f64) -> Self {
        self.link_threshold = link_threshold;
        self
    }

    /// Builds at most `levels` levels (1: the row-level clustering alone).
    pub fn with_levels(mut self, levels: usize) -> Self {
        self.levels = levels;
        self
    }
}

impl Default for DensityPeakConfig {
    /// 10 neighbours, link threshold 0.0, at most 10 levels.
    fn default() -> Self {
        DensityPeakConfig::new(10)
    }
}

/// The clustering found by [`density_peak_clusters`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DensityPeakClusters {
    /// Cluster of each row, `0..num_clusters`, numbered in order of each cluster's first row.
    pub labels: Vec<usize>,
    /// Number of clusters.
    pub num_clusters: usize,
    /// Level-1 density of each row: the mean cosine similarity to its k nearest other rows
    /// (0.0 for a lone row, which has none).
    pub density: Vec<f64>,
    /// Levels that were built and merged something, at least 1 (level 1 always counts).
    pub levels: usize,
}

/// Clusters the rows of `embeddings` by density-peak linking on their cosine kNN graph.
///
/// Level 1: node i's density is `d_i = mean_j s_ij` over its k nearest neighbours (Hi-LANDER's
/// `(1/k) sum_j (2 p_ij - 1) a_ij` with every edge probability `p_ij = 1`), and i links to the
/// most similar neighbour j with `s_ij >= link_threshold` that is denser (`d_j > d_i`, or equal
/// with `j < i`, so that links can never form a cycle); a node without one is a peak, and each
/// peak's tree is a cluster. Later levels treat each cluster as a node, with the mean of its
/// members' L2-normalised rows as feature and the mean of their level-1 densities as density
/// (densities are not recomputed, as in Hi-LANDER), and link again. It stops after
/// `config.levels` levels, at one cluster, or at a level that merges nothing.
///
/// # Shapes
/// - `embeddings`: `[N, d]`, `N >= 1`; rows need not be normalised but must be non-zero.
///
/// Errors on an empty input, `k == 0`, `levels == 0`, and NaN/Inf or zero rows.
pub fn density_peak_clusters<T: Real>(
    embeddings: ArrayView2<'_, T>,
    config: &DensityPeakConfig,
) -> Result<DensityPeakClusters> {
    let n = embeddings.nrows();
    if n == 0 {
        return Err(Error::EmptySet { set: "embeddings" });
    }
    if config.k == 0 {
        return Err(Error::KZero);
    }
    if config.levels == 0 {
        return Err(Error::InvalidArgument(
            "density peaks: levels must be at least 1".to_string(),
        ));
    }
    let options = KnnOptions::new(Similarity::Cosine);
    if n == 1 {
        // A lone row has no neighbours, so knn_self cannot run; searching it against itself
        // rejects NaN/Inf and zero rows just as a larger input would be rejected.
        knn(embeddings, embeddings, 1, &options)?;
        return Ok(DensityPeakClusters {
            labels: vec![0],
            num_clusters: 1,
            density: vec![0.0],
            levels: 1,
        });
    }
    let nn = knn_self(embeddings, config.k.min(n - 1), &options)?;
    let density: Vec<f64> = (0..n).map(|i| mean(nn.row_values(i))).collect();
    let (mut labels, mut num_clusters) = link_level(&nn, &density, config.link_threshold);
    drop(nn);
    let mut levels = 1;
    if num_clusters > 1 && config.levels > 1 {
        // knn_self has rejected zero and non-finite rows, so these are finite.
        let inv_norm: Vec<f64> = embeddings
            .outer_iter()
            .map(|row| {
                1.0 / row
                    .iter()
                    .map(|v| v.to_f64() * v.to_f64())
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        for _ in 1..config.levels {
            if num_clusters == 1 {
                break;
            }
            let (features, node_density) =
                cluster_nodes(embeddings, &inv_norm, &density, &labels, num_clusters);
            // Members whose directions cancel exactly leave a cluster with no direction to
            // compare: the hierarchy ends at the level that produced it.
            if features.outer_iter().any(|f| f.iter().all(|&v| v == 0.0)) {
                break;
            }
            let nn = knn_self(features.view(), config.k.min(num_clusters - 1), &options)?;
            let (merged, count) = link_level(&nn, &node_density, config.link_threshold);
            if count == num_clusters {
                break;
            }
            // Cluster nodes are numbered by first member, so the merged ids are again
            // numbered by first row.
            for label in &mut labels {
                *label = merged[*label];
            }
            num_clusters = count;
            levels += 1;
        }
    }
    Ok(DensityPeakClusters {
        labels,
        num_clusters,
        density,
        levels,
    })
}

/// Mean of one kNN row's similarities, accumulated in f64.
fn mean<V: Real>(values: &[V]) -> f64 {
    values.iter().map(|v| v.to_f64()).sum::<f64>() / values.len() as f64
}

/// One level: every node links to its most similar denser neighbour at similarity
/// `>= threshold`; returns the cluster of each node (the tree it is in) and the cluster count.
fn link_level<V: Real>(nn: &Neighbors<V>, density: &[f64], threshold: f64) -> (Vec<usize>, usize) {
    let denser =
        |j: usize, i: usize| density[j] > density[i] || (density[j] == density[i] && j < i);
    // kNN rows are sorted by similarity, so the first qualifying neighbour is the most similar.
    let parent: Vec<usize> = (0..density.len())
        .map(|i| {
            nn.row(i)
                .iter()
                .zip(nn.row_values(i))
                .find(|&(&j, &s)| s.to_f64() >= threshold && denser(j, i))
                .map_or(i, |(&j, _)| j)
        })
        .collect();
    tree_labels(&parent)
}

/// The tree of each node of a parent-pointer forest (roots point to themselves), numbered in
/// order of each tree's lowest node, and the number of trees.
///
/// Iterative with memoised roots, so a long chain costs O(length) once and no stack depth.
fn tree_labels(parent: &[usize]) -> (Vec<usize>, usize) {
    const UNSET: usize = usize::MAX;
    let n = parent.len();
    let mut root = vec![UNSET; n];
    let mut path = Vec::new();
    for start in 0..n {
        let mut v = start;
        while root[v] == UNSET && parent[v] != v {
            path.push(v);
            v = parent[v];
        }
        let r = if root[v] == UNSET { v } else { root[v] };
        root[v] = r;
        for u in path.drain(..) {
            root[u] = r;
        }
    }
    let mut id = vec![UNSET; n];
    let mut count = 0;
    let labels: Vec<usize> = root
        .iter()
        .map(|&r| {
            if id[r] == UNSET {
                id[r] = count;
                count += 1;
            }
            id[r]
        })
        .collect();
    (labels, count)
}

/// The nodes of the next level, one per cluster: the mean of its members' unit-length rows
/// (`[num_clusters, d]`) and the mean of their level-1 densities.
fn cluster_nodes<T: Real>(
    embeddings: ArrayView2<'_, T>,
    inv_norm: &[f64],
    density: &[f64],
    labels: &[usize],
    num_clusters: usize,
) -> (Array2<f64>, Vec<f64>) {
    let mut features = Array2::<f64>::zeros((num_clusters, embeddings.ncols()));
    let mut node_density = vec![0.0f64; num_clusters];
    let mut count = vec![0usize; num_clusters];
    for (i, (row, &c)) in embeddings.outer_iter().zip(labels).enumerate() {
        let scale = inv_norm[i];
        for (f, v) in features.row_mut(c).iter_mut().zip(row) {
            *f += v.to_f64() * scale;
        }
        node_density[c] += density[i];
        count[c] += 1;
    }
    for ((mut f, d), &m) in features
        .outer_iter_mut()
        .zip(node_density.iter_mut())
        .zip(&count)
    {
        let inv = 1.0 / m as f64;
        f.mapv_inplace(|v| v * inv);
        *d *= inv;
    }
    (features, node_density)
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, array};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::{nmi, pairwise_scores};

    /// Unit vectors in the plane at the given angles (degrees): cosine similarity is then the
    /// cosine of the angle between them, which the tests compute independently.
    fn on_circle(degrees: &[f64]) -> Array2<f64> {
        Array2::from_shape_fn((degrees.len(), 2), |(i, j)| {
            let a = degrees[i].to_radians();
            if j == 0 { a.cos() } else { a.sin() }
        })
    }

    fn cos_deg(degrees: f64) -> f64 {
        degrees.to_radians().cos()
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} != {want:?}");
        }
    }

    /// `CLASSES` orthonormal directions in 16-d (Gram-Schmidt of random vectors, so the
    /// classes are separated by construction, not by luck of the seed) with 30 noisy points
    /// each; row i belongs to class `i % CLASSES`.
    fn planted(seed: u64) -> (Array2<f64>, Vec<i64>) {
        const CLASSES: usize = 5;
        const PER_CLASS: usize = 30;
        const D: usize = 16;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut centres: Vec<Vec<f64>> = Vec::new();
        while centres.len() < CLASSES {
            let mut v: Vec<f64> = (0..D).map(|_| rng.random_range(-1.0..1.0)).collect();
            for c in &centres {
                let dot: f64 = v.iter().zip(c).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(c).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            centres.push(v.into_iter().map(|a| a / norm).collect());
        }
        let n = CLASSES * PER_CLASS;
        let x = Array2::from_shape_fn((n, D), |(i, j)| {
            centres[i % CLASSES][j] + rng.random_range(-0.1..0.1)
        });
        let labels = (0..n).map(|i| (i % CLASSES) as i64).collect();
        (x, labels)
    }

    fn as_i64(labels: &[usize]) -> Vec<i64> {
        labels.iter().map(|&l| l as i64).collect()
    }

    #[test]
    fn recovers_planted_clusters() {
        let (x, planted) = planted(7);
        // Class directions are orthogonal and points within ~15 degrees of theirs, so 0.5
        // separates within-class from between-class links at every level.
        let config = DensityPeakConfig::new(10).with_link_threshold(0.5);
        let r = density_peak_clusters(x.view(), &config).unwrap();
        assert_eq!(r.num_clusters, 5);
        let found = as_i64(&r.labels);
        assert!(nmi(&planted, &found).unwrap() > 0.999);
        // Both are numbered by first row, and class c's first row is row c.
        assert_eq!(found, planted);

        // Level 1 alone, with the default threshold: kNN rows stay within a class, so its
        // trees may split a class but never mix two.
        let one =
            density_peak_clusters(x.view(), &DensityPeakConfig::new(10).with_levels(1)).unwrap();
        assert_eq!(one.levels, 1);
        assert!(one.num_clusters >= 5);
        let s = pairwise_scores(&planted, &as_i64(&one.labels)).unwrap();
        assert_eq!(s.precision, 1.0);
    }

    #[test]
    fn hand_example_densities_and_links() {
        // Angles 0, 20, 30, 80. With k = 2 the neighbours are 0 -> {20, 30}, 20 -> {30, 0},
        // 30 -> {20, 0}, 80 -> {30, 20}.
        let x = on_circle(&[0.0, 20.0, 30.0, 80.0]);
        let density = [
            (cos_deg(20.0) + cos_deg(30.0)) / 2.0, // 0.903
            (cos_deg(10.0) + cos_deg(20.0)) / 2.0, // 0.962
            (cos_deg(10.0) + cos_deg(30.0)) / 2.0, // 0.925
            (cos_deg(50.0) + cos_deg(60.0)) / 2.0, // 0.571
        ];
        // Density order 1 > 2 > 0 > 3: 0 and 2 link to 1, and 3 to 2 (its most similar denser
        // neighbour, at cos 50 = 0.64).
        let r = density_peak_clusters(x.view(), &DensityPeakConfig::new(2)).unwrap();
        assert_eq!(r.labels, vec![0, 0, 0, 0]);
        assert_eq!(r.num_clusters, 1);
        assert_eq!(r.levels, 1);
        assert_close(&r.density, &density);

        // A threshold of 0.7 cuts 3's links (0.64 and 0.5), so 3 is a peak of its own; at
        // level 2 the two clusters (mean directions ~16.7 and 80 degrees, cos ~0.45) stay apart.
        let config = DensityPeakConfig::new(2).with_link_threshold(0.7);
        let r = density_peak_clusters(x.view(), &config).unwrap();
        assert_eq!(r.labels, vec![0, 0, 0, 1]);
        assert_eq!(r.num_clusters, 2);
        assert_eq!(r.levels, 1);
        assert_close(&r.density, &density);
    }

    #[test]
    fn higher_levels_merge_clusters_by_density() {
        // Pairs at 0/4, 20/26 and 90/98 degrees. With k = 1 each point's neighbour is its
        // pair-mate, so level 1 gives the pairs, with densities cos 4 > cos 6 > cos 8.
        let x = on_circle(&[0.0, 4.0, 20.0, 26.0, 90.0, 98.0]);
        let density = [
            cos_deg(4.0),
            cos_deg(4.0),
            cos_deg(6.0),
            cos_deg(6.0),
            cos_deg(8.0),
            cos_deg(8.0),
        ];
        let one =
            density_peak_clusters(x.view(), &DensityPeakConfig::new(1).with_levels(1)).unwrap();
        assert_eq!(one.labels, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!((one.num_clusters, one.levels), (3, 1));
        assert_close(&one.density, &density);

        // Level 2 nodes sit at 2, 23 and 94 degrees. The first is the densest; the second
        // links to it (cos 21), the third to the second (cos 71 = 0.33, its nearest).
        let all = density_peak_clusters(x.view(), &DensityPeakConfig::new(1)).unwrap();
        assert_eq!(all.labels, vec![0; 6]);
        assert_eq!((all.num_clusters, all.levels), (1, 2));
        assert_close(&all.density, &density);

        // A threshold of 0.5 keeps the third apart; level 3 (12.5 vs 94 degrees) merges
        // nothing, so two levels count.
        let config = DensityPeakConfig::new(1).with_link_threshold(0.5);
        let cut = density_peak_clusters(x.view(), &config).unwrap();
        assert_eq!(cut.labels, vec![0, 0, 0, 0, 1, 1]);
        assert_eq!((cut.num_clusters, cut.levels), (2, 2));
    }

    #[test]
    fn threshold_above_every_similarity_leaves_singletons() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = Array2::from_shape_fn((20, 8), |_| rng.random_range(-1.0f32..1.0));
        let config = DensityPeakConfig::new(5).with_link_threshold(1.5);
        let r = density_peak_clusters(x.view(), &config).unwrap();
        assert_eq!(r.labels, (0..20).collect::<Vec<_>>());
        assert_eq!((r.num_clusters, r.levels), (20, 1));
    }

    #[test]
    fn single_row_and_errors() {
        let r = density_peak_clusters(array![[0.5f64, 2.0]].view(), &DensityPeakConfig::default())
            .unwrap();
        assert_eq!(r.labels, vec![0]);
        assert_eq!((r.num_clusters, r.levels), (1, 1));

        let empty = Array2::<f64>::zeros((0, 3));
        assert!(matches!(
            density_peak_clusters(empty.view(), &DensityPeakConfig::default()),
            Err(Error::EmptySet { .. })
        ));
        let x = on_circle(&[0.0, 10.0, 20.0]);
        assert!(matches!(
            density_peak_clusters(x.view(), &DensityPeakConfig::new(0)),
            Err(Error::KZero)
        ));
        assert!(matches!(
            density_peak_clusters(x.view(), &DensityPeakConfig::new(2).with_levels(0)),
            Err(Error::InvalidArgument(_))
        ));
        let zero = array![[1.0f64, 0.0], [0.0, 0.0]];
        assert!(matches!(
            density_peak_clusters(zero.view(), &DensityPeakConfig::default()),
            Err(Error::ZeroNorm { row: 1, .. })
        ));
        let nan = array![[f64::NAN, 0.0]];
        assert!(matches!(
            density_peak_clusters(nan.view(), &DensityPeakConfig::default()),
            Err(Error::NonFinite { row: 0, .. })
        ));
    }

    #[test]
    fn config_serde_round_trip_and_defaults() {
        let config = DensityPeakConfig::new(7)
            .with_link_threshold(0.25)
            .with_levels(3);
        let json = serde_json::to_string(&config).unwrap();
        let back: DensityPeakConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        let partial: DensityPeakConfig = serde_json::from_str(r#"{"k": 4}"#).unwrap();
        assert_eq!(partial, DensityPeakConfig::new(4));
    }
}
