//! WGOL's paper recipes: `--preset paper --dataset cub|ilsvrc` resolve to the original scripts'
//! settings (spec s. 2.5-2.6); the original's checkpoint layouts load with strict key checks;
//! tiny CUB- and ILSVRC-shaped photograph sets train end to end (the CUB decay rule cuts the
//! run, ILSVRC's lr 0 leaves the backbone and cls head as loaded).

use std::path::{Path, PathBuf};

mod common;

use burn::module::Module;
use clap::Parser;
use image::{Rgb, RgbImage};
use serde_json::Value;

use metron::systems::wgol::{
    Preset, WgolArgs, WgolInit, WgolOutcome, WgolRunConfig, load_imagenet_vgg16,
    load_original_checkpoint, run,
};
use metron_localization::{WgolMode, WgolNet, WgolNetConfig};
use metron_train::{LrSchedule, OptimizerSetting};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: WgolArgs,
}

fn oracle(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracles")
        .join(name)
}

fn sums() -> Value {
    serde_json::from_str(&std::fs::read_to_string(oracle("wgol_checkpoints.json")).unwrap())
        .unwrap()
}

fn resolve(extra: &[&str]) -> Result<WgolRunConfig, String> {
    let mut argv = vec!["wgol"];
    argv.extend(extra);
    WgolRunConfig::resolve(&Cli::parse_from(argv).args, PathBuf::from("/data"))
        .map_err(|e| e.to_string())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn the_cub_paper_preset_is_train_sst_cub_sh() {
    let c = resolve(&[
        "--preset",
        "paper",
        "--dataset",
        "cub",
        "--pretrained",
        "vgg16.pth",
    ])
    .unwrap();
    assert_eq!(c.preset, Preset::Paper);
    assert_eq!(c.dataset, "cub");
    assert_eq!(c.init, WgolInit::Imagenet("vgg16.pth".into()));
    assert_eq!(c.modes, ["sos+sa_v3"]);
    let m = &c.model;
    assert_eq!(
        (m.classes, m.width_divisor, m.batch_norm, m.sa_heads),
        (200, 1, false, 8)
    );
    assert_eq!((m.sos_start, m.sa_start, m.ram_start), (0, 20, Some(20)));
    assert!(close(m.ra_weight, 1.0) && close(m.sos_weight, 0.5));
    assert!(close(m.ra_background, 0.1) && close(m.ra_gap, 0.2));
    assert!(close(m.sos_fg, 0.2) && close(m.sos_bg, 0.1) && m.sos_segmentation == "tc");
    assert!(close(m.fo_threshold, 0.2) && close(m.so_threshold, 1.0) && m.order == 2);
    let t = &c.trainer;
    assert_eq!(
        (t.epochs, c.batch_size, t.seed, t.eval_every),
        (150, 64, 0, 10)
    );
    assert_eq!(
        t.optimizer,
        OptimizerSetting::Sgd {
            momentum: 0.9,
            weight_decay: 5e-4,
            dampening: 0.0,
            nesterov: true
        }
    );
    assert!(close(t.lr, 1e-3) && close(c.backbone_lr(), 1e-3));
    assert!(close(c.sos_lr, 5e-5) && close(c.sa_lr, 5e-3) && close(c.cls_lr_multiplier, 10.0));
    // Parameter groups: backbone biases 2 lr, cls 10 lr / 20 lr, SOS and SA their own.
    let rates: Vec<(String, f64)> = t
        .param_groups
        .iter()
        .map(|g| (g.params.clone(), t.lr * g.lr_multiplier))
        .collect();
    let want = [
        ("net.backbone.**.bias", 2e-3),
        ("net.cls.**.weight", 1e-2),
        ("net.cls.**.bias", 2e-2),
        ("net.sos.**.weight", 5e-5),
        ("net.sos.**.bias", 1e-4),
        ("net.sa.**.weight", 5e-3),
        ("net.sa.**.bias", 1e-2),
    ];
    assert_eq!(rates.len(), want.len());
    for ((p, r), (wp, wr)) in rates.iter().zip(want) {
        assert!(p == wp && (r - wr).abs() < 1e-12, "{p} {r} vs {wp} {wr}");
    }
    // No milestones and no warmup; the RA rule: >= 0.35 from epoch 65, x0.1, 20 more.
    assert_eq!(
        t.schedule,
        LrSchedule::MultiStep {
            milestones: vec![],
            gamma: 0.1
        }
    );
    assert!(t.group_warmup.is_empty());
    let d = t.decay_on_loss.as_ref().unwrap();
    assert_eq!(
        (d.part.as_str(), d.min_epoch, d.extra_epochs),
        ("ra", 65, 20)
    );
    assert!(close(d.threshold, 0.35) && close(d.gamma, 0.1));
    // Resize 256, crops 224, localisation at 224, TenCrop; thresholds 0.10-0.50 on test.
    let s = c.images.unwrap();
    assert_eq!((s.resize, s.crop, s.loc, s.ten_crop), (256, 224, 224, true));
    let th: Vec<f32> = (2..=10).map(|i| 0.05 * i as f32).collect();
    assert_eq!(c.thresholds, th);
    assert!(c.thresholds_on_test);
    assert_eq!(c.finetune_epochs, None);
}

#[test]
fn the_ilsvrc_paper_preset_is_train_sst_ilsvrc_sh() {
    let c = resolve(&[
        "--preset",
        "paper",
        "--dataset",
        "ilsvrc",
        "--finetune-from",
        "spa.pth.tar",
    ])
    .unwrap();
    assert_eq!(c.init, WgolInit::Finetune("spa.pth.tar".into()));
    let m = &c.model;
    assert_eq!(
        (m.classes, m.sos_start, m.sa_start, m.ram_start),
        (1000, 0, 3, Some(3))
    );
    assert!(close(m.ra_weight, 0.5));
    let t = &c.trainer;
    assert_eq!((t.epochs, c.batch_size, t.eval_every), (15, 64, 4));
    // lr 0: the backbone and the cls head are frozen; SOS 5e-5, SA 1e-3 (biases 2x).
    assert_eq!(c.backbone_lr(), 0.0);
    let groups: Vec<(String, bool, f64)> = t
        .param_groups
        .iter()
        .map(|g| (g.params.clone(), g.frozen, t.lr * g.lr_multiplier))
        .collect();
    assert_eq!(groups[0].0, "net.backbone.**");
    assert!(groups[0].1 && groups[1].1 && groups[1].0 == "net.cls.**");
    for ((p, frozen, r), (wp, wr)) in groups[2..].iter().zip([
        ("net.sos.**.weight", 5e-5),
        ("net.sos.**.bias", 1e-4),
        ("net.sa.**.weight", 1e-3),
        ("net.sa.**.bias", 2e-3),
    ]) {
        assert!(p == wp && !frozen && (r - wr).abs() < 1e-15, "{p} {r}");
    }
    assert_eq!(
        t.schedule,
        LrSchedule::MultiStep {
            milestones: vec![12, 14],
            gamma: 0.1
        }
    );
    assert!(t.decay_on_loss.is_none());
    // Warmup periods 2, 2, 2 at epochs 0, 3, 6 for [sos], [sa], [all].
    let w: Vec<(usize, usize, Vec<String>)> = t
        .group_warmup
        .iter()
        .map(|s| (s.start, s.period, s.groups.clone()))
        .collect();
    assert_eq!(
        w,
        [
            (
                0,
                2,
                vec!["net.sos.**.weight".into(), "net.sos.**.bias".into()]
            ),
            (
                3,
                2,
                vec!["net.sa.**.weight".into(), "net.sa.**.bias".into()]
            ),
            (6, 2, vec!["*".into()]),
        ]
    );
}

#[test]
fn paper_presets_refuse_what_they_cannot_do() {
    let err = resolve(&["--preset", "paper", "--dataset", "cub"]).unwrap_err();
    assert!(err.contains("--pretrained"), "{err}");
    let err = resolve(&["--preset", "paper", "--dataset", "ilsvrc"]).unwrap_err();
    assert!(err.contains("--finetune-from"), "{err}");
    let err = resolve(&["--preset", "paper"]).unwrap_err();
    assert!(err.contains("--dataset"), "{err}");
    let err = resolve(&["--dataset", "cub", "--preset", "cpu"]).unwrap_err();
    assert!(err.contains("paper"), "{err}");
    let err = resolve(&[
        "--dataset",
        "cub",
        "--pretrained",
        "a",
        "--thresholds-on",
        "validation",
    ])
    .unwrap_err();
    assert!(err.contains("validation"), "{err}");
}

fn tiny_net(mode: WgolMode, width_divisor: usize) -> WgolNet {
    let device = metron_core::parse_device("cpu").unwrap();
    let mut config = WgolNetConfig::new(3, mode);
    config.width_divisor = width_divisor;
    config.sa_heads = 1;
    metron_core::seeded_init(&device, 4, || Ok::<_, ()>(config.init(&device))).unwrap()
}

fn param_sum<M: Module>(m: &M, path: &str) -> f64 {
    let mut found = None;
    for (id, p) in metron_train::param_paths(m) {
        if p == path {
            found = Some(id);
        }
    }
    let id = found.unwrap_or_else(|| panic!("no parameter {path}"));
    let mut sum = None;
    struct Sum<'a>(burn::module::ParamId, &'a mut Option<f64>);
    impl burn::module::ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            if p.id == self.0 {
                *self.1 = Some(p.val().sum().into_scalar::<f64>());
            }
        }
    }
    m.visit(&mut Sum(id, &mut sum));
    sum.unwrap()
}

