//! Evaluation plug-ins: what the loop measures after an epoch. A system picks the evaluation
//! its paper reports: [`RetrievalEvaluation`] (Recall@K, MAP@R, NMI / AMI of embedded images),
//! [`CrossViewEvaluation`] (Recall@K and top-1 % of matched query / reference pairs, as CVUSA
//! and CVACT); localisation implements the same trait.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use metron_datasets::{ImageSource, LoaderConfig, Pipeline};
use metron_metrics::{Compute, RetrievalConfig, cross_view_recall, evaluate_retrieval};

use crate::embed::{EmbeddedSplit, embed_samples, embed_with};
use crate::{Bar, EmbeddingModel, Result};

/// What one evaluation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutcome {
    /// `metric name -> value` (one line of `metrics.jsonl` holds them under `test`).
    pub metrics: BTreeMap<String, f64>,
    /// The embeddings it computed, where it embeds (for the run's embedding file and grid).
    pub embeddings: Option<Evaluated>,
    /// Items that could not be decoded and were left out.
    pub items_skipped: usize,
}

/// The embeddings one evaluation computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The query (test) images' embeddings.
    pub query: EmbeddedSplit,
    /// `None` for self-retrieval.
    pub gallery: Option<EmbeddedSplit>,
}

/// What the loop measures after an epoch (and before the first, for the untrained baseline).
pub trait Evaluation<M> {
    /// The metric that picks `best.ckpt` (larger is better), e.g. `recall_at_1`.
    fn primary_metric(&self) -> &str;

    /// Evaluates `model` (in evaluation mode on the plain version of `device`).
    fn evaluate(&self, model: &M, device: &Device, quiet: bool) -> Result<EvalOutcome>;

    /// The epoch line's summary of `metrics`, plus warnings worth a line of their own.
    fn summary(&self, metrics: &BTreeMap<String, f64>) -> String;
}

/// Retrieval by cosine similarity of embedded images: each query against the others
/// (self-retrieval), or the queries searched in a gallery (In-shop). Reports `recall_at_K`,
/// the other retrieval metrics of [`metron_metrics::evaluate_retrieval`] and
/// `embedding_spread` (see [`embedding_spread`]).
#[derive(Clone)]
pub struct RetrievalEvaluation {
    /// The query images (the whole test split for self-retrieval).
    pub query: Arc<dyn ImageSource>,
    /// The gallery the queries are searched in; `None` for self-retrieval.
    pub gallery: Option<Arc<dyn ImageSource>>,
    /// The test-time transform (deterministic).
    pub pipeline: Arc<Pipeline>,
    /// The K of each reported `recall_at_K`.
    pub ks: Vec<usize>,
    /// Images per embedding batch.
    pub batch_size: usize,
    /// How the images are loaded (prefetch, skipping corrupt files).
    pub loader: LoaderConfig,
    /// `Some(seed)`: also cluster the query embeddings with seeded k-means (k = the number of
    /// classes) and report `nmi` and `ami`.
    pub clustering_seed: Option<u64>,
}

impl RetrievalEvaluation {
    /// Self-retrieval over `query` (transformed by `pipeline`) reporting Recall@`ks`, in
    /// batches of 128, without clustering.
    pub fn new(query: Arc<dyn ImageSource>, pipeline: Arc<Pipeline>, ks: Vec<usize>) -> Self {
        RetrievalEvaluation {
            query,
            gallery: None,
            pipeline,
            ks,
            batch_size: 128,
            loader: LoaderConfig::default(),
            clustering_seed: None,
        }
    }
}

impl std::fmt::Debug for RetrievalEvaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrievalEvaluation")
            .field("queries", &self.query.len())
            .field("gallery", &self.gallery.as_ref().map(|g| g.len()))
            .field("ks", &self.ks)
            .finish_non_exhaustive()
    }
}

