//! The blocked score engine every metric in this crate is built on.
//!
//! Queries are cut into blocks of `block_queries` rows; each block walks the gallery in blocks
//! of `block_gallery` rows, computes one score tile with a GEMM, turns dot products into ranking
//! scores (higher = closer) and hands the tile to a [`TileVisitor`]. Only one tile per worker
//! exists at a time, so memory is O(block_queries * block_gallery) on top of the inputs, never
//! Nq x Ng. Within a query block the gallery is visited in increasing index order, which lets
//! visitors break ties towards the lower gallery index with a plain strict comparison.
//!
//! Scores per metric (row i of the query set, row j of the gallery):
//! - inner product: `q_i . g_j`;
//! - cosine: `q_i . g_j / |g_j|` (the query's own `1/|q_i|` does not change its ranking and is
//!   applied only when a value is reported);
//! - squared L2: `2 q_i . g_j - |g_j|^2`, so that `|q_i - g_j|^2 = |q_i|^2 - score`.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::{Error, Real, Result, Similarity};

/// Receives score tiles. One visitor serves one block of queries and sees the whole gallery,
/// tile by tile, in increasing gallery order.
pub trait TileVisitor<T>: Send {
    /// `tile` is row-major `[rows.len(), cols.len()]`: `tile[r * cols.len() + c]` scores query
    /// `rows.start + r` against gallery item `cols.start + c`.
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]);
}

/// Reports how many queries have been fully processed; lets a CLI draw a progress bar without
/// this crate knowing about terminals.
pub trait Progress: Sync {
    /// Called after each finished block with the number of queries it held (calls may come
    /// from several threads at once).
    fn advance(&self, queries: usize);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _queries: usize) {}
}

/// Where the GEMMs of a scan run.
#[derive(Debug, Clone, Default)]
pub enum Compute {
    /// Plain CPU code: the `gemm` crate (AVX-512 where the CPU has it) and rayon across query
    /// blocks. f64 input is computed in f64.
    #[default]
    Cpu,
    /// A Burn device (any backend compiled in): tiles are computed there in f32 and ranked on
    /// the host, so devices without a usable top-k still give exact, deterministic results.
    Device(Device),
}

/// Block sizes of the scan. The defaults (1024 x 1024: a 4 MiB f32 tile per worker) were tuned
/// with `benches/knn.rs` and `metron knn --block-queries/--block-gallery` on a 2-core AVX-512
/// machine: larger query blocks amortise the packing of gallery panels inside the GEMM
/// (256 x 1024 was 20% slower), larger tiles bring nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// Most query rows per block, the unit of work of one worker; smaller when there are too
    /// few queries to keep every worker busy (default 1024).
    pub block_queries: usize,
    /// Gallery rows per score tile (default 1024).
    pub block_gallery: usize,
}

impl Default for Blocking {
    fn default() -> Self {
        Blocking {
            block_queries: 1024,
            block_gallery: 1024,
        }
    }
}

/// Validated inputs plus the per-row norms the chosen similarity needs.
pub(crate) struct ScoreEngine<'a, T: Real> {
    query: ArrayView2<'a, T>,
    gallery: ArrayView2<'a, T>,
    similarity: Similarity,
    /// cosine: 1/|g_j|; squared L2: -|g_j|^2; inner product: empty.
    gallery_term: Vec<T>,
    /// cosine: 1/|q_i|; squared L2: |q_i|^2; inner product: empty.
    query_term: Vec<T>,
    same_set: bool,
}

fn check_finite<T: Real>(set: &'static str, x: &ArrayView2<'_, T>) -> Result<()> {
    for (row, r) in x.outer_iter().enumerate() {
        if let Some((col, v)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                set,
                row,
                col,
                value: v.to_f64(),
            });
        }
    }
    Ok(())
}

fn row_norms_sq<T: Real>(x: &ArrayView2<'_, T>) -> Vec<T> {
    x.outer_iter()
        .map(|r| r.iter().fold(T::ZERO, |acc, &v| acc + v * v))
        .collect()
}

fn inverse_norms<T: Real>(set: &'static str, norms_sq: Vec<T>) -> Result<Vec<T>> {
    norms_sq
        .into_iter()
        .enumerate()
        .map(|(row, n)| {
            if n > T::ZERO {
                Ok(T::ONE / n.sqrt())
            } else {
                Err(Error::ZeroNorm { set, row })
            }
        })
        .collect()
}