/// torchvision's `features` index of each of the 13 convolutions (spec s. 2.1), and its
/// place in the original's stage Sequentials (cut at 10, 17, 24).
fn stage_key(k: usize) -> (usize, String) {
    let i = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28][k];
    let (stage, start) = match i {
        0..10 => ("conv1_2", 0),
        10..17 => ("conv3", 10),
        17..24 => ("conv4", 17),
        _ => ("conv5", 24),
    };
    (i, format!("{stage}.{}", i - start))
}

fn assert_sum(net_sum: f64, file_sum: &Value, what: &str) {
    let want = file_sum
        .as_f64()
        .unwrap_or_else(|| panic!("{what} not in the file"));
    assert!(
        (net_sum - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{what}: {net_sum} vs {want}"
    );
}

#[test]
fn original_checkpoints_load_with_strict_key_checks() {
    let sums = sums();
    // The SPA classifier (state_dict, module. prefix) into a sos+sa_v3 network: backbone and
    // cls from the file, SOS and SA fresh.
    let (net, fresh) = load_original_checkpoint(
        tiny_net(WgolMode::SosSaV3, 16),
        &oracle("wgol_spa_tiny.pth.tar"),
    )
    .unwrap();
    assert_eq!(fresh, ["sos", "sa"]);
    for k in 0..13 {
        let (_, key) = stage_key(k);
        for p in ["weight", "bias"] {
            assert_sum(
                param_sum(&net, &format!("backbone.convs.{k}.{p}")),
                &sums["spa"][format!("module.{key}.{p}")],
                &key,
            );
        }
    }
    for (i, conv) in [(0, "conv1"), (2, "conv2"), (4, "conv3")] {
        assert_sum(
            param_sum(&net, &format!("cls.{conv}.weight")),
            &sums["spa"][format!("module.cls.{i}.weight")],
            conv,
        );
    }
    // torchvision's ImageNet layout into the backbone; its classifier is dropped.
    let net =
        load_imagenet_vgg16(tiny_net(WgolMode::Spa, 16), &oracle("wgol_vgg16_tiny.pth")).unwrap();
    for k in 0..13 {
        let (i, _) = stage_key(k);
        assert_sum(
            param_sum(&net, &format!("backbone.convs.{k}.weight")),
            &sums["vgg16"][format!("features.{i}.weight")],
            &format!("features.{i}"),
        );
    }
    // Strictness: a torchvision file is not a WGOL checkpoint (its keys go unused), and a
    // network of another width is a shape mismatch naming the tensor.
    let err = load_original_checkpoint(tiny_net(WgolMode::Spa, 16), &oracle("wgol_vgg16_tiny.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("features.") || err.contains("backbone."),
        "{err}"
    );
    let err = load_imagenet_vgg16(tiny_net(WgolMode::Spa, 8), &oracle("wgol_vgg16_tiny.pth"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape") && err.contains("convs.0"), "{err}");
}

/// Class c is a bright rectangle at a class-specific place on a noisy ground; returns its box.
fn photo(path: &Path, c: usize, i: usize) -> [u32; 4] {
    let (w, h) = (48 + 4 * (i as u32 % 3), 40);
    let (x1, y1) = (4 + 12 * c as u32, 6 + (i as u32 % 4) * 3);
    let (x2, y2) = (x1 + 15, y1 + 17);
    RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 37 + y * 11 + i as u32 * 7) % 40) as u8;
        if (x1..=x2).contains(&x) && (y1..=y2).contains(&y) {
            Rgb([200 + n, 60 * c as u8, 40])
        } else {
            Rgb([n, n + 20, n])
        }
    })
    .save(path)
    .unwrap();
    [x1, y1, x2, y2]
}

