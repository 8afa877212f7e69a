//! Output parity with torchvision: the PyTorch side is written by
//! `tests/parity/make_fixtures.py` into `$METRON_PARITY_DIR` (default `target/parity` of the
//! workspace); `.ci/run` always generates it and sets `METRON_REQUIRE_PARITY=1`, so in CI a
//! missing fixture is a failure. Elsewhere the fixture-based tests say they found nothing and
//! return.

use std::path::PathBuf;

use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use metron_backbones::*;
use metron_core::read_npy_f64;
use serde_json::Value;

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("METRON_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/parity"));
    if dir.join("meta.json").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("METRON_REQUIRE_PARITY").is_none(),
        "METRON_REQUIRE_PARITY is set but {} has no fixtures: run tests/parity/make_fixtures.py",
        dir.display()
    );
    eprintln!(
        "no parity fixtures in {}: run tests/parity/make_fixtures.py",
        dir.display()
    );
    None
}

fn read_meta(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap()
}

fn load_npy<const D: usize>(path: PathBuf, device: &Device) -> Tensor<D> {
    let a = read_npy_f64(&path).unwrap();
    let shape: Vec<usize> = a.shape().to_vec();
    let data: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn load_npy64<const D: usize>(path: PathBuf, device: &Device) -> Tensor<D> {
    let a = read_npy_f64(&path).unwrap();
    let shape: Vec<usize> = a.shape().to_vec();
    let data: Vec<f64> = a.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F64))
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f64>()
}

fn config(name: &str) -> ResNetConfig {
    let c = match name {
        "resnet18" => ResNetConfig::resnet18(),
        "resnet34" => ResNetConfig::resnet34(),
        "resnet50" | "resnet50_layer3s1" => ResNetConfig::resnet50(),
        "resnext50_32x4d" => ResNetConfig::resnext50_32x4d(),
        other => panic!("no config for {other}"),
    };
    c.with_num_classes(Some(10))
        .with_layer3_stride_1(name.ends_with("layer3s1"))
}

#[test]
fn resnets_match_torchvision_outputs_and_parameter_counts() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let meta = read_meta(&dir);
    let x: Tensor<4> = load_npy(dir.join("input_2x3x64x64.npy"), &device);
    for name in [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnext50_32x4d",
        "resnet50_layer3s1",
    ] {
        let model = config(name).init(&device).unwrap();
        assert_eq!(
            parameter_count(&model) as u64,
            meta[name]["params"].as_u64().unwrap(),
            "{name} parameters"
        );
        let (model, report) = load_pytorch(
            model,
            dir.join(format!("{name}.pth")),
            TORCHVISION_RESNET_KEYS,
            LoadMode::Strict,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            report.missing.is_empty() && report.unused.is_empty(),
            "{name}: {report:?}"
        );
        // The reference outputs are PyTorch's float64 run. In f32 the bar is 1e-4, or twice
        // PyTorch's own f32 error where that is larger (random-init ResNet-50s amplify rounding
        // to ~5e-4 on features of magnitude ~10, in PyTorch as here).
        let want_f: Tensor<4> = load_npy64(dir.join(format!("{name}_features.npy")), &device);
        let want_l: Tensor<2> = load_npy64(dir.join(format!("{name}_logits.npy")), &device);
        let bar = |key: &str| (2.0 * meta[name][key].as_f64().unwrap()).max(1e-4);
        let d = max_abs_diff(
            model.features(x.clone()).cast(FloatDType::F64),
            want_f.clone(),
        );
        assert!(
            d < bar("torch_f32_error_features"),
            "{name}: f32 features differ by {d}"
        );
        let d = max_abs_diff(
            model.forward(x.clone()).cast(FloatDType::F64),
            want_l.clone(),
        );
        assert!(
            d < bar("torch_f32_error_logits"),
            "{name}: f32 logits differ by {d}"
        );
        // In f64 the same weights must reproduce PyTorch's f64 run to rounding.
        let model = with_float_dtype(model, FloatDType::F64);
        let x64 = x.clone().cast(FloatDType::F64);
        let d = max_abs_diff(model.features(x64.clone()), want_f);
        assert!(d < 1e-9, "{name}: f64 features differ by {d}");
        let d = max_abs_diff(model.forward(x64), want_l);
        assert!(d < 1e-9, "{name}: f64 logits differ by {d}");
    }
}