impl<'a, T: Real> ScoreEngine<'a, T> {
    /// Query/gallery retrieval (`same_set = false`) or self-retrieval over one set, where
    /// `query` and `gallery` are the same rows and visitors skip `i == j`.
    pub(crate) fn new(
        query: ArrayView2<'a, T>,
        gallery: ArrayView2<'a, T>,
        similarity: Similarity,
        same_set: bool,
    ) -> Result<Self> {
        if query.nrows() == 0 {
            return Err(Error::EmptySet { set: "query" });
        }
        if gallery.nrows() == 0 {
            return Err(Error::EmptySet { set: "gallery" });
        }
        if query.ncols() != gallery.ncols() {
            return Err(Error::DimensionMismatch {
                query: query.ncols(),
                gallery: gallery.ncols(),
            });
        }
        check_finite("query", &query)?;
        if !same_set {
            check_finite("gallery", &gallery)?;
        }
        let (query_term, gallery_term) = match similarity {
            Similarity::InnerProduct => (Vec::new(), Vec::new()),
            Similarity::Cosine => {
                let q = inverse_norms("query", row_norms_sq(&query))?;
                let g = if same_set {
                    q.clone()
                } else {
                    inverse_norms("gallery", row_norms_sq(&gallery))?
                };
                (q, g)
            }
            Similarity::SquaredL2 => {
                let q = row_norms_sq(&query);
                let g: Vec<T> = if same_set {
                    q.iter().map(|&n| T::ZERO - n).collect()
                } else {
                    row_norms_sq(&gallery)
                        .into_iter()
                        .map(|n| T::ZERO - n)
                        .collect()
                };
                (q, g)
            }
        };
        Ok(ScoreEngine {
            query,
            gallery,
            similarity,
            gallery_term,
            query_term,
            same_set,
        })
    }

    pub(crate) fn num_queries(&self) -> usize {
        self.query.nrows()
    }

    pub(crate) fn num_gallery(&self) -> usize {
        self.gallery.nrows()
    }

    pub(crate) fn same_set(&self) -> bool {
        self.same_set
    }

    /// Turns a ranking score of query `i` into the value users see: the cosine similarity,
    /// the inner product, or the squared distance (clamped at 0 against rounding).
    pub(crate) fn reported(&self, i: usize, score: T) -> T {
        match self.similarity {
            Similarity::InnerProduct => score,
            Similarity::Cosine => score * self.query_term[i],
            Similarity::SquaredL2 => {
                let d = self.query_term[i] - score;
                if d < T::ZERO { T::ZERO } else { d }
            }
        }
    }

    /// Runs the scan: one visitor per query block, returned in query order.
    pub(crate) fn scan<V, F>(
        &self,
        compute: &Compute,
        blocking: Blocking,
        progress: &dyn Progress,
        make: F,
    ) -> Result<Vec<V>>
    where
        V: TileVisitor<T>,
        F: Fn(Range<usize>) -> V + Sync,
    {
        match compute {
            Compute::Cpu => Ok(self.scan_cpu(blocking, progress, make)),
            Compute::Device(device) => self.scan_device(device, blocking, progress, make),
        }
    }

    fn blocks(&self, blocking: Blocking, workers: usize) -> (Vec<Range<usize>>, usize) {
        let nq = self.num_queries();
        // Small query sets still keep every worker busy.
        let per_worker = nq.div_ceil(workers.max(1));
        let bq = blocking.block_queries.clamp(1, per_worker.max(1));
        let bg = blocking.block_gallery.max(1);
        let blocks = (0..nq).step_by(bq).map(|s| s..(s + bq).min(nq)).collect();
        (blocks, bg)
    }