/// A CUB-shaped set (`images/`, `list/train.txt`, `test.txt`, `test_boxes.txt`).
fn tiny_cub(root: &Path) {
    std::fs::create_dir_all(root.join("list")).unwrap();
    let (mut train, mut test, mut boxes) = (String::new(), String::new(), String::new());
    for c in 0..3 {
        std::fs::create_dir_all(root.join(format!("images/{c:03}"))).unwrap();
        for i in 0..6 {
            let name = format!("{c:03}/train_{i}.jpg");
            photo(&root.join("images").join(&name), c, i);
            train += &format!("{name} {c}\n");
        }
        for i in 0..2 {
            let name = format!("{c:03}/test_{i}.jpg");
            let [x1, y1, x2, y2] = photo(&root.join("images").join(&name), c, i + 10);
            test += &format!("{name} {c}\n");
            boxes += &format!("{name} {c} {x1} {y1} {} {}\n", x2 - x1 + 1, y2 - y1 + 1);
        }
    }
    std::fs::write(root.join("list/train.txt"), train).unwrap();
    std::fs::write(root.join("list/test.txt"), test).unwrap();
    std::fs::write(root.join("list/test_boxes.txt"), boxes).unwrap();
}

/// An ILSVRC-shaped set (`img_train/`, `img_val/`, `list/train_list.txt`, `val_list.txt`,
/// `val_bboxes.txt` keyed by the XML name).
fn tiny_ilsvrc(root: &Path) {
    std::fs::create_dir_all(root.join("list")).unwrap();
    std::fs::create_dir_all(root.join("img_val")).unwrap();
    let (mut train, mut val, mut boxes) = (String::new(), String::new(), String::new());
    let mut v = 0;
    for c in 0..3 {
        std::fs::create_dir_all(root.join(format!("img_train/n{c:08}"))).unwrap();
        for i in 0..4 {
            let name = format!("n{c:08}/n{c:08}_{i}.JPEG");
            photo(&root.join("img_train").join(&name), c, i);
            train += &format!("{name} {c}\n");
        }
        for i in 0..2 {
            v += 1;
            let name = format!("ILSVRC2012_val_{v:08}");
            let [x1, y1, x2, y2] = photo(&root.join(format!("img_val/{name}.JPEG")), c, i + 10);
            val += &format!("{name}.JPEG {c}\n");
            boxes += &format!("{name}.xml {x1} {y1} {x2} {y2} 0 0 3 3\n");
        }
    }
    std::fs::write(root.join("list/train_list.txt"), train).unwrap();
    std::fs::write(root.join("list/val_list.txt"), val).unwrap();
    std::fs::write(root.join("list/val_bboxes.txt"), boxes).unwrap();
}

