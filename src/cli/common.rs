//! Argument handling shared by the subcommands that read embeddings.

use std::path::Path;

use metron_core::NpyElement;
use metron_core::{DeviceSpec, Embeddings};
use metron_metrics::{Compute, Real, Similarity};
use ndarray::ArrayView2;

use super::CliError;

/// `--metric`.
pub(crate) fn parse_similarity(s: &str) -> Result<Similarity, CliError> {
    s.parse()
        .map_err(|e: metron_metrics::Error| CliError::Usage(format!("--metric: {e}")))
}

/// `--device`: `cpu`/`flex` run the plain CPU code (the same cores as Burn's flex backend, and
/// faster for this job); anything else opens that Burn device.
pub(crate) fn parse_compute(s: &str) -> Result<Compute, CliError> {
    Ok(match s.parse::<DeviceSpec>()? {
        DeviceSpec::Flex => Compute::Cpu,
        other => Compute::Device(other.to_device()?),
    })
}

/// Reads an embedding file and rejects NaN / Inf values, naming the file, row and column.
pub(crate) fn read_finite(path: &Path) -> Result<Embeddings, CliError> {
    let e = metron_core::read_embeddings(path)?;
    e.check_finite(&path.display().to_string())?;
    Ok(e)
}

/// Work that runs in whichever float type the inputs call for.
pub(crate) trait WithPrecision {
    type Output;
    fn run<T: Real + NpyElement>(
        self,
        query: ArrayView2<'_, T>,
        gallery: Option<ArrayView2<'_, T>>,
    ) -> Self::Output;
}

/// Runs `work` in f32 when every input is f32, else in f64 (converting f32 exactly), so f64
/// data keeps its exact ties.
pub(crate) fn in_common_precision<W: WithPrecision>(
    query: &Embeddings,
    gallery: Option<&Embeddings>,
    work: W,
) -> W::Output {
    match (query, gallery) {
        (Embeddings::F32(q), None) => work.run(q.view(), None),
        (Embeddings::F32(q), Some(Embeddings::F32(g))) => work.run(q.view(), Some(g.view())),
        (q, g) => {
            let q = q.to_f64();
            let g = g.map(Embeddings::to_f64);
            work.run(q.view(), g.as_ref().map(|g| g.view()))
        }
    }
}
