//! One call that evaluates a retrieval embedding the way papers report it.

use std::collections::HashSet;

use ndarray::ArrayView2;

use crate::average_precision::average_precisions;
use crate::clustering::{ami, nmi};
use crate::kmeans::{KMeansConfig, kmeans};
use crate::knn::Neighbors;
use crate::knn::{KnnOptions, knn_with_engine};
use crate::retrieval::{RPrecisionSums, r_precision_sums, recall_at_k, relevant_counts};
use crate::scan::{Blocking, Compute, Progress, ScoreEngine};
use crate::{Error, Real, Result, Similarity};

/// What [`evaluate_retrieval`] computes and how.
#[derive(Debug, Clone)]
pub struct RetrievalConfig {
    /// The K of Recall@K (default 1, 2, 4, 8 as in CGD and most DML papers).
    pub ks: Vec<usize>,
    /// How queries and gallery items are compared (default cosine).
    pub similarity: Similarity,
    /// Where the score GEMMs run (default CPU).
    pub compute: Compute,
    /// Block sizes of the kNN scan (default 1024 x 1024).
    pub blocking: Blocking,
    /// `Some(seed)`: also cluster the queries with k-means (k = number of distinct labels)
    /// and report NMI and AMI.
    pub clustering_seed: Option<u64>,
    /// Also compute mAP over the full ranking (two more scans of the gallery).
    pub full_map: bool,
    /// Most neighbours held at once (queries x depth, where depth = max(max K, max R)): larger
    /// query sets are evaluated in chunks of queries, so memory stays bounded however large
    /// R is (a class of 100 000 items), at one more gallery pass per chunk.
    pub max_neighbors: usize,
    /// Search the gallery in this many shards of whole gallery blocks, merged exactly
    /// ([`crate::knn_sharded`]): the same report as one search (default 1).
    pub shards: usize,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            ks: vec![1, 2, 4, 8],
            similarity: Similarity::Cosine,
            compute: Compute::Cpu,
            blocking: Blocking::default(),
            clustering_seed: Some(0),
            full_map: false,
            max_neighbors: 1 << 22,
            shards: 1,
        }
    }
}

/// The numbers of one evaluation. Fractions in [0, 1].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetrievalReport {
    /// Number of query rows evaluated.
    pub num_queries: usize,
    /// Number of gallery rows searched (the query set itself in self-retrieval).
    pub num_gallery: usize,
    /// Whether the queries were searched against themselves, each item's own row excluded.
    pub self_retrieval: bool,
    /// Name of the similarity used (`cosine`, `ip` or `l2`).
    pub similarity: String,
    /// `(K, Recall@K)` in the order of `RetrievalConfig::ks`.
    pub recall_at: Vec<(usize, f64)>,
    /// Fraction of queries whose nearest neighbour shares their label (PML definition).
    pub precision_at_1: f64,
    /// Mean over queries of the fraction of same-label items among the R nearest, R being the
    /// query's number of same-label gallery items.
    pub r_precision: f64,
    /// pytorch-metric-learning's MAP@R: mean average precision over the R nearest neighbours.
    pub map_at_r: f64,
    /// Queries with no relevant gallery item, left out of P@1, R-precision, MAP@R and mAP.
    pub lone_queries: usize,
    /// Mean average precision over the full ranking; `Some` only with
    /// `RetrievalConfig::full_map`.
    pub map: Option<f64>,
    /// Normalised mutual information between the labels and a k-means clustering of the
    /// queries; `Some` only with `RetrievalConfig::clustering_seed`.
    pub nmi: Option<f64>,
    /// Adjusted mutual information of the same clustering; `Some` only with
    /// `RetrievalConfig::clustering_seed`.
    pub ami: Option<f64>,
}

impl RetrievalReport {
    /// `(name, value)` pairs with stable names (`recall_at_1`, ..., `precision_at_1`,
    /// `r_precision`, `map_at_r`, then `map`, `nmi`, `ami` when computed), for tables and JSON.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .recall_at
            .iter()
            .map(|(k, v)| (format!("recall_at_{k}"), *v))
            .collect();
        out.push(("precision_at_1".into(), self.precision_at_1));
        out.push(("r_precision".into(), self.r_precision));
        out.push(("map_at_r".into(), self.map_at_r));
        for (name, v) in [("map", self.map), ("nmi", self.nmi), ("ami", self.ami)] {
            if let Some(v) = v {
                out.push((name.into(), v));
            }
        }
        out
    }
}

