//! BatchNorm's running statistics after three training steps equal PyTorch's
//! (`tests/oracles/batch_norm_running.json`, made by `tests/oracles/make_review_oracles.py`):
//! PyTorch folds the unbiased batch variance into `running_var`; Burn's own layer folds the
//! biased one, which the test shows to differ.

use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_ops::{
    RunningVariance, batch_norm_forward, batch_norm_forward_with, batch_norm_relu_forward,
};
use serde_json::Value;

fn oracle() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oracles/batch_norm_running.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs().max(1.0),
            "{what}[{k}]: {g} vs PyTorch {w}"
        );
    }
}

type Step<const D: usize> = dyn Fn(&BatchNorm, Tensor<D>) -> Tensor<D>;

/// Runs the three training steps of `case` through `step`; per step: the output and the
/// running mean and variance.
fn replay<const D: usize>(
    case: &Value,
    f64_run: bool,
    step: &Step<D>,
) -> Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let device = Device::flex().autodiff();
    let c = case["num_features"].as_u64().unwrap() as usize;
    let dims: Vec<usize> = case["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let dims: [usize; D] = dims.try_into().unwrap();
    let mut bn = BatchNormConfig::new(c).init(&device);
    if f64_run {
        // Parameters and buffers in f64 too, so that the whole layer runs in f64.
        let f64s = |v: f64| Tensor::<1>::full([c], v, (&device, DType::F64));
        bn.gamma = Param::from_tensor(f64s(1.0).require_grad());
        bn.beta = Param::from_tensor(f64s(0.0).require_grad());
        bn.running_mean = RunningState::new(f64s(0.0));
        bn.running_var = RunningState::new(f64s(1.0));
    }
    case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let data = floats(x);
            let x = if f64_run {
                Tensor::<D>::from_data(TensorData::new(data, dims), (&device, DType::F64))
            } else {
                let data: Vec<f32> = data.iter().map(|&v| v as f32).collect();
                Tensor::<D>::from_data(TensorData::new(data, dims), &device)
            };
            let y = step(&bn, x);
            (
                values(y),
                values(bn.running_mean.value_sync()),
                values(bn.running_var.value_sync()),
            )
        })
        .collect()
}

fn check_case<const D: usize>(case: &Value) {
    let name = case["name"].as_str().unwrap();
    for f64_run in [false, true] {
        let rtol = if f64_run { 1e-9 } else { 1e-5 };
        let steps = replay::<D>(case, f64_run, &|bn, x| batch_norm_forward(bn, x));
        for (k, ((y, mean, var), want)) in steps
            .iter()
            .zip(case["after"].as_array().unwrap())
            .enumerate()
        {
            let what = format!("{name} f64={f64_run} step {}", k + 1);
            close(&format!("{what} output"), y, &floats(&want["output"]), rtol);
            close(
                &format!("{what} running_mean"),
                mean,
                &floats(&want["running_mean"]),
                rtol,
            );
            close(
                &format!("{what} running_var"),
                var,
                &floats(&want["running_var"]),
                rtol,
            );
        }
        // The fused BatchNorm + ReLU updates the statistics the same way.
        let relu = replay::<D>(case, f64_run, &|bn, x| batch_norm_relu_forward(bn, x));
        for ((_, _, var), (_, _, want)) in relu.iter().zip(&steps) {
            close(&format!("{name} relu running_var"), var, want, rtol);
        }
    }
    // Burn's rule, kept as a named option, is measurably not PyTorch's.
    let biased = replay::<D>(case, false, &|bn, x| {
        batch_norm_forward_with(bn, x, RunningVariance::Biased)
    });
    let want = floats(&case["after"][2]["running_var"]);
    let gap = biased[2]
        .2
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs() / w.abs())
        .fold(0.0, f64::max);
    assert!(
        gap > 1e-3,
        "{name}: biased and unbiased rules agree ({gap})"
    );
}

#[test]
fn running_statistics_equal_pytorchs_after_three_steps() {
    let root = oracle();
    for case in root["cases"].as_array().unwrap() {
        match case["input_shape"].as_array().unwrap().len() {
            4 => check_case::<4>(case),
            2 => check_case::<2>(case),
            other => panic!("unexpected rank {other}"),
        }
    }
}