fn tiny_paper_args(dataset: &str, root: &Path, run_dir: &Path, extra: &[&str]) -> WgolArgs {
    let mut argv = vec![
        "wgol",
        "--preset",
        "paper",
        "--dataset",
        dataset,
        "--root",
        root.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--quiet",
        "--classes",
        "3",
        "--width-divisor",
        "16",
        "--sa-heads",
        "1",
        "--batch-size",
        "6",
        "--resize",
        "40",
        "--crop",
        "32",
        "--loc-size",
        "32",
    ];
    argv.extend(extra);
    Cli::parse_from(argv).args
}

fn metric_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_tiny_cub_run_trains_from_imagenet_weights_and_its_ra_rule_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cub");
    tiny_cub(&root);
    let vgg = oracle("wgol_vgg16_tiny.pth");
    let run_dir = dir.path().join("run");
    let args = tiny_paper_args(
        "cub",
        &root,
        &run_dir,
        &[
            "--pretrained",
            vgg.to_str().unwrap(),
            "--epochs",
            "4",
            "--eval-every",
            "1",
            "--sa-start",
            "1",
            "--ram-start",
            "0",
            "--ra-decay-threshold",
            "0",
            "--ra-decay-from",
            "1",
            "--ra-decay-extra",
            "1",
        ],
    );
    let report = match run(&args).unwrap() {
        WgolOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    // The RA loss (>= 0) triggers after epoch 1: epoch 2 at a tenth of the rate, then stop.
    let lines = metric_lines(&run_dir.join("sos_sa_v3"));
    let epochs: Vec<u64> = lines.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [0, 1, 2]);
    let lr = |i: usize| lines[i]["lr"].as_f64().unwrap();
    assert!((lr(2) - 0.1 * lr(1)).abs() < 1e-12, "{} {}", lr(1), lr(2));
    for row in [
        "cam",
        "spa",
        "sos_sa_v3",
        "whole_canvas",
        "centred_box",
        "untrained",
    ] {
        let v = report.rows[row].gt_known_loc;
        assert!((0.0..=1.0).contains(&v), "{row}");
    }
    assert_eq!(report.setup["thresholds_chosen_on"], "test");
    assert_eq!(report.setup["test_images"], 6);
    assert!(run_dir.join("localisation.png").is_file());

    // `metron localize` on two of the test images with the run's last checkpoint.
    let ck = run_dir.join("sos_sa_v3/checkpoints/last.ckpt");
    let images = [
        root.join("images/000/test_0.jpg"),
        root.join("images/002/test_1.jpg"),
    ];
    let out = dir.path().join("boxes.json");
    let picture = dir.path().join("maps.png");
    let localize = |extra: &[&str], out: &Path| {
        let mut argv = vec![
            "localize",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--image",
            images[0].to_str().unwrap(),
            images[1].to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        argv.extend(extra);
        common::metron(&argv)
    };
    let o = localize(&["--picture", picture.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let boxes: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let items = boxes.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let (w, h) = (
            item["width"].as_i64().unwrap(),
            item["height"].as_i64().unwrap(),
        );
        // Three classes: all of them, best first, probabilities summing to 1.
        let top: Vec<f64> = item["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(top.len(), 3);
        assert!(top.windows(2).all(|p| p[0] >= p[1]));
        assert!((top.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        for (map, row) in [("cam", "cam"), ("spa", "spa"), ("sos", "sos_sa_v3")] {
            let b = &item["boxes"][map];
            // The threshold the run chose for this map.
            let t = b["threshold"].as_f64().unwrap();
            assert!(
                (t - report.rows[row].threshold.unwrap()).abs() < 1e-6,
                "{map}"
            );
            let [x1, y1, x2, y2] = [0, 1, 2, 3].map(|i| b["box"][i].as_i64().unwrap());
            assert!(
                0 <= x1 && x1 <= x2 && x2 < w && 0 <= y1 && y1 <= y2 && y2 < h,
                "{b}"
            );
        }
    }
    assert!(image::open(&picture).unwrap().width() >= 3 * 32);
    // An existing output is kept unless --force; at threshold 0 every map covers the image.
    let o = localize(&[], &out);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--force"));
    let whole = dir.path().join("whole.json");
    let o = localize(&["--threshold", "0"], &whole);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let boxes: Value = serde_json::from_str(&std::fs::read_to_string(&whole).unwrap()).unwrap();
    for item in boxes.as_array().unwrap() {
        let (w, h) = (
            item["width"].as_i64().unwrap(),
            item["height"].as_i64().unwrap(),
        );
        for map in ["cam", "spa", "sos"] {
            assert_eq!(
                item["boxes"][map]["box"],
                serde_json::json!([0, 0, w - 1, h - 1]),
                "{map}"
            );
        }
    }
    let o = localize(&["--threshold", "1.5", "--force"], &whole);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--threshold"));
}

#[test]
fn a_tiny_ilsvrc_run_keeps_the_loaded_backbone_and_cls_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ilsvrc");
    tiny_ilsvrc(&root);
    let spa = oracle("wgol_spa_tiny.pth.tar");
    let run_dir = dir.path().join("run");
    let args = tiny_paper_args(
        "ilsvrc",
        &root,
        &run_dir,
        // Warmup off: with it, every group but SOS stays at 0 in these epochs anyway.
        &[
            "--finetune-from",
            spa.to_str().unwrap(),
            "--epochs",
            "2",
            "--eval-every",
            "2",
            "--warmup",
            "off",
        ],
    );
    let report = match run(&args).unwrap() {
        WgolOutcome::Finished(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(report.setup["task"], "ilsvrc");
    // The last checkpoint's backbone and cls head are still the file's.
    let sub = run_dir.join("sos_sa_v3");
    let config: metron::systems::wgol::WgolModelConfig =
        serde_json::from_str(&std::fs::read_to_string(sub.join("config.json")).unwrap()).unwrap();
    let device = metron_core::parse_device("cpu").unwrap();
    let model = metron_core::seeded_init(&device, 0, || config.init(&device)).unwrap();
    let last = metron_train::RunDir::open(&sub).unwrap().last_checkpoint();
    let model = metron_train::read_checkpoint(&last)
        .unwrap()
        .load_model(model, &last)
        .unwrap();
    let sums = sums();
    for k in [0, 6, 12] {
        let (_, key) = stage_key(k);
        assert_sum(
            param_sum(&model.net, &format!("backbone.convs.{k}.weight")),
            &sums["spa"][format!("module.{key}.weight")],
            &key,
        );
    }
    assert_sum(
        param_sum(&model.net, "cls.conv3.weight"),
        &sums["spa"]["module.cls.4.weight"],
        "cls.4",
    );
}
