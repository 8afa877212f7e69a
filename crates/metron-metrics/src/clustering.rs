//! NMI and AMI between class labels and a cluster assignment, with scikit-learn's definitions
//! (natural log, `average_method = "arithmetic"`), so numbers match pytorch-metric-learning,
//! which delegates to scikit-learn; and the pairwise precision / recall / F-score that
//! Hi-LANDER and PSS report for their clusterings.

use std::collections::HashMap;

use crate::{Error, Result};

/// The contingency table of two labelings.
struct Contingency {
    n: usize,
    /// Row sums (per true class) and column sums (per cluster).
    a: Vec<usize>,
    b: Vec<usize>,
    /// Non-zero cells: (row, col, count).
    cells: Vec<(usize, usize, usize)>,
}

fn dense_ids(x: &[i64]) -> (Vec<usize>, usize) {
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut sorted: Vec<i64> = x.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for (i, v) in sorted.iter().enumerate() {
        ids.insert(*v, i);
    }
    (x.iter().map(|v| ids[v]).collect(), sorted.len())
}

impl Contingency {
    fn new(labels: &[i64], clusters: &[i64]) -> Result<Self> {
        if labels.len() != clusters.len() {
            return Err(Error::LabelCount {
                set: "cluster assignment",
                labels: clusters.len(),
                rows: labels.len(),
            });
        }
        if labels.is_empty() {
            return Err(Error::EmptySet { set: "labels" });
        }
        let (u, nu) = dense_ids(labels);
        let (v, nv) = dense_ids(clusters);
        let mut cells: HashMap<(usize, usize), usize> = HashMap::new();
        let (mut a, mut b) = (vec![0; nu], vec![0; nv]);
        for (&i, &j) in u.iter().zip(&v) {
            *cells.entry((i, j)).or_default() += 1;
            a[i] += 1;
            b[j] += 1;
        }
        let mut cells: Vec<_> = cells.into_iter().map(|((i, j), c)| (i, j, c)).collect();
        cells.sort_unstable();
        Ok(Contingency {
            n: labels.len(),
            a,
            b,
            cells,
        })
    }

    fn mutual_information(&self) -> f64 {
        let n = self.n as f64;
        self.cells
            .iter()
            .map(|&(i, j, c)| {
                let c = c as f64;
                c / n * ((c * n).ln() - (self.a[i] as f64 * self.b[j] as f64).ln())
            })
            .sum::<f64>()
            .max(0.0)
    }

    /// Expected mutual information under the hypergeometric model of random labelings
    /// (Vinh, Epps and Bailey 2010), evaluated with log-factorials as scikit-learn does.
    fn expected_mutual_information(&self) -> f64 {
        let n = self.n;
        let nf = n as f64;
        let mut lf = vec![0.0f64; n + 1];
        for i in 1..=n {
            lf[i] = lf[i - 1] + (i as f64).ln();
        }
        let mut emi = 0.0;
        for &ai in &self.a {
            for &bj in &self.b {
                let start = (ai + bj).saturating_sub(n).max(1);
                let end = ai.min(bj);
                let outer = lf[ai] + lf[bj] + lf[n - ai] + lf[n - bj] - lf[n];
                for nij in start..=end {
                    let nijf = nij as f64;
                    let term1 = nijf / nf * ((nf * nijf).ln() - (ai as f64 * bj as f64).ln());
                    let log_p =
                        outer - lf[nij] - lf[ai - nij] - lf[bj - nij] - lf[n + nij - ai - bj];
                    emi += term1 * log_p.exp();
                }
            }
        }
        emi
    }
}

fn entropy(counts: &[usize], n: usize) -> f64 {
    let n = n as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * p.ln()
        })
        .sum::<f64>()
}

/// Normalised mutual information, `MI / mean(H(labels), H(clusters))`.
pub fn nmi(labels: &[i64], clusters: &[i64]) -> Result<f64> {
    let t = Contingency::new(labels, clusters)?;
    // One class and one cluster: the same (trivial) partition, by scikit-learn's convention.
    if t.a.len() == 1 && t.b.len() == 1 {
        return Ok(1.0);
    }
    let mi = t.mutual_information();
    if mi == 0.0 {
        return Ok(0.0);
    }
    let norm = 0.5 * (entropy(&t.a, t.n) + entropy(&t.b, t.n));
    Ok(mi / norm)
}

