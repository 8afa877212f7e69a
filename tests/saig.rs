//! SAIG end to end on the Omniglot two-view task (a few characters, a tiny network): the task
//! is a function of its seed, an interrupted and resumed run equals an uninterrupted one, and
//! the report holds what `--json` promises.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use metron::systems::saig::omniglot_task::{CrossViewPlaces, GroundViewConfig};
use metron::systems::saig::{SaigArgs, SaigOutcome, SaigReport, report_json, run};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: SaigArgs,
}

fn omniglot() -> PathBuf {
    PathBuf::from(format!(
        "{}/../shared/data/omniglot",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn argv(run_dir: &Path, extra: &[&str]) -> SaigArgs {
    let root = omniglot();
    let mut argv: Vec<&str> = vec![
        "saig",
        "--root",
        root.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--quiet",
        "--characters",
        "4",
        "--eval-drawers",
        "5",
        "--depth",
        "1",
        "--embed-dim",
        "8",
        "--heads",
        "2",
        "--stem-width",
        "2",
        "--ground-size",
        "16x64",
        "--aerial-size",
        "32x32",
        "--baseline-size",
        "8x32",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--eval-every",
        "1",
    ];
    argv.extend(extra);
    Cli::parse_from(argv).args
}

fn finished(o: SaigOutcome) -> SaigReport {
    match o {
        SaigOutcome::Finished(r) => *r,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn the_evaluation_places_are_a_function_of_the_seed() {
    let data = metron_datasets::read_omniglot(&omniglot()).unwrap();
    let mut test = data.split("test").unwrap().clone();
    test.samples.retain(|s| s.label < 3);
    let views = GroundViewConfig {
        size: [16, 64],
        center_jitter: 0.1,
        radius: [0.85, 1.15],
        random_heading: true,
    };
    let render = |seed| CrossViewPlaces::render(&test, &views, 32, Some(4), seed).unwrap();
    let (a, b, c) = (render(1), render(1), render(2));
    assert_eq!(a.len(), 12, "4 drawings of each of 3 characters");
    assert_eq!(a.ground.images, b.ground.images);
    assert_eq!(a.aerial.images, b.aerial.images);
    assert_ne!(
        a.ground.images, c.ground.images,
        "another seed, other cameras"
    );
    assert_eq!(
        a.aerial.images, c.aerial.images,
        "the aerial view has no randomness"
    );
    // Semi-positives: the 3 other drawings of the character, never the place itself.
    for (i, semis) in a.semi_positives.iter().enumerate() {
        assert_eq!(semis.len(), 3);
        assert!(!semis.contains(&i));
        assert!(
            semis
                .iter()
                .all(|&j| a.ground.labels[j] == a.ground.labels[i])
        );
    }
    assert_eq!(a.ground.images[0].dimensions(), (64, 16));
}

#[test]
fn saig_resumes_exactly_and_reports_the_baseline_and_hit_rate() {
    let dir = tempfile::tempdir().unwrap();
    let straight_dir = dir.path().join("straight");
    let straight = finished(run(&argv(&straight_dir, &[])).unwrap());
    let resumed_dir = dir.path().join("resumed");
    match run(&argv(&resumed_dir, &["--stop-after", "1"])).unwrap() {
        SaigOutcome::Stopped {
            run_dir,
            epochs_done,
        } => assert_eq!((run_dir, epochs_done), (resumed_dir.clone(), 1)),
        other => panic!("{other:?}"),
    }
    let resume = Cli::parse_from(["saig", "--resume", resumed_dir.to_str().unwrap(), "--quiet"]);
    let resumed = finished(run(&resume.args).unwrap());
    assert_eq!(straight.trained, resumed.trained);
    assert_eq!(straight.baseline, resumed.baseline);
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let losses = |text: String| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].clone())
            .collect()
    };
    assert_eq!(
        losses(metrics(&straight_dir)),
        losses(metrics(&resumed_dir))
    );

    let json = report_json(&straight);
    for set in ["trained", "untrained", "baseline"] {
        for key in [
            "recall_at_1",
            "recall_at_5",
            "recall_at_10",
            "top_1_percent",
            "hit_rate",
        ] {
            let v = json[set][key]
                .as_f64()
                .unwrap_or_else(|| panic!("{set}.{key} in {json}"));
            assert!((0.0..=1.0).contains(&v), "{set}.{key} = {v}");
        }
        // 20 places: top-1 % is K = 1, i.e. Recall@1; the hit rate forgives semi-positives.
        assert_eq!(json[set]["top_1_percent"], json[set]["recall_at_1"]);
        assert!(json[set]["hit_rate"].as_f64() >= json[set]["recall_at_1"].as_f64());
        assert!(json[set]["recall_at_1"].as_f64() <= json[set]["recall_at_5"].as_f64());
    }
    assert!(json["setup"]["task"].as_str().unwrap().contains("Omniglot"));
    assert!(straight_dir.join("retrieval_grid.png").is_file());
    // `metron eval --cross-view` on the run's embedding files measures what the run reported.
    let out = common::metron(&[
        "eval",
        "--cross-view",
        "--query",
        straight_dir.join("ground_embeddings.npy").to_str().unwrap(),
        "--gallery",
        straight_dir.join("aerial_embeddings.npy").to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let eval: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(eval["queries"], 20);
    for key in ["recall_at_1", "recall_at_5", "recall_at_10"] {
        let (a, b) = (
            eval[key].as_f64().unwrap(),
            json["trained"][key].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{key}: eval {a}, run {b}");
    }
    // The checkpoint records the system and rebuilds its configuration.
    let ck = straight_dir.join("checkpoints/last.ckpt");
    let state: metron_train::TrainState = metron_train::read_checkpoint(&ck)
        .unwrap()
        .state(&ck)
        .unwrap();
    assert_eq!(state.architecture["kind"], "saig");
    assert_eq!(state.architecture["config"]["depth"], 1);
}

/// A tiny picture whose pixels depend on `seed`, saved as PNG at `path`.
fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 7 + y * 13 + seed * 31) % 256) as u8,
            (seed * 50 % 256) as u8,
            90,
        ])
    });
    img.save(path).unwrap();
}