impl RetrievalEvaluation {
    /// Embeds the query (and gallery) images with `model`.
    pub fn embed<M: EmbeddingModel>(
        &self,
        model: &M,
        device: &Device,
        quiet: bool,
    ) -> Result<Evaluated> {
        let embed = |source: &Arc<dyn ImageSource>, what: &str| {
            let bar = Bar::new(source.len(), what, quiet);
            let out = embed_samples(
                model,
                source.clone(),
                self.pipeline.clone(),
                self.batch_size,
                self.loader,
                device,
                &bar,
            );
            bar.finish();
            out
        };
        Ok(Evaluated {
            query: embed(&self.query, "embedding test split")?,
            gallery: self
                .gallery
                .as_ref()
                .map(|g| embed(g, "embedding gallery"))
                .transpose()?,
        })
    }

    /// The metrics of embeddings computed elsewhere (a baseline such as raw pixels).
    pub fn metrics_of(&self, embedded: &Evaluated, quiet: bool) -> Result<BTreeMap<String, f64>> {
        let bar = Bar::new(embedded.query.labels.len(), "retrieval (kNN)", quiet);
        let mut metrics = evaluate_embeddings(
            &embedded.query,
            embedded.gallery.as_ref(),
            &self.ks,
            self.clustering_seed,
            &bar,
        )?;
        bar.finish();
        metrics.insert(
            "embedding_spread".into(),
            embedding_spread(&embedded.query.embeddings),
        );
        Ok(metrics)
    }
}

impl<M: EmbeddingModel> Evaluation<M> for RetrievalEvaluation {
    fn primary_metric(&self) -> &str {
        "recall_at_1"
    }

    fn evaluate(&self, model: &M, device: &Device, quiet: bool) -> Result<EvalOutcome> {
        let embedded = self.embed(model, device, quiet)?;
        let metrics = self.metrics_of(&embedded, quiet)?;
        let items_skipped =
            embedded.query.skipped.len() + embedded.gallery.as_ref().map_or(0, |g| g.skipped.len());
        Ok(EvalOutcome {
            metrics,
            embeddings: Some(embedded),
            items_skipped,
        })
    }

    fn summary(&self, metrics: &BTreeMap<String, f64>) -> String {
        let mut out = recall_summary(&self.ks, metrics);
        if let Some(&spread) = metrics.get("embedding_spread") {
            out.push(format!("spread {spread:.3}"));
            // Embeddings may legitimately fill only a narrow cone (ReLU features are
            // non-negative), so only a spread at rounding level counts as a collapse.
            if spread < COLLAPSED_SPREAD {
                out.push(format!(
                    "\nwarning: the test embeddings have collapsed onto one point (mean squared \
                     distance {spread:.2e}): the loss is likely stuck at its margin; try a lower \
                     learning rate"
                ));
            }
        }
        out.join("  ")
    }
}

/// `R@K 12.34` for each K of `ks` that `metrics` reports.
fn recall_summary(ks: &[usize], metrics: &BTreeMap<String, f64>) -> Vec<String> {
    ks.iter()
        .filter_map(|k| {
            metrics
                .get(&format!("recall_at_{k}"))
                .map(|v| format!("R@{k} {:.2}", 100.0 * v))
        })
        .collect()
}

/// A model with one branch per view (SAIG: ground panoramas and aerial images).
pub trait CrossViewModel: Module {
    /// Embeddings of query-view images (ground).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, D]`
    fn embed_query(&self, images: Tensor<4>) -> Tensor<2>;

    /// Embeddings of reference-view images (aerial).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, D]`
    fn embed_reference(&self, images: Tensor<4>) -> Tensor<2>;
}

/// Cross-view retrieval as CVUSA and CVACT are evaluated: query `i`'s match is reference `i`
/// (or `positives[i]`, as VIGOR's);
/// each query is ranked against every reference by the inner product of L2-normalised
/// embeddings (ties count in the query's favour). Reports `recall_at_K`, `top1_percent_k` (K =
/// 1 % of the references, + 1) and `recall_at_top1_percent`; with semi-positives (VIGOR's
/// neighbouring satellites), also `hit_rate`: the fraction of queries whose match has no
/// reference but its semi-positives above it.
#[derive(Clone)]
pub struct CrossViewEvaluation {
    /// Query-view images (ground).
    pub queries: Arc<dyn ImageSource>,
    /// The queries' test-time transform.
    pub query_pipeline: Arc<Pipeline>,
    /// Reference-view images (aerial), reference `i` matching query `i`.
    pub references: Arc<dyn ImageSource>,
    /// The references' test-time transform.
    pub reference_pipeline: Arc<Pipeline>,
    /// The K of each reported `recall_at_K` (SAIG: 1, 5, 10).
    pub ks: Vec<usize>,
    /// Per query, the index of its matching reference (VIGOR: the positive satellite);
    /// empty: query `i` matches reference `i`.
    pub positives: Arc<Vec<usize>>,
    /// Per query, the references that are near-matches (counted as negatives in Recall@K,
    /// left out for the hit rate); empty: no hit rate.
    pub semi_positives: Arc<Vec<Vec<usize>>>,
    /// Images per embedding batch.
    pub batch_size: usize,
    /// How the images are loaded.
    pub loader: LoaderConfig,
}

