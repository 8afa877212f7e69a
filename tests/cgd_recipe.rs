//! The CGD recipe end to end on the real Omniglot images (a tiny network and input so it runs
//! in seconds), then `metron embed` and `metron search` on its checkpoint.

mod common;
use common::metron;

use std::path::Path;

use clap::Parser;
use metron::systems::cgd::{CgdArgs, run};
use metron::systems::retrieval::{RetrievalOutcome as CgdOutcome, report_json};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: CgdArgs,
}

/// The real Omniglot images beside the checkout.
fn omniglot() -> metron_datasets::Dataset {
    metron_datasets::read_omniglot(&std::path::PathBuf::from(format!(
        "{}/../shared/data/omniglot",
        env!("CARGO_MANIFEST_DIR")
    )))
    .unwrap()
}

fn args(run_dir: &Path, extra: &[&str]) -> CgdArgs {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let mut argv = vec![
        "cgd".to_string(),
        "--registry".into(),
        format!("{manifest}/datasets.toml"),
        "--run-dir".into(),
        run_dir.display().to_string(),
        "--base-width".into(),
        "4".into(),
        "--image-size".into(),
        "16".into(),
        "--feature-dim".into(),
        "16".into(),
        "--epochs".into(),
        "1".into(),
        "--quiet".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).args
}

