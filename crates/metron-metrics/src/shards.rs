//! Exact kNN over a gallery split into shards: each shard keeps the top k of its own rows
//! (with the ranking scores, gallery indices made global), and the merge keeps the top k of
//! the union by the same rule as the unsharded search (higher score first, lower gallery index
//! on ties), so the result is the unsharded one. Shards may run one after another, on several
//! devices or CPU thread pools at once ([`knn_sharded`]), or in separate processes whose
//! parts are merged afterwards ([`merge_shards`]).

use std::ops::Range;

use ndarray::{ArrayView2, s};

use crate::knn::{KnnOptions, Neighbors, TopK, check_k};
use crate::scan::{Compute, Progress, ScoreEngine};
use crate::{Error, Real, Result};

/// One shard's neighbours: for every query its best `k` rows of `rows`, best first.
///
/// # Shapes
/// - `indices`, `scores`, `values`: row-major `[num_queries, k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardNeighbors<T> {
    /// The gallery rows this shard searched.
    pub rows: Range<usize>,
    /// Neighbours kept per query (at most the shard's size).
    pub k: usize,
    /// Global gallery index of each neighbour; `usize::MAX` where a query has fewer
    /// candidates than `k` in this shard (itself excluded in self-retrieval).
    pub indices: Vec<usize>,
    /// The ranking scores (higher is closer; comparable across shards of one search).
    pub scores: Vec<T>,
    /// The values users see (cosine, inner product or squared distance).
    pub values: Vec<T>,
}

impl<T: Copy> ShardNeighbors<T> {
    /// Number of queries.
    pub fn num_queries(&self) -> usize {
        self.indices.len().checked_div(self.k).unwrap_or(0)
    }
}

/// `n` gallery rows in `shards` contiguous ranges, none empty, with every boundary on a
/// multiple of `align` when there are at least `shards` blocks of `align` rows (pass the
/// scan's `block_gallery`: each shard then scans exactly the tiles the unsharded search
/// scans, so its scores are bit for bit the same; otherwise the shards are near-equal and
/// values may differ from the unsharded ones in the last bits).
pub fn shard_ranges(n: usize, shards: usize, align: usize) -> Result<Vec<Range<usize>>> {
    if shards == 0 || shards > n {
        return Err(Error::Shards(format!(
            "{shards} shards of a gallery of {n} rows: give between 1 and {n}"
        )));
    }
    let align = align.max(1);
    let (unit, units) = if n.div_ceil(align) >= shards {
        (align, n.div_ceil(align))
    } else {
        (1, n)
    };
    let (base, extra) = (units / shards, units % shards);
    let mut start = 0;
    Ok((0..shards)
        .map(|i| {
            let len = (base + usize::from(i < extra)) * unit;
            let r = start..(start + len).min(n);
            start += len;
            r
        })
        .collect())
}

