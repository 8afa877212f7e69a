//! The suite: which jobs run at which sizes, and the alternating runs of each side.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::job::{Job, KnnMetric, LossName, Mode, Model, Peer};
use crate::machine::Machine;
use crate::measurement::Measurement;
use crate::metron_side::{unit_rows, write_jpegs};
use crate::report::{JobResult, Report, SideResult};
use crate::{BenchError, Result};

/// How long the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteMode {
    /// A few minutes: small sizes, two rounds; the cgd example is left out.
    Quick,
    /// About an hour on 2 cores: the papers' batch sizes of 16, three rounds, the cgd example.
    Full,
}

impl SuiteMode {
    /// `quick` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            SuiteMode::Quick => "quick",
            SuiteMode::Full => "full",
        }
    }
}

/// The part of the report a job belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The main table: each job beside its peers.
    Main,
    /// kNN time against N (the N^2 d plot).
    KnnScaling,
    /// Training-step time and memory against the batch size.
    BatchScaling,
    /// Training-step memory against the batch size for the paper-preset extrapolation.
    Memory,
}

/// One job of the plan with how often it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob {
    /// What runs.
    pub job: Job,
    /// The report section.
    pub section: Section,
    /// Rounds: each runs every side once, in alternating order.
    pub rounds: usize,
    /// Timed repetitions per process.
    pub reps: usize,
    /// Untimed repetitions per process before the timed ones.
    pub warmup: usize,
    /// Whether the peers run too (a job without one, the cgd example, says so here).
    pub with_peers: bool,
    /// Each process warms up, then times, for at least this long (beyond `warmup` / `reps`).
    pub min_seconds: f64,
}

/// Every job the suite runs, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The jobs.
    pub jobs: Vec<PlannedJob>,
    /// `.npy` files to write before running: path, rows, dimension.
    pub knn_files: Vec<(PathBuf, usize, usize)>,
    /// The JPEG folder and how many images it needs.
    pub jpegs: Option<(PathBuf, usize)>,
}

impl Plan {
    /// The plan of `mode`, with generated data under `data_dir`; the cgd example runs (full
    /// mode) when its binary is given.
    pub fn new(mode: SuiteMode, data_dir: &Path, cgd_binary: Option<&Path>) -> Plan {
        let quick = mode == SuiteMode::Quick;
        let (rounds, reps) = if quick { (2, 2) } else { (3, 2) };
        let mut plan = Plan {
            jobs: Vec::new(),
            knn_files: Vec::new(),
            jpegs: None,
        };
        let push = |plan: &mut Plan, job: Job, section: Section, with_peers: bool| {
            // Millisecond jobs need many repetitions to reach their steady state; a second of
            // warm-up and a second of timing costs the slow ones nothing extra.
            let min_seconds = if quick { 0.5 } else { 1.0 };
            let (rounds, reps, warmup) = match (&job, section) {
                // One search is seconds to minutes; its first run is as warm as the others.
                (Job::Knn { .. }, _) => (rounds, 1, 0),
                (Job::Cgd { .. }, _) => (rounds, 1, 0),
                (_, Section::Main) => (rounds, reps, 1),
                _ => (2, 1, 1),
            };
            plan.jobs.push(PlannedJob {
                job,
                section,
                rounds,
                reps,
                warmup,
                with_peers,
                min_seconds,
            });
        };
        let knn = |plan: &mut Plan, n: usize, dim: usize, metric: KnnMetric, s: Section| {
            let data = data_dir.join(format!("knn-n{n}-d{dim}.npy"));
            if !plan.knn_files.iter().any(|(p, _, _)| p == &data) {
                plan.knn_files.push((data.clone(), n, dim));
            }
            let job = Job::Knn {
                n,
                dim,
                k: 10,
                metric,
                data,
            };
            push(plan, job, s, true);
        };
        if quick {
            knn(&mut plan, 10_000, 512, KnnMetric::Cosine, Section::Main);
            knn(&mut plan, 10_000, 128, KnnMetric::L2, Section::Main);
        } else {
            knn(&mut plan, 50_000, 512, KnnMetric::Cosine, Section::Main);
            knn(&mut plan, 50_000, 256, KnnMetric::L2, Section::Main);
        }
        for loss in LossName::ALL {
            let job = Job::Loss {
                loss,
                n: 384,
                dim: 512,
            };
            push(&mut plan, job, Section::Main, true);
        }
        let batch = if quick { 2 } else { 16 };
        for model in Model::ALL {
            for mode in [Mode::Infer, Mode::Train] {
                let job = Job::Backbone {
                    model,
                    mode,
                    batch,
                    input: model.paper_input(),
                };
                push(&mut plan, job, Section::Main, true);
            }
        }
        let images = if quick { 128 } else { 512 };
        // One folder per count: the job reads every JPEG in it.
        let jpeg_dir = data_dir.join(format!("jpeg-{images}"));
        plan.jpegs = Some((jpeg_dir.clone(), images));
        let job = Job::Data {
            images: jpeg_dir,
            count: images,
        };
        push(&mut plan, job, Section::Main, true);
        if let (false, Some(binary)) = (quick, cgd_binary) {
            let job = Job::Cgd {
                binary: binary.to_path_buf(),
            };
            push(&mut plan, job, Section::Main, false);
        }
        let sizes: &[usize] = if quick {
            &[4_000, 8_000, 16_000]
        } else {
            &[10_000, 20_000, 40_000, 80_000]
        };
        for &n in sizes {
            knn(&mut plan, n, 256, KnnMetric::Cosine, Section::KnnScaling);
        }
        let batches: &[usize] = if quick { &[1, 2, 4] } else { &[4, 8, 16, 32] };
        for &batch in batches {
            let job = Job::Backbone {
                model: Model::Resnet50,
                mode: Mode::Train,
                batch,
                input: [224, 224],
            };
            push(&mut plan, job, Section::BatchScaling, true);
        }
        let batches: &[usize] = if quick { &[1, 2, 4] } else { &[4, 8, 16] };
        for &batch in batches {
            let job = Job::Backbone {
                model: Model::VitB16,
                mode: Mode::Train,
                batch,
                input: [224, 224],
            };
            push(&mut plan, job, Section::Memory, true);
        }
        plan
    }

