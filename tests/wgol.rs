//! WGOL end to end on the Omniglot canvases (three characters, 32-pixel canvases, a VGG-16 at
//! 1/16 width): an interrupted and resumed run equals an uninterrupted one, the report holds
//! a row per map and baseline with fractions, and the picture is written.

use std::path::{Path, PathBuf};

use clap::Parser;
use metron::systems::wgol::{WgolArgs, WgolOutcome, WgolReport, report_json, run};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: WgolArgs,
}

fn omniglot() -> PathBuf {
    PathBuf::from(format!(
        "{}/../shared/data/omniglot",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn argv(run_dir: &Path, extra: &[&str]) -> WgolArgs {
    let root = omniglot();
    let mut argv: Vec<&str> = vec![
        "wgol",
        "--root",
        root.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--quiet",
        "--classes",
        "3",
        "--canvas-size",
        "32",
        "--distractors",
        "1",
        "--width-divisor",
        "16",
        "--epochs",
        "2",
        "--finetune-epochs",
        "1",
        "--sos-start",
        "1",
        "--sa-start",
        "1",
        "--ram-start",
        "1",
        "--canvases-per-glyph",
        "1",
        "--batch-size",
        "9",
        "--val-canvases",
        "6",
        "--test-canvases",
        "6",
        "--eval-every",
        "1",
    ];
    argv.extend(extra);
    Cli::parse_from(argv).args
}

fn finished(o: WgolOutcome) -> WgolReport {
    match o {
        WgolOutcome::Finished(r) => *r,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

/// A run's metric lines without their wall-clock times.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

#[test]
fn wgol_resumes_exactly_and_reports_every_map_and_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let straight_dir = dir.path().join("straight");
    let straight = finished(run(&argv(&straight_dir, &[])).unwrap());

    let resumed_dir = dir.path().join("resumed");
    match run(&argv(&resumed_dir, &["--stop-after", "1"])).unwrap() {
        WgolOutcome::Stopped {
            run_dir,
            epochs_done,
        } => assert_eq!((run_dir, epochs_done), (resumed_dir.clone(), 1)),
        other => panic!("expected a stop, got {other:?}"),
    }
    // Flags that would change the stored configuration are refused on resume.
    let refused = Cli::parse_from([
        "wgol",
        "--resume",
        resumed_dir.to_str().unwrap(),
        "--epochs",
        "5",
    ]);
    let err = run(&refused.args).unwrap_err().to_string();
    assert!(err.contains("--epochs"), "{err}");
    let resume = Cli::parse_from(["wgol", "--resume", resumed_dir.to_str().unwrap(), "--quiet"]);
    let resumed = finished(run(&resume.args).unwrap());
    assert_eq!(straight.rows, resumed.rows);
    for network in ["spa", "sos_sa_v3"] {
        assert_eq!(
            metrics(&straight_dir.join(network)),
            metrics(&resumed_dir.join(network)),
            "{network}"
        );
    }

    // One object per map and baseline, fractions in [0, 1], plus the setup.
    let json = report_json(&straight);
    for row in [
        "cam",
        "spa",
        "sos_sa_v3",
        "whole_canvas",
        "centred_box",
        "untrained",
    ] {
        for field in ["top1_cls", "top1_loc", "gt_known_loc"] {
            let v = json[row][field]
                .as_f64()
                .unwrap_or_else(|| panic!("{row}.{field}"));
            assert!((0.0..=1.0).contains(&v), "{row}.{field} = {v}");
        }
    }
    assert_eq!(json["setup"]["classes"], 3);
    // The baselines share the trained classifier's classes; the whole canvas (32 x 32) holds
    // every 10-20-pixel target, but never at IoU > 0.5.
    assert_eq!(json["whole_canvas"]["top1_cls"], json["cam"]["top1_cls"]);
    assert_eq!(json["whole_canvas"]["gt_known_loc"], 0.0);
    let picture = image::open(straight_dir.join("localisation.png")).unwrap();
    assert!(picture.width() > 4 * 64 && picture.height() > 64);
}