#[test]
fn cgd_trains_reports_and_its_checkpoint_serves_embed_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let report = match run(&args(&run_dir, &[])).unwrap() {
        CgdOutcome::Finished(r) => r,
        other => panic!("expected a finished run, got {other:?}"),
    };
    let json = report_json(&report);
    for part in ["trained", "untrained", "pixels"] {
        for k in [1, 2, 4, 8] {
            let v = json[part][format!("recall_at_{k}")].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{part} R@{k} = {v}");
        }
        // Recall@K never decreases with K.
        let r: Vec<f64> = [1, 2, 4, 8]
            .iter()
            .map(|k| json[part][format!("recall_at_{k}")].as_f64().unwrap())
            .collect();
        assert!(r.windows(2).all(|w| w[0] <= w[1]), "{part}: {r:?}");
    }
    assert_eq!(json["setup"]["embedding_dim"], 16);
    assert_eq!(json["setup"]["image_size"], 16);
    for f in [
        "config.json",
        "metrics.jsonl",
        "report.json",
        "embeddings.npy",
        "labels.npy",
        "curves.png",
        "retrieval_grid.png",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let e = metron_core::read_embeddings(run_dir.join("embeddings.npy")).unwrap();
    assert_eq!((e.nrows(), e.ncols()), (2420, 16));

    // A second fresh run into the same directory is refused; --resume of a finished run
    // trains nothing and reports the same numbers.
    assert!(run(&args(&run_dir, &[])).is_err());
    let resumed = Cli::parse_from([
        "cgd",
        "--registry",
        &format!("{}/datasets.toml", env!("CARGO_MANIFEST_DIR")),
        "--resume",
        run_dir.to_str().unwrap(),
        "--quiet",
    ])
    .args;
    match run(&resumed).unwrap() {
        CgdOutcome::Finished(r) => assert_eq!(r.trained, report.trained),
        other => panic!("{other:?}"),
    }

    // metron embed: the checkpoint reproduces the run's own test embeddings.
    let ckpt = run_dir.join("checkpoints/last.ckpt");
    let out_dir = dir.path().join("emb");
    let embed = || {
        metron(&[
            "embed",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--dataset",
            "omniglot",
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ])
    };
    let o = embed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = metron_core::read_embeddings(out_dir.join("embeddings.npy")).unwrap();
    let (a, b) = (e.to_f32(), again.to_f32());
    let max_diff = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff < 1e-5,
        "embed differs from the run's embeddings by {max_diff}"
    );
    let paths = std::fs::read_to_string(out_dir.join("paths.txt")).unwrap();
    assert_eq!(paths.lines().count(), 2420);

    // metron search: a gallery image as query finds results other than itself, and a grid.
    let query = paths.lines().next().unwrap();
    let grid = dir.path().join("grid.png");
    let search = |query: &str, extra: &[&str]| {
        let mut argv = vec![
            "search",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--gallery",
            out_dir.to_str().unwrap(),
            "--query",
            query,
            "--k",
            "3",
            "--grid",
            grid.to_str().unwrap(),
            "--json",
            "--quiet",
        ];
        argv.extend_from_slice(extra);
        metron(&argv)
    };
    let o = search(query, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = v[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["path"] != query));
    let sims: Vec<f64> = results
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");
    assert!(image::open(&grid).is_ok());
    // A gallery image's class is known: every result is judged.
    assert!(results.iter().all(|r| r["hit"].is_boolean()));

    // An existing --grid or embed set is not replaced without --force.
    let o = search(query, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    let o = embed();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));

    // A query from outside the gallery (a training character): its class is unknown, so its
    // results are not judged (grey frames), unless --query-label gives it.
    let data = omniglot();
    let outside = data.split("train").unwrap().samples[0].path.clone();
    let outside = outside.to_str().unwrap();
    let o = search(outside, &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v[0]["query_label"].is_null());
    assert!(
        v[0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["hit"].is_null())
    );
    let o = search(outside, &["--force", "--query-label", "7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for r in v[0]["results"].as_array().unwrap() {
        assert_eq!(r["hit"], serde_json::json!(r["label"] == 7), "{r}");
    }
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = metron(&[
        "search",
        "--checkpoint",
        dir.path().join("none.ckpt").to_str().unwrap(),
        "--gallery",
        dir.path().to_str().unwrap(),
        "--query",
        "x.png",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("embeddings.npy"), "{err}");

    let bad = args(&dir.path().join("r"), &["--gd-config", "SX"]);
    let e = run(&bad).unwrap_err().to_string();
    assert!(e.contains("SX") || e.contains("'X'"), "{e}");
    let bad = args(&dir.path().join("r2"), &["--dataset", "nope"]);
    assert!(run(&bad).unwrap_err().to_string().contains("nope"));
}

/// A miniature In-shop (the real list format, generated images): the recipe evaluates query ->
/// gallery and the grid draws gallery images.
#[test]
fn inshop_is_evaluated_query_to_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("InShop");
    let mut lines = Vec::new();
    for item in 0..6u32 {
        let folder = format!("img/ITEM_{item:02}");
        std::fs::create_dir_all(root.join("Img").join(&folder)).unwrap();
        for (i, status) in ["train", "train", "query", "gallery", "gallery"]
            .iter()
            .enumerate()
        {
            let status = if item < 3 { "train" } else { status };
            let name = format!("{folder}/{i}.png");
            image::RgbImage::from_fn(20, 20, |x, y| {
                let on = (x + y * 3 + item * 7) % 6 < 3;
                let v = if on { 200 } else { (i as u8) * 9 };
                image::Rgb([v, (item * 40) as u8, v / 2])
            })
            .save(root.join("Img").join(&name))
            .unwrap();
            lines.push(format!("{name} id_{item:02} {status}"));
        }
    }
    std::fs::create_dir_all(root.join("Eval")).unwrap();
    std::fs::write(
        root.join("Eval/list_eval_partition.txt"),
        format!(
            "{}\nimage_name item_id evaluation_status\n{}\n",
            lines.len(),
            lines.join("\n")
        ),
    )
    .unwrap();
    let registry = dir.path().join("datasets.toml");
    std::fs::write(
        &registry,
        format!(
            "[inshop]\nreader = \"inshop\"\nroot = \"{}\"\nenv = \"METRON_TEST_INSHOP\"\n\
             splits.train = {{ images = 21, classes = 6 }}\n\
             splits.query = {{ images = 3, classes = 3 }}\n\
             splits.gallery = {{ images = 6, classes = 3 }}\n",
            root.display()
        ),
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let argv = [
        "cgd",
        "--registry",
        registry.to_str().unwrap(),
        "--dataset",
        "inshop",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--base-width",
        "4",
        "--image-size",
        "16",
        "--feature-dim",
        "8",
        "--batch-size",
        "8",
        "--samples-per-class",
        "2",
        "--epochs",
        "1",
        "--recalls",
        "1,2,6",
        "--quiet",
    ];
    let report = match run(&Cli::parse_from(argv).args).unwrap() {
        CgdOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    // 3 queries, each with 2 same-item gallery images among 6: R@2 of the pixels and of the
    // networks is a fraction of 3 queries.
    for part in [&report.trained, &report.untrained, &report.pixels] {
        let r1 = part["recall_at_1"];
        assert!((r1 * 3.0 - (r1 * 3.0).round()).abs() < 1e-9, "{r1}");
    }
    // Each query's item has 2 of the 6 gallery images, so R@6 is 1 for any embedding; searched
    // among the 3 queries instead (self-retrieval), no query would have a positive at all.
    for part in [&report.trained, &report.untrained, &report.pixels] {
        assert_eq!(part["recall_at_6"], 1.0, "{part:?}");
    }
    // The saved embeddings are the 3 queries.
    let e = metron_core::read_embeddings(dir.path().join("run/embeddings.npy")).unwrap();
    assert_eq!((e.nrows(), e.ncols()), (3, 8));
    assert!(dir.path().join("run/retrieval_grid.png").is_file());
}

/// A torchvision-layout ResNet-18 (base width 4, with a 10-class `fc`) as safetensors, keys
/// optionally prefixed (`module.` from DataParallel) or renamed.
fn write_torchvision_resnet18(path: &Path, seed: u64, remaps: &[(&str, &str)]) {
    use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, SafetensorsStore};
    let device = metron_core::parse_device("cpu").unwrap();
    let model = metron_core::seeded_init(&device, seed, || {
        metron_backbones::ResNetConfig::resnet18()
            .with_base_width(4)
            .with_num_classes(Some(10))
            .init(&device)
    })
    .unwrap();
    let mut remapper = KeyRemapper::new()
        .add_pattern(r"downsample\.conv\.", "downsample.0.")
        .unwrap()
        .add_pattern(r"downsample\.bn\.", "downsample.1.")
        .unwrap();
    for (from, to) in remaps {
        remapper = remapper.add_pattern(*from, *to).unwrap();
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper);
    model.save_into(&mut store).unwrap();
}

fn untrained_metrics(run_dir: &Path) -> serde_json::Value {
    let log = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["epoch"], 0);
    first["test"].clone()
}