impl std::fmt::Debug for CrossViewEvaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossViewEvaluation")
            .field("queries", &self.queries.len())
            .field("references", &self.references.len())
            .field("ks", &self.ks)
            .finish_non_exhaustive()
    }
}

fn normalized_rows(e: &ndarray::Array2<f32>) -> ndarray::Array2<f32> {
    let mut out = e.clone();
    for mut row in out.rows_mut() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.mapv_inplace(|v| v / norm);
    }
    out
}

impl<M: CrossViewModel> Evaluation<M> for CrossViewEvaluation {
    fn primary_metric(&self) -> &str {
        "recall_at_1"
    }

    fn evaluate(&self, model: &M, device: &Device, quiet: bool) -> Result<EvalOutcome> {
        let model = model.valid();
        let plain = device.clone().inner();
        let embed = |f: &dyn Fn(Tensor<4>) -> Tensor<2>,
                     source: &Arc<dyn ImageSource>,
                     pipeline: &Arc<Pipeline>,
                     what: &str| {
            let bar = Bar::new(source.len(), what, quiet);
            let out = embed_with(
                f,
                source.clone(),
                pipeline.clone(),
                self.batch_size,
                self.loader,
                &plain,
                &bar,
            );
            bar.finish();
            out
        };
        let query = embed(
            &|x| model.embed_query(x),
            &self.queries,
            &self.query_pipeline,
            "embedding queries",
        )?;
        let reference = embed(
            &|x| model.embed_reference(x),
            &self.references,
            &self.reference_pipeline,
            "embedding references",
        )?;
        let skipped = query.skipped.len() + reference.skipped.len();
        let aligned = !self.positives.is_empty() || query.indices == reference.indices;
        if skipped > 0 || !aligned {
            return Err(crate::TrainError::IncompleteData {
                what: "cross-view evaluation (every query needs its reference)".into(),
                got: query.indices.len().min(reference.indices.len()),
                expected: self.queries.len(),
            });
        }
        let positives: Vec<usize> = if self.positives.is_empty() {
            (0..query.embeddings.nrows()).collect()
        } else {
            self.positives.to_vec()
        };
        let report = cross_view_recall(
            normalized_rows(&query.embeddings).view(),
            normalized_rows(&reference.embeddings).view(),
            &positives,
            &self.semi_positives,
            &self.ks,
            &Compute::Cpu,
        )?;
        let mut metrics: BTreeMap<String, f64> = report
            .recall_at
            .iter()
            .map(|(k, v)| (format!("recall_at_{k}"), *v))
            .collect();
        metrics.insert("top1_percent_k".into(), report.top1_percent_k as f64);
        metrics.insert(
            "recall_at_top1_percent".into(),
            report.recall_at_top1_percent,
        );
        if let Some(hit) = report.hit_rate {
            metrics.insert("hit_rate".into(), hit);
        }
        Ok(EvalOutcome {
            metrics,
            embeddings: Some(Evaluated {
                query,
                gallery: Some(reference),
            }),
            items_skipped: 0,
        })
    }

    fn summary(&self, metrics: &BTreeMap<String, f64>) -> String {
        let mut out = recall_summary(&self.ks, metrics);
        if let Some(v) = metrics.get("recall_at_top1_percent") {
            out.push(format!("top-1% {:.2}", 100.0 * v));
        }
        if let Some(v) = metrics.get("hit_rate") {
            out.push(format!("hit {:.2}", 100.0 * v));
        }
        out.join("  ")
    }
}

/// Below this mean squared distance, unit embeddings are one point up to rounding.
const COLLAPSED_SPREAD: f64 = 1e-6;

