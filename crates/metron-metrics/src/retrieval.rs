//! Label-based retrieval metrics computed from one kNN pass: Recall@K, precision@1,
//! R-precision and MAP@R.
//!
//! Conventions (so that numbers compare with the papers and with pytorch-metric-learning):
//! - Recall@K is the CGD / Smooth-AP definition: the fraction of queries with at least one
//!   same-label item among their K nearest neighbours. Every query counts.
//! - precision@1, R-precision and MAP@R follow pytorch-metric-learning's AccuracyCalculator:
//!   R is the number of same-label gallery items (the query itself excluded in
//!   self-retrieval), and queries with R = 0 ("lone" queries) are left out of these three.

use std::collections::HashMap;

use crate::knn::Neighbors;
use crate::{Error, Result};

/// How many gallery items share each query's label (`R` in R-precision), the query itself not
/// counted in self-retrieval.
pub fn relevant_counts(query_labels: &[i64], gallery_labels: &[i64], same_set: bool) -> Vec<usize> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &l in gallery_labels {
        *counts.entry(l).or_default() += 1;
    }
    query_labels
        .iter()
        .map(|l| counts.get(l).copied().unwrap_or(0) - usize::from(same_set))
        .collect()
}

fn check_neighbors<T: Copy>(
    neighbors: &Neighbors<T>,
    query_labels: &[i64],
    needed_k: usize,
) -> Result<()> {
    if neighbors.num_queries() != query_labels.len() {
        return Err(Error::LabelCount {
            set: "query",
            labels: query_labels.len(),
            rows: neighbors.num_queries(),
        });
    }
    if needed_k > neighbors.k {
        return Err(Error::InvalidArgument(format!(
            "this metric needs the {needed_k} nearest neighbours but only {} were computed",
            neighbors.k
        )));
    }
    Ok(())
}

/// Recall@K for each K in `ks`: the fraction of queries with a same-label item in their top K.
pub fn recall_at_k<T: Copy>(
    neighbors: &Neighbors<T>,
    query_labels: &[i64],
    gallery_labels: &[i64],
    ks: &[usize],
) -> Result<Vec<f64>> {
    let max_k = ks.iter().copied().max().unwrap_or(0);
    check_neighbors(neighbors, query_labels, max_k)?;
    let nq = query_labels.len();
    // Rank of the first hit per query (usize::MAX if none in the computed neighbours).
    let first_hit: Vec<usize> = (0..nq)
        .map(|i| {
            neighbors
                .row(i)
                .iter()
                .position(|&j| gallery_labels[j] == query_labels[i])
                .unwrap_or(usize::MAX)
        })
        .collect();
    Ok(ks
        .iter()
        .map(|&k| first_hit.iter().filter(|&&h| h < k).count() as f64 / nq as f64)
        .collect())
}

/// precision@1, R-precision and MAP@R (pytorch-metric-learning definitions), averaged over the
/// queries that have at least one relevant item. `neighbors.k` must be at least the largest R.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RPrecisionScores {
    /// Fraction of scored queries whose nearest neighbour shares their label.
    pub precision_at_1: f64,
    /// Mean of `hits in the R nearest / R` over the scored queries.
    pub r_precision: f64,
    /// Mean over the scored queries of `(1 / R) sum_{rank k <= R, hit} precision@k`.
    pub map_at_r: f64,
    /// Queries with R >= 1, over which the three are averaged.
    pub num_scored: usize,
}

/// precision@1, R-precision and MAP@R of `neighbors`, where `relevant[i]` is query i's R (see
/// [`relevant_counts`]). Errors when the neighbours are fewer than the largest R, when the
/// label count differs from the queries', or when no query has R >= 1.
pub fn r_precision_scores<T: Copy>(
    neighbors: &Neighbors<T>,
    query_labels: &[i64],
    gallery_labels: &[i64],
    relevant: &[usize],
) -> Result<RPrecisionScores> {
    r_precision_sums(neighbors, query_labels, gallery_labels, relevant)?.mean()
}

/// The sums behind [`RPrecisionScores`], so that query chunks can be evaluated apart and
/// added up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct RPrecisionSums {
    pub(crate) precision_at_1: f64,
    pub(crate) r_precision: f64,
    pub(crate) map_at_r: f64,
    pub(crate) num_scored: usize,
}

impl RPrecisionSums {
    pub(crate) fn add(&mut self, other: RPrecisionSums) {
        self.precision_at_1 += other.precision_at_1;
        self.r_precision += other.r_precision;
        self.map_at_r += other.map_at_r;
        self.num_scored += other.num_scored;
    }

    pub(crate) fn mean(self) -> Result<RPrecisionScores> {
        if self.num_scored == 0 {
            return Err(Error::InvalidArgument(
                "no query has a relevant gallery item (every label is unique)".into(),
            ));
        }
        let nf = self.num_scored as f64;
        Ok(RPrecisionScores {
            precision_at_1: self.precision_at_1 / nf,
            r_precision: self.r_precision / nf,
            map_at_r: self.map_at_r / nf,
            num_scored: self.num_scored,
        })
    }
}

pub(crate) fn r_precision_sums<T: Copy>(
    neighbors: &Neighbors<T>,
    query_labels: &[i64],
    gallery_labels: &[i64],
    relevant: &[usize],
) -> Result<RPrecisionSums> {
    let max_r = relevant.iter().copied().max().unwrap_or(0);
    check_neighbors(neighbors, query_labels, max_r.max(1))?;
    let (mut p1, mut rp, mut map, mut n) = (0.0, 0.0, 0.0, 0usize);
    for (i, &r) in relevant.iter().enumerate() {
        if r == 0 {
            continue;
        }
        n += 1;
        let row = &neighbors.row(i)[..r];
        let mut hits = 0usize;
        let mut ap = 0.0;
        for (rank, &j) in row.iter().enumerate() {
            if gallery_labels[j] == query_labels[i] {
                hits += 1;
                ap += hits as f64 / (rank + 1) as f64;
                if rank == 0 {
                    p1 += 1.0;
                }
            }
        }
        rp += hits as f64 / r as f64;
        map += ap / r as f64;
    }
    Ok(RPrecisionSums {
        precision_at_1: p1,
        r_precision: rp,
        map_at_r: map,
        num_scored: n,
    })
}
