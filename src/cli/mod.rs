//! The `metron` command line: argument types and the code behind each subcommand, kept in
//! the library so that it is tested like any other code. `src/bin/metron.rs` only parses
//! arguments and turns errors into exit codes.

mod common;
pub mod datasets;
pub mod embed;
pub mod eval;
pub mod knn;
pub mod localize;
mod output;
pub mod polar;
pub mod progress;
pub mod synth;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Metric learning and retrieval evaluation on Burn.
#[derive(Debug, Parser)]
#[command(name = "metron", version, about)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `metron`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate embeddings: Recall@K, P@1, R-precision, MAP@R, NMI/AMI from an exact kNN;
    /// `--cross-view`: ground against aerial embeddings as SAIG (CVUSA/CVACT, VIGOR).
    Eval(eval::EvalArgs),
    /// Exact k nearest neighbours of every embedding, in bounded memory (`--shards N`, or one
    /// shard per process with `--shard I/N`).
    Knn(knn::KnnArgs),
    /// Merge the parts of a sharded `metron knn --shard I/N` search into the exact top k.
    KnnMerge(knn::KnnMergeArgs),
    /// Write a synthetic labelled embedding set (for trying `eval` and for benchmarks).
    Synth(synth::SynthArgs),
    /// The dataset registry: `list`, and `check NAME` (counts and every image decoded).
    Datasets(datasets::DatasetsArgs),
    /// Embed a dataset split with a trained checkpoint (embeddings.npy, labels.npy, paths.txt).
    Embed(embed::EmbedArgs),
    /// Find the nearest gallery images of query images with a trained checkpoint.
    Search(embed::SearchArgs),
    /// Polar-transform a folder of aerial images into panoramas (CVUSA/CVACT polar files).
    Polar(polar::PolarArgs),
    /// Classify and localise one's own images with a trained WGOL checkpoint (boxes.json,
    /// and a picture of the maps).
    Localize(localize::LocalizeArgs),
}

/// What a subcommand can fail with; the binary prints it as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file, format, shape or device problem reported by metron-core.
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    /// A checkpoint or model that cannot be loaded or run.
    #[error(transparent)]
    System(#[from] crate::systems::SystemError),
    /// The evaluation or kNN search refused its inputs.
    #[error("{context}: {source}")]
    Metrics {
        /// The input file(s) searched, e.g. `q.npy vs g.npy`.
        context: String,
        /// What the metrics crate reported.
        #[source]
        source: metron_metrics::Error,
    },
    /// Arguments or input files that do not fit together; the message says what to change.
    #[error("{0}")]
    Usage(String),
    /// A check that ran and found problems: the report (already formatted) goes to stdout.
    #[error("the check found problems")]
    CheckFailed(String),
    /// An output file or directory could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
