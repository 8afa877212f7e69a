//! Every record of `../shared/oracles/sam.json`: two full SAM / adaptive-SAM steps of a
//! Linear(4, 3) with mean cross entropy over SGD (with and without momentum and weight decay):
//! losses, gradients, perturbed weights and weights after each step, in f32 at rtol 1e-5 and
//! in f64 at rtol 1e-7 (Burn keeps SGD's momentum and decay factors in f32: 2.6e-8 relative).

use std::path::PathBuf;

use burn::module::Param;
use burn::nn::Linear;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_core::{read_npy_f64, read_npy_i64};
use metron_optim::{SamConfig, SamVariant};
use serde_json::Value;

fn oracles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles")
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn tensor<const D: usize>(
    v: Vec<f64>,
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), (device, dtype))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec_as::<f64>()
        .unwrap()
}

/// torch's `W` [out, in] from Burn's `[in, out]` weight.
fn torch_weight(w: Tensor<2>) -> Vec<f64> {
    host(w.transpose())
}

struct Check {
    rtol: f64,
}

impl Check {
    fn close(&self, what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-9 + self.rtol * w.abs(),
                "{what}[{k}]: {g} vs {w}"
            );
        }
    }

    fn params(&self, what: &str, model: &Linear, want: &Value) {
        self.close(
            &format!("{what} weight"),
            &torch_weight(model.weight.val()),
            &flat(&want["weight"]),
        );
        let b = model.bias.as_ref().unwrap().val();
        self.close(&format!("{what} bias"), &host(b), &flat(&want["bias"]));
    }

    fn grads(&self, what: &str, model: &Linear, grads: &GradientsParams, want: &Value) {
        let gw = grads.get::<2>(model.weight.id).unwrap();
        self.close(
            &format!("{what} d/dweight"),
            &torch_weight(gw),
            &flat(&want["weight"]),
        );
        let gb = grads.get::<1>(model.bias.as_ref().unwrap().id).unwrap();
        self.close(&format!("{what} d/dbias"), &host(gb), &flat(&want["bias"]));
    }
}

#[test]
fn sam_json_every_record_and_step() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(oracles().join("sam.json")).unwrap())
            .unwrap();
    let device = metron_core::parse_device("cpu").unwrap().autodiff();
    let x = read_npy_f64(oracles().join("inputs/sam_X.npy")).unwrap();
    let y = read_npy_i64(oracles().join("inputs/sam_y.npy")).unwrap();
    let w0 = read_npy_f64(oracles().join("inputs/sam_W0.npy")).unwrap();
    let b0 = read_npy_f64(oracles().join("inputs/sam_b0.npy")).unwrap();
    let (n, classes) = (y.len(), 3);
    let mut steps_checked = 0;
    for dtype in [DType::F32, DType::F64] {
        let check = Check {
            rtol: if dtype == DType::F32 { 1e-5 } else { 1e-7 },
        };
        let xs = tensor(x.iter().copied().collect(), [n, 4], &device, dtype);
        let onehot: Vec<f64> = (0..n * classes)
            .map(|k| f64::from(y[k / classes] as usize == k % classes))
            .collect();
        let onehot = tensor(onehot, [n, classes], &device, dtype);
        let loss = |m: &Linear| {
            (log_softmax(m.forward(xs.clone()), 1) * onehot.clone())
                .sum()
                .neg()
                .mul_scalar(1.0 / n as f64)
        };
        for rec in doc["records"].as_array().unwrap() {
            let what = format!("{} {} {dtype:?}", rec["variant"], rec["base_optimizer"]);
            // Burn stores Linear weights as [in, out].
            let w: Vec<f64> = (0..12).map(|k| w0[[k % 3, k / 3]]).collect();
            let mut model = Linear {
                weight: Param::from_tensor(tensor(w, [4, 3], &device, dtype).require_grad()),
                bias: Some(Param::from_tensor(
                    tensor(b0.iter().copied().collect(), [3], &device, dtype).require_grad(),
                )),
            };
            let cfg = &rec["base_cfg"];
            let mut sgd = SgdConfig::new();
            if let Some(m) = cfg["momentum"].as_f64() {
                sgd = sgd.with_momentum(Some(MomentumConfig {
                    momentum: m,
                    dampening: 0.0,
                    nesterov: false,
                }));
            }
            if let Some(wd) = cfg["weight_decay"].as_f64() {
                sgd = sgd.with_weight_decay(Some(WeightDecayConfig { penalty: wd as f32 }));
            }
            let rho = rec["rho"].as_f64().unwrap();
            let config = if rec["adaptive"].as_bool().unwrap() {
                SamConfig::adaptive(rho)
            } else {
                SamConfig::sam(rho)
            };
            assert_ne!(config.variant, SamVariant::Asam { eta: 0.0 });
            let mut sam = config.init(sgd.init());
            let lr = cfg["lr"].as_f64().unwrap();
            for (s, step) in rec["steps"].as_array().unwrap().iter().enumerate() {
                let what = format!("{what} step {s}");
                check.params(&format!("{what} before"), &model, &step["params_before"]);
                let l = loss(&model);
                check.close(
                    &format!("{what} loss at w"),
                    &host(l.clone()),
                    &[step["loss_at_w"].as_f64().unwrap()],
                );
                let grads = GradientsParams::from_grads(l.backward(), &model);
                check.grads(&format!("{what} at w"), &model, &grads, &step["grad_at_w"]);
                let (perturbed, undo) = sam.ascend(model, &grads);
                check.params(
                    &format!("{what} w + e"),
                    &perturbed,
                    &step["params_perturbed_w_plus_e"],
                );
                let l = loss(&perturbed);
                check.close(
                    &format!("{what} loss at w + e"),
                    &host(l.clone()),
                    &[step["loss_at_w_plus_e"].as_f64().unwrap()],
                );
                let grads = GradientsParams::from_grads(l.backward(), &perturbed);
                check.grads(
                    &format!("{what} at w + e"),
                    &perturbed,
                    &grads,
                    &step["grad_at_w_plus_e"],
                );
                model = sam.descend(lr, perturbed, undo, grads);
                check.params(&format!("{what} after"), &model, &step["params_after"]);
                steps_checked += 1;
            }
        }
    }
    // 4 records x 2 steps, in two precisions.
    assert_eq!(steps_checked, 16);
}
