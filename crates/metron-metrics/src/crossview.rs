//! Cross-view geo-localisation metrics: CVUSA / CVACT and VIGOR, as SAIG evaluates them.
//!
//! Scores are raw inner products (`D = 2 - 2 q.g` on L2-normalised descriptors, the way the
//! original code computes them); pass normalised embeddings. A ground image's rank is the
//! number of satellite images strictly closer than its true one, so ties count in its favour.

use ndarray::ArrayView2;

use crate::positive_rank::positive_ranks;
use crate::scan::{Blocking, Compute, NoProgress};
use crate::{Error, Real, Result, Similarity};

/// Results of a cross-view evaluation; all values are fractions in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossViewReport {
    /// `(K, Recall@K)`, in the order the Ks were given.
    pub recall_at: Vec<(usize, f64)>,
    /// `K = floor(0.01 * N_gallery) + 1`.
    pub top1_percent_k: usize,
    /// Recall@K at `K = top1_percent_k` ("top 1%" recall).
    pub recall_at_top1_percent: f64,
    /// VIGOR only: the fraction of queries with no non-semi-positive satellite ranked above
    /// the positive.
    pub hit_rate: Option<f64>,
}

/// The `K` of the "top 1%" recall over a gallery of `n` items.
pub fn top1_percent_k(n: usize) -> usize {
    n / 100 + 1
}

fn recall_from_ranks(ranks: &[usize], k: usize) -> f64 {
    ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len() as f64
}

fn report(ranks: &[usize], ng: usize, ks: &[usize], hit: Option<&[usize]>) -> CrossViewReport {
    let k1 = top1_percent_k(ng);
    CrossViewReport {
        recall_at: ks
            .iter()
            .map(|&k| (k, recall_from_ranks(ranks, k)))
            .collect(),
        top1_percent_k: k1,
        recall_at_top1_percent: recall_from_ranks(ranks, k1),
        hit_rate: hit.map(|h| recall_from_ranks(h, 1)),
    }
}

fn check_ks(ks: &[usize], ng: usize) -> Result<()> {
    match ks.iter().find(|&&k| k == 0 || k > ng) {
        Some(&0) => Err(Error::KZero),
        Some(&k) => Err(Error::KTooLarge { k, available: ng }),
        None => Ok(()),
    }
}

/// CVUSA / CVACT: ground image `i` matches satellite image `i`.
///
/// # Shapes
/// - `satellite`, `ground`: `[N, d]`, row i of one matching row i of the other.
pub fn cvusa_recall<T: Real>(
    satellite: ArrayView2<'_, T>,
    ground: ArrayView2<'_, T>,
    ks: &[usize],
    compute: &Compute,
) -> Result<CrossViewReport> {
    if satellite.nrows() != ground.nrows() {
        return Err(Error::InvalidArgument(format!(
            "CVUSA/CVACT pairs: {} satellite rows but {} ground rows",
            satellite.nrows(),
            ground.nrows()
        )));
    }
    check_ks(ks, satellite.nrows())?;
    let positives: Vec<usize> = (0..ground.nrows()).collect();
    let ranks = positive_ranks(
        ground,
        satellite,
        &positives,
        &[],
        Similarity::InnerProduct,
        compute,
        Blocking::default(),
        &NoProgress,
    )?;
    Ok(report(&ranks.rank, satellite.nrows(), ks, None))
}

