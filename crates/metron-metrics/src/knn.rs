//! Exact k-nearest-neighbour search in bounded memory.

use std::ops::Range;

use ndarray::ArrayView2;

use crate::scan::{Blocking, Compute, NoProgress, Progress, ScoreEngine, TileVisitor};
use crate::{Error, Real, Result, Similarity};

/// How a kNN search runs: the similarity, where the GEMMs run and the block sizes.
#[derive(Debug, Clone, Default)]
pub struct KnnOptions {
    /// How queries and gallery items are compared (default cosine).
    pub similarity: Similarity,
    /// Where the score GEMMs run (default CPU).
    pub compute: Compute,
    /// Block sizes of the scan (default 1024 x 1024).
    pub blocking: Blocking,
}

impl KnnOptions {
    /// A search by `similarity` on the CPU with the default blocks.
    pub fn new(similarity: Similarity) -> Self {
        KnnOptions {
            similarity,
            ..Default::default()
        }
    }

    /// Runs the GEMMs where `compute` says.
    pub fn with_compute(mut self, compute: Compute) -> Self {
        self.compute = compute;
        self
    }

    /// Scans with the block sizes of `blocking`.
    pub fn with_blocking(mut self, blocking: Blocking) -> Self {
        self.blocking = blocking;
        self
    }
}

/// The k nearest gallery items of every query, closest first; ties go to the lower gallery
/// index.
///
/// # Shapes
/// - `indices`, `values`: row-major `[num_queries, k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors<T> {
    /// Neighbours kept per query: the row length of `indices` and `values`.
    pub k: usize,
    /// Gallery row of each neighbour.
    pub indices: Vec<usize>,
    /// Cosine similarity, inner product, or squared distance, as the similarity defines.
    pub values: Vec<T>,
}

impl<T: Copy> Neighbors<T> {
    /// Number of queries (rows); 0 when `k` is 0.
    pub fn num_queries(&self) -> usize {
        self.indices.len().checked_div(self.k).unwrap_or(0)
    }

    /// Gallery indices of query `i`'s neighbours, closest first.
    pub fn row(&self, i: usize) -> &[usize] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }

    /// The values of query `i`'s neighbours, in the order of [`Neighbors::row`].
    pub fn row_values(&self, i: usize) -> &[T] {
        &self.values[i * self.k..(i + 1) * self.k]
    }
}

/// Keeps the k best (score, index) pairs of each query in its block, best first.
pub(crate) struct TopK<T> {
    k: usize,
    rows: Range<usize>,
    /// Self-retrieval: gallery column `j + g` is query row `i + q` for `Some((g, q))`, never its
    /// own neighbour.
    exclude_offset: Option<(usize, usize)>,
    /// `[rows.len(), k]`, sorted by descending score within a row; unfilled slots hold -inf.
    scores: Vec<T>,
    indices: Vec<usize>,
    filled: Vec<usize>,
}

impl<T: Real> TopK<T> {
    pub(crate) fn new(k: usize, rows: Range<usize>, same_set: bool) -> Self {
        Self::excluding(k, rows, same_set.then_some((0, 0)))
    }

    /// Keeps the best `k` of `rows`, skipping gallery column `j` for query `i` when
    /// `j + g == i + q` with `exclude_offset = Some((g, q))`.
    pub(crate) fn excluding(
        k: usize,
        rows: Range<usize>,
        exclude_offset: Option<(usize, usize)>,
    ) -> Self {
        let n = rows.len();
        TopK {
            k,
            rows,
            exclude_offset,
            scores: vec![T::NEG_INFINITY; n * k],
            indices: vec![usize::MAX; n * k],
            filled: vec![0; n],
        }
    }

    #[inline]
    fn insert(&mut self, r: usize, score: T, j: usize) {
        let k = self.k;
        let s = &mut self.scores[r * k..(r + 1) * k];
        let idx = &mut self.indices[r * k..(r + 1) * k];
        let filled = self.filled[r];
        // Gallery items arrive in increasing index order, so an equal score never displaces
        // an earlier item: strict comparisons alone give the lower-index tie rule.
        let mut pos = filled.min(k - 1);
        if filled == k && score <= s[k - 1] {
            return;
        }
        while pos > 0 && s[pos - 1] < score {
            s[pos] = s[pos - 1];
            idx[pos] = idx[pos - 1];
            pos -= 1;
        }
        s[pos] = score;
        idx[pos] = j;
        if filled < k {
            self.filled[r] = filled + 1;
        }
    }
}