    fn scan_cpu<V, F>(&self, blocking: Blocking, progress: &dyn Progress, make: F) -> Vec<V>
    where
        V: TileVisitor<T>,
        F: Fn(Range<usize>) -> V + Sync,
    {
        let (blocks, bg) = self.blocks(blocking, rayon::current_num_threads());
        let bq = blocks.first().map_or(1, |b| b.len());
        let ng = self.num_gallery();
        blocks
            .into_par_iter()
            .map_init(
                || vec![T::ZERO; bq * bg.min(ng)],
                |tile, rows| {
                    let mut visitor = make(rows.clone());
                    for g0 in (0..ng).step_by(bg) {
                        let cols = g0..(g0 + bg).min(ng);
                        let t = &mut tile[..rows.len() * cols.len()];
                        self.cpu_tile(rows.clone(), cols.clone(), t);
                        visitor.visit(rows.clone(), cols, t);
                    }
                    progress.advance(rows.len());
                    visitor
                },
            )
            .collect()
    }

    /// Fills `tile` with the ranking scores of `rows` x `cols`.
    fn cpu_tile(&self, rows: Range<usize>, cols: Range<usize>, tile: &mut [T]) {
        let (m, n, k) = (rows.len(), cols.len(), self.query.ncols());
        let q = self.query.slice(ndarray::s![rows, ..]);
        let g = self.gallery.slice(ndarray::s![cols.clone(), ..]);
        let l2 = self.similarity == Similarity::SquaredL2;
        if l2 {
            for row in tile.chunks_exact_mut(n) {
                row.copy_from_slice(&self.gallery_term[cols.clone()]);
            }
        }
        let (alpha, beta) = if l2 {
            (T::ONE, T::ONE + T::ONE)
        } else {
            (T::ZERO, T::ONE)
        };
        crate::gemm_kernel::gemm(m, n, k, tile, &q, &g, l2, alpha, beta);
        if self.similarity == Similarity::Cosine {
            let scale = &self.gallery_term[cols];
            for row in tile.chunks_exact_mut(n) {
                for (v, &s) in row.iter_mut().zip(scale) {
                    *v = *v * s;
                }
            }
        }
    }

    fn scan_device<V, F>(
        &self,
        device: &Device,
        blocking: Blocking,
        progress: &dyn Progress,
        make: F,
    ) -> Result<Vec<V>>
    where
        V: TileVisitor<T>,
        F: Fn(Range<usize>) -> V + Sync,
    {
        let upload = |x: ArrayView2<'_, T>| -> Tensor<2> {
            let (r, c) = x.dim();
            let v: Vec<f32> = x.iter().map(|v| v.to_f64() as f32).collect();
            Tensor::<2>::from_data(TensorData::new(v, [r, c]), device)
        };
        let ng = self.num_gallery();
        let (blocks, bg) = self.blocks(blocking, 1);
        // The gallery is uploaded once; tiles of it are sliced on the device.
        let gallery = upload(self.gallery.view());
        let d = self.query.ncols();
        let mut visitors = Vec::with_capacity(blocks.len());
        let mut scores: Vec<T> = Vec::new();
        for rows in blocks {
            let q = upload(self.query.slice(ndarray::s![rows.clone(), ..]));
            let mut visitor = make(rows.clone());
            for g0 in (0..ng).step_by(bg) {
                let cols = g0..(g0 + bg).min(ng);
                let g = gallery.clone().slice([cols.clone(), 0..d]);
                let dots = q.clone().matmul(g.transpose());
                let data = dots
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| Error::Device(format!("{e:?}")))?;
                scores.clear();
                let n = cols.len();
                for row in data.chunks_exact(n) {
                    for (c, &dot) in row.iter().enumerate() {
                        let dot = T::from_f64(dot as f64);
                        let j = cols.start + c;
                        scores.push(match self.similarity {
                            Similarity::InnerProduct => dot,
                            Similarity::Cosine => dot * self.gallery_term[j],
                            Similarity::SquaredL2 => dot + dot + self.gallery_term[j],
                        });
                    }
                }
                visitor.visit(rows.clone(), cols, &scores);
            }
            progress.advance(rows.len());
            visitors.push(visitor);
        }
        Ok(visitors)
    }
}

/// Two visitors fed by one scan, so that metrics needing different views of the scores (top-k
/// and positive scores, say) share the GEMMs.
impl<T, A: TileVisitor<T>, B: TileVisitor<T>> TileVisitor<T> for (A, B) {
    fn visit(&mut self, rows: Range<usize>, cols: Range<usize>, tile: &[T]) {
        self.0.visit(rows.clone(), cols.clone(), tile);
        self.1.visit(rows, cols, tile);
    }
}
