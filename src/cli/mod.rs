//! The `metron` command line: argument types and the code behind each subcommand, kept in
//! the library so that it is tested like any other code. `src/bin/metron.rs` only parses
//! arguments and turns errors into exit codes.

mod common;
pub mod datasets;
pub mod embed;
pub mod eval;
pub mod knn;
mod output;
pub mod progress;
pub mod synth;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Metric learning and retrieval evaluation on Burn.
#[derive(Debug, Parser)]
#[command(name = "metron", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate embeddings: Recall@K, P@1, R-precision, MAP@R, NMI/AMI from an exact kNN.
    Eval(eval::EvalArgs),
    /// Exact k nearest neighbours of every embedding, in bounded memory.
    Knn(knn::KnnArgs),
    /// Write a synthetic labelled embedding set (for trying `eval` and for benchmarks).
    Synth(synth::SynthArgs),
    /// The dataset registry: `list`, and `check NAME` (counts and every image decoded).
    Datasets(datasets::DatasetsArgs),
    /// Embed a dataset split with a trained checkpoint (embeddings.npy, labels.npy, paths.txt).
    Embed(embed::EmbedArgs),
    /// Find the nearest gallery images of query images with a trained checkpoint.
    Search(embed::SearchArgs),
}

/// What a subcommand can fail with; the binary prints it as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    #[error(transparent)]
    System(#[from] crate::systems::SystemError),
    #[error("{context}: {source}")]
    Metrics {
        context: String,
        #[source]
        source: metron_metrics::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// A check that ran and found problems: the report (already formatted) goes to stdout.
    #[error("the check found problems")]
    CheckFailed(String),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