#[test]
fn pretrained_weights_load_strictly_and_are_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("resnet18.safetensors");
    write_torchvision_resnet18(&good, 11, &[]);

    // Keys of another layout (here the stem renamed, as timm names it) are an error naming
    // the first missing key, and leave no run directory behind.
    let timm = dir.path().join("timm.safetensors");
    write_torchvision_resnet18(&timm, 11, &[(r"^conv1\.", "stem.conv1.")]);
    let failed = dir.path().join("failed");
    let e = run(&args(&failed, &["--pretrained", timm.to_str().unwrap()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv1.weight"), "{e}");
    assert!(!failed.exists(), "a failed start left {}", failed.display());

    // DataParallel's `module.` prefix is adapted: the same weights as the plain file.
    let prefixed = dir.path().join("module.safetensors");
    write_torchvision_resnet18(&prefixed, 11, &[("^", "module.")]);
    let stop = |run_dir: &Path, file: &Path| {
        let a = args(
            run_dir,
            &["--pretrained", file.to_str().unwrap(), "--stop-after", "0"],
        );
        match run(&a).unwrap() {
            CgdOutcome::Stopped { epochs_done, .. } => assert_eq!(epochs_done, 0),
            other => panic!("{other:?}"),
        }
        untrained_metrics(run_dir)
    };
    let plain_dir = dir.path().join("plain");
    let plain = stop(&plain_dir, &good);
    assert_eq!(stop(&dir.path().join("prefixed"), &prefixed), plain);
    // Random init (no --pretrained) is another network: the comparisons above are not vacuous.
    let random_dir = dir.path().join("random");
    match run(&args(&random_dir, &["--stop-after", "0"])).unwrap() {
        CgdOutcome::Stopped { .. } => {}
        other => panic!("{other:?}"),
    }
    assert_ne!(untrained_metrics(&random_dir), plain);

    // Resuming a run stopped before its first checkpoint starts it from the pretrained
    // weights its config names, not from random ones.
    let registry = format!("{}/datasets.toml", env!("CARGO_MANIFEST_DIR"));
    let resume = |extra: &[&str]| {
        let mut argv = vec![
            "cgd",
            "--registry",
            &registry,
            "--resume",
            plain_dir.to_str().unwrap(),
            "--quiet",
        ];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    };
    assert!(!plain_dir.join("checkpoints/last.ckpt").exists());
    match run(&resume(&["--stop-after", "0"])).unwrap() {
        CgdOutcome::Stopped { .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(untrained_metrics(&plain_dir), plain);

    // Flags that contradict the stored configuration are refused, not ignored.
    let e = run(&resume(&["--epochs", "5", "--lr", "0.1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--epochs") && e.contains("--lr"), "{e}");
}

#[test]
fn a_run_directory_of_the_users_own_is_not_written_into() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "my notes").unwrap();
    let e = run(&args(&mine, &[])).unwrap_err().to_string();
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "my notes"
    );
}

/// The main job learns: on a small Omniglot subset given as a CSV of one's own (24 training
/// characters, 24 held-out test characters, 20 drawings each), eight short epochs (120 steps)
/// raise Recall@1 on the held-out characters far above the same network untrained.
#[test]
fn training_raises_recall_on_held_out_characters() {
    let dir = tempfile::tempdir().unwrap();
    let omniglot = omniglot();
    let mut csv = String::from("path,label,split\n");
    for split in ["train", "test"] {
        let s = omniglot.split(split).unwrap();
        for sample in s.samples.iter().filter(|x| x.label < 24) {
            csv.push_str(&format!(
                "{},{split}-{},{split}\n",
                sample.path.display(),
                s.classes[sample.label]
            ));
        }
    }
    let csv_path = dir.path().join("subset.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let run_dir = dir.path().join("run");
    let argv = [
        "cgd",
        "--csv",
        csv_path.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--base-width",
        "8",
        "--image-size",
        "24",
        "--feature-dim",
        "32",
        "--batch-size",
        "32",
        "--lr",
        "0.002",
        "--epochs",
        "8",
        "--recalls",
        "1",
        "--quiet",
    ];
    let report = match run(&Cli::parse_from(argv).args).unwrap() {
        CgdOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    let (trained, untrained) = (
        report.trained["recall_at_1"],
        report.untrained["recall_at_1"],
    );
    eprintln!(
        "R@1 trained {trained:.3}, untrained {untrained:.3}, pixels {:.3}",
        report.pixels["recall_at_1"]
    );
    // Measured: 0.331 against 0.169 (deterministic for the seed on the CPU backend).
    assert!(
        trained > untrained + 0.10 && trained > 1.5 * untrained,
        "training did not help: R@1 {trained:.3} trained vs {untrained:.3} untrained"
    );
    // `metron embed` takes the same CSV: the 480 held-out drawings.
    let out = dir.path().join("emb");
    let o = metron(&[
        "embed",
        "--checkpoint",
        run_dir.join("checkpoints/best.ckpt").to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
        "--split",
        "test",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = metron_core::read_embeddings(out.join("embeddings.npy")).unwrap();
    assert_eq!((e.nrows(), e.ncols()), (480, 32));
}
