//! The suite's results and their write-up: `docs/benchmarks.md` with its data block, and the
//! comparison with the previous report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::job::{Job, Model};
use crate::machine::Machine;
use crate::measurement::Measurement;
use crate::stats::{Spread, linear_fit};
use crate::suite::Section;
use crate::{BenchError, Result};

/// A side (metron or one peer) of one job, over all its processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideResult {
    /// What the report calls it.
    pub label: String,
    /// A few words for the charts.
    #[serde(default)]
    pub short: String,
    /// What ran, as the process described it.
    pub variant: String,
    /// Times of all timed repetitions, seconds; `None` when it failed.
    pub seconds: Option<Spread>,
    /// The largest peak RSS of its processes, MiB.
    pub peak_rss_mb: f64,
    /// Median RSS before the first repetition, MiB.
    pub base_rss_mb: f64,
    /// Median RSS after the last repetition, MiB.
    pub after_rss_mb: f64,
    /// The kernel path it reported.
    pub kernel: String,
    /// Library versions it reported.
    pub versions: BTreeMap<String, String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl SideResult {
    /// Combines the processes of one side.
    pub fn new(label: &str, short: &str, runs: Vec<Measurement>, error: Option<String>) -> Self {
        let times: Vec<f64> = runs
            .iter()
            .flat_map(|m| m.times_s.iter().copied())
            .collect();
        let median = |f: fn(&Measurement) -> f64| {
            Spread::of(&runs.iter().map(f).collect::<Vec<_>>()).map_or(0.0, |s| s.median)
        };
        let first = runs.first();
        SideResult {
            label: label.to_string(),
            short: short.to_string(),
            variant: first.map(|m| m.variant.clone()).unwrap_or_default(),
            seconds: Spread::of(&times),
            peak_rss_mb: runs.iter().map(|m| m.peak_rss_mb).fold(0.0, f64::max),
            base_rss_mb: median(|m| m.base_rss_mb),
            after_rss_mb: median(|m| m.after_rss_mb),
            kernel: first.map(|m| m.kernel.clone()).unwrap_or_default(),
            versions: first.map(|m| m.versions.clone()).unwrap_or_default(),
            error,
        }
    }

    /// The chart name: the short one, or the label in reports written before it existed.
    pub fn chart_name(&self) -> &str {
        if self.short.is_empty() {
            &self.label
        } else {
            &self.short
        }
    }

    /// The median time, when it ran.
    pub fn median(&self) -> Option<f64> {
        self.seconds.map(|s| s.median)
    }
}

/// One job with metron's side and its peers'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job.
    pub job: Job,
    /// Where it goes in the report.
    pub section: Section,
    /// metron's side.
    pub metron: SideResult,
    /// The peers' sides, in the order of [`Job::peers`].
    pub peers: Vec<SideResult>,
}

impl JobResult {
    /// One line for the progress log: the job and each side's median.
    pub fn summary_line(&self) -> String {
        let side = |s: &SideResult| match (&s.seconds, &s.error) {
            (Some(t), _) => format!("{} {}", s.label, seconds(t.median)),
            (None, Some(e)) => format!("{} failed: {e}", s.label),
            (None, None) => format!("{} did not run", s.label),
        };
        let mut line = format!("{}: {}", self.job.describe(), side(&self.metron));
        for p in &self.peers {
            line.push_str(" | ");
            line.push_str(&side(p));
        }
        line
    }

    /// metron's time over the peer's (below 1: metron is faster).
    pub fn ratio(&self, peer: &SideResult) -> Option<f64> {
        Some(self.metron.median()? / peer.median()?)
    }
}

/// A suite run: the machine and every job's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// Where it ran.
    pub machine: Machine,
    /// The jobs, in plan order.
    pub results: Vec<JobResult>,
}

/// A job that got slower than in the previous report.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// The job's key.
    pub key: String,
    /// metron's median before, seconds.
    pub previous_s: f64,
    /// metron's median now, seconds.
    pub current_s: f64,
}

impl Regression {
    /// How much slower, as a fraction (0.2 = 20 % slower).
    pub fn slowdown(&self) -> f64 {
        self.current_s / self.previous_s - 1.0
    }
}