#[test]
fn strict_loading_names_the_offending_key() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    // ResNet-34 has more blocks than ResNet-18's checkpoint provides.
    let err = load_pytorch(
        config("resnet34").init(&device).unwrap(),
        dir.join("resnet18.pth"),
        TORCHVISION_RESNET_KEYS,
        LoadMode::Strict,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing") && err.contains("layer1.2."),
        "{err}"
    );
    // A headless model: the checkpoint's `fc` is unused, an error unless partial.
    let headless = || ResNetConfig::resnet18().init(&device).unwrap();
    let err = load_pytorch(
        headless(),
        dir.join("resnet18.pth"),
        TORCHVISION_RESNET_KEYS,
        LoadMode::Strict,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fc."), "{err}");
    let (_, report) = load_pytorch(
        headless(),
        dir.join("resnet18.pth"),
        TORCHVISION_RESNET_KEYS,
        LoadMode::Partial,
    )
    .unwrap();
    assert_eq!(report.unused.len(), 2);
    // Same keys, other shapes (grouped 3x3 convolutions): an error even when partial.
    let err = load_pytorch(
        config("resnext50_32x4d").init(&device).unwrap(),
        dir.join("resnet50.pth"),
        TORCHVISION_RESNET_KEYS,
        LoadMode::Partial,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("shape mismatch for 'layer1.0.conv1.weight'"),
        "{err}"
    );
}

#[test]
fn parameter_counts_match_torchvision() {
    // torchvision's published sizes of the headless backbones (fc removed).
    let device = device();
    for (config, want) in [
        (ResNetConfig::resnet18(), 11_176_512),
        (ResNetConfig::resnet34(), 21_284_672),
        (ResNetConfig::resnet50(), 23_508_032),
        (ResNetConfig::resnext50_32x4d(), 22_979_904),
    ] {
        assert_eq!(
            parameter_count(&config.init(&device).unwrap()),
            want,
            "{config:?}"
        );
    }
}

#[test]
fn missing_file_is_a_typed_error() {
    let device = device();
    let err = load_pytorch(
        ResNetConfig::resnet18().init(&device).unwrap(),
        "/nonexistent/r18.pth",
        TORCHVISION_RESNET_KEYS,
        LoadMode::Strict,
    )
    .unwrap_err();
    assert!(matches!(err, BackboneError::Checkpoint { .. }), "{err}");
}

/// `max |ours - reference|` in f32 and f64 for one output, with the bars of the ResNet test.
fn check_output<const D: usize>(
    what: &str,
    ours32: Tensor<D>,
    ours64: Tensor<D>,
    reference: Tensor<D>,
    torch_f32_error: f64,
) {
    check_output_with(what, ours32, ours64, reference, torch_f32_error, 1e-9);
}

fn check_output_with<const D: usize>(
    what: &str,
    ours32: Tensor<D>,
    ours64: Tensor<D>,
    reference: Tensor<D>,
    torch_f32_error: f64,
    f64_bar: f64,
) {
    let bar = (2.0 * torch_f32_error).max(1e-4);
    let d = max_abs_diff(ours32.cast(FloatDType::F64), reference.clone());
    assert!(d < bar, "{what}: f32 differs by {d} (bar {bar})");
    let d = max_abs_diff(ours64, reference);
    assert!(d < f64_bar, "{what}: f64 differs by {d}");
}

/// `f` on the model as loaded (f32) and on its f64 copy, with `x` in the matching type.
fn both_precisions<M: burn::module::Module, const D: usize>(
    model: M,
    x: &Tensor<4>,
    f: impl Fn(&M, Tensor<4>) -> Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let t32 = f(&model, x.clone());
    let model = with_float_dtype(model, FloatDType::F64);
    (t32, f(&model, x.clone().cast(FloatDType::F64)))
}

