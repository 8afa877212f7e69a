//! `OptimizerSetting` steps equal `torch.optim` on the same gradients
//! (`tests/oracles/optim_steps.json`, made by `tests/oracles/make_review_oracles.py`): three
//! steps of Adam (with and without weight decay), AdamW and SGD with momentum (plain, weight
//! decay, Nesterov) on a `[3, 4]` weight and a `[3]` bias. The gradients include entries of 1e-6 to
//! 1e-7, where Burn's default Adam epsilon (1e-5) moves the result by ~1e-2.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_train::OptimizerSetting;
use serde_json::Value;

fn oracle() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oracles/optim_steps.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

#[derive(Module, Debug)]
struct Affine {
    w: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
}

fn tensor<const D: usize>(
    v: &[f64],
    shape: [usize; D],
    f64_run: bool,
    device: &Device,
) -> Tensor<D> {
    if f64_run {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), (device, DType::F64))
    } else {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }
}

/// Three steps of `optimizer` with the oracle's gradients (as the gradient of
/// `sum(w * G_w) + sum(b * G_b)`); the parameters after each step, flattened `w` then `b`.
fn run(root: &Value, mut optimizer: ModuleOptimizer, lr: f64, f64_run: bool) -> Vec<Vec<f64>> {
    let device = metron_core::parse_device("cpu").unwrap().autodiff();
    let mut model = Affine {
        w: Param::from_tensor(
            tensor(&floats(&root["params"]["w"]), [3, 4], f64_run, &device).require_grad(),
        ),
        b: Param::from_tensor(
            tensor(&floats(&root["params"]["b"]), [3], f64_run, &device).require_grad(),
        ),
    };
    let mut out = Vec::new();
    for g in root["grads"].as_array().unwrap() {
        let gw = tensor(&floats(&g["w"]), [3, 4], f64_run, &device);
        let gb = tensor(&floats(&g["b"]), [3], f64_run, &device);
        let loss = (model.w.val() * gw).sum() + (model.b.val() * gb).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        let mut now: Vec<f64> = model.w.val().into_data().iter::<f64>().collect();
        now.extend(model.b.val().into_data().iter::<f64>());
        out.push(now);
    }
    out
}

fn expected(case: &Value, key: &str) -> Vec<Vec<f64>> {
    case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut v = floats(&p["w"]);
            v.extend(floats(&p["b"]));
            v
        })
        .collect()
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn setting(case: &Value) -> OptimizerSetting {
    let f = |k: &str| case[k].as_f64().unwrap();
    match case["optimizer"].as_str().unwrap() {
        kind @ ("adam" | "adamw") => {
            assert_eq!(case["amsgrad"], false);
            let (weight_decay, epsilon) = (f("weight_decay"), f("eps"));
            let betas = [
                case["betas"][0].as_f64().unwrap(),
                case["betas"][1].as_f64().unwrap(),
            ];
            if kind == "adam" {
                OptimizerSetting::Adam {
                    weight_decay,
                    betas,
                    epsilon,
                }
            } else {
                OptimizerSetting::AdamW {
                    weight_decay,
                    betas,
                    epsilon,
                }
            }
        }
        "sgd" => OptimizerSetting::Sgd {
            momentum: f("momentum"),
            weight_decay: f("weight_decay"),
            dampening: f("dampening"),
            nesterov: case["nesterov"].as_bool().unwrap(),
        },
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn steps_equal_torch_optim_on_the_same_gradients() {
    let root = oracle();
    for case in root["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let s = setting(case);
        // The constructors are PyTorch's defaults, which these cases use.
        let default = match &s {
            OptimizerSetting::Adam { weight_decay, .. } => OptimizerSetting::adam(*weight_decay),
            OptimizerSetting::AdamW { weight_decay, .. } => OptimizerSetting::adamw(*weight_decay),
            OptimizerSetting::Sgd {
                momentum,
                weight_decay,
                nesterov: false,
                ..
            } => OptimizerSetting::sgd(*momentum, *weight_decay),
            nesterov => nesterov.clone(),
        };
        assert_eq!(default, s, "{name}: the default constructor is not torch's");
        let lr = case["lr"].as_f64().unwrap();
        for (f64_run, key) in [(false, "after_f32"), (true, "after")] {
            let got = run(&root, s.init(), lr, f64_run);
            let want = expected(case, key);
            for (step, (g, w)) in got.iter().zip(&want).enumerate() {
                for (k, (g, w)) in g.iter().zip(w).enumerate() {
                    // Burn keeps the hyper-parameters in f32 (beta^t too): 1e-6 relative.
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs() + 1e-7,
                        "{name} ({key}) step {}: parameter {k} = {g} vs torch {w}",
                        step + 1
                    );
                }
            }
        }
    }
}

#[test]
fn burns_default_adam_epsilon_would_not_match() {
    let root = oracle();
    let case = &root["cases"][0];
    assert_eq!(case["name"], "adam");
    let lr = case["lr"].as_f64().unwrap();
    let burn_default = run(&root, AdamConfig::new().init(), lr, false);
    let gap = max_abs_diff(&burn_default, &expected(case, "after_f32"));
    assert!(gap > 1e-3, "Burn's epsilon 1e-5 gave torch's steps ({gap})");
}
