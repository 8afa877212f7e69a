//! Smooth-AP and the PSS loop end to end on real Omniglot drawings (a subset as a CSV, a tiny
//! network): interrupted and resumed runs equal uninterrupted ones, the baseline and the PSS
//! iterations report what they claim, and PSS's exported features are what the run clustered.

#[path = "common/omniglot_subset.rs"]
mod omniglot_subset;
use omniglot_subset::omniglot_subset_csv;

use std::path::Path;

use clap::Parser;
use metron::systems::smooth_ap::pss::{FeatureExport, PssArgs, PssOutcome, PssReport};
use metron::systems::smooth_ap::{SmoothApArgs, SmoothApOutcome, SmoothApReport};

#[derive(Debug, Parser)]
struct SmoothApCli {
    #[command(flatten)]
    args: SmoothApArgs,
}

#[derive(Debug, Parser)]
struct PssCli {
    #[command(flatten)]
    args: PssArgs,
}

const TINY: &[&str] = &[
    "--base-width",
    "4",
    "--image-size",
    "16",
    "--embed-dim",
    "16",
    "--batch-size",
    "16",
    "--eval-every",
    "1",
    "--recalls",
    "1,4",
    "--quiet",
];

fn argv(name: &str, csv: &Path, run_dir: &Path, extra: &[&str]) -> Vec<String> {
    [
        name,
        "--csv",
        csv.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]
    .iter()
    .chain(TINY)
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn smooth_ap_finished(o: SmoothApOutcome) -> SmoothApReport {
    match o {
        SmoothApOutcome::Finished(r) => *r,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn smooth_ap_and_its_ams_baseline_resume_exactly_and_report_recall_and_nmi() {
    let dir = tempfile::tempdir().unwrap();
    let csv = omniglot_subset_csv(dir.path(), 16);
    let extra = ["--epochs", "2"];
    let straight_dir = dir.path().join("straight");
    let straight = smooth_ap_finished(
        metron::systems::smooth_ap::run(
            &SmoothApCli::parse_from(argv("smooth_ap", &csv, &straight_dir, &extra)).args,
        )
        .unwrap(),
    );
    // Interrupted in the main run, resumed: the baseline follows in the same invocation.
    let resumed_dir = dir.path().join("resumed");
    let mut stop = extra.to_vec();
    stop.extend(["--stop-after", "1"]);
    match metron::systems::smooth_ap::run(
        &SmoothApCli::parse_from(argv("smooth_ap", &csv, &resumed_dir, &stop)).args,
    )
    .unwrap()
    {
        SmoothApOutcome::Stopped {
            run_dir,
            epochs_done,
        } => {
            assert_eq!((run_dir, epochs_done), (resumed_dir.clone(), 1));
        }
        other => panic!("{other:?}"),
    }
    let resume = SmoothApCli::parse_from([
        "smooth_ap",
        "--resume",
        resumed_dir.to_str().unwrap(),
        "--quiet",
    ])
    .args;
    let resumed = smooth_ap_finished(metron::systems::smooth_ap::run(&resume).unwrap());
    assert_eq!(straight.main.trained, resumed.main.trained);
    assert_eq!(straight.baseline, resumed.baseline);
    let baseline = straight.baseline.as_ref().unwrap();
    assert_eq!(
        baseline.loss,
        metron::systems::smooth_ap::SmoothApLossKind::Ams
    );
    for metrics in [
        &straight.main.trained,
        &straight.main.untrained,
        &straight.main.pixels,
        &baseline.metrics,
    ] {
        for key in ["recall_at_1", "recall_at_4", "nmi"] {
            let v = metrics[key];
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
        assert!(metrics["recall_at_1"] <= metrics["recall_at_4"]);
    }
    // The baseline trained its own network (a different loss, different numbers) in its own
    // run directory, whose checkpoint records the ams loss.
    assert_ne!(baseline.metrics, straight.main.trained);
    let ck = straight_dir.join("baseline_ams/checkpoints/last.ckpt");
    let state: metron_train::TrainState = metron_train::read_checkpoint(&ck)
        .unwrap()
        .state(&ck)
        .unwrap();
    assert_eq!(state.architecture["kind"], "smooth_ap");
    assert_eq!(state.architecture["config"]["loss"], "ams");
    // --json's shape: trained / untrained / pixels / setup, and the baseline.
    let json = serde_json::to_value(&straight).unwrap();
    for key in ["trained", "untrained", "pixels", "setup", "baseline"] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert!(
        json["setup"]["loss"]
            .as_str()
            .unwrap()
            .starts_with("smoothap (tau 0.01")
    );
}

fn pss_finished(o: PssOutcome) -> PssReport {
    match o {
        PssOutcome::Finished(r) => *r,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn a_pss_iteration_runs_end_to_end_exports_its_features_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let csv = omniglot_subset_csv(dir.path(), 16);
    let extra = [
        "--epochs",
        "1",
        "--iterations",
        "1",
        "--finetune-epochs",
        "2",
        "--knn",
        "5",
        "--control",
        "false",
    ];
    let straight_dir = dir.path().join("straight");
    let straight = pss_finished(
        metron::systems::smooth_ap::pss::run(
            &PssCli::parse_from(argv("pss", &csv, &straight_dir, &extra)).args,
        )
        .unwrap(),
    );
    assert_eq!(straight.iterations.len(), 2);
    // 16 classes of 20: 8 seen with 10 labelled and 10 unlabelled each, 8 unseen.
    assert_eq!(straight.partition["labelled"], 80);
    assert_eq!(straight.partition["seen_classes"], 8);
    let (first, second) = (&straight.iterations[0], &straight.iterations[1]);
    assert!(first.pseudo.is_none() && first.trained_on == 80);
    let pseudo = second.pseudo.as_ref().unwrap();
    assert_eq!(second.trained_on, 80 + pseudo.selected);
    assert_eq!(
        pseudo.selected,
        pseudo.selected_seen + pseudo.selected_unseen
    );
    assert!(pseudo.selected > 0 && pseudo.selected < 240, "{pseudo:?}");
    for v in [
        pseudo.pseudo_precision,
        pseudo.pseudo_recall,
        pseudo.pseudo_nmi,
    ] {
        assert!((0.0..=1.0).contains(&v), "{pseudo:?}");
    }

    // The export is what the run clustered: every training image, labelled first with dense
    // labels, pseudo-labels past the 8 seen classes exactly where the mask says "selected",
    // and the reported quality recomputes from the files alone.
    let export = FeatureExport::read(&straight_dir.join("iter_0/features")).unwrap();
    assert_eq!(export.features.dim(), (320, 16));
    assert!(export.masks[..80].iter().all(|&m| m == 0));
    assert!(
        export.pred_labels[..80]
            .iter()
            .all(|&p| (0..8).contains(&p))
    );
    for i in 80..320 {
        match export.masks[i] {
            1 => assert!(export.pred_labels[i] >= 8),
            2 => assert_eq!(export.pred_labels[i], -1),
            m => panic!("mask {m} at unlabelled image {i}"),
        }
        assert_eq!(
            export.density[i] > export.thresholds.density,
            export.masks[i] == 1
        );
    }
    let picked: Vec<usize> = (80..320).filter(|&i| export.pred_labels[i] >= 0).collect();
    let truth: Vec<i64> = picked.iter().map(|&i| export.gt_labels[i]).collect();
    let pred: Vec<i64> = picked.iter().map(|&i| export.pred_labels[i]).collect();
    let p = metron_metrics::pairwise_scores(&truth, &pred).unwrap();
    assert_eq!(
        (picked.len(), p.precision, p.recall),
        (
            pseudo.selected,
            pseudo.pseudo_precision,
            pseudo.pseudo_recall
        )
    );
    // Each row is the L2-normalised embedding of its image.
    for row in export.features.rows() {
        let n: f32 = row.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-4, "{n}");
    }

    // Stopped inside iteration 1, resumed: the same report.
    let resumed_dir = dir.path().join("resumed");
    let mut stop = extra.to_vec();
    stop.extend(["--stop-after", "1"]);
    match metron::systems::smooth_ap::pss::run(
        &PssCli::parse_from(argv("pss", &csv, &resumed_dir, &stop)).args,
    )
    .unwrap()
    {
        PssOutcome::Stopped {
            iteration,
            epochs_done,
            ..
        } => {
            assert_eq!((iteration, epochs_done), (1, 1));
        }
        other => panic!("{other:?}"),
    }
    let resume =
        PssCli::parse_from(["pss", "--resume", resumed_dir.to_str().unwrap(), "--quiet"]).args;
    let resumed = pss_finished(metron::systems::smooth_ap::pss::run(&resume).unwrap());
    assert_eq!(straight.iterations, resumed.iterations);
    // --resume with a configuration flag is refused, naming it.
    let bad = PssCli::parse_from([
        "pss",
        "--resume",
        resumed_dir.to_str().unwrap(),
        "--knn",
        "3",
    ])
    .args;
    let err = metron::systems::smooth_ap::pss::run(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--knn"), "{err}");
}

/// The registry's `inaturalist-pss` entry reads PSS's three lists (and the test list) into the
/// loop's parts: classes named across the lists by `<supercategory>/<category_id>`, so an
/// unlabelled image of a seen class has the same true class as the labelled ones.
#[test]
fn the_pss_lists_of_the_registry_become_the_loops_three_parts() {
    let root = tempfile::tempdir().unwrap();
    let write = |rel: &str, lines: &[&str]| {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, lines.join("\n")).unwrap();
    };
    write(
        "pss_lists/lin_train_set1.txt",
        &[
            "train_val2018/Aves/12/a.jpg",
            "train_val2018/Aves/12/b.jpg",
            "train_val2018/Plantae/7/c.jpg",
        ],
    );
    write(
        "pss_lists/uin_train_set1.txt",
        &[
            "train_val2018/Plantae/7/d.jpg",
            "train_val2018/Aves/12/e.jpg",
        ],
    );
    write(
        "pss_lists/uout_train_set1.txt",
        &["train_val2018/Fungi/99/f.jpg"],
    );
    write(
        "Inat_dataset_splits/Inaturalist_test_set1.txt",
        &["train_val2018/Fungi/5/g.jpg"],
    );
    let registry = metron_datasets::Registry::load(&std::path::PathBuf::from(format!(
        "{}/datasets.toml",
        env!("CARGO_MANIFEST_DIR")
    )))
    .unwrap();
    let source = metron::systems::retrieval::DataSource::resolve(
        &registry,
        "inaturalist-pss",
        Some(root.path()),
        None,
    )
    .unwrap();
    let partition = metron::systems::smooth_ap::pss::Partition {
        seen_fraction: 0.5,
        labelled_fraction: 0.5,
        seed: 0,
    };
    let data = metron::systems::smooth_ap::pss::read_pss_data(&source, &registry, &partition, true)
        .unwrap();
    assert_eq!(
        (data.labelled, data.unlabelled_seen, data.images.len()),
        (3, 2, 6)
    );
    assert_eq!(data.seen_classes, 2);
    let names: Vec<String> = data
        .images
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    );
    // a, b, e are Aves/12; c, d Plantae/7; f an unseen class.
    let g = &data.gt_labels;
    assert!(g[0] == g[1] && g[1] == g[4] && g[2] == g[3] && g[0] != g[2]);
    assert!(g[5] != g[0] && g[5] != g[2]);
    assert_eq!(data.labelled_classes[0], data.labelled_classes[1]);
    assert_ne!(data.labelled_classes[0], data.labelled_classes[2]);
    assert_eq!(data.test.samples.len(), 1);
}