fn owned_keys(keys: &[(String, String)]) -> Vec<(&str, &str)> {
    keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn vgg16_matches_torchvision_including_wgol_stages() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let meta = read_meta(&dir);
    let m = &meta["vgg16"];
    let x: Tensor<4> = load_npy(dir.join("input_2x3x64x64.npy"), &device);
    let model = Vgg16Config::default().init(&device);
    assert_eq!(
        parameter_count(&model) as u64,
        m["params"].as_u64().unwrap()
    );
    let keys = torchvision_vgg16_keys();
    let (model, _) = load_pytorch(
        model,
        dir.join("vgg16.pth"),
        &owned_keys(&keys),
        LoadMode::Strict,
    )
    .unwrap();
    let s32 = model.stages(x.clone());
    let f32_features = model.features(x.clone());
    let model = with_float_dtype(model, FloatDType::F64);
    let x64 = x.cast(FloatDType::F64);
    let s64 = model.stages(x64.clone());
    let err = |k: &str| m[format!("torch_f32_error_{k}")].as_f64().unwrap();
    check_output(
        "vgg16 features",
        f32_features,
        model.features(x64),
        load_npy64(dir.join("vgg16_features.npy"), &device),
        err("features"),
    );
    check_output(
        "vgg16 f4",
        s32.f4,
        s64.f4,
        load_npy64(dir.join("vgg16_f4.npy"), &device),
        err("f4"),
    );
    check_output(
        "vgg16 f5",
        s32.f5,
        s64.f5,
        load_npy64(dir.join("vgg16_f5.npy"), &device),
        err("f5"),
    );
}

#[test]
fn vit_small_matches_timm_tokens() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let meta = read_meta(&dir);
    let m = &meta["vit_small_patch16_64"];
    let x: Tensor<4> = load_npy(dir.join("input_2x3x64x64.npy"), &device);
    let model = VitConfig::vit_small_patch16(64).init(&device).unwrap();
    assert_eq!(
        parameter_count(&model) as u64,
        m["params"].as_u64().unwrap()
    );
    let (model, _) = load_pytorch(
        model,
        dir.join("vit_small_patch16_64.pth"),
        &[],
        LoadMode::Strict,
    )
    .unwrap();
    let (t32, t64) = both_precisions(model, &x, |m, x| m.tokens(x));
    check_output(
        "vit tokens",
        t32,
        t64,
        load_npy64(dir.join("vit_small_patch16_64_tokens.npy"), &device),
        m["torch_f32_error_tokens"].as_f64().unwrap(),
    );
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `channels` planes `from` -> `to` through `resize`'s matrices, in f64 on the host.
fn resize_host(
    planes: &[f64],
    channels: usize,
    from: [usize; 2],
    to: [usize; 2],
    resize: PositionResize,
) -> Vec<f64> {
    let ([ih, iw], [oh, ow]) = (from, to);
    let (rows, cols) = (resize.matrix(ih, oh), resize.matrix(iw, ow));
    let mut out = vec![0.0; channels * oh * ow];
    for c in 0..channels {
        let plane = &planes[c * ih * iw..(c + 1) * ih * iw];
        for y in 0..oh {
            for x in 0..ow {
                out[c * oh * ow + y * ow + x] = (0..ih)
                    .flat_map(|r| (0..iw).map(move |q| (r, q)))
                    .map(|(r, q)| rows[y * ih + r] * cols[x * iw + q] * plane[r * iw + q])
                    .sum();
            }
        }
    }
    out
}

