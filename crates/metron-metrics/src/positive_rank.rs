//! Rank of one known positive per query: how many gallery items score strictly better.
//!
//! This is the cross-view geo-localisation protocol (CVUSA, CVACT, VIGOR): with
//! `D = 2 - 2 q.g`, `rank_i = #{j : D[i, j] < D[i, p_i]}`; ties count in the query's favour.
//! Two scans share one code path for the scores, so a gallery item that duplicates the
//! positive produces exactly the positive's score and is not counted.

use std::ops::Range;

use ndarray::ArrayView2;

use crate::scan::{Blocking, Compute, Progress, ScoreEngine, TileVisitor};
use crate::{Error, Real, Result, Similarity};

/// Ranks of the positive, with and without the ignored items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositiveRanks {
    /// `#{j != p_i : s_ij > s_ip}` for every query.
    pub rank: Vec<usize>,
    /// The same count with the query's ignored items (VIGOR's semi-positives) left out.
    pub rank_without_ignored: Vec<usize>,
}

struct PositiveScore<'p, T> {
    rows: Range<usize>,
    positives: &'p [usize],
    scores: Vec<T>,
}

impl<T: Real> TileVisitor<T> for PositiveScore<'_, T> {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        let n = cols.len();
        for i in rows.clone() {
            let p = self.positives[i];
            if cols.contains(&p) {
                self.scores[i - self.rows.start] = tile[(i - rows.start) * n + (p - cols.start)];
            }
        }
    }
}

struct BetterCount<'p, T> {
    rows: Range<usize>,
    ignored: &'p [Vec<usize>],
    positive_scores: &'p [T],
    better: Vec<usize>,
    better_ignored: Vec<usize>,
}

impl<T: Real> TileVisitor<T> for BetterCount<'_, T> {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        let n = cols.len();
        for (r, row) in tile.chunks_exact(n).enumerate() {
            let i = rows.start + r;
            let li = i - self.rows.start;
            let sp = self.positive_scores[i];
            let count = row.iter().filter(|&&v| v > sp).count();
            self.better[li] += count;
            if let Some(ign) = self.ignored.get(i) {
                for &j in ign {
                    if cols.contains(&j) && row[j - cols.start] > sp {
                        self.better_ignored[li] += 1;
                    }
                }
            }
        }
    }
}

/// For every query `i`, counts gallery items scoring strictly better than its positive
/// `positives[i]`, both over the whole gallery and with `ignored[i]` left out (`ignored` may be
/// empty, or hold one list per query).
///
/// # Shapes
/// - `query`: `[Nq, d]`, `gallery`: `[Ng, d]`, `positives`: `[Nq]`.
#[allow(clippy::too_many_arguments)]
pub fn positive_ranks<T: Real>(
    query: ArrayView2<'_, T>,
    gallery: ArrayView2<'_, T>,
    positives: &[usize],
    ignored: &[Vec<usize>],
    similarity: Similarity,
    compute: &Compute,
    blocking: Blocking,
    progress: &dyn Progress,
) -> Result<PositiveRanks> {
    let engine = ScoreEngine::new(query, gallery, similarity, false)?;
    let (nq, ng) = (engine.num_queries(), engine.num_gallery());
    if positives.len() != nq {
        return Err(Error::LabelCount {
            set: "query positives",
            labels: positives.len(),
            rows: nq,
        });
    }
    if !ignored.is_empty() && ignored.len() != nq {
        return Err(Error::LabelCount {
            set: "query semi-positives",
            labels: ignored.len(),
            rows: nq,
        });
    }
    if let Some(j) = positives
        .iter()
        .chain(ignored.iter().flatten())
        .find(|&&j| j >= ng)
    {
        return Err(Error::InvalidArgument(format!(
            "gallery index {j} is out of range: the gallery has {ng} rows"
        )));
    }
    // Each ignored item is subtracted once, and never the positive itself.
    let ignored: Vec<Vec<usize>> = ignored
        .iter()
        .zip(positives)
        .map(|(list, &p)| {
            let mut list: Vec<usize> = list.iter().copied().filter(|&j| j != p).collect();
            list.sort_unstable();
            list.dedup();
            list
        })
        .collect();
    let ignored = ignored.as_slice();
    let first = engine.scan(compute, blocking, &crate::scan::NoProgress, |rows| {
        let n = rows.len();
        PositiveScore {
            rows,
            positives,
            scores: vec![T::ZERO; n],
        }
    })?;
    let positive_scores: Vec<T> = first.into_iter().flat_map(|v| v.scores).collect();
    let second = engine.scan(compute, blocking, progress, |rows| {
        let n = rows.len();
        BetterCount {
            rows,
            ignored,
            positive_scores: &positive_scores,
            better: vec![0; n],
            better_ignored: vec![0; n],
        }
    })?;
    let mut rank = Vec::with_capacity(nq);
    let mut rank_without_ignored = Vec::with_capacity(nq);
    for v in second {
        for (b, bi) in v.better.into_iter().zip(v.better_ignored) {
            rank.push(b);
            rank_without_ignored.push(b - bi);
        }
    }
    Ok(PositiveRanks {
        rank,
        rank_without_ignored,
    })
}