/// The best `k` (at most the shard's size) of gallery rows `rows` for every query.
/// `gallery = None` is self-retrieval over `query`: query row `i` is never its own neighbour.
pub fn knn_shard<T: Real>(
    query: ArrayView2<'_, T>,
    gallery: Option<ArrayView2<'_, T>>,
    rows: Range<usize>,
    k: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<ShardNeighbors<T>> {
    match gallery {
        Some(g) => knn_shard_of(query, 0, g, false, rows, k, options, progress),
        None => knn_shard_of(query, 0, query, true, rows, k, options, progress),
    }
}

/// [`knn_shard`] for queries that are rows `query_offset..` of a set: with `self_retrieval`,
/// `gallery` is that whole set and query row `i` skips gallery row `query_offset + i`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn knn_shard_of<T: Real>(
    query: ArrayView2<'_, T>,
    query_offset: usize,
    full: ArrayView2<'_, T>,
    self_retrieval: bool,
    rows: Range<usize>,
    k: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<ShardNeighbors<T>> {
    if rows.is_empty() || rows.end > full.nrows() {
        return Err(Error::Shards(format!(
            "shard rows {rows:?} are not inside the gallery's {} rows",
            full.nrows()
        )));
    }
    check_k(k, usize::MAX)?;
    let shard = full.slice(s![rows.clone(), ..]);
    let engine = ScoreEngine::new(query, shard, options.similarity, false)?;
    let k_shard = k.min(rows.len());
    let exclude = self_retrieval.then_some((rows.start, query_offset));
    let blocks = engine.scan(&options.compute, options.blocking, progress, |r| {
        TopK::excluding(k_shard, r, exclude)
    })?;
    let nq = engine.num_queries();
    let mut indices = Vec::with_capacity(nq * k_shard);
    let mut scores = Vec::with_capacity(nq * k_shard);
    let mut values = Vec::with_capacity(nq * k_shard);
    for block in blocks {
        let start = block.first_row();
        let (sc, idx) = block.into_parts();
        for (r, (srow, irow)) in sc
            .chunks_exact(k_shard)
            .zip(idx.chunks_exact(k_shard))
            .enumerate()
        {
            for (&v, &j) in srow.iter().zip(irow) {
                if j == usize::MAX {
                    indices.push(usize::MAX);
                    values.push(T::NEG_INFINITY);
                } else {
                    indices.push(j + rows.start);
                    values.push(engine.reported(start + r, v));
                }
                scores.push(v);
            }
        }
    }
    Ok(ShardNeighbors {
        rows,
        k: k_shard,
        indices,
        scores,
        values,
    })
}

/// Merges shard results into the exact top `k` of their union: higher score first, the lower
/// global gallery index on ties (the unsharded search's rule). The shards must hold the same
/// queries and must not overlap; a query with fewer than `k` neighbours in all of them is
/// [`Error::KTooLarge`].
pub fn merge_shards<T: Real>(shards: &[ShardNeighbors<T>], k: usize) -> Result<Neighbors<T>> {
    let Some(first) = shards.first() else {
        return Err(Error::Shards("no shards to merge".into()));
    };
    let nq = first.num_queries();
    let mut ranges: Vec<&Range<usize>> = shards.iter().map(|s| &s.rows).collect();
    ranges.sort_by_key(|r| r.start);
    for w in ranges.windows(2) {
        if w[0].end > w[1].start {
            return Err(Error::Shards(format!(
                "shards {:?} and {:?} overlap",
                w[0], w[1]
            )));
        }
    }
    for s in shards {
        if s.num_queries() != nq {
            return Err(Error::Shards(format!(
                "shard {:?} holds {} queries, shard {:?} {nq}",
                s.rows,
                s.num_queries(),
                first.rows
            )));
        }
    }
    check_k(k, usize::MAX)?;
    let mut indices = Vec::with_capacity(nq * k);
    let mut values = Vec::with_capacity(nq * k);
    let mut pool: Vec<(T, usize, T)> = Vec::new();
    for q in 0..nq {
        pool.clear();
        for s in shards {
            let row = q * s.k..(q + 1) * s.k;
            for ((&j, &score), &value) in s.indices[row.clone()]
                .iter()
                .zip(&s.scores[row.clone()])
                .zip(&s.values[row])
            {
                if j == usize::MAX {
                    continue;
                }
                if !score.is_finite() {
                    return Err(Error::Shards(format!(
                        "shard {:?}: query {q} has a non-finite score for gallery row {j}",
                        s.rows
                    )));
                }
                pool.push((score, j, value));
            }
        }
        if pool.len() < k {
            return Err(Error::KTooLarge {
                k,
                available: pool.len(),
            });
        }
        pool.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        for &(_, j, v) in &pool[..k] {
            indices.push(j);
            values.push(v);
        }
    }
    Ok(Neighbors { k, indices, values })
}

/// How [`knn_sharded`] runs its shards.
#[derive(Debug, Clone)]
pub enum ShardRunner {
    /// One after another, each with all of `options.compute` (a device, or every core).
    Sequential,
    /// At once, shard `i` on `computes[i % computes.len()]` (devices of one machine).
    Devices(Vec<Compute>),
    /// At once on the CPU, each shard in its own thread pool of this many threads (the cores
    /// divided among the shards, as separate processes would share them).
    CpuPools(usize),
}

/// Exact kNN with the gallery (or, for self-retrieval with `gallery = None`, the query set)
/// split into `shards` contiguous shards ([`shard_ranges`] on the scan's gallery blocks),
/// merged by [`merge_shards`]: the same neighbours and values as [`crate::knn_with_progress`]
/// with the same [`KnnOptions`].
pub fn knn_sharded<T: Real>(
    query: ArrayView2<'_, T>,
    gallery: Option<ArrayView2<'_, T>>,
    k: usize,
    shards: usize,
    runner: &ShardRunner,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<Neighbors<T>> {
    let n = gallery.map_or(query.nrows(), |g| g.nrows());
    check_k(k, n.saturating_sub(usize::from(gallery.is_none())))?;
    let ranges = shard_ranges(n, shards, options.blocking.block_gallery)?;
    let parts: Vec<Result<ShardNeighbors<T>>> = match runner {
        ShardRunner::Sequential => ranges
            .into_iter()
            .map(|r| knn_shard(query, gallery, r, k, options, progress))
            .collect(),
        ShardRunner::Devices(computes) => {
            if computes.is_empty() {
                return Err(Error::Shards("no devices to run the shards on".into()));
            }
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let options = options
                            .clone()
                            .with_compute(computes[i % computes.len()].clone());
                        scope.spawn(move || knn_shard(query, gallery, r, k, &options, progress))
                    })
                    .collect();
                handles.into_iter().map(join).collect()
            })
        }
        ShardRunner::CpuPools(threads) => std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .into_iter()
                .map(|r| {
                    let options = options.clone().with_compute(Compute::Cpu);
                    scope.spawn(move || {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads((*threads).max(1))
                            .build()
                            .map_err(|e| Error::Shards(format!("thread pool: {e}")))?;
                        pool.install(|| knn_shard(query, gallery, r, k, &options, progress))
                    })
                })
                .collect();
            handles.into_iter().map(join).collect()
        }),
    };
    let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
    merge_shards(&parts, k)
}

/// The exact top `k` for queries `query` (rows `query_offset..` of `full` in self-retrieval)
/// over `full` split into `shards`, searched one after another.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sharded_chunk<T: Real>(
    query: ArrayView2<'_, T>,
    query_offset: usize,
    full: ArrayView2<'_, T>,
    self_retrieval: bool,
    k: usize,
    shards: usize,
    options: &KnnOptions,
    progress: &dyn Progress,
) -> Result<Neighbors<T>> {
    let parts = shard_ranges(full.nrows(), shards, options.blocking.block_gallery)?
        .into_iter()
        .map(|r| {
            knn_shard_of(
                query,
                query_offset,
                full,
                self_retrieval,
                r,
                k,
                options,
                progress,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    merge_shards(&parts, k)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(Error::Shards("a shard's thread panicked".into())))
}