impl<T: Real> TileVisitor<T> for TopK<T> {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        const CHUNK: usize = 16;
        let n = cols.len();
        let k = self.k;
        for (r, row) in tile.chunks_exact(n).enumerate() {
            let qi = rows.start + r;
            let lr = qi - self.rows.start;
            for (c0, chunk) in row.chunks(CHUNK).enumerate() {
                // The k-th best so far; a chunk with nothing above it is skipped with one
                // vectorised compare, which is what almost every chunk does after the first
                // few gallery tiles.
                let worst = if self.filled[lr] == k {
                    self.scores[lr * k + k - 1]
                } else {
                    T::NEG_INFINITY
                };
                let any = chunk.iter().fold(false, |acc, &v| acc | (v > worst));
                let any = any || (self.filled[lr] < k);
                if !any {
                    continue;
                }
                for (c, &v) in chunk.iter().enumerate() {
                    let j = cols.start + c0 * CHUNK + c;
                    if self.exclude_offset.is_some_and(|(g, q)| j + g == qi + q) {
                        continue;
                    }
                    self.insert(lr, v, j);
                }
            }
        }
    }
}

impl<T: Real> TopK<T> {
    /// The first query row of the block.
    pub(crate) fn first_row(&self) -> usize {
        self.rows.start
    }

    pub(crate) fn into_parts(self) -> (Vec<T>, Vec<usize>) {
        (self.scores, self.indices)
    }
}

pub(crate) fn check_k(k: usize, available: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::KZero);
    }
    if k > available {
        return Err(Error::KTooLarge { k, available });
    }
    Ok(())
}

pub(crate) fn knn_with_engine<T: Real>(
    engine: &ScoreEngine<'_, T>,
    k: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<Neighbors<T>> {
    let same = engine.same_set();
    let available = engine.num_gallery() - usize::from(same);
    check_k(k, available)?;
    let blocks = engine.scan(&options.compute, options.blocking, progress, |rows| {
        TopK::new(k, rows, same)
    })?;
    let nq = engine.num_queries();
    let mut indices = Vec::with_capacity(nq * k);
    let mut values = Vec::with_capacity(nq * k);
    for block in blocks {
        let start = block.rows.start;
        let (scores, idx) = block.into_parts();
        for (r, (s, i)) in scores.chunks_exact(k).zip(idx.chunks_exact(k)).enumerate() {
            indices.extend_from_slice(i);
            values.extend(s.iter().map(|&v| engine.reported(start + r, v)));
        }
    }
    Ok(Neighbors { k, indices, values })
}

/// The `k` nearest gallery rows of every query row.
///
/// # Shapes
/// - `query`: `[Nq, d]`, `gallery`: `[Ng, d]`; result `[Nq, k]`.
///
/// Errors on empty sets, a dimension mismatch, NaN/Inf values, zero vectors under cosine,
/// and `k` outside `1..=Ng`.
pub fn knn<T: Real>(
    query: ArrayView2<'_, T>,
    gallery: ArrayView2<'_, T>,
    k: usize,
    options: &KnnOptions,
) -> Result<Neighbors<T>> {
    let engine = ScoreEngine::new(query, gallery, options.similarity, false)?;
    knn_with_engine(&engine, k, options, &NoProgress)
}

/// Self-retrieval: the `k` nearest other rows of every row. A row is excluded from its own
/// neighbours by index, not by distance, so duplicates of it are still found.
///
/// # Shapes
/// - `embeddings`: `[N, d]`; result `[N, k]`, `k <= N - 1`.
pub fn knn_self<T: Real>(
    embeddings: ArrayView2<'_, T>,
    k: usize,
    options: &KnnOptions,
) -> Result<Neighbors<T>> {
    let engine = ScoreEngine::new(embeddings, embeddings, options.similarity, true)?;
    knn_with_engine(&engine, k, options, &NoProgress)
}

/// [`knn`] / [`knn_self`] with a progress callback (`gallery = None` for self-retrieval).
pub fn knn_with_progress<T: Real>(
    query: ArrayView2<'_, T>,
    gallery: Option<ArrayView2<'_, T>>,
    k: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<Neighbors<T>> {
    let engine = match gallery {
        Some(g) => ScoreEngine::new(query, g, options.similarity, false)?,
        None => ScoreEngine::new(query, query, options.similarity, true)?,
    };
    knn_with_engine(&engine, k, options, progress)
}
