//! `metron knn`: exact k nearest neighbours of an embedding file, written as `.npy`.

use std::path::PathBuf;

use clap::Args;
use metron_core::{DeviceSpec, Embeddings};
use metron_metrics::{
    Blocking, Compute, KnnOptions, Neighbors, Real, Similarity, knn_with_progress,
};
use ndarray::{Array2, ArrayView2};

use super::CliError;
use super::progress::Bar;

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
    #[arg(long)]
    pub quiet: bool,
}

fn search<T: Real + metron_core::io::NpyElement>(
    q: ArrayView2<'_, T>,
    g: Option<ArrayView2<'_, T>>,
    args: &KnnArgs,
    options: &KnnOptions,
) -> Result<(Neighbors<T>, usize), CliError> {
    let bar = Bar::new(q.nrows(), "kNN", args.quiet);
    let nn =
        knn_with_progress(q, g, args.k, options, &bar).map_err(|source| CliError::Metrics {
            context: args.embeddings.display().to_string(),
            source,
        })?;
    bar.finish();
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|source| CliError::Write {
            path: out.clone(),
            source,
        })?;
        let nq = nn.num_queries();
        let idx = Array2::from_shape_fn((nq, nn.k), |(i, j)| nn.indices[i * nn.k + j] as i64);
        let val = Array2::from_shape_vec((nq, nn.k), nn.values.clone())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        metron_core::io::write_npy(out.join("indices.npy"), &idx.view())?;
        metron_core::io::write_npy(out.join("values.npy"), &val.view())?;
    }
    Ok((nn, q.nrows()))
}

/// Runs the search; returns a one-line summary.
pub fn run(args: &KnnArgs) -> Result<String, CliError> {
    let similarity: Similarity = args
        .metric
        .parse()
        .map_err(|e: metron_metrics::Error| CliError::Usage(format!("--metric: {e}")))?;
    let compute = match args.device.parse::<DeviceSpec>()? {
        DeviceSpec::Flex => Compute::Cpu,
        other => Compute::Device(other.to_device()?),
    };
    let options = KnnOptions::new(similarity)
        .with_compute(compute)
        .with_blocking(Blocking {
            block_queries: args.block_queries,
            block_gallery: args.block_gallery,
        });
    let query = metron_core::read_embeddings(&args.embeddings)?;
    query.check_finite(&args.embeddings.display().to_string())?;
    let gallery = match &args.gallery {
        Some(g) => {
            let e = metron_core::read_embeddings(g)?;
            e.check_finite(&g.display().to_string())?;
            Some(e)
        }
        None => None,
    };
    let start = std::time::Instant::now();
    let nq = match (&query, &gallery) {
        (Embeddings::F32(q), None) => search(q.view(), None, args, &options)?.1,
        (Embeddings::F32(q), Some(Embeddings::F32(g))) => {
            search(q.view(), Some(g.view()), args, &options)?.1
        }
        (q, g) => {
            let q = q.to_f64();
            let g = g.as_ref().map(|g| g.to_f64());
            search(q.view(), g.as_ref().map(|g| g.view()), args, &options)?.1
        }
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "{nq} queries, top {} by {similarity}: {secs:.2} s ({:.0} queries/s){}",
        args.k,
        nq as f64 / secs,
        args.out
            .as_ref()
            .map(|o| format!(", written to {}", o.display()))
            .unwrap_or_default()
    ))
}
