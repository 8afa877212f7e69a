//! `metron knn`: exact k nearest neighbours of an embedding file, written as `.npy`.

use std::path::{Path, PathBuf};

use clap::Args;
use metron_core::NpyElement;
use metron_metrics::{
    Blocking, KnnOptions, Neighbors, Real, ShardNeighbors, ShardRunner, knn_shard, knn_sharded,
    knn_with_progress, merge_shards, shard_ranges,
};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::CliError;
use super::common::{
    WithPrecision, in_common_precision, parse_compute, parse_similarity, read_finite,
};
use super::progress::Bar;

/// Arguments of `metron knn`: embedding files, K and where to write the neighbours.
#[derive(Debug, Clone, Args)]
pub struct KnnArgs {
    /// Query embeddings (`.npy` f32/f64 [N, d], or `.safetensors`). Without --gallery each
    /// row's neighbours are the other rows (the row itself excluded by index).
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Gallery embeddings to search instead of the queries themselves.
    #[arg(long)]
    pub gallery: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Similarity: cosine, ip (inner product) or l2 (squared Euclidean).
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// Output directory: indices.npy (i64 [N, k]) and values.npy (similarity or squared
    /// distance, in the input's precision), closest first. Omit to only time the search.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the GEMMs run (cpu, wgpu, tch, tch:cuda:N, cuda:N).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Queries per block: larger blocks amortise GEMM packing, at block_queries *
    /// block_gallery * 4 bytes of tile per thread.
    #[arg(long, default_value_t = Blocking::default().block_queries)]
    pub block_queries: usize,
    /// Gallery items per block.
    #[arg(long, default_value_t = Blocking::default().block_gallery)]
    pub block_gallery: usize,
    /// Split the gallery into this many shards of whole gallery blocks, searched one after
    /// another (or at once on --devices) and merged into the exact top k: the same
    /// neighbours and values as one search.
    #[arg(long, conflicts_with = "shard")]
    pub shards: Option<usize>,
    /// With --shards: the devices the shards run on at once, shard i on device i mod n
    /// (e.g. cuda:0,cuda:1).
    #[arg(long, value_delimiter = ',', requires = "shards")]
    pub devices: Option<Vec<String>>,
    /// Search only shard I of N (0-based, e.g. `--shard 1/4`), for one process or machine of
    /// a sharded search: writes a part (global indices, values, the ranking scores and
    /// shard.json) that `metron knn-merge` combines with the others.
    #[arg(long, value_name = "I/N", requires = "out")]
    pub shard: Option<String>,
    /// Also report the search's arithmetic rate against the cores' peak: the GEMM's
    /// instruction set, and the f32 FMA rate of the scan's threads measured with a
    /// register-resident loop (about 1 s more).
    #[arg(long)]
    pub peak: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

/// What a part of a sharded search says about itself (`shard.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// This part's shard (0-based).
    pub shard: usize,
    /// Shards of the search.
    pub shards: usize,
    /// The gallery rows searched, `[start, end)`.
    pub rows: [usize; 2],
    /// Rows of the whole gallery.
    pub gallery_rows: usize,
    /// Self-retrieval (no --gallery): a query is never its own neighbour.
    pub self_retrieval: bool,
    /// Neighbours asked for.
    pub k: usize,
    /// The similarity.
    pub metric: String,
    /// Queries.
    pub queries: usize,
    /// `f32` or `f64`: the precision of values.npy and scores.npy.
    pub dtype: String,
}

const PART_FILES: [&str; 4] = ["indices.npy", "values.npy", "scores.npy", "shard.json"];

