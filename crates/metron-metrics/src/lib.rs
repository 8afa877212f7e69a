//! Retrieval, clustering and cross-view localisation metrics over embeddings, on an exact
//! kNN that never builds the full query x gallery matrix.
//!
//! ```
//! use metron_metrics::{RetrievalConfig, evaluate_retrieval, NoProgress};
//! use ndarray::array;
//! let emb = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]];
//! let labels = [0, 0, 1, 1];
//! let config = RetrievalConfig { ks: vec![1, 2], clustering_seed: None, ..Default::default() };
//! let report = evaluate_retrieval(emb.view(), &labels, None, &config, &NoProgress).unwrap();
//! assert_eq!(report.recall_at[0], (1, 1.0));
//! ```

#![warn(missing_docs)]

mod average_precision;
mod clustering;
mod crossview;
mod density_peaks;
mod error;
mod evaluate;
mod gemm_kernel;
mod kmeans;
mod knn;
mod peak;
mod positive_rank;
mod real;
mod retrieval;
mod scan;
mod shards;
mod similarity;

pub use clustering::{PairwiseScores, ami, nmi, pairwise_scores};
pub use crossview::{
    CrossViewReport, cross_view_recall, cvusa_recall, top1_percent_k, vigor_recall,
};
pub use density_peaks::{DensityPeakClusters, DensityPeakConfig, density_peak_clusters};
pub use error::{Error, Result};
pub use evaluate::{RetrievalConfig, RetrievalReport, evaluate_retrieval};
pub use kmeans::{KMEANS_PP_LIMIT, KMeansConfig, KMeansResult, kmeans};
pub use knn::{KnnOptions, Neighbors, knn, knn_self, knn_with_progress};
pub use peak::{FmaPeak, fma_peak, gemm_isa};
pub use positive_rank::{PositiveRanks, positive_ranks};

/// Threads the CPU kNN scan runs on (rayon's global pool: `RAYON_NUM_THREADS`, else every core).
pub fn scan_threads() -> usize {
    rayon::current_num_threads()
}
pub use real::Real;
pub use retrieval::{RPrecisionScores, r_precision_scores, recall_at_k, relevant_counts};
pub use scan::{Blocking, Compute, NoProgress, Progress, TileVisitor};
pub use shards::{ShardNeighbors, ShardRunner, knn_shard, knn_sharded, merge_shards, shard_ranges};
pub use similarity::Similarity;