const TINY_NET: &[&str] = &[
    "--depth",
    "1",
    "--embed-dim",
    "8",
    "--heads",
    "2",
    "--stem-width",
    "2",
    "--batch-size",
    "4",
    "--epochs",
    "1",
    "--quiet",
];

/// VIGOR in its layout (four cities, satellite lists, 13-field label lines): panoramas are
/// batched with no satellite shared, evaluated against every satellite of the test cities
/// with their positive, and the hit rate leaves the three semi-positives out.
#[test]
fn vigor_in_its_own_layout_trains_and_reports_the_hit_rate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VIGOR");
    for (c, city) in ["NewYork", "Seattle", "SanFrancisco", "Chicago"]
        .iter()
        .enumerate()
    {
        let splits = root.join("splits").join(city);
        std::fs::create_dir_all(&splits).unwrap();
        let sats: Vec<String> = (0..6).map(|i| format!("sat_{c}_{i}.png")).collect();
        std::fs::write(splits.join("satellite_list.txt"), sats.join("\n")).unwrap();
        for (i, s) in sats.iter().enumerate() {
            write_png(
                &root.join(city).join("satellite").join(s),
                16,
                16,
                (10 * c + i) as u32,
            );
        }
        for (file, first) in [
            ("same_area_balanced_train.txt", 0),
            ("same_area_balanced_test.txt", 6),
        ] {
            let lines: Vec<String> = (0..6)
                .map(|p| {
                    let pano = format!("pano_{c}_{}.png", first + p);
                    write_png(
                        &root.join(city).join("panorama").join(&pano),
                        32,
                        16,
                        (100 + 10 * c + first + p) as u32,
                    );
                    let fields: Vec<String> = (0..4)
                        .map(|k| format!("{} 0.5 -0.5", sats[(p + k) % 6]))
                        .collect();
                    format!("{pano} {}", fields.join(" "))
                })
                .collect();
            std::fs::write(splits.join(file), lines.join("\n")).unwrap();
        }
    }
    let run_dir = dir.path().join("run");
    let mut argv: Vec<&str> = vec![
        "saig",
        "--dataset",
        "vigor",
        "--root",
        root.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--ground-size",
        "16x32",
        "--aerial-size",
        "16x16",
        "--recalls",
        "1,5,10",
    ];
    argv.extend(TINY_NET);
    let report = finished(run(&Cli::parse_from(argv).args).unwrap());
    let json = report_json(&report);
    assert!(
        json["baseline"].is_null(),
        "the polar baseline is the Omniglot task's"
    );
    for set in ["trained", "untrained"] {
        let hit = json[set]["hit_rate"]
            .as_f64()
            .expect("VIGOR reports a hit rate");
        assert!(hit >= json[set]["recall_at_1"].as_f64().unwrap());
    }
    // 24 test panoramas against the 24 satellites of the four test cities: K = 1 for top-1 %.
    assert_eq!(report.trained.all["top1_percent_k"], 1.0);
    assert_eq!(json["setup"]["dataset"], "vigor");
}

/// CVUSA in its layout (`splits/*-19zl.csv`, `bingmap_ori/` for the original aerial images):
/// aligned pairs, every query against every aerial image of the validation split.
#[test]
fn cvusa_in_its_own_layout_trains_on_aligned_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CVUSA");
    for (file, n, first) in [("train-19zl.csv", 12, 0), ("val-19zl.csv", 10, 100)] {
        let lines: Vec<String> = (first..first + n)
            .map(|i| {
                write_png(&root.join(format!("bingmap_ori/19/{i:04}.png")), 16, 16, i);
                write_png(
                    &root.join(format!("streetview/panos/{i:04}.png")),
                    64,
                    16,
                    i,
                );
                format!("bingmap/19/{i:04}.png,streetview/panos/{i:04}.png,annotations/{i:04}.png")
            })
            .collect();
        std::fs::create_dir_all(root.join("splits")).unwrap();
        std::fs::write(root.join("splits").join(file), lines.join("\n")).unwrap();
    }
    let run_dir = dir.path().join("run");
    let mut argv: Vec<&str> = vec![
        "saig",
        "--dataset",
        "cvusa",
        "--root",
        root.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--ground-size",
        "16x64",
        "--aerial-size",
        "16x16",
    ];
    argv.extend(TINY_NET);
    let report = finished(run(&Cli::parse_from(argv).args).unwrap());
    assert_eq!(report.trained.hit_rate, None, "CVUSA has no semi-positives");
    assert_eq!(report.trained.all["top1_percent_k"], 1.0, "10 pairs: K = 1");
    let r1 = report.trained.recall_at_1.unwrap();
    assert!(
        (0.0..=1.0).contains(&r1) && ((r1 * 10.0).round() - r1 * 10.0).abs() < 1e-9,
        "a count of 10 queries: {r1}"
    );
}
