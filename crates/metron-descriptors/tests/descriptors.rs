//! Pooling parity with `../shared/oracles/pooling.json`, and properties of the heads.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_core::read_npy_f64;
use metron_descriptors::*;
use serde_json::Value;

fn oracles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles")
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn values(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec_as::<f64>()
        .unwrap()
}

fn close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{k}]: {g} vs {w}"
        );
    }
}

#[test]
fn pooling_json_in_f32_and_f64() {
    let records: Value =
        serde_json::from_str(&std::fs::read_to_string(oracles().join("pooling.json")).unwrap())
            .unwrap();
    let device = device();
    for rec in records.as_array().unwrap() {
        let input = read_npy_f64(oracles().join(rec["input"].as_str().unwrap())).unwrap();
        let shape: [usize; 4] = input.shape().try_into().unwrap();
        for dtype in [DType::F32, DType::F64] {
            let (rtol, atol) = if dtype == DType::F64 {
                (1e-12, 1e-15)
            } else {
                (1e-5, 1e-7)
            };
            let x = || {
                let data: Vec<f64> = input.iter().copied().collect();
                Tensor::<4>::from_data(TensorData::new(data, shape), (&device, dtype))
                    .require_grad()
            };
            let what = |k: &str| format!("{} {k} {dtype:?}", rec["input"]);
            for (key, p) in [("gem_p1", 1.0), ("gem_p3", 3.0), ("gem_p6", 6.0)] {
                let got = values(GemConfig::new(p).init(&device).forward(x()));
                close(&what(key), &got, &flat(&rec[key]), rtol, atol);
            }
            close(
                &what("spoc"),
                &values(Spoc.forward(x())),
                &flat(&rec["spoc_avg"]),
                rtol,
                atol,
            );
            close(
                &what("mac"),
                &values(Mac.forward(x())),
                &flat(&rec["mac_max"]),
                rtol,
                atol,
            );
            // The oracle's normalised values are stored at f32 precision (the normalisation of
            // its own float64 gem_p3 rows differs from them by ~1e-9): compare at 1e-6 even
            // in f64.
            let l2n = l2_normalize(GemConfig::new(3.0).init(&device).forward(x()));
            close(
                &what("gem_p3_l2n"),
                &values(l2n),
                &flat(&rec["gem_p3_l2n"]),
                rtol.max(1e-6),
                atol,
            );
            // Gradient of sum(GeM p=3) with respect to the input, fixed and learnable p alike.
            for gem in [GemConfig::new(3.0), GemConfig::new(3.0).learnable()] {
                let leaf = x();
                let grads = gem.init(&device).forward(leaf.clone()).sum().backward();
                let g: Vec<f64> = leaf
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .convert::<f64>()
                    .try_into_vec_as::<f64>()
                    .unwrap();
                close(
                    &what("gem grad"),
                    &g,
                    &flat(&rec["gem_p3_grad_of_sum_wrt_input"]),
                    rtol,
                    atol,
                );
            }
        }
    }
}

#[test]
fn learnable_gem_exponent_receives_a_gradient() {
    let device = device();
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.5f32, 1.0, 2.0, 4.0], [1, 1, 2, 2]),
        &device,
    );
    let gem = GemConfig::new(3.0).learnable().init(&device);
    let grads = gem.forward(x).sum().backward();
    let p = gem.learned_p.as_ref().unwrap().val();
    let g = p.grad(&grads).unwrap().into_scalar::<f32>();
    // d/dp of (mean x^p)^(1/p) by central differences, by hand.
    let f = |p: f64| {
        ([0.5f64, 1.0, 2.0, 4.0]
            .iter()
            .map(|v| v.powf(p))
            .sum::<f64>()
            / 4.0)
            .powf(1.0 / p)
    };
    let fd = (f(3.0 + 1e-5) - f(3.0 - 1e-5)) / 2e-5;
    assert!((g as f64 - fd).abs() < 1e-4 * fd.abs(), "{g} vs {fd}");
}

#[test]
fn cgd_gem_keeps_the_sign_without_clamping() {
    let device = device();
    // Channel 0: -1 and 2 -> mean of cubes 3.5; channel 1: -2 and -1 -> -4.5.
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![-1.0f32, 2.0, -2.0, -1.0], [1, 2, 1, 2]),
        &device,
    );
    let got = values(GemConfig::cgd().init(&device).forward(x));
    close(
        "cgd gem",
        &got,
        &[3.5f64.cbrt(), -(4.5f64.cbrt())],
        1e-6,
        0.0,
    );
}