    /// Keeps the jobs whose key contains `filter` (e.g. `knn`, `vit_b16/train`).
    pub fn filtered(mut self, filter: &str) -> Plan {
        self.jobs.retain(|j| j.job.key().contains(filter));
        self
    }
}

/// Everything a suite run needs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// How long it runs.
    pub mode: SuiteMode,
    /// The Python with the peers' packages.
    pub python: PathBuf,
    /// `benches/compare/peer.py`.
    pub peer_script: PathBuf,
    /// The `metron-bench` binary for metron's side (normally this executable).
    pub metron_bench: PathBuf,
    /// Threads each side uses.
    pub threads: usize,
    /// Where generated data goes (kept between runs).
    pub data_dir: PathBuf,
    /// The built `cgd` example, for the end-to-end job of full mode.
    pub cgd_binary: Option<PathBuf>,
    /// Only jobs whose key contains this.
    pub filter: Option<String>,
}

/// Runs the plan of `config`; progress goes to standard error.
pub fn run_suite(config: &SuiteConfig) -> Result<Report> {
    let machine = Machine::detect(config.threads);
    eprintln!(
        "machine: {}, {} threads, gemm on {}, FMA peak {}",
        machine.cpu,
        machine.threads,
        machine.gemm_isa,
        machine
            .peak_gflops
            .map_or("not measurable".to_string(), |p| format!("{p:.0} GFLOP/s"))
    );
    let mut plan = Plan::new(config.mode, &config.data_dir, config.cgd_binary.as_deref());
    if let Some(filter) = &config.filter {
        plan = plan.filtered(filter);
    }
    prepare_data(&plan)?;
    let total = plan.jobs.len();
    let mut results = Vec::with_capacity(total);
    for (i, planned) in plan.jobs.iter().enumerate() {
        let peers = if planned.with_peers {
            planned.job.peers(machine.avx512)
        } else {
            Vec::new()
        };
        let result = run_planned(config, planned, &peers);
        eprintln!("[{}/{total}] {}", i + 1, result.summary_line());
        results.push(result);
    }
    Ok(Report {
        mode: config.mode.name().to_string(),
        machine,
        results,
    })
}

fn prepare_data(plan: &Plan) -> Result<()> {
    for (path, n, dim) in &plan.knn_files {
        if path.is_file() {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
        }
        let rows = ndarray::Array2::from_shape_vec((*n, *dim), unit_rows(*n, *dim, 1))
            .map_err(|e| BenchError::Job(e.to_string()))?;
        metron_core::write_npy(path, &rows.view())?;
    }
    if let Some((dir, count)) = &plan.jpegs
        && plan.jobs.iter().any(|j| matches!(j.job, Job::Data { .. }))
    {
        write_jpegs(dir, *count)?;
    }
    Ok(())
}

