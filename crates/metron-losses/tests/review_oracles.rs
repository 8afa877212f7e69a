//! pytorch-metric-learning 2.9.0 on the cases a review found metron getting wrong, from
//! `tests/oracles/` (made by `tests/oracles/make_review_oracles.py`):
//! - `triplet_semihard.json`: `TripletMarginMiner(type_of_triplets="semihard")` feeding
//!   `TripletMarginLoss`, for normalised and raw Euclidean distances and cosine similarity;
//! - `miners.json`: PML's `BatchHardMiner` feeding `TripletMarginLoss` (also against a
//!   reference set) and `MultiSimilarityMiner` feeding `MultiSimilarityLoss`: the mined
//!   tuples exactly, values and gradients;
//! - `duplicates.json`: contrastive and triplet losses on a batch with exact duplicate
//!   embeddings, which PML puts at distance exactly 0 (a clamp at 1e-12 before the square root
//!   put them at 1e-6, counted them as non-zero terms and moved the contrastive loss ~10 %).
//!
//! Values at rtol 1e-5 in f32 and 1e-9 in f64; gradients at rtol 1e-4 / atol 1e-6 in f32 and
//! 1e-9 / 1e-15 in f64, as the other oracle tests.

use std::path::PathBuf;

use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_losses::*;
use serde_json::Value;

fn json(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oracles")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn input(v: &Value, f64_run: bool, device: &Device) -> Tensor<2> {
    let rows = v.as_array().unwrap().len();
    let data = floats(v);
    let cols = data.len() / rows;
    let t = if f64_run {
        Tensor::from_data(TensorData::new(data, [rows, cols]), (device, DType::F64))
    } else {
        let data: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(data, [rows, cols]), device)
    };
    t.require_grad()
}

/// Runs `loss` on the case's embeddings in f32 and f64 and checks value and gradient.
fn check(id: &str, root: &Value, case: &Value, loss: impl Fn(Tensor<2>, &[i64]) -> Tensor<1>) {
    let labels: Vec<i64> = root["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().unwrap())
        .collect();
    let device = device();
    for f64_run in [false, true] {
        let (suffix, value_tol, rtol, atol) = if f64_run {
            ("", 1e-9, 1e-9, 1e-15)
        } else {
            ("_f32", 1e-5, 1e-4, 1e-6)
        };
        let x = input(&root["embeddings"], f64_run, &device);
        let out = loss(x.clone(), &labels);
        let got = out.clone().into_scalar::<f64>();
        let want = case[format!("value{suffix}")].as_f64().unwrap();
        assert!(
            (got - want).abs() <= value_tol * want.abs(),
            "{id}{suffix}: value {got} vs PML {want}"
        );
        let grads = out.backward();
        let g: Vec<f64> = x.grad(&grads).unwrap().into_data().iter::<f64>().collect();
        let w = floats(&case[format!("grad{suffix}")]);
        assert_eq!(g.len(), w.len());
        for (k, (g, w)) in g.iter().zip(&w).enumerate() {
            assert!(
                (g - w).abs() <= atol + rtol * w.abs(),
                "{id}{suffix}: gradient [{k}] {g} vs PML {w}"
            );
        }
    }
}

fn distance(name: &str) -> Distance {
    match name {
        "lp_normalized" => Distance::Euclidean { normalize: true },
        "lp_raw" => Distance::Euclidean { normalize: false },
        "cosine" => Distance::Cosine,
        other => panic!("unknown distance {other}"),
    }
}

#[test]
fn semi_hard_selection_equals_pmls_triplet_margin_miner() {
    let root = json("triplet_semihard.json");
    for case in root["cases"].as_array().unwrap() {
        let id = case["name"].as_str().unwrap();
        let loss = TripletMarginLoss::new(case["loss_margin"].as_f64().unwrap())
            .with_distance(distance(case["distance"].as_str().unwrap()))
            .with_selection(TripletSelection::SemiHard {
                margin: case["miner_margin"].as_f64().unwrap(),
            });
        check(id, &root, case, |x, l| loss.forward(x, l).unwrap());
    }
}

#[test]
fn duplicates_sit_at_distance_zero_and_losses_match_pml() {
    let root = json("duplicates.json");
    let device = device();
    for f64_run in [false, true] {
        let x = input(&root["embeddings"], f64_run, &device);
        let d: Vec<f64> = Distance::default()
            .matrix(x.clone(), x)
            .into_data()
            .iter::<f64>()
            .collect();
        let n = root["labels"].as_array().unwrap().len();
        for pair in root["duplicate_pairs"].as_array().unwrap() {
            let (i, j) = (
                pair[0].as_u64().unwrap() as usize,
                pair[1].as_u64().unwrap() as usize,
            );
            assert_eq!((d[i * n + j], d[j * n + i], d[i * n + i]), (0.0, 0.0, 0.0));
        }
    }
    for case in root["cases"].as_array().unwrap() {
        let id = case["name"].as_str().unwrap();
        let p = &case["params"];
        assert_eq!(p["distance"], "lp_normalized");
        if id.starts_with("contrastive") {
            let loss = ContrastiveLoss::new(
                p["pos_margin"].as_f64().unwrap(),
                p["neg_margin"].as_f64().unwrap(),
            );
            check(id, &root, case, |x, l| loss.forward(x, l).unwrap());
        } else {
            let loss = TripletMarginLoss::new(p["margin"].as_f64().unwrap());
            check(id, &root, case, |x, l| loss.forward(x, l).unwrap());
        }
    }
}

fn index_lists(v: &Value) -> Vec<Vec<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t.as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect()
        })
        .collect()
}