/// VIGOR: `labels[i] = [positive, semi1, semi2, semi3]` satellite indices of panorama `i`.
/// Semi-positives count as negatives in Recall@K and are left out for the hit rate.
///
/// # Shapes
/// - `ground`: `[Ng, d]`, `satellite`: `[Ns, d]`, `labels`: `[Ng, 1 + semis]`.
pub fn vigor_recall<T: Real>(
    ground: ArrayView2<'_, T>,
    satellite: ArrayView2<'_, T>,
    labels: ArrayView2<'_, i64>,
    ks: &[usize],
    compute: &Compute,
) -> Result<CrossViewReport> {
    if labels.nrows() != ground.nrows() || labels.ncols() == 0 {
        return Err(Error::InvalidArgument(format!(
            "VIGOR labels must be [{}, 1 + semi-positives], got {:?}",
            ground.nrows(),
            labels.dim()
        )));
    }
    let index = |(i, v): (usize, &i64)| {
        usize::try_from(*v).map_err(|_| {
            Error::InvalidArgument(format!("VIGOR label row {i}: negative satellite index {v}"))
        })
    };
    let mut positives = Vec::with_capacity(labels.nrows());
    let mut semis = Vec::with_capacity(labels.nrows());
    for (i, row) in labels.outer_iter().enumerate() {
        positives.push(index((i, &row[0]))?);
        semis.push(
            row.iter()
                .skip(1)
                .map(|v| index((i, v)))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    cross_view_recall(ground, satellite, &positives, &semis, ks, compute)
}

/// The general form of both protocols: ground image `i` matches satellite `positives[i]`;
/// `semi_positives[i]` (any number per query, or an empty slice for none at all) are counted
/// as negatives in Recall@K and left out for the hit rate, which is reported only when
/// `semi_positives` is given.
///
/// # Shapes
/// - `ground`: `[Ng, d]`, `satellite`: `[Ns, d]`, `positives`: `[Ng]`, `semi_positives`:
///   `[Ng]` lists or `[]`.
pub fn cross_view_recall<T: Real>(
    ground: ArrayView2<'_, T>,
    satellite: ArrayView2<'_, T>,
    positives: &[usize],
    semi_positives: &[Vec<usize>],
    ks: &[usize],
    compute: &Compute,
) -> Result<CrossViewReport> {
    check_ks(ks, satellite.nrows())?;
    let ranks = positive_ranks(
        ground,
        satellite,
        positives,
        semi_positives,
        Similarity::InnerProduct,
        compute,
        Blocking::default(),
        &NoProgress,
    )?;
    let hit = (!semi_positives.is_empty()).then_some(ranks.rank_without_ignored.as_slice());
    Ok(report(&ranks.rank, satellite.nrows(), ks, hit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Three queries against four satellites with semi-positive lists of different lengths,
    /// ranks counted by hand from the inner products.
    #[test]
    fn ragged_semi_positives_leave_the_hit_rate_only() {
        let satellite = array![[1.0f32, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]];
        let ground = array![[0.9f32, 0.1], [0.0, 1.0], [-0.6, 0.8]];
        // Scores: q0 = [.9, .78, .1, -.9]; q1 = [0, .6, 1, 0]; q2 = [-.6, 0, .8, .6].
        let positives = [1, 1, 3];
        let semis = vec![vec![0], vec![], vec![2, 0]];
        let r = cross_view_recall(
            ground.view(),
            satellite.view(),
            &positives,
            &semis,
            &[1, 2],
            &Compute::Cpu,
        )
        .unwrap();
        // Ranks: q0 1 (sat 0 above), q1 1 (sat 2), q2 1 (sat 2; sat 0's -0.6 is below).
        // Without semis: q0 0, q1 1, q2 0.
        assert_eq!(r.recall_at, vec![(1, 0.0), (2, 1.0)]);
        assert_eq!(r.hit_rate, Some(2.0 / 3.0));
        assert_eq!(r.top1_percent_k, 1);
        let none = cross_view_recall(
            ground.view(),
            satellite.view(),
            &positives,
            &[],
            &[1],
            &Compute::Cpu,
        )
        .unwrap();
        assert_eq!(none.hit_rate, None);
        assert!(
            cross_view_recall(
                ground.view(),
                satellite.view(),
                &positives,
                &[],
                &[5],
                &Compute::Cpu
            )
            .is_err(),
            "K beyond the satellites"
        );
    }
}
