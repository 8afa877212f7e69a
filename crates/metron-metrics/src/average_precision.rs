//! Mean average precision over the whole ranked gallery (not truncated at R or K).
//!
//! Exact, in bounded memory: a first scan collects the score of every relevant item of every
//! query (O(sum of R) memory); a second counts, for each relevant item, the irrelevant items
//! ranked above it. Ties are broken by the lower gallery index, as in the kNN.

use std::collections::HashMap;
use std::ops::Range;

use crate::scan::{Blocking, Compute, Progress, ScoreEngine, TileVisitor};
use crate::{Real, Result};

/// Gallery indices of each label, sorted: lets a visitor jump to a query's relevant items in
/// a tile instead of comparing every label.
pub(crate) struct Postings {
    by_label: HashMap<i64, Vec<usize>>,
}

impl Postings {
    pub(crate) fn new(gallery_labels: &[i64]) -> Self {
        let mut by_label: HashMap<i64, Vec<usize>> = HashMap::new();
        for (j, &l) in gallery_labels.iter().enumerate() {
            by_label.entry(l).or_default().push(j);
        }
        Postings { by_label }
    }

    fn in_range(&self, label: i64, cols: &Range<usize>) -> &[usize] {
        let Some(list) = self.by_label.get(&label) else {
            return &[];
        };
        let a = list.partition_point(|&j| j < cols.start);
        let b = list.partition_point(|&j| j < cols.end);
        &list[a..b]
    }
}

struct RelevantScores<'a, T> {
    rows: Range<usize>,
    labels: &'a [i64],
    postings: &'a Postings,
    same_set: bool,
    /// Per query: (score, gallery index) of every relevant item.
    found: Vec<Vec<(T, usize)>>,
}

impl<T: Real> TileVisitor<T> for RelevantScores<'_, T> {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        let n = cols.len();
        for i in rows.clone() {
            let r = i - rows.start;
            for &j in self.postings.in_range(self.labels[i], &cols) {
                if self.same_set && j == i {
                    continue;
                }
                self.found[i - self.rows.start].push((tile[r * n + j - cols.start], j));
            }
        }
    }
}

struct IrrelevantAbove<'a, T> {
    rows: Range<usize>,
    query_labels: &'a [i64],
    gallery_labels: &'a [i64],
    same_set: bool,
    /// Per query, relevant items sorted best first (score desc, index asc).
    relevant: &'a [Vec<(T, usize)>],
    /// Per query, `above[m]` counts irrelevant items ranked above relevant item m but not
    /// above relevant item m - 1 (a difference array).
    above: Vec<Vec<usize>>,
}

impl<T: Real> TileVisitor<T> for IrrelevantAbove<'_, T> {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        let n = cols.len();
        for (r, row) in tile.chunks_exact(n).enumerate() {
            let i = rows.start + r;
            let rel = &self.relevant[i];
            let Some(&(lowest, _)) = rel.last() else {
                continue;
            };
            let li = i - self.rows.start;
            for (c, &s) in row.iter().enumerate() {
                if s < lowest {
                    continue;
                }
                let j = cols.start + c;
                if (self.same_set && j == i) || self.gallery_labels[j] == self.query_labels[i] {
                    continue;
                }
                // The relevant items this one outranks form a suffix of the sorted list.
                let t = rel.partition_point(|&(sp, jp)| !(s > sp || (s == sp && j < jp)));
                if t < rel.len() {
                    self.above[li][t] += 1;
                }
            }
        }
    }
}

/// Average precision of every query over the full ranking; `None` for queries with no
/// relevant item.
pub(crate) fn average_precisions<T: Real>(
    engine: &ScoreEngine<'_, T>,
    query_labels: &[i64],
    gallery_labels: &[i64],
    compute: &Compute,
    blocking: Blocking,
    progress: &dyn Progress,
) -> Result<Vec<Option<f64>>> {
    let postings = Postings::new(gallery_labels);
    let same_set = engine.same_set();
    let first = engine.scan(compute, blocking, &crate::scan::NoProgress, |rows| {
        let n = rows.len();
        RelevantScores {
            rows,
            labels: query_labels,
            postings: &postings,
            same_set,
            found: vec![Vec::new(); n],
        }
    })?;
    let mut relevant: Vec<Vec<(T, usize)>> = first.into_iter().flat_map(|v| v.found).collect();
    for list in &mut relevant {
        list.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .expect("finite scores")
                .then(a.1.cmp(&b.1))
        });
    }
    let second = engine.scan(compute, blocking, progress, |rows| {
        let above = rows.clone().map(|i| vec![0; relevant[i].len()]).collect();
        IrrelevantAbove {
            rows,
            query_labels,
            gallery_labels,
            same_set,
            relevant: &relevant,
            above,
        }
    })?;
    Ok(second
        .into_iter()
        .flat_map(|v| v.above)
        .map(|above| {
            if above.is_empty() {
                return None;
            }
            let mut irrelevant = 0usize;
            let mut sum = 0.0;
            for (m, a) in above.iter().enumerate() {
                irrelevant += a;
                sum += (m + 1) as f64 / (m + 1 + irrelevant) as f64;
            }
            Some(sum / above.len() as f64)
        })
        .collect())
}