/// Evaluates `query` against `gallery` (`None`: self-retrieval over `query`, each item's own
/// row excluded by index) with one kNN pass of depth `max(max K, max R)`.
///
/// # Shapes
/// - `query`: `[Nq, d]`, `query_labels`: `[Nq]`; gallery `[Ng, d]` with `[Ng]` labels.
pub fn evaluate_retrieval<T: Real>(
    query: ArrayView2<'_, T>,
    query_labels: &[i64],
    gallery: Option<(ArrayView2<'_, T>, &[i64])>,
    config: &RetrievalConfig,
    progress: &dyn Progress,
) -> Result<RetrievalReport> {
    if query_labels.len() != query.nrows() {
        return Err(Error::LabelCount {
            set: "query",
            labels: query_labels.len(),
            rows: query.nrows(),
        });
    }
    if let Some((g, gl)) = gallery
        && gl.len() != g.nrows()
    {
        return Err(Error::LabelCount {
            set: "gallery",
            labels: gl.len(),
            rows: g.nrows(),
        });
    }
    if config.ks.is_empty() {
        return Err(Error::InvalidArgument("no K given for Recall@K".into()));
    }
    let same_set = gallery.is_none();
    let (gallery_view, gallery_labels) = gallery.unwrap_or((query, query_labels));
    let engine = ScoreEngine::new(query, gallery_view, config.similarity, same_set)?;
    let available = engine.num_gallery() - usize::from(same_set);
    let max_k = config.ks.iter().copied().max().unwrap_or(1);
    if config.ks.contains(&0) {
        return Err(Error::KZero);
    }
    if max_k > available {
        return Err(Error::KTooLarge {
            k: max_k,
            available,
        });
    }
    let relevant = relevant_counts(query_labels, gallery_labels, same_set);
    let max_r = relevant.iter().copied().max().unwrap_or(0);
    let depth = max_k.max(max_r).min(available);
    let options = KnnOptions {
        similarity: config.similarity,
        compute: config.compute.clone(),
        blocking: config.blocking,
    };
    let nq = query.nrows();
    let chunk = (config.max_neighbors / depth.max(1)).clamp(1, nq);
    // Per K, queries with a hit: counts, so that chunks add up exactly.
    let mut hits = vec![0usize; config.ks.len()];
    let mut rp = RPrecisionSums::default();
    for start in (0..nq).step_by(chunk) {
        let rows = start..(start + chunk).min(nq);
        let labels = &query_labels[rows.clone()];
        let neighbors = if config.shards > 1 {
            crate::shards::sharded_chunk(
                query.slice(ndarray::s![rows.clone(), ..]),
                start,
                gallery_view,
                same_set,
                depth,
                config.shards,
                &options,
                progress,
            )?
        } else if rows.len() == nq {
            knn_with_engine(&engine, depth, &options, progress)?
        } else {
            chunk_neighbors(
                query.slice(ndarray::s![rows.clone(), ..]),
                start,
                gallery_view,
                same_set,
                depth,
                &options,
                progress,
            )?
        };
        let recalls = recall_at_k(&neighbors, labels, gallery_labels, &config.ks)?;
        for (h, r) in hits.iter_mut().zip(recalls) {
            *h += (r * rows.len() as f64).round() as usize;
        }
        rp.add(r_precision_sums(
            &neighbors,
            labels,
            gallery_labels,
            &relevant[rows],
        )?);
    }
    let recalls: Vec<f64> = hits.into_iter().map(|h| h as f64 / nq as f64).collect();
    let rp = rp.mean()?;
    let map = if config.full_map {
        let aps = average_precisions(
            &engine,
            query_labels,
            gallery_labels,
            &config.compute,
            config.blocking,
            &crate::scan::NoProgress,
        )?;
        let scored: Vec<f64> = aps.into_iter().flatten().collect();
        Some(scored.iter().sum::<f64>() / scored.len().max(1) as f64)
    } else {
        None
    };
    let (nmi_v, ami_v) = match config.clustering_seed {
        Some(seed) => {
            let classes = query_labels.iter().collect::<HashSet<_>>().len();
            let mut km = KMeansConfig::new(classes, seed);
            km.compute = config.compute.clone();
            let clusters = kmeans(query, &km)?.assignment;
            (
                Some(nmi(query_labels, &clusters)?),
                Some(ami(query_labels, &clusters)?),
            )
        }
        None => (None, None),
    };
    Ok(RetrievalReport {
        num_queries: engine.num_queries(),
        num_gallery: engine.num_gallery(),
        self_retrieval: same_set,
        similarity: config.similarity.to_string(),
        recall_at: config.ks.iter().copied().zip(recalls).collect(),
        precision_at_1: rp.precision_at_1,
        r_precision: rp.r_precision,
        map_at_r: rp.map_at_r,
        lone_queries: query_labels.len() - rp.num_scored,
        map,
        nmi: nmi_v,
        ami: ami_v,
    })
}

/// The `depth` nearest gallery items of the queries `chunk` (rows `offset..` of the query
/// set). In self-retrieval each query's own row (`offset + r`) is dropped from a search one
/// deeper: the rest keeps the order (ties to the lower index) of the one-pass search.
fn chunk_neighbors<T: Real>(
    chunk: ArrayView2<'_, T>,
    offset: usize,
    gallery: ArrayView2<'_, T>,
    same_set: bool,
    depth: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<Neighbors<T>> {
    let engine = ScoreEngine::new(chunk, gallery, options.similarity, false)?;
    if !same_set {
        return knn_with_engine(&engine, depth, options, progress);
    }
    let wide = knn_with_engine(&engine, depth + 1, options, progress)?;
    let mut indices = Vec::with_capacity(chunk.nrows() * depth);
    let mut values = Vec::with_capacity(chunk.nrows() * depth);
    for r in 0..chunk.nrows() {
        let own = offset + r;
        let kept = wide
            .row(r)
            .iter()
            .zip(wide.row_values(r))
            .filter(|(j, _)| **j != own)
            .take(depth);
        for (&j, &v) in kept {
            indices.push(j);
            values.push(v);
        }
    }
    Ok(Neighbors {
        k: depth,
        indices,
        values,
    })
}