fn sorted(mut v: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    v.sort();
    v
}

/// The tuples metron's miner picks from the case's embeddings (f32, as the loss sees them).
fn mined(
    miner: &dyn Miner,
    x: &[f64],
    labels: &[i64],
    refs: Option<(&[f64], &[i64])>,
    distance: Distance,
) -> Tuples {
    let device = device();
    let rows = labels.len();
    let cols = x.len() / rows;
    let t = |v: &[f64], r: usize| {
        Tensor::<2>::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [r, cols]),
            &device,
        )
    };
    let (ref_x, ref_labels) = refs.unwrap_or((x, labels));
    let m = distance
        .matrix(t(x, rows), t(ref_x, ref_labels.len()))
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>();
    miner.mine(&MinerInput {
        matrix: &m,
        labels,
        ref_labels,
        distance,
        same_set: refs.is_none(),
    })
}

#[test]
fn miners_plug_into_losses_as_in_pml() {
    let root = json("miners.json");
    let labels: Vec<i64> = root["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().unwrap())
        .collect();
    let emb = floats(&root["embeddings"]);
    for case in root["cases"].as_array().unwrap() {
        let id = case["name"].as_str().unwrap();
        let dist = distance(case["distance"].as_str().unwrap());
        match case["miner"].as_str().unwrap() {
            "multi_similarity" => {
                let miner = MultiSimilarityMiner::new(case["epsilon"].as_f64().unwrap());
                let pairs = mined(&miner, &emb, &labels, None, dist).into_pairs();
                let zip = |a: &[usize], b: &[usize]| {
                    sorted(a.iter().zip(b).map(|(&a, &b)| vec![a, b]).collect())
                };
                assert_eq!(
                    zip(&pairs.anchors_pos, &pairs.positives),
                    index_lists(&case["tuples"][0]),
                    "{id}"
                );
                assert_eq!(
                    zip(&pairs.anchors_neg, &pairs.negatives),
                    index_lists(&case["tuples"][1]),
                    "{id}"
                );
                let loss = MultiSimilarityLoss::default().with_miner(miner);
                check(id, &root, case, |x, l| loss.forward(x, l).unwrap());
            }
            "batch_hard" => {
                let loss = TripletMarginLoss::new(case["margin"].as_f64().unwrap())
                    .with_distance(dist)
                    .with_miner(BatchHardMiner::new());
                if case["reference"].as_bool().unwrap() {
                    check_reference(id, &root, case, &loss, dist);
                    continue;
                }
                let t = mined(&BatchHardMiner::new(), &emb, &labels, None, dist).into_triplets();
                let got: Vec<Vec<usize>> = (0..t.len())
                    .map(|k| vec![t.anchors[k], t.positives[k], t.negatives[k]])
                    .collect();
                assert_eq!(sorted(got), index_lists(&case["tuples"]), "{id}");
                check(id, &root, case, |x, l| loss.forward(x, l).unwrap());
            }
            other => panic!("unknown miner {other}"),
        }
    }
}

/// Anchors are rows 0-7, the reference set rows 8-15 (a leaf of its own).
fn check_reference(id: &str, root: &Value, case: &Value, loss: &TripletMarginLoss, dist: Distance) {
    let labels: Vec<i64> = root["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().unwrap())
        .collect();
    let rows = root["embeddings"].as_array().unwrap();
    let half = rows.len() / 2;
    let emb = floats(&root["embeddings"]);
    let cols = emb.len() / rows.len();
    let t = mined(
        &BatchHardMiner::new(),
        &emb[..half * cols],
        &labels[..half],
        Some((&emb[half * cols..], &labels[half..])),
        dist,
    )
    .into_triplets();
    let got: Vec<Vec<usize>> = (0..t.len())
        .map(|k| vec![t.anchors[k], t.positives[k], t.negatives[k]])
        .collect();
    assert_eq!(sorted(got), index_lists(&case["tuples"]), "{id}");
    let device = device();
    let part = |range: std::ops::Range<usize>| Value::Array(rows[range].to_vec());
    for f64_run in [false, true] {
        let (suffix, value_tol, rtol, atol) = if f64_run {
            ("", 1e-9, 1e-9, 1e-15)
        } else {
            ("_f32", 1e-5, 1e-4, 1e-6)
        };
        let anchors = input(&part(0..half), f64_run, &device);
        let reference = input(&part(half..rows.len()), f64_run, &device);
        let out = loss
            .forward_with_reference(
                anchors.clone(),
                &labels[..half],
                reference.clone(),
                &labels[half..],
            )
            .unwrap();
        let got = out.clone().into_scalar::<f64>();
        let want = case[format!("value{suffix}")].as_f64().unwrap();
        assert!(
            (got - want).abs() <= value_tol * want.abs(),
            "{id}{suffix}: {got} vs {want}"
        );
        let grads = out.backward();
        for (x, key) in [(&anchors, "grad"), (&reference, "ref_grad")] {
            let g: Vec<f64> = x.grad(&grads).unwrap().into_data().iter::<f64>().collect();
            let w = floats(&case[format!("{key}{suffix}")]);
            assert_eq!(g.len(), w.len());
            for (k, (g, w)) in g.iter().zip(&w).enumerate() {
                assert!(
                    (g - w).abs() <= atol + rtol * w.abs(),
                    "{id}{suffix}: {key} [{k}] {g} vs {w}"
                );
            }
        }
    }
}