fn parse_shard(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || CliError::Usage(format!("--shard takes I/N with 0 <= I < N, not '{s}'"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

struct Search<'a> {
    args: &'a KnnArgs,
    options: KnnOptions,
}

impl WithPrecision for Search<'_> {
    type Output = Result<usize, CliError>;
    fn run<T: Real + NpyElement>(
        self,
        q: ArrayView2<'_, T>,
        g: Option<ArrayView2<'_, T>>,
    ) -> Self::Output {
        let args = self.args;
        let metrics_error = |source| CliError::Metrics {
            context: args.embeddings.display().to_string(),
            source,
        };
        let n_gallery = g.map_or(q.nrows(), |g| g.nrows());
        if let Some(spec) = &args.shard {
            let (i, n) = parse_shard(spec)?;
            let available = n_gallery - usize::from(g.is_none());
            if args.k == 0 || args.k > available {
                return Err(metrics_error(metron_metrics::Error::KTooLarge {
                    k: args.k,
                    available,
                }));
            }
            let ranges = shard_ranges(n_gallery, n, self.options.blocking.block_gallery)
                .map_err(metrics_error)?;
            let bar = Bar::new(q.nrows(), &format!("kNN shard {i}/{n}"), args.quiet);
            let part = knn_shard(q, g, ranges[i].clone(), args.k, &self.options, &bar)
                .map_err(metrics_error)?;
            bar.finish();
            let info = ShardInfo {
                shard: i,
                shards: n,
                rows: [part.rows.start, part.rows.end],
                gallery_rows: n_gallery,
                self_retrieval: g.is_none(),
                k: args.k,
                metric: self.options.similarity.to_string(),
                queries: q.nrows(),
                dtype: if T::DESCR == "<f4" { "f32" } else { "f64" }.to_string(),
            };
            let out = args.out.as_ref().expect("clap requires --out with --shard");
            write_part(out, &part, &info)?;
            return Ok(q.nrows());
        }
        let nn = match args.shards {
            Some(shards) => {
                let runner = match &args.devices {
                    Some(devices) => ShardRunner::Devices(
                        devices
                            .iter()
                            .map(|d| parse_compute(d))
                            .collect::<Result<_, _>>()?,
                    ),
                    None => ShardRunner::Sequential,
                };
                let bar = Bar::new(q.nrows() * shards, "kNN shards", args.quiet);
                let nn = knn_sharded(q, g, args.k, shards, &runner, &self.options, &bar)
                    .map_err(metrics_error)?;
                bar.finish();
                nn
            }
            None => {
                let bar = Bar::new(q.nrows(), "kNN", args.quiet);
                let nn =
                    knn_with_progress(q, g, args.k, &self.options, &bar).map_err(metrics_error)?;
                bar.finish();
                nn
            }
        };
        if let Some(out) = &args.out {
            write_neighbors(out, &nn)?;
        }
        Ok(nn.num_queries())
    }
}

fn write_neighbors<T: Real + NpyElement>(out: &Path, nn: &Neighbors<T>) -> Result<(), CliError> {
    let shape = (nn.num_queries(), nn.k);
    let idx = Array2::from_shape_fn(shape, |(i, j)| nn.indices[i * nn.k + j] as i64);
    let val =
        ArrayView2::from_shape(shape, &nn.values).map_err(|e| CliError::Usage(e.to_string()))?;
    metron_core::write_npy(out.join("indices.npy"), &idx.view())?;
    metron_core::write_npy(out.join("values.npy"), &val)?;
    Ok(())
}

/// `; 165 GFLOP/s, 52% of the 320 GFLOP/s f32 FMA peak of 2 threads (gemm on avx512f)`: the
/// scan computes every query x gallery dot product (the self pairs too), 2 d operations each.
fn peak_report(
    query: &metron_core::Embeddings,
    gallery: Option<&metron_core::Embeddings>,
    secs: f64,
    device: &str,
) -> String {
    let dims = |e: &metron_core::Embeddings| match e {
        metron_core::Embeddings::F32(a) => a.dim(),
        metron_core::Embeddings::F64(a) => a.dim(),
    };
    let (nq, d) = dims(query);
    let ng = gallery.map_or(nq, |g| dims(g).0);
    let gflops = 2.0 * nq as f64 * ng as f64 * d as f64 / secs / 1e9;
    if device != "cpu" && device != "flex" {
        return format!("; {gflops:.0} GFLOP/s on {device}");
    }
    let threads = metron_metrics::scan_threads();
    match metron_metrics::fma_peak(threads, 0.5) {
        Some(p) => format!(
            "; {gflops:.0} GFLOP/s, {:.0}% of the {:.0} GFLOP/s f32 FMA peak of {threads} \
             threads (gemm on {})",
            100.0 * gflops / p.gflops,
            p.gflops,
            p.isa
        ),
        None => format!(
            "; {gflops:.0} GFLOP/s (gemm on {}; no FMA peak measurable)",
            metron_metrics::gemm_isa()
        ),
    }
}

fn write_part<T: Real + NpyElement>(
    out: &Path,
    part: &ShardNeighbors<T>,
    info: &ShardInfo,
) -> Result<(), CliError> {
    let shape = (part.num_queries(), part.k);
    let idx = Array2::from_shape_fn(shape, |(i, j)| match part.indices[i * part.k + j] {
        usize::MAX => -1,
        v => v as i64,
    });
    let view = |v: &[T]| {
        ArrayView2::from_shape(shape, v)
            .map(|a| a.to_owned())
            .map_err(|e| CliError::Usage(e.to_string()))
    };
    let (values, scores) = (view(&part.values)?, view(&part.scores)?);
    let json = serde_json::to_string_pretty(info).expect("plain values");
    super::output::write_file_set(out, &PART_FILES, true, |dir| {
        metron_core::write_npy(dir.join("indices.npy"), &idx.view())?;
        metron_core::write_npy(dir.join("values.npy"), &values.view())?;
        metron_core::write_npy(dir.join("scores.npy"), &scores.view())?;
        metron_core::atomic_write(dir.join("shard.json"), format!("{json}\n").as_bytes())?;
        Ok(())
    })
}

/// Runs the search; returns a one-line summary.
pub fn run(args: &KnnArgs) -> Result<String, CliError> {
    let similarity = parse_similarity(&args.metric)?;
    let options = KnnOptions::new(similarity)
        .with_compute(parse_compute(&args.device)?)
        .with_blocking(Blocking {
            block_queries: args.block_queries,
            block_gallery: args.block_gallery,
        });
    if let Some(out) = &args.out {
        let files: &[&str] = if args.shard.is_some() {
            &PART_FILES
        } else {
            &["indices.npy", "values.npy"]
        };
        super::output::prepare_dir(out, files, args.force)?;
    }
    let query = read_finite(&args.embeddings)?;
    let gallery = args.gallery.as_deref().map(read_finite).transpose()?;
    let start = std::time::Instant::now();
    let nq = in_common_precision(&query, gallery.as_ref(), Search { args, options })?;
    let secs = start.elapsed().as_secs_f64();
    let mut line = format!(
        "{nq} queries, top {} by {similarity}: {secs:.2} s ({:.0} queries/s){}",
        args.k,
        nq as f64 / secs,
        args.out
            .as_ref()
            .map(|o| format!(", written to {}", o.display()))
            .unwrap_or_default()
    );
    if args.peak {
        line.push_str(&peak_report(&query, gallery.as_ref(), secs, &args.device));
    }
    Ok(line)
}

/// Arguments of `metron knn-merge`: the parts of a sharded search and where the merged
/// neighbours go.
#[derive(Debug, Clone, Args)]
pub struct KnnMergeArgs {
    /// The part directories written by `metron knn --shard I/N` (all N of them).
    #[arg(long = "parts", required = true, num_args = 1..)]
    pub parts: Vec<PathBuf>,
    /// Output directory: indices.npy and values.npy, as `metron knn --out` writes them.
    #[arg(long)]
    pub out: PathBuf,
    /// Neighbours to keep (default: the k the parts were searched with; at most that).
    #[arg(long)]
    pub k: Option<usize>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

fn part_error(dir: &Path, what: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{}: {what}", dir.display()))
}

/// Reads one part as f64 (exact for f32 parts).
fn read_part(dir: &Path) -> Result<(ShardInfo, ShardNeighbors<f64>), CliError> {
    let json_path = dir.join("shard.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| {
        part_error(
            &json_path,
            format!("{e} (is it a `metron knn --shard` part?)"),
        )
    })?;
    let info: ShardInfo = serde_json::from_str(&text).map_err(|e| part_error(&json_path, e))?;
    if info.shard >= info.shards || info.rows[0] > info.rows[1] {
        return Err(part_error(
            &json_path,
            format!(
                "shard {} of {} with rows {:?} is not a part of a search",
                info.shard, info.shards, info.rows
            ),
        ));
    }
    let idx = metron_core::read_npy_i64(dir.join("indices.npy"))?;
    let values = metron_core::read_npy_f64(dir.join("values.npy"))?;
    let scores = metron_core::read_npy_f64(dir.join("scores.npy"))?;
    let shape = idx.shape().to_vec();
    if shape.len() != 2
        || shape[0] != info.queries
        || values.shape() != shape.as_slice()
        || scores.shape() != shape.as_slice()
    {
        return Err(part_error(
            dir,
            format!(
                "indices {:?}, values {:?} and scores {:?} must all be [{} queries, k]",
                idx.shape(),
                values.shape(),
                scores.shape(),
                info.queries
            ),
        ));
    }
    let [start, end] = info.rows;
    let mut indices = Vec::with_capacity(idx.len());
    for &v in idx.iter() {
        if v == -1 {
            indices.push(usize::MAX);
        } else if v < start as i64 || v >= end as i64 {
            return Err(part_error(
                dir,
                format!("index {v} lies outside the part's rows {start}..{end}"),
            ));
        } else {
            indices.push(v as usize);
        }
    }
    Ok((
        info,
        ShardNeighbors {
            rows: start..end,
            k: shape[1],
            indices,
            scores: scores.iter().copied().collect(),
            values: values.iter().copied().collect(),
        },
    ))
}

/// Merges the parts; returns a one-line summary.
pub fn run_merge(args: &KnnMergeArgs) -> Result<String, CliError> {
    super::output::prepare_dir(&args.out, &["indices.npy", "values.npy"], args.force)?;
    let mut parts = Vec::with_capacity(args.parts.len());
    for dir in &args.parts {
        parts.push((dir, read_part(dir)?));
    }
    let (first_dir, first) = (parts[0].0, parts[0].1.0.clone());
    let first = &first;
    let same = |a: &ShardInfo, b: &ShardInfo| {
        (
            a.shards,
            a.gallery_rows,
            a.self_retrieval,
            a.k,
            &a.metric,
            a.queries,
            &a.dtype,
        ) == (
            b.shards,
            b.gallery_rows,
            b.self_retrieval,
            b.k,
            &b.metric,
            b.queries,
            &b.dtype,
        )
    };
    for (dir, (info, _)) in &parts {
        if !same(first, info) {
            return Err(part_error(
                dir,
                format!(
                    "belongs to another search than {} (shards, gallery rows, k, metric, \
                     queries and precision must agree)",
                    first_dir.display()
                ),
            ));
        }
    }
    let mut seen = vec![false; first.shards];
    for (dir, (info, _)) in &parts {
        if std::mem::replace(&mut seen[info.shard], true) {
            return Err(part_error(dir, format!("shard {} given twice", info.shard)));
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(CliError::Usage(format!(
            "shard {missing} of {} is missing: give every part of the search",
            first.shards
        )));
    }
    let k = args.k.unwrap_or(first.k);
    if k == 0 || k > first.k {
        return Err(CliError::Usage(format!(
            "--k {k}: the parts hold at most {} neighbours per query",
            first.k
        )));
    }
    let shards: Vec<ShardNeighbors<f64>> = parts.into_iter().map(|(_, (_, p))| p).collect();
    let (metric, queries, f32_values) = (first.metric.clone(), first.queries, first.dtype == "f32");
    let merged = merge_shards(&shards, k).map_err(|source| CliError::Metrics {
        context: args.parts[0].display().to_string(),
        source,
    })?;
    if f32_values {
        let values: Vec<f32> = merged.values.iter().map(|&v| v as f32).collect();
        write_neighbors(
            &args.out,
            &Neighbors {
                k,
                indices: merged.indices,
                values,
            },
        )?;
    } else {
        write_neighbors(&args.out, &merged)?;
    }
    Ok(format!(
        "{queries} queries, top {k} by {metric} merged from {} parts: written to {}",
        shards.len(),
        args.out.display()
    ))
}