/// metron's jobs that are more than `tolerance` (a fraction) slower than in `previous`, by job
/// key, and slower beyond both runs' noise: the fastest repetition now is slower than the
/// slowest one then. Reports from another CPU or thread count are not compared: `Err` says why.
pub fn regressions(
    previous: &Report,
    current: &Report,
    tolerance: f64,
) -> std::result::Result<Vec<Regression>, String> {
    let (p, c) = (&previous.machine, &current.machine);
    if p.cpu != c.cpu || p.threads != c.threads {
        return Err(format!(
            "the previous report ran on {} with {} threads, this one on {} with {}: not compared",
            p.cpu, p.threads, c.cpu, c.threads
        ));
    }
    let before: BTreeMap<String, Spread> = previous
        .results
        .iter()
        .filter_map(|r| Some((r.job.key(), r.metron.seconds?)))
        .collect();
    Ok(current
        .results
        .iter()
        .filter_map(|r| {
            let key = r.job.key();
            let then = *before.get(&key)?;
            let now = r.metron.seconds?;
            (now.median > then.median * (1.0 + tolerance) && now.min > then.max).then_some(
                Regression {
                    key,
                    previous_s: then.median,
                    current_s: now.median,
                },
            )
        })
        .collect())
}

const DATA_START: &str = "<!-- metron-bench data";
const DATA_END: &str = "-->";