#[test]
fn cgd_head_shapes_norms_and_config_errors() {
    let device = device();
    let head = CgdHeadConfig::new(5)
        .with_descriptors("SMG")
        .with_feature_dim(12)
        .with_in_channels(6)
        .init(&device)
        .unwrap();
    let x = Tensor::<4>::random(
        [3, 6, 4, 4],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let out = head.forward(x);
    assert_eq!(out.embedding.dims(), [3, 12]);
    assert_eq!(out.logits.dims(), [3, 5]);
    let e = values(out.embedding);
    for row in e.chunks(12) {
        // Each 4-d part was unit before the final normalisation, so each has norm 1/sqrt(3).
        for part in row.chunks(4) {
            let n = part.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((n - 1.0 / 3f64.sqrt()).abs() < 1e-5, "{n}");
        }
    }
    assert_eq!(
        parse_cgd_config("gs").unwrap(),
        vec![CgdDescriptor::Gem, CgdDescriptor::Spoc]
    );
    for bad in ["", "SX", "SS"] {
        let err = CgdHeadConfig::new(5)
            .with_descriptors(bad)
            .init(&device)
            .unwrap_err();
        assert!(
            matches!(err, DescriptorError::CgdConfig { .. }),
            "{bad}: {err}"
        );
    }
    let err = CgdHeadConfig::new(5)
        .with_descriptors("SMG")
        .with_feature_dim(1000)
        .init(&device)
        .unwrap_err();
    assert!(
        err.to_string().contains("1000 is not divisible by the 3"),
        "{err}"
    );
}

#[test]
fn smd_matches_saig_parameter_count_and_normalises() {
    let device = device();
    // SAIG reports 527,624 parameters per SMD branch for N = 256.
    assert_eq!(SmdConfig::new(256).init(&device).num_params(), 527_624);
    let smd = SmdConfig::new(6).init(&device);
    let tokens = Tensor::<3>::random(
        [2, 6, 5],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let out = smd.forward(tokens);
    assert_eq!(out.dims(), [2, 40]);
    for row in values(out).chunks(40) {
        assert!((row.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-5);
    }
    let gap = Gap.forward(Tensor::<3>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 3.0, 4.0], [1, 2, 2]),
        &device,
    ));
    close(
        "gap",
        &values(gap),
        &[2.0 / 8f64.sqrt(), 2.0 / 8f64.sqrt()],
        1e-6,
        0.0,
    );
}

#[test]
fn meta_class_codes_are_unique_balanced_and_seeded() {
    for seed in 0..20 {
        let codes = meta_class_codes(98, 12, 4, seed).unwrap();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 98);
        for e in 0..4 {
            let mut count = [0usize; 12];
            codes.iter().for_each(|c| count[c[e]] += 1);
            assert!(count.iter().all(|&c| c == 8 || c == 9), "{count:?}");
        }
        assert_eq!(codes, meta_class_codes(98, 12, 4, seed).unwrap());
    }
    assert_ne!(
        meta_class_codes(98, 12, 4, 0).unwrap(),
        meta_class_codes(98, 12, 4, 1).unwrap()
    );
    assert!(meta_class_codes(100, 12, 1, 0).is_err());
    assert!(meta_class_codes(0, 12, 1, 0).is_err());
}

#[test]
fn ensemble_embedding_inner_product_is_the_mean_branch_cosine() {
    let device = device();
    let f = Tensor::<3>::random(
        [4, 3, 5],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let data = f
        .clone()
        .into_data()
        .convert::<f64>()
        .try_into_vec_as::<f64>()
        .unwrap();
    let emb = values(MetaClassEnsembleHead::retrieval_embedding(f));
    let cos = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt()
            * b.iter().map(|x| x * x).sum::<f64>().sqrt())
    };
    for q in 0..4 {
        for g in 0..4 {
            let want: f64 = (0..3)
                .map(|e| cos(&data[(q * 3 + e) * 5..][..5], &data[(g * 3 + e) * 5..][..5]))
                .sum::<f64>()
                / 3.0;
            let got: f64 = emb[q * 15..][..15]
                .iter()
                .zip(&emb[g * 15..][..15])
                .map(|(x, y)| x * y)
                .sum();
            assert!((got - want).abs() < 1e-5, "{q},{g}: {got} vs {want}");
        }
    }
    let head = MetaClassEnsembleHeadConfig {
        branches: 3,
        feature_dim: 5,
        meta_classes: 4,
        with_fc: true,
    }
    .init(&device);
    let x = Tensor::<3>::random(
        [2, 3, 5],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    assert_eq!(head.logits(x).unwrap().dims(), [2, 3, 4]);
    let wrong = Tensor::<3>::random(
        [2, 2, 5],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    assert!(head.logits(wrong).is_err());
}
