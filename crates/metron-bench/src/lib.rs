//! metron's benchmark suite: each job (exact kNN, batch losses, backbone steps, the image
//! pipeline, the cgd example) run by metron and by its peer (faiss-cpu,
//! pytorch-metric-learning, plain PyTorch, torchvision) in the same session, alternating
//! processes, several repetitions each, on the same data; written up as `docs/benchmarks.md`
//! with the machine, the versions, medians and spreads, ratios, achieved GFLOP/s against the
//! cores' measured FMA peak, peak memory, scaling plots and regression flags against the
//! previous report.
//!
//! Run it with `scripts/bench.sh [--quick]`, which makes the Python venv of the peers first.
//! Each measurement is a separate process: metron's side is `metron-bench job`, the peers'
//! `benches/compare/peer.py`; both print one JSON [`Measurement`] as their last line.

#![warn(missing_docs)]

mod error;
pub mod flops;
mod job;
mod machine;
mod measurement;
mod metron_side;
mod plot;
mod report;
mod stats;
mod suite;

pub use error::{BenchError, Result};
pub use job::{Job, KnnMetric, LossName, Mode, Model, Peer};
pub use machine::Machine;
pub use measurement::{Measurement, Rss, rss};
pub use metron_side::{
    DATA_BATCH, LossFn, PER_CLASS, Step, jpeg_epochs, loss_fn, run_job, unit_rows, write_jpegs,
};
pub use plot::{ratio_chart, scaling_plots};
pub use report::{JobResult, Regression, Report, SideResult, regressions};
pub use stats::{Spread, linear_fit};
pub use suite::{Plan, PlannedJob, Section, SuiteConfig, SuiteMode, run_suite};