#[test]
fn bicubic_position_embedding_resize_matches_torch() {
    let Some(dir) = fixtures() else { return };
    let input: Vec<f32> = read_npy_f64(dir.join("bicubic_in_8x4x4.npy"))
        .unwrap()
        .iter()
        .map(|&v| v as f32)
        .collect();
    for (file, to) in [
        ("bicubic_out_8x6x5.npy", [6, 5]),
        ("bicubic_out_8x3x2.npy", [3, 2]),
    ] {
        let want = read_npy_f64(dir.join(file)).unwrap();
        let got = bicubic_resize(&input, 8, [4, 4], to);
        for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            assert!((*g as f64 - w).abs() < 1e-5, "{file}[{k}]: {g} vs {w}");
        }
    }
    // DINO's interpolate_pos_encoding: the same kernel, samples placed by its scale factor.
    let input64 = read_npy_f64(dir.join("bicubic_in_8x4x4.npy")).unwrap();
    let input64: Vec<f64> = input64.iter().copied().collect();
    for (file, plain, to) in [
        (
            "dino_bicubic_out_8x6x5.npy",
            "bicubic_out_8x6x5.npy",
            [6, 5],
        ),
        (
            "dino_bicubic_out_8x3x2.npy",
            "bicubic_out_8x3x2.npy",
            [3, 2],
        ),
    ] {
        let want: Vec<f64> = read_npy_f64(dir.join(file))
            .unwrap()
            .iter()
            .copied()
            .collect();
        let got = resize_host(&input64, 8, [4, 4], to, PositionResize::DinoBicubic);
        let d = max_diff(&got, &want);
        assert!(d < 1e-12, "{file}: differs by {d}");
        // Plain bicubic on the same grid is measurably elsewhere, so using it would fail.
        let plain: Vec<f64> = read_npy_f64(dir.join(plain))
            .unwrap()
            .iter()
            .copied()
            .collect();
        let d = max_diff(&plain, &want);
        assert!(d > 1e-3, "{file}: DINO and plain bicubic agree to {d}");
        let d = max_diff(
            &resize_host(&input64, 8, [4, 4], to, PositionResize::Bicubic),
            &plain,
        );
        assert!(d < 1e-12, "{file}: plain bicubic differs by {d}");
    }
    // The resize keeps the CLS entry and re-grids the rest.
    let device = device();
    let model = VitConfig::vit_small_patch16(64).init(&device).unwrap();
    let cls_before = model.pos_embed.val().slice([0..1, 0..1, 0..384]);
    let resized = model.resize_position_embedding([3, 5]);
    assert_eq!(resized.pos_embed.val().dims(), [1, 16, 384]);
    assert_eq!(resized.grid, [3, 5]);
    let cls_after = resized.pos_embed.val().slice([0..1, 0..1, 0..384]);
    assert_eq!(max_abs_diff(cls_before, cls_after), 0.0);
}

#[test]
fn saig_s_matches_its_pytorch_reference_and_the_spec_parameter_count() {
    let device = device();
    // Spec s. 1.1: stem 2,488,320; each attention-only block 592,128; plus the position
    // embedding and the final LayerNorm.
    let s = SaigConfig::saig_s([256, 256]).init(&device).unwrap();
    assert_eq!(
        parameter_count(&s),
        2_488_320 + 11 * 592_128 + 256 * 384 + 768
    );
    let d = SaigConfig::saig_d([128, 512]).init(&device).unwrap();
    assert_eq!(
        parameter_count(&d),
        2_488_320 + 22 * 592_128 + 256 * 384 + 768
    );
    let Some(dir) = fixtures() else { return };
    let meta = read_meta(&dir);
    let m = &meta["saig_s_64"];
    let x: Tensor<4> = load_npy(dir.join("input_2x3x64x64.npy"), &device);
    let model = SaigConfig::saig_s([64, 64]).init(&device).unwrap();
    assert_eq!(
        parameter_count(&model) as u64,
        m["params"].as_u64().unwrap()
    );
    // The fixture has the original repository's keys, its ImageNet classifier included.
    let (model, report) = load_pytorch(
        model,
        dir.join("saig_s_64.pth"),
        SAIG_ORIGINAL_KEYS,
        SAIG_ORIGINAL_MODE,
    )
    .unwrap();
    assert!(report.missing.is_empty(), "{report:?}");
    assert_eq!(report.unused, ["head.bias", "head.weight"]);
    let (t32, t64) = both_precisions(model, &x, |m, x| m.tokens(x));
    check_output(
        "saig tokens",
        t32,
        t64,
        load_npy64(dir.join("saig_s_64_tokens.npy"), &device),
        m["torch_f32_error_tokens"].as_f64().unwrap(),
    );
}

const SAIG_ORIGINAL_MODE: LoadMode = LoadMode::StrictIgnoringUnused(&["head."]);

fn saig_s_with_depth(depth: usize, device: &Device) -> Saig {
    SaigConfig {
        depth,
        ..SaigConfig::saig_s([64, 64])
    }
    .init(device)
    .unwrap()
}

