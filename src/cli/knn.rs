//! `metron knn`: exact k nearest neighbours of an embedding file, written as `.npy`.

use std::path::{Path, PathBuf};

use clap::Args;
use metron_core::NpyElement;
use metron_metrics::{Blocking, KnnOptions, Neighbors, Real, knn_with_progress};
use ndarray::{Array2, ArrayView2};

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
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
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
        let bar = Bar::new(q.nrows(), "kNN", args.quiet);
        let nn = knn_with_progress(q, g, args.k, &self.options, &bar).map_err(|source| {
            CliError::Metrics {
                context: args.embeddings.display().to_string(),
                source,
            }
        })?;
        bar.finish();
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
        super::output::prepare_dir(out, &["indices.npy", "values.npy"], args.force)?;
    }
    let query = read_finite(&args.embeddings)?;
    let gallery = args.gallery.as_deref().map(read_finite).transpose()?;
    let start = std::time::Instant::now();
    let nq = in_common_precision(&query, gallery.as_ref(), Search { args, options })?;
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
