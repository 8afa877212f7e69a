//! `metron-bench suite`: runs the benchmark suite and writes `docs/benchmarks.md` with its
//! charts; `metron-bench job`: metron's side of one measurement (the suite runs it).
//!
//! Use `scripts/bench.sh [--quick]`, which builds this, makes the peers' Python venv and runs
//! the suite from the repository root.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use metron_bench::{
    BenchError, Job, Report, SuiteConfig, SuiteMode, ratio_chart, regressions, run_job, run_suite,
    scaling_plots,
};

#[derive(Debug, Parser)]
#[command(
    name = "metron-bench",
    about = "metron's benchmark suite against its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every job beside its peers and write the report.
    Suite {
        /// Small sizes and two rounds: a few minutes (default: full, about an hour).
        #[arg(long)]
        quick: bool,
        /// The Python with torch, torchvision, timm, faiss-cpu and pytorch-metric-learning.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// The peers' script.
        #[arg(long, default_value = "benches/compare/peer.py")]
        peer_script: PathBuf,
        /// The report to write (and to compare with when it exists).
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// Where generated inputs go (kept for the next run).
        #[arg(long, default_value = "target/bench-data")]
        data_dir: PathBuf,
        /// The built cgd example (`cargo build --release --example cgd`), for full mode.
        #[arg(long)]
        cgd_binary: Option<PathBuf>,
        /// Threads for every side (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Only the jobs whose key contains this (e.g. `knn`, `vit_b16/train`).
        #[arg(long)]
        filter: Option<String>,
        /// Exit with status 1 when a job is more than 15 % slower than in the previous report.
        #[arg(long)]
        fail_on_regression: bool,
    },
    /// Rewrite a report and its charts from its own data block (after a change of format),
    /// compared with `--previous` when given.
    Render {
        /// The report to rewrite.
        #[arg(long, default_value = "docs/benchmarks.md")]
        report: PathBuf,
        /// An earlier report to flag regressions against.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// metron's side of one job: prints one JSON measurement line.
    Job {
        /// The job, as JSON (what the suite passes).
        #[arg(long)]
        spec: String,
        /// Timed repetitions.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Untimed repetitions first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Warm up, then time, for at least this many seconds each (beyond the counts).
        #[arg(long, default_value_t = 0.0)]
        min_seconds: f64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("metron-bench: {e}");
            match e {
                BenchError::Usage(_) | BenchError::Report { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(command: Command) -> Result<ExitCode, BenchError> {
    match command {
        Command::Job {
            spec,
            reps,
            warmup,
            min_seconds,
        } => {
            let job: Job = serde_json::from_str(&spec)
                .map_err(|e| BenchError::Usage(format!("--spec is not a job: {e}")))?;
            if reps == 0 {
                return Err(BenchError::Usage("--reps must be at least 1".into()));
            }
            if !(min_seconds.is_finite() && min_seconds >= 0.0) {
                return Err(BenchError::Usage(format!(
                    "--min-seconds must be a non-negative number, got {min_seconds}"
                )));
            }
            let m = run_job(&job, reps, warmup, min_seconds)?;
            println!("{}", serde_json::to_string(&m).expect("plain values"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Suite {
            quick,
            python,
            peer_script,
            out,
            data_dir,
            cgd_binary,
            threads,
            filter,
            fail_on_regression,
        } => {
            if !peer_script.is_file() {
                return Err(BenchError::Usage(format!(
                    "{} not found: run from the repository root or pass --peer-script",
                    peer_script.display()
                )));
            }
            let previous = Report::read_markdown(&out)?;
            let config = SuiteConfig {
                mode: if quick {
                    SuiteMode::Quick
                } else {
                    SuiteMode::Full
                },
                python,
                peer_script,
                metron_bench: std::env::current_exe()
                    .map_err(|e| BenchError::io(std::path::Path::new("metron-bench"), e))?,
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                data_dir,
                cgd_binary,
                filter,
            };
            let report = run_suite(&config)?;
            let command = if quick {
                "scripts/bench.sh --quick"
            } else {
                "scripts/bench.sh"
            };
            write_report(&report, previous.as_ref(), &out, command)?;
            let slower = previous
                .as_ref()
                .map(|p| regressions(p, &report, 0.15))
                .transpose();
            match slower {
                Ok(Some(list)) if !list.is_empty() => {
                    for r in &list {
                        println!(
                            "REGRESSION {}: {:.4} s -> {:.4} s (+{:.0} %)",
                            r.key,
                            r.previous_s,
                            r.current_s,
                            100.0 * r.slowdown()
                        );
                    }
                    if fail_on_regression {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Ok(_) => println!("no job more than 15 % slower than the previous report"),
                Err(why) => println!("{why}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { report, previous } => {
            let current = Report::read_markdown(&report)?
                .ok_or_else(|| BenchError::Usage(format!("{} does not exist", report.display())))?;
            let previous =
                match previous {
                    Some(p) => Some(Report::read_markdown(&p)?.ok_or_else(|| {
                        BenchError::Usage(format!("{} does not exist", p.display()))
                    })?),
                    None => None,
                };
            let command = if current.mode == "quick" {
                "scripts/bench.sh --quick"
            } else {
                "scripts/bench.sh"
            };
            write_report(&current, previous.as_ref(), &report, command)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the markdown to `out` and its two charts beside it.
fn write_report(
    report: &Report,
    previous: Option<&Report>,
    out: &std::path::Path,
    command: &str,
) -> Result<(), BenchError> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    }
    let stem = out
        .file_stem()
        .map_or("benchmarks".into(), |s| s.to_string_lossy().to_string());
    let ratios = format!("{stem}-ratios.png");
    let scaling = format!("{stem}-scaling.png");
    let beside = |name: &str| dir.map_or(PathBuf::from(name), |d| d.join(name));
    ratio_chart(report, &beside(&ratios))?;
    scaling_plots(report, &beside(&scaling))?;
    let md = report.markdown(previous, (&ratios, &scaling), command);
    metron_core::atomic_write(out, md.as_bytes())?;
    println!("wrote {}, {} and {}", out.display(), ratios, scaling);
    Ok(())
}
