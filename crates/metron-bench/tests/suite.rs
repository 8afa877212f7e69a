//! The suite end to end with a stand-in peer: a shell script in place of Python that logs its
//! arguments and reports a fixed time, so the orchestration, the report, its data block and
//! the regression flags are checked without PyTorch.

use std::path::{Path, PathBuf};
use std::process::Command;

use metron_bench::{Report, Spread};

const BIN: &str = env!("CARGO_BIN_EXE_metron-bench");
/// What the stand-in peer reports for every repetition, seconds.
const PEER_SECONDS: f64 = 0.25;

/// A "python" that ignores the script path, appends its arguments to `log` and prints a
/// measurement with two repetitions of [`PEER_SECONDS`].
fn fake_python(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("peer-args.log");
    let python = dir.join("python");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\necho 'noise on stdout first'\n\
         echo '{{\"job\":\"loss\",\"peer\":\"fake\",\"variant\":\"stand-in\",\"times_s\":[{PEER_SECONDS},{PEER_SECONDS}],\"base_rss_mb\":10,\"peak_rss_mb\":40,\"after_rss_mb\":12,\"kernel\":\"none\",\"versions\":{{\"fake\":\"1\"}}}}'\n",
        log.display()
    );
    std::fs::write(&python, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("peer.py"), "# stand-in\n").unwrap();
    (python, log)
}

fn suite(dir: &Path, python: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args([
            "suite",
            "--quick",
            "--filter",
            "loss/ntxent",
            "--threads",
            "1",
        ])
        .arg("--python")
        .arg(python)
        .arg("--peer-script")
        .arg(dir.join("peer.py"))
        .arg("--out")
        .arg(out)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn suite_alternates_sides_writes_the_report_and_flags_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let (python, log) = fake_python(dir.path());
    let out = dir.path().join("docs/benchmarks.md");
    let run = suite(dir.path(), &python, &out, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Two peers (pytorch-metric-learning and plain PyTorch), two rounds each, with the job's
    // arguments.
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 4, "{calls}");
    assert_eq!(lines.iter().filter(|l| l.contains("--peer pml")).count(), 2);
    assert_eq!(
        lines.iter().filter(|l| l.contains("--peer torch")).count(),
        2
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("--job loss --loss ntxent --n 384 --dim 512"))
    );
    assert!(lines.iter().all(|l| l.contains("--threads 1")));
    // Odd rounds run the sides in reverse order: pml, torch, then torch, pml.
    assert!(lines[0].contains("pml") && lines[1].contains("torch"));
    assert!(lines[2].contains("torch") && lines[3].contains("pml"));

    let report = Report::read_markdown(&out).unwrap().expect("written");
    assert_eq!(report.results.len(), 1);
    let r = &report.results[0];
    let peer = &r.peers[0];
    let peer_time = peer.seconds.unwrap();
    assert_eq!((peer_time.median, peer_time.count), (PEER_SECONDS, 4));
    assert_eq!(peer.peak_rss_mb, 40.0);
    let metron = r.metron.seconds.expect("metron's side ran");
    // Two rounds of two timed repetitions.
    assert_eq!(metron.count, 4);
    assert!(metron.min <= metron.median && metron.median <= metron.max);
    let ratio = r.ratio(peer).unwrap();
    assert_eq!(ratio, metron.median / PEER_SECONDS);
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(
        md.contains(&format!("**{ratio:.2}**")) || ratio < 0.1,
        "{md}"
    );
    assert!(md.contains("No previous report"));
    assert!(out.with_file_name("benchmarks-ratios.png").is_file());

    // Rendering again from the data block gives the same report.
    let render = Command::new(BIN)
        .arg("render")
        .arg("--report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(render.status.success());
    assert_eq!(Report::read_markdown(&out).unwrap().unwrap(), report);
    let missing = Command::new(BIN)
        .args(["render", "--report"])
        .arg(dir.path().join("none.md"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    // The previous report says metron took a microsecond every time: now it is far slower,
    // beyond both runs' ranges, and flagged.
    let mut faster = report.clone();
    faster.results[0].metron.seconds = Some(Spread {
        median: 1e-6,
        min: 1e-6,
        max: 1e-6,
        count: 4,
    });
    std::fs::write(&out, faster.markdown(None, ("r.png", "s.png"), "test")).unwrap();
    let run = suite(dir.path(), &python, &out, &["--fail-on-regression"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("REGRESSION loss/ntxent/n384/d512"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("**Slower by more than 15 %**"), "{md}");

    // Against the report just written, the comparison runs: the stand-in peer's times are
    // fixed, and whether metron's own moved beyond 15 % is the machine's business, but one of
    // the two verdicts is written, never "no previous report".
    let run = suite(dir.path(), &python, &out, &[]);
    assert!(run.status.success());
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(!md.contains("No previous report"), "{md}");
    assert!(
        md.contains("No job of metron's is more than 15 % slower")
            || md.contains("**Slower by more than 15 %**"),
        "{md}"
    );
}

#[test]
fn a_failing_peer_is_reported_not_fatal_and_a_broken_report_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let python = dir.path().join("python");
    std::fs::write(
        &python,
        "#!/bin/sh\necho 'ModuleNotFoundError: torch' >&2\nexit 1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.path().join("peer.py"), "").unwrap();
    let out = dir.path().join("benchmarks.md");
    let run = suite(dir.path(), &python, &out, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("## Not measured"));
    assert!(md.contains("ModuleNotFoundError: torch"), "{md}");
    let report = Report::read_markdown(&out).unwrap().unwrap();
    assert!(report.results[0].metron.seconds.is_some());
    assert!(report.results[0].peers.iter().all(|p| p.error.is_some()));

    std::fs::write(
        &out,
        "# Benchmarks\n<!-- metron-bench data\n{not json\n-->\n",
    )
    .unwrap();
    let run = suite(dir.path(), &python, &out, &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not a report"));
}

#[test]
fn job_prints_one_measurement_and_refuses_a_bad_spec() {
    let run = Command::new(BIN)
        .args(["job", "--reps", "2", "--warmup", "0", "--spec"])
        .arg(r#"{"job":"loss","loss":"batch_hard_triplet","n":16,"dim":8}"#)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let m = metron_bench::Measurement::from_stdout(&String::from_utf8_lossy(&run.stdout), "job")
        .unwrap();
    assert_eq!(
        (m.job.as_str(), m.peer.as_str(), m.times_s.len()),
        ("loss", "metron", 2)
    );
    assert!(m.peak_rss_mb >= m.base_rss_mb && m.base_rss_mb > 0.0);

    let run = Command::new(BIN)
        .args(["job", "--spec", r#"{"job":"nope"}"#])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
}