#[test]
fn saig_original_checkpoints_stay_strict_apart_from_the_classifier() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let path = dir.join("saig_s_64.pth");
    let load = |depth: usize, mode: LoadMode| {
        load_pytorch(
            saig_s_with_depth(depth, &device),
            &path,
            SAIG_ORIGINAL_KEYS,
            mode,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    // Plain strict mode: the classifier is an unused key like any other.
    let err = load(11, LoadMode::Strict);
    assert!(
        err.contains("match no parameter") && err.contains("head."),
        "{err}"
    );
    // A deeper model: the checkpoint lacks its last block.
    let err = load(12, SAIG_ORIGINAL_MODE);
    assert!(
        err.contains("missing") && err.contains("blocks.11."),
        "{err}"
    );
    // A shallower one: the checkpoint's last block is an unexpected key, not excused by the
    // classifier prefix.
    let err = load(10, SAIG_ORIGINAL_MODE);
    assert!(
        err.contains("match no parameter") && err.contains("blocks.10."),
        "{err}"
    );
    // Without the stem renames none of the stem's 38 tensors (6 convolutions, 6 BatchNorms,
    // the 1x1 projection) loads.
    let err = load_pytorch(
        saig_s_with_depth(11, &device),
        &path,
        &[],
        SAIG_ORIGINAL_MODE,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("38 parameter(s)") && err.contains("missing") && err.contains("proj."),
        "{err}"
    );
}

#[test]
fn saig_resized_for_another_size_matches_the_original_load_time_resize() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let meta = read_meta(&dir);
    let x: Tensor<4> = load_npy(dir.join("input_2x3x32x96.npy"), &device);
    // Nested under "state_dict" as the original's pretrained checkpoints are.
    let path = dir.join("saig_s_64_nested.pth");
    let (model, _) = load_pytorch_entry(
        SaigConfig::saig_s([64, 64]).init(&device).unwrap(),
        &path,
        "state_dict",
        SAIG_ORIGINAL_KEYS,
        SAIG_ORIGINAL_MODE,
    )
    .unwrap();
    assert_eq!(model.grid, [4, 4]);
    let resized = model.clone().resize_position_embedding([2, 6]).unwrap();
    assert_eq!(resized.grid, [2, 6]);
    assert!(model.clone().resize_position_embedding([0, 6]).is_err());
    assert_eq!(resized.pos_embed.val().dims(), [1, 12, 384]);
    // PyTorch resizes in the checkpoint's dtype: the f64 run resizes its f64 copy.
    let (t32, t64) = both_precisions(model, &x, |m, x| {
        m.clone()
            .resize_position_embedding([2, 6])
            .unwrap()
            .tokens(x)
    });
    check_output(
        "saig tokens at 32x96",
        t32,
        t64,
        load_npy64(dir.join("saig_s_64_at_32x96_tokens.npy"), &device),
        meta["saig_s_64_at_32x96"]["torch_f32_error_tokens"]
            .as_f64()
            .unwrap(),
    );
    // An entry the file does not have is named in the error.
    let err = load_pytorch_entry(
        SaigConfig::saig_s([64, 64]).init(&device).unwrap(),
        &path,
        "model",
        SAIG_ORIGINAL_KEYS,
        SAIG_ORIGINAL_MODE,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(err.contains("'model'"), "{err}");
}

#[test]
fn every_registered_backbone_builds_with_its_published_size() {
    let device = device();
    // Published sizes without classifier heads: torchvision's ResNets and VGG-16 trunk, timm's
    // ViT-S/16 and ViT-B/16 at 224 (num_classes = 0), SAIG from the spec's counts.
    let want = [
        ("resnet18", 11_176_512),
        ("resnet34", 21_284_672),
        ("resnet50", 23_508_032),
        ("resnext50_32x4d", 22_979_904),
        ("vgg16", 14_714_688),
        ("vit_small_patch16", 21_665_664),
        ("vit_base_patch16", 85_798_656),
        ("saig_s", 2_488_320 + 11 * 592_128 + 256 * 384 + 768),
        ("saig_d", 2_488_320 + 22 * 592_128 + 256 * 384 + 768),
    ];
    assert_eq!(want.len(), BACKBONE_NAMES.len());
    for (name, params) in want {
        let backbone = build(name, &device).unwrap();
        assert_eq!(parameter_count(&backbone), params, "{name}");
        let p = preprocessing(name).unwrap();
        assert!(
            p.std.iter().all(|&s| s > 0.0) && p.image_size[0] >= 16,
            "{name}: {p:?}"
        );
    }
    let err = build("resnet51", &device).unwrap_err().to_string();
    assert!(
        err.contains("resnet51") && err.contains("resnet50"),
        "{err}"
    );
}

#[test]
fn split_resnet_equals_the_whole_and_branch_copies_are_independent() {
    use burn::module::{Module, ModuleVisitor, Param, ParamId};
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
    }
    let ids = |m: &ResNetBranch| {
        let mut v = Ids(Vec::new());
        m.visit(&mut v);
        v.0
    };
    let device = device();
    device.seed(3);
    let model = ResNetConfig::resnet18().init(&device).unwrap();
    let x = Tensor::<4>::random(
        [1, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let whole = model.features(x.clone());
    for stage in ["maxpool", "layer1", "layer3", "layer4"] {
        let (trunk, branch) = model.clone().split(stage.parse().unwrap());
        let parts = branch.forward(trunk.forward(x.clone()));
        assert_eq!(max_abs_diff(whole.clone(), parts), 0.0, "{stage}");
        let copy = branch.fresh_copy();
        assert_eq!(
            max_abs_diff(
                branch.forward(trunk.forward(x.clone())),
                copy.forward(trunk.forward(x.clone()))
            ),
            0.0
        );
        let (a, b) = (ids(&branch), ids(&copy));
        assert_eq!(a.len(), b.len());
        let shared = a.iter().filter(|id| b.contains(id)).count();
        assert_eq!(
            shared,
            0,
            "{stage}: {shared} of {} parameter ids shared",
            a.len()
        );
    }
    assert!("layer5".parse::<ResNetStage>().is_err());
    // Training one copy (batch statistics update its running mean) leaves the other alone.
    let ad = device.autodiff();
    let (trunk, branch) = ResNetConfig::resnet18()
        .init(&ad)
        .unwrap()
        .split(ResNetStage::Layer3);
    let copy = branch.fresh_copy();
    let before = branch.stages[0][0].bn1.running_mean.value_sync();
    let xa = Tensor::<4>::random(
        [2, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &ad,
    );
    let _ = copy.forward(trunk.forward(xa)).sum().backward();
    assert_eq!(
        max_abs_diff(
            before.clone(),
            branch.stages[0][0].bn1.running_mean.value_sync()
        ),
        0.0
    );
    assert!(max_abs_diff(before, copy.stages[0][0].bn1.running_mean.value_sync()) > 0.0);
}

#[test]
fn safetensors_checkpoints_load_like_pth() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let x: Tensor<4> = load_npy(dir.join("input_2x3x64x64.npy"), &device);
    let load = |file: &str| {
        load_pytorch(
            config("resnet18").init(&device).unwrap(),
            dir.join(file),
            TORCHVISION_RESNET_KEYS,
            LoadMode::Strict,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .0
    };
    let (a, b) = (load("resnet18.pth"), load("resnet18.safetensors"));
    assert_eq!(max_abs_diff(a.forward(x.clone()), b.forward(x)), 0.0);
}

#[test]
fn vit_at_another_input_size_matches_timm_dynamic_img_size() {
    let Some(dir) = fixtures() else { return };
    let device = device();
    let meta = read_meta(&dir);
    let x: Tensor<4> = load_npy(dir.join("input_2x3x96x80.npy"), &device);
    let model = VitConfig::vit_small_patch16(64).init(&device).unwrap();
    let (model, _) = load_pytorch(
        model,
        dir.join("vit_small_patch16_64.pth"),
        &[],
        LoadMode::Strict,
    )
    .unwrap();
    let (t32, t64) = both_precisions(model, &x, |m, x| m.tokens(x));
    // timm resizes the position embedding in float32 even for a float64 model, so its f64
    // reference carries f32 rounding (~6e-7) at that one step.
    check_output_with(
        "vit tokens at 96x80",
        t32,
        t64,
        load_npy64(
            dir.join("vit_small_patch16_64_at_96x80_tokens.npy"),
            &device,
        ),
        meta["vit_small_patch16_64_at_96x80"]["torch_f32_error_tokens"]
            .as_f64()
            .unwrap(),
        1e-5,
    );
}