/// Retrieval metrics (cosine similarity) of `query` searched in `gallery`, or, without a
/// gallery, of each query among the other queries (its own row excluded), as
/// `metric name -> value`; with `clustering_seed`, also NMI and AMI of a seeded k-means
/// clustering of the queries.
pub fn evaluate_embeddings(
    query: &EmbeddedSplit,
    gallery: Option<&EmbeddedSplit>,
    ks: &[usize],
    clustering_seed: Option<u64>,
    progress: &dyn metron_metrics::Progress,
) -> Result<BTreeMap<String, f64>> {
    let config = RetrievalConfig {
        ks: ks.to_vec(),
        clustering_seed,
        ..RetrievalConfig::default()
    };
    let report = evaluate_retrieval(
        query.embeddings.view(),
        &query.labels,
        gallery.map(|g| (g.embeddings.view(), g.labels.as_slice())),
        &config,
        progress,
    )?;
    Ok(report.metrics().into_iter().collect())
}

/// Mean squared Euclidean distance over all pairs of L2-normalised rows, from the mean row:
/// `2 - 2 |mean|^2` scaled to exclude the zero self-distances. O(N D), no N x N matrix.
pub fn embedding_spread(e: &ndarray::Array2<f32>) -> f64 {
    let n = e.nrows();
    if n < 2 {
        return 0.0;
    }
    let mut mean = vec![0.0f64; e.ncols()];
    for row in e.rows() {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for (m, &v) in mean.iter_mut().zip(row.iter()) {
            *m += f64::from(v) / norm;
        }
    }
    let nf = n as f64;
    let mean_sq: f64 = mean.iter().map(|m| (m / nf) * (m / nf)).sum();
    // sum_{i != j} |x_i - x_j|^2 = 2 n^2 (1 - |mean|^2) for unit rows.
    2.0 * nf * nf * (1.0 - mean_sq) / (nf * (nf - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use metron_metrics::NoProgress;
    use ndarray::array;

    #[test]
    fn spread_matches_the_pairwise_mean() {
        let e = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]];
        let n = e.nrows();
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    total += e
                        .row(i)
                        .iter()
                        .zip(e.row(j).iter())
                        .map(|(a, b)| f64::from(a - b).powi(2))
                        .sum::<f64>();
                }
            }
        }
        let want = total / (n * (n - 1)) as f64;
        assert!((embedding_spread(&e) - want).abs() < 1e-6);
        let collapsed = array![[0.6f32, 0.8], [0.6, 0.8], [0.6, 0.8]];
        assert!(embedding_spread(&collapsed).abs() < 1e-9);
    }

    fn split_of(rows: &[[f32; 2]], labels: &[i64]) -> EmbeddedSplit {
        EmbeddedSplit {
            embeddings: ndarray::Array2::from_shape_fn((rows.len(), 2), |(i, j)| rows[i][j]),
            labels: labels.to_vec(),
            indices: (0..rows.len()).collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn query_gallery_evaluation_searches_the_gallery_only() {
        // q0 -> g1 (cos 0.995, same label), q1 -> g0 (cos 0.8, other label) then g1.
        let q = split_of(&[[1.0, 0.0], [0.0, 1.0]], &[0, 0]);
        let g = split_of(&[[0.6, 0.8], [1.0, 0.1]], &[1, 0]);
        let m = evaluate_embeddings(&q, Some(&g), &[1, 2], None, &NoProgress).unwrap();
        assert_eq!(m["recall_at_1"], 0.5);
        assert_eq!(m["recall_at_2"], 1.0);
        // Self-retrieval over the queries: each one's only neighbour is the other (same label).
        let m = evaluate_embeddings(&q, None, &[1], None, &NoProgress).unwrap();
        assert!(!m.contains_key("nmi"));
        // Two clear clusters with their own labels: a perfect clustering.
        let q = split_of(
            &[[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]],
            &[0, 0, 1, 1],
        );
        let m = evaluate_embeddings(&q, None, &[1], Some(3), &NoProgress).unwrap();
        assert!((m["nmi"] - 1.0).abs() < 1e-9, "{m:?}");
        assert_eq!(m["recall_at_1"], 1.0);
    }
}