/// Runs every side of one job `rounds` times, metron first in even rounds and last in odd
/// ones, so a drift of the machine (heat, other load) weighs on both sides alike.
fn run_planned(config: &SuiteConfig, planned: &PlannedJob, peers: &[Peer]) -> JobResult {
    let sides = 1 + peers.len();
    let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); sides];
    let mut errors: Vec<Option<String>> = vec![None; sides];
    for round in 0..planned.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides).collect()
        } else {
            (0..sides).rev().collect()
        };
        for side in order {
            if errors[side].is_some() {
                continue;
            }
            let measured = if side == 0 {
                run_metron(config, planned)
            } else {
                run_peer(config, planned, &peers[side - 1])
            };
            match measured {
                Ok(m) => runs[side].push(m),
                Err(e) => errors[side] = Some(e.to_string()),
            }
        }
    }
    let mut runs = runs.into_iter().zip(errors);
    let (metron_runs, metron_error) = runs.next().expect("metron's side is first");
    JobResult {
        job: planned.job.clone(),
        section: planned.section,
        metron: SideResult::new("metron", "metron", metron_runs, metron_error),
        peers: peers
            .iter()
            .zip(runs)
            .map(|(p, (r, e))| SideResult::new(&p.label, &p.short, r, e))
            .collect(),
    }
}

fn run_metron(config: &SuiteConfig, planned: &PlannedJob) -> Result<Measurement> {
    let spec = serde_json::to_string(&planned.job).expect("plain values");
    let mut cmd = Command::new(&config.metron_bench);
    cmd.args(["job", "--spec", &spec])
        .args(["--reps", &planned.reps.to_string()])
        .args(["--warmup", &planned.warmup.to_string()])
        .args(["--min-seconds", &planned.min_seconds.to_string()])
        .env("RAYON_NUM_THREADS", config.threads.to_string());
    run_process(cmd, "metron-bench job")
}

fn run_peer(config: &SuiteConfig, planned: &PlannedJob, peer: &Peer) -> Result<Measurement> {
    let mut cmd = Command::new(&config.python);
    cmd.arg(&config.peer_script)
        .args(planned.job.peer_args())
        .args(["--peer", &peer.peer])
        .args(["--reps", &planned.reps.to_string()])
        .args(["--warmup", &planned.warmup.to_string()])
        .args(["--min-seconds", &planned.min_seconds.to_string()])
        .args(["--threads", &config.threads.to_string()])
        .args(&peer.args);
    for (k, v) in &peer.env {
        cmd.env(k, v);
    }
    run_process(cmd, &format!("peer.py ({})", peer.label))
}

fn run_process(mut cmd: Command, who: &str) -> Result<Measurement> {
    let program = PathBuf::from(cmd.get_program());
    let out = cmd.output().map_err(|e| BenchError::io(&program, e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = &lines[lines.len().saturating_sub(6)..];
        return Err(BenchError::Protocol(format!(
            "{who} exited with {}: {}",
            out.status,
            tail.join(" | ")
        )));
    }
    Measurement::from_stdout(&String::from_utf8_lossy(&out.stdout), who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plan_covers_every_family_and_loss_and_skips_the_example() {
        let plan = Plan::new(SuiteMode::Quick, Path::new("/d"), Some(Path::new("cgd")));
        let keys: Vec<String> = plan.jobs.iter().map(|j| j.job.key()).collect();
        for model in Model::ALL {
            for mode in ["infer", "train"] {
                let prefix = format!("{}/{mode}/", model.name());
                assert!(keys.iter().any(|k| k.starts_with(&prefix)), "{prefix}");
            }
        }
        for loss in LossName::ALL {
            assert!(keys.iter().any(|k| k.contains(loss.name())));
        }
        assert!(!keys.iter().any(|k| k.starts_with("cgd")));
        let distinct: std::collections::BTreeSet<_> = plan
            .jobs
            .iter()
            .map(|j| (j.job.key(), j.section as u8))
            .collect();
        assert_eq!(distinct.len(), plan.jobs.len(), "a job is planned twice");
        let full = Plan::new(SuiteMode::Full, Path::new("/d"), Some(Path::new("cgd")));
        assert!(full.jobs.iter().any(|j| j.job.key().starts_with("cgd")));
        assert!(full.jobs.len() >= plan.jobs.len());
    }

    #[test]
    fn filtering_keeps_matching_jobs_only() {
        let plan = Plan::new(SuiteMode::Quick, Path::new("/d"), None).filtered("loss/");
        assert_eq!(plan.jobs.len(), LossName::ALL.len());
    }
}