impl Report {
    /// The report embedded in a `docs/benchmarks.md` written by [`Report::markdown`]; `None`
    /// when the file does not exist.
    pub fn read_markdown(path: &Path) -> Result<Option<Report>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BenchError::io(path, e)),
        };
        let bad = |message: String| BenchError::Report {
            path: path.to_path_buf(),
            message,
        };
        let start = text
            .find(DATA_START)
            .ok_or_else(|| bad(format!("no `{DATA_START}` block")))?;
        let body = &text[start + DATA_START.len()..];
        let end = body
            .find(DATA_END)
            .ok_or_else(|| bad("the data block is not closed".into()))?;
        serde_json::from_str(&body[..end])
            .map(Some)
            .map_err(|e| bad(format!("the data block is not a report: {e}")))
    }

    /// The write-up: machine, method, the main table, kernel paths, regressions against
    /// `previous`, scaling, memory; then the data block that the next run compares with.
    /// `charts` are the picture files' names beside the markdown (ratios, scaling).
    pub fn markdown(
        &self,
        previous: Option<&Report>,
        charts: (&str, &str),
        command: &str,
    ) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `{command}` ({} mode) on {}, commit `{}`. Rerun it to check these \
             figures: `scripts/bench.sh --quick` takes minutes, `scripts/bench.sh` about an \
             hour on 2 cores. A ratio is metron's median time over the peer's: **below 1, \
             metron is faster**.\n",
            self.mode, m.date, m.commit
        );
        let _ = writeln!(md, "## Machine and versions\n");
        let _ = writeln!(
            md,
            "- CPU: {}, {} threads used by every side.",
            m.cpu, m.threads
        );
        match m.peak_gflops {
            Some(p) => {
                let _ = writeln!(
                    md,
                    "- f32 peak: {p:.0} GFLOP/s, measured by running a register-resident FMA \
                     loop (16 independent FMA chains per thread, {}) on all {} threads at \
                     once. Achieved rates below are the job's operation count over its median \
                     time, as a share of this peak.",
                    if m.avx512 { "AVX-512" } else { "AVX2" },
                    m.threads
                );
            }
            None => {
                let _ = writeln!(md, "- f32 peak: not measurable here (no AVX2/AVX-512).");
            }
        }
        let _ = writeln!(
            md,
            "- metron: {}, Burn 0.22, GEMMs by the `gemm` crate on {}.",
            m.rustc, m.gemm_isa
        );
        let mut peer_versions: BTreeMap<String, String> = BTreeMap::new();
        for r in &self.results {
            for p in &r.peers {
                peer_versions.extend(p.versions.clone());
            }
        }
        if !peer_versions.is_empty() {
            let list: Vec<String> = peer_versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(md, "- peers: {}.", list.join(", "));
        }
        let _ = writeln!(md, "\n## Method\n");
        let _ = writeln!(
            md,
            "Every measurement is a fresh process: metron's side is `metron-bench job`, each \
             peer's is `benches/compare/peer.py` in the venv `scripts/bench.sh` makes. A job \
             runs in rounds; each round runs every side once, metron first in even rounds and \
             last in odd ones. A process runs untimed warm-up repetitions, then timed ones; \
             the table gives the median of all timed repetitions and their range. Both sides \
             get the same inputs: the same `.npy` files and JPEGs, same-shaped random \
             tensors, the same losses' settings. Operation counts: 2 N^2 d for kNN; for a \
             backbone 2 x its forward multiply-accumulates (convolutions, linear layers and \
             attention products, counted layer by layer in `metron_bench::flops`), x 3 for a \
             training step (forward and backward, without the optimizer update). Peak RSS is \
             the process's `VmHWM`: the whole process, so the peers' include the Python \
             interpreter and their libraries (a few hundred MB).\n"
        );
        let _ = writeln!(md, "## Results\n");
        let _ = writeln!(
            md,
            "| job | metron | compared with | its time | ratio | metron GFLOP/s | peer GFLOP/s | peak RSS metron / peer |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for r in self.results.iter().filter(|r| r.section == Section::Main) {
            let flops = r.job.flops();
            let rate = |s: &SideResult| match (flops, s.median()) {
                (Some(f), Some(t)) => {
                    let g = f / t / 1e9;
                    match (m.peak_gflops, s.label == "metron") {
                        (Some(p), true) => format!("{g:.0} ({:.0} % of peak)", 100.0 * g / p),
                        _ => format!("{g:.0}"),
                    }
                }
                _ => "-".into(),
            };
            let metron = side_cell(&r.metron);
            if r.peers.is_empty() {
                let _ = writeln!(
                    md,
                    "| {} | {metron} | (no peer) | - | - | {} | - | {:.0} MB / - |",
                    r.job.describe(),
                    rate(&r.metron),
                    r.metron.peak_rss_mb
                );
            }
            for (i, p) in r.peers.iter().enumerate() {
                let (job, metron, metron_rate) = if i == 0 {
                    (r.job.describe(), metron.clone(), rate(&r.metron))
                } else {
                    (String::new(), String::new(), String::new())
                };
                let ratio = r
                    .ratio(p)
                    .map_or("-".into(), |x| format!("**{}**", ratio_text(x)));
                let _ = writeln!(
                    md,
                    "| {job} | {metron} | {} | {} | {ratio} | {metron_rate} | {} | {:.0} / {:.0} MB |",
                    p.label,
                    side_cell(p),
                    rate(p),
                    r.metron.peak_rss_mb,
                    p.peak_rss_mb
                );
            }
        }
        let _ = writeln!(md, "\n![ratios]({})\n", charts.0);
        self.kernel_paths(&mut md);
        self.regression_section(&mut md, previous);
        self.scaling_section(&mut md, charts.1);
        self.memory_section(&mut md);
        let failures: Vec<String> = self
            .results
            .iter()
            .flat_map(|r| {
                std::iter::once(&r.metron)
                    .chain(&r.peers)
                    .map(move |s| (r, s))
            })
            .filter_map(|(r, s)| {
                s.error
                    .as_ref()
                    .map(|e| format!("- {} ({}): {e}", r.job.describe(), s.label))
            })
            .collect();
        if !failures.is_empty() || self.mode == "quick" {
            let _ = writeln!(md, "## Not measured\n");
            if self.mode == "quick" {
                let _ = writeln!(
                    md,
                    "- The cgd example end to end (minutes per run): full mode only."
                );
            }
            for f in failures {
                let _ = writeln!(md, "{f}");
            }
            let _ = writeln!(md);
        }
        let json = serde_json::to_string(self).expect("plain values");
        let _ = writeln!(md, "{DATA_START}\n{json}\n{DATA_END}");
        md
    }

    fn kernel_paths(&self, md: &mut String) {
        let mut paths: BTreeMap<(String, String), ()> = BTreeMap::new();
        for r in &self.results {
            for s in std::iter::once(&r.metron).chain(&r.peers) {
                if !s.kernel.is_empty() {
                    let who = if s.label == "metron" {
                        format!("metron ({})", job_kind(&r.job))
                    } else {
                        s.label.clone()
                    };
                    paths.insert((who, s.kernel.clone()), ());
                }
            }
        }
        if paths.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Kernel paths\n");
        for (who, kernel) in paths.keys() {
            let _ = writeln!(md, "- {who}: {kernel}");
        }
        let _ = writeln!(md);
    }

    fn regression_section(&self, md: &mut String, previous: Option<&Report>) {
        let _ = writeln!(md, "## Against the previous report\n");
        let Some(previous) = previous else {
            let _ = writeln!(md, "No previous report to compare with.\n");
            return;
        };
        match regressions(previous, self, 0.15) {
            Err(why) => {
                let _ = writeln!(md, "{why}.\n");
            }
            Ok(list) if list.is_empty() => {
                let _ = writeln!(
                    md,
                    "No job of metron's is more than 15 % slower than in the previous report \
                     (commit `{}`, {}; jobs matched by name and size; flagged when the median is \
                     15 % slower and every repetition slower than every one then).\n",
                    previous.machine.commit, previous.machine.date
                );
            }
            Ok(list) => {
                let peaks = match (previous.machine.peak_gflops, self.machine.peak_gflops) {
                    (Some(a), Some(b)) => format!(
                        "; the FMA peak measured {b:.0} GFLOP/s now against {a:.0} then, so \
                         part of a slowdown can be the machine"
                    ),
                    _ => String::new(),
                };
                let _ = writeln!(
                    md,
                    "**Slower by more than 15 %** than in the previous report (commit `{}`), \
                     every repetition now slower than every one then{peaks}. Rerun a flagged \
                     job alone with `--filter` to tell a regression from noise:\n",
                    previous.machine.commit
                );
                for r in list {
                    let _ = writeln!(
                        md,
                        "- `{}`: {} -> {} (+{:.0} %)",
                        r.key,
                        seconds(r.previous_s),
                        seconds(r.current_s),
                        100.0 * r.slowdown()
                    );
                }
                let _ = writeln!(md);
            }
        }
    }

    fn scaling_section(&self, md: &mut String, chart: &str) {
        let knn: Vec<&JobResult> = self.section(Section::KnnScaling);
        let batch: Vec<&JobResult> = self.section(Section::BatchScaling);
        if knn.is_empty() && batch.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Scaling\n");
        let _ = writeln!(
            md,
            "Exact kNN should grow as N^2 d and a training step linearly in the batch: the \
             plots put time against N^2 d and against the batch, so the expected growth is a \
             straight line. The rate column shows how close each size stays to it.\n"
        );
        let _ = writeln!(md, "![scaling]({chart})\n");
        let _ = writeln!(md, "| job | metron | metron GFLOP/s | peer | peer time |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for r in knn.iter().chain(&batch) {
            let g = match (r.job.flops(), r.metron.median()) {
                (Some(f), Some(t)) => format!("{:.0}", f / t / 1e9),
                _ => "-".into(),
            };
            let (label, time) = r.peers.first().map_or(("-".into(), "-".into()), |p| {
                (p.label.clone(), side_cell(p))
            });
            let _ = writeln!(
                md,
                "| {} | {} | {g} | {label} | {time} |",
                r.job.describe(),
                side_cell(&r.metron)
            );
        }
        let _ = writeln!(md);
    }

    fn memory_section(&self, md: &mut String) {
        let training: Vec<&JobResult> = self
            .results
            .iter()
            .filter(|r| {
                matches!(
                    r.job,
                    Job::Backbone {
                        mode: crate::job::Mode::Train,
                        ..
                    }
                )
            })
            .collect();
        if training.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Memory\n");
        let _ = writeln!(
            md,
            "Training steps: RSS before the first step (model and input built), the peak, and \
             what the process still holds after its last step (after minus before: activations \
             kept past the backward pass would show here).\n"
        );
        let _ = writeln!(
            md,
            "| job | metron before / peak / held after | PyTorch before / peak / held after |"
        );
        let _ = writeln!(md, "|---|---|---|");
        for r in training {
            let cell = |s: &SideResult| {
                format!(
                    "{:.0} / {:.0} / {:+.0} MB",
                    s.base_rss_mb,
                    s.peak_rss_mb,
                    s.after_rss_mb - s.base_rss_mb
                )
            };
            let peer = r.peers.first().map_or("-".into(), cell);
            let _ = writeln!(
                md,
                "| {} | {} | {peer} |",
                r.job.describe(),
                cell(&r.metron)
            );
        }
        let _ = writeln!(md);
        let presets = [
            (
                Model::Resnet50,
                128,
                "CGD's paper preset: ResNet-50, batch 128, 224 x 224",
            ),
            (
                Model::VitB16,
                384,
                "Smooth-AP's paper preset: ViT-B/16, batch 384, 224 x 224",
            ),
        ];
        let _ = writeln!(
            md,
            "Training memory at the papers' batch sizes, from a straight-line fit of peak RSS \
             against the batch over this run's training steps of the same network and input \
             (peak = fixed + per image x batch):\n"
        );
        for (model, batch, what) in presets {
            for (who, pick) in [("metron", 0usize), ("PyTorch", 1)] {
                let points: Vec<(f64, f64)> = self
                    .results
                    .iter()
                    .filter_map(|r| match r.job {
                        Job::Backbone {
                            model: m,
                            mode: crate::job::Mode::Train,
                            batch: b,
                            input: [224, 224],
                        } if m == model => {
                            let side = if pick == 0 {
                                Some(&r.metron)
                            } else {
                                r.peers.first()
                            }?;
                            side.seconds?;
                            Some((b as f64, side.peak_rss_mb))
                        }
                        _ => None,
                    })
                    .collect();
                let distinct: std::collections::BTreeSet<u64> =
                    points.iter().map(|p| p.0 as u64).collect();
                match linear_fit(&points) {
                    Some((a, b)) if distinct.len() >= 3 => {
                        let _ = writeln!(
                            md,
                            "- {what}, {who}: {:.1} GB ({a:.0} MB fixed + {b:.0} MB per image; \
                             fitted on batches {:?}).",
                            (a + b * batch as f64) / 1024.0,
                            distinct
                        );
                    }
                    _ => {}
                }
            }
        }
        let _ = writeln!(md);
    }

    fn section(&self, section: Section) -> Vec<&JobResult> {
        self.results
            .iter()
            .filter(|r| r.section == section)
            .collect()
    }
}

