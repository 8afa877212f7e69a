//! AntiMetric end to end on real Omniglot drawings (a subset as a CSV, a tiny network): an
//! interrupted and resumed run equals an uninterrupted one, the meta-class codes survive in
//! the checkpoint, `metron embed` loads the checkpoint by its kind, and the averaged-cosine
//! evaluation equals `metron eval --metric ip` on the exported embeddings. Also the published
//! parameter counts, computed without allocating the 48 learners.

mod common;
#[path = "common/omniglot_subset.rs"]
mod omniglot_subset;
use omniglot_subset::omniglot_subset_csv;

use common::metron;

use std::path::Path;

use clap::Parser;
use metron::systems::antimetric::{
    AntiMetricArgs, AntiMetricModelConfig, AntiMetricOutcome, AntiMetricRunConfig, ParameterCount,
    run,
};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: AntiMetricArgs,
}

fn args(csv: &Path, run_dir: &Path, extra: &[&str]) -> AntiMetricArgs {
    let mut argv: Vec<String> = [
        "antimetric",
        "--csv",
        csv.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--base-width",
        "4",
        "--ensemble-size",
        "3",
        "--meta-classes",
        "6",
        "--image-size",
        "16",
        "--batch-size",
        "32",
        "--epochs",
        "2",
        "--with-random",
        "true",
        "--single-learner",
        "false",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).args
}

fn finished(outcome: AntiMetricOutcome) -> metron::systems::antimetric::AntiMetricReport {
    match outcome {
        AntiMetricOutcome::Finished(r) => *r,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn a_resumed_ensemble_equals_an_uninterrupted_one_and_its_checkpoint_serves_embed_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let csv = omniglot_subset_csv(dir.path(), 16);
    let straight_dir = dir.path().join("straight");
    let straight = finished(run(&args(&csv, &straight_dir, &[])).unwrap());

    let resumed_dir = dir.path().join("resumed");
    match run(&args(&csv, &resumed_dir, &["--stop-after", "1"])).unwrap() {
        AntiMetricOutcome::Stopped { epochs_done, .. } => assert_eq!(epochs_done, 1),
        other => panic!("{other:?}"),
    }
    let resume = Cli::parse_from([
        "antimetric",
        "--resume",
        resumed_dir.to_str().unwrap(),
        "--quiet",
    ])
    .args;
    let resumed = finished(run(&resume).unwrap());
    assert_eq!(straight.ensemble.trained, resumed.ensemble.trained);
    assert_eq!(straight.ensemble.untrained, resumed.ensemble.untrained);
    assert!(straight.ensemble.trained["recall_at_1"] > 0.0);

    // The codes the run drew are in config.json and in the checkpoint, identical.
    let config: AntiMetricRunConfig =
        serde_json::from_str(&std::fs::read_to_string(straight_dir.join("config.json")).unwrap())
            .unwrap();
    let ck = metron_train::read_checkpoint(&straight_dir.join("checkpoints/last.ckpt")).unwrap();
    let state: metron_train::TrainState = ck
        .state(&straight_dir.join("checkpoints/last.ckpt"))
        .unwrap();
    assert_eq!(state.architecture["kind"], "antimetric");
    let stored: AntiMetricModelConfig =
        serde_json::from_value(state.architecture["config"].clone()).unwrap();
    assert_eq!(stored.codes, config.model.codes);
    assert_eq!(stored.codes.len(), 16);

    // metron embed rebuilds the ensemble from the checkpoint by its kind and reproduces the
    // run's own test embeddings (3 learners x 32-d unit blocks: ResNet-18 at base width 4).
    let out = dir.path().join("emb");
    let o = metron(&[
        "embed",
        "--checkpoint",
        straight_dir.join("checkpoints/last.ckpt").to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_embeddings = metron_core::read_embeddings(straight_dir.join("embeddings.npy"))
        .unwrap()
        .to_f32();
    let embedded = metron_core::read_embeddings(out.join("embeddings.npy"))
        .unwrap()
        .to_f32();
    assert_eq!(run_embeddings.ncols(), 3 * 32);
    let diff = run_embeddings
        .iter()
        .zip(embedded.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "embed differs from the run by {diff}");

    // The branch-averaged cosine is the inner product of the exported embeddings: metron eval
    // --metric ip on them gives the run's own Recall@K.
    let o = metron(&[
        "eval",
        "--embeddings",
        straight_dir.join("embeddings.npy").to_str().unwrap(),
        "--labels",
        straight_dir.join("labels.npy").to_str().unwrap(),
        "--metric",
        "ip",
        "--no-clustering",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [1, 2, 4, 8] {
        let key = format!("recall_at_{k}");
        assert_eq!(
            eval[&key].as_f64().unwrap(),
            straight.ensemble.trained[&key],
            "{key}"
        );
    }
}

/// The seed README's model sizes (spec s. 5.5), `with_fc` on, layer1 shared, 48 learners:
/// trunk + 48 x (learner + Linear(D -> M)), every row of the table.
#[test]
fn parameter_counts_equal_the_published_ones() {
    let device = metron::core::parse_device("cpu").unwrap();
    let rows: [(&str, usize, [usize; 3]); 4] = [
        ("resnet18", 512, [529_365_376, 541_677_376, 533_797_696]),
        (
            "resnet34",
            512,
            [1_011_079_808, 1_023_391_808, 1_015_512_128],
        ),
        (
            "resnet50",
            2048,
            [1_118_974_592, 1_168_150_592, 1_136_677_952],
        ),
        (
            "resnext50_32x4d",
            2048,
            [1_094_093_696, 1_143_269_696, 1_111_797_056],
        ),
    ];
    for (backbone, width, counts) in rows {
        // One network per backbone; the classifier of M meta-classes is Linear(width -> M).
        let config = AntiMetricModelConfig {
            with_fc: true,
            ..AntiMetricModelConfig::new(backbone, 48, 12, 98, 0).unwrap()
        };
        let count = config.parameter_count(&device).unwrap();
        assert_eq!(count.learners, 48);
        assert_eq!(count.classifier, (width + 1) * 12);
        for (meta_classes, want) in [12, 512, 192].into_iter().zip(counts) {
            let total = ParameterCount {
                classifier: (width + 1) * meta_classes,
                ..count
            }
            .total();
            assert_eq!(total, want, "{backbone}, M = {meta_classes}");
        }
        // ResNet-18 by hand (spec s. 5.1): 157,504 shared + 48 x 11,019,008 + 48 x 513 M.
        if backbone == "resnet18" {
            assert_eq!((count.trunk, count.learner), (157_504, 11_019_008));
        }
    }
}