/// Adjusted mutual information, `(MI - E[MI]) / (mean(H(labels), H(clusters)) - E[MI])`.
pub fn ami(labels: &[i64], clusters: &[i64]) -> Result<f64> {
    let t = Contingency::new(labels, clusters)?;
    let (nu, nv) = (t.a.len(), t.b.len());
    // One class and one cluster: the same (trivial) partition, by scikit-learn's convention.
    if nu == 1 && nv == 1 {
        return Ok(1.0);
    }
    let mi = t.mutual_information();
    let emi = t.expected_mutual_information();
    let norm = 0.5 * (entropy(&t.a, t.n) + entropy(&t.b, t.n));
    let mut denominator = norm - emi;
    let eps = f64::EPSILON;
    denominator = if denominator < 0.0 {
        denominator.min(-eps)
    } else {
        denominator.max(eps)
    };
    Ok((mi - emi) / denominator)
}

/// Pairwise scores of a clustering: over all pairs of items, how the pairs put in one cluster
/// agree with the pairs of one class.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairwiseScores {
    /// Fraction of same-cluster pairs that are same-class pairs (1.0 when no cluster has two
    /// items: no pair was put together wrongly).
    pub precision: f64,
    /// Fraction of same-class pairs that are same-cluster pairs (1.0 when no class has two
    /// items: no pair could be missed).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0.0 when both are 0).
    pub f_score: f64,
}

/// Number of unordered pairs among `n` items.
fn pairs(n: usize) -> u128 {
    let n = n as u128;
    n * n.saturating_sub(1) / 2
}

/// Pairwise precision, recall and F-score of `clusters` against the classes `labels`, as
/// Hi-LANDER and PSS report them. Counted from the contingency table in O(N), never by
/// enumerating the O(N^2) pairs.
pub fn pairwise_scores(labels: &[i64], clusters: &[i64]) -> Result<PairwiseScores> {
    let t = Contingency::new(labels, clusters)?;
    let together: u128 = t.cells.iter().map(|&(_, _, c)| pairs(c)).sum();
    let ratio = |den: u128| {
        if den == 0 {
            1.0
        } else {
            together as f64 / den as f64
        }
    };
    let precision = ratio(t.b.iter().map(|&c| pairs(c)).sum());
    let recall = ratio(t.a.iter().map(|&c| pairs(c)).sum());
    let f_score = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Ok(PairwiseScores {
        precision,
        recall,
        f_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_scores_by_hand() {
        // Same-cluster pairs: (0,1), (2,3), (2,4), (3,4); same-class among them: (0,1), (3,4).
        // Same-class pairs: (0,1), (0,2), (1,2), (3,4); same-cluster among them: (0,1), (3,4).
        let s = pairwise_scores(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 1]).unwrap();
        assert_eq!((s.precision, s.recall, s.f_score), (0.5, 0.5, 0.5));

        // Cluster ids are arbitrary names: a relabelled identical partition is perfect.
        let s = pairwise_scores(&[0, 0, 0, 1, 1, 2], &[7, 7, 7, -3, -3, 4]).unwrap();
        assert_eq!((s.precision, s.recall, s.f_score), (1.0, 1.0, 1.0));

        // All singletons: no pair put together (precision 1), every class pair missed.
        let s = pairwise_scores(&[0, 0, 0, 1, 1], &[0, 1, 2, 3, 4]).unwrap();
        assert_eq!((s.precision, s.recall, s.f_score), (1.0, 0.0, 0.0));

        // One cluster of everything: every class pair found, 4 of the 10 pairs right.
        let s = pairwise_scores(&[0, 0, 0, 1, 1], &[0; 5]).unwrap();
        assert_eq!((s.precision, s.recall), (0.4, 1.0));
        assert!((s.f_score - 2.0 * 0.4 / 1.4).abs() < 1e-15);
    }

    #[test]
    fn pairwise_scores_reject_bad_input() {
        assert!(matches!(
            pairwise_scores(&[], &[]),
            Err(Error::EmptySet { .. })
        ));
        assert!(matches!(
            pairwise_scores(&[0, 1], &[0]),
            Err(Error::LabelCount { .. })
        ));
    }
}