fn job_kind(job: &Job) -> &'static str {
    match job {
        Job::Knn { .. } => "kNN",
        Job::Loss { .. } => "losses",
        Job::Backbone { model, .. } if model.has_attention() => "attention backbones",
        Job::Backbone { .. } => "CNN backbones",
        Job::Data { .. } => "data",
        Job::Cgd { .. } => "cgd example",
    }
}

/// A ratio to two decimals; small ones with three significant digits and as a speed-up, so a
/// 300x difference does not print as 0.00.
pub(crate) fn ratio_text(x: f64) -> String {
    if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3} ({:.0}x faster)", 1.0 / x)
    }
}

/// `0.52 s (0.50-0.55)` or `12.3 ms (12.1-12.9)`, or why there is no time.
fn side_cell(s: &SideResult) -> String {
    match (&s.seconds, &s.error) {
        (Some(t), _) => {
            let (scale, unit, digits) = if t.median < 1.0 {
                (1e3, "ms", 1)
            } else {
                (1.0, "s", 2)
            };
            if t.count > 1 {
                format!(
                    "{:.digits$} {unit} ({:.digits$}-{:.digits$})",
                    t.median * scale,
                    t.min * scale,
                    t.max * scale
                )
            } else {
                format!("{:.digits$} {unit}", t.median * scale)
            }
        }
        (None, Some(_)) => "failed (below)".into(),
        (None, None) => "-".into(),
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::LossName;

    fn report(cpu: &str, spread: (f64, f64, f64)) -> Report {
        let (median, min, max) = spread;
        let side = SideResult::new("metron", "metron", Vec::new(), None);
        Report {
            mode: "quick".into(),
            machine: Machine {
                cpu: cpu.into(),
                threads: 2,
                avx512: true,
                peak_gflops: Some(300.0),
                gemm_isa: "avx512f".into(),
                rustc: "rustc".into(),
                commit: "abc".into(),
                date: "2026-12-07".into(),
            },
            results: vec![JobResult {
                job: Job::Loss {
                    loss: LossName::Ntxent,
                    n: 384,
                    dim: 512,
                },
                section: Section::Main,
                metron: SideResult {
                    seconds: Some(Spread {
                        median,
                        min,
                        max,
                        count: 4,
                    }),
                    ..side
                },
                peers: Vec::new(),
            }],
        }
    }

    #[test]
    fn flags_only_slowdowns_beyond_the_tolerance_and_both_ranges() {
        let then = report("x", (1.0, 0.9, 1.3));
        // 20 % slower, but the ranges overlap: noise, not flagged.
        assert!(
            regressions(&then, &report("x", (1.2, 1.1, 1.4)), 0.15)
                .unwrap()
                .is_empty()
        );
        // 10 % slower with disjoint ranges: within the tolerance.
        assert!(
            regressions(&then, &report("x", (1.1, 1.05, 1.2)), 0.15).is_ok_and(|r| r.is_empty())
        );
        let flagged = regressions(&then, &report("x", (1.5, 1.4, 1.6)), 0.15).unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].key, "loss/ntxent/n384/d512");
        assert!((flagged[0].slowdown() - 0.5).abs() < 1e-12);
        assert!(regressions(&then, &report("y", (1.5, 1.4, 1.6)), 0.15).is_err());
    }

    #[test]
    fn the_data_block_round_trips_through_the_markdown() {
        let r = report("x", (1.0, 0.9, 1.3));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        std::fs::write(&path, r.markdown(None, ("a.png", "b.png"), "test")).unwrap();
        assert_eq!(Report::read_markdown(&path).unwrap(), Some(r));
        assert_eq!(
            Report::read_markdown(&dir.path().join("none.md")).unwrap(),
            None
        );
        std::fs::write(&path, "# no data\n").unwrap();
        assert!(matches!(
            Report::read_markdown(&path),
            Err(BenchError::Report { .. })
        ));
    }
}
