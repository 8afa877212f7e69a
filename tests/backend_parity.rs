//! Backend parity: every loss (value and gradient with respect to its inputs), every descriptor,
//! every backbone family and one SAM training step of a CGD model, run on each compiled-in
//! non-CPU device and compared with the CPU (Burn flex) result of the same computation on the
//! same weights and inputs. Weights are built on the CPU (seeded: the same ones for every run)
//! and copied to the device with `Module::fork`; inputs are host data uploaded to both.
//!
//! Devices: `wgpu` (feature `wgpu`); `tch` (feature `tch`), plus `tch:cuda:0` when
//! `METRON_TEST_CUDA=1`; `cuda:0` (feature `cuda`).
//!
//! Tolerance: an element passes when `|device - cpu| <= rtol |cpu| + atol * max(1, max |cpu|)`,
//! the maximum taken over the whole output (tensor) it belongs to. The atol term only matters
//! for elements near zero, whose f32 rounding error is set by the size of the terms that
//! cancelled in them, not by their own size: rtol 1e-4 with atol 1e-6 for losses and
//! descriptors, rtol 1e-4 with atol 2e-5 for backbones (see `BACKBONE_TOL`), rtol 1e-3 with
//! atol 1e-5 for the weights after a SAM step.
//!
//! Each test runs all of its cases and reports every mismatch (and every panic) at once.
#![cfg(any(feature = "wgpu", feature = "tch", feature = "cuda"))]

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::AdamConfig;
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use metron::backbones::{
    BlockKind, ResNetConfig, SaigConfig, Vgg16Config, VisionTransformer, VitConfig,
};
use metron::core::{parse_device, seeded_init};
use metron::descriptors::{
    CgdHeadConfig, Gap, GemConfig, Mac, MetaClassEnsembleHead, MetaClassEnsembleHeadConfig,
    SmdConfig, Spoc,
};
use metron::losses::{
    ClassifierLossConfig, ContrastiveLoss, CrossViewInfoNce, Distance, LabelSmoothingCrossEntropy,
    MetaClassCrossEntropy, MultiSimilarityLoss, NtXentLoss, ProxyAnchorLossConfig, Reducer,
    SemiSoftTriHardLoss, SmoothApLoss, SoftMarginTripletLoss, TripletMarginLoss, TripletSelection,
};
use metron::optim::SamConfig;
use metron::systems::cgd::{CgdModel, CgdModelConfig};

/// The devices under test, by their `--device` strings.
fn device_names() -> Vec<&'static str> {
    let cuda = std::env::var("METRON_TEST_CUDA").as_deref() == Ok("1");
    [
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "tch"), "tch"),
        (cfg!(feature = "tch") && cuda, "tch:cuda:0"),
        (cfg!(feature = "cuda"), "cuda:0"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

fn cpu() -> Device {
    parse_device("cpu").expect("the CPU reference needs the default `flex` feature")
}

#[derive(Debug, Clone, Copy)]
struct Tol {
    rtol: f64,
    atol: f64,
}

const TOL: Tol = Tol {
    rtol: 1e-4,
    atol: 1e-6,
};

/// Deep networks in f32: the CPU's own results for ResNet-18 (width 8) differ from an f64 run by
/// up to 8e-6 of each output's largest value (gradients of the last convolutions), wgpu's by up
/// to 1.2e-5, so two correct f32 backends can differ by ~2e-5 of that scale.
const BACKBONE_TOL: Tol = Tol {
    rtol: 1e-4,
    atol: 2e-5,
};

const SAM_TOL: Tol = Tol {
    rtol: 1e-3,
    atol: 1e-5,
};

/// Named host copies of what a computation produced.
type Outputs = Vec<(String, Vec<f32>)>;

/// One computation, run once per device: `run(device)` gets the plain device and builds its
/// inputs (and copies its weights) there.
type Case<'a> = (&'a str, Box<dyn Fn(&Device) -> Outputs + 'a>);

fn compare(case: &str, device: &str, cpu: &Outputs, got: &Outputs, tol: Tol) -> Vec<String> {
    let mut failures = Vec::new();
    if cpu.len() != got.len() {
        return vec![format!(
            "{case} on {device}: {} outputs vs {} on the CPU",
            got.len(),
            cpu.len()
        )];
    }
    for ((name, want), (name2, have)) in cpu.iter().zip(got) {
        assert_eq!(name, name2);
        if want.len() != have.len() {
            failures.push(format!(
                "{case}/{name} on {device}: {} values vs {} on the CPU",
                have.len(),
                want.len()
            ));
            continue;
        }
        let scale = want.iter().fold(1.0f64, |m, &v| m.max((v as f64).abs()));
        let mut worst: Option<(usize, f64)> = None;
        let mut bad = 0usize;
        for (i, (&w, &h)) in want.iter().zip(have).enumerate() {
            let (w, h) = (w as f64, h as f64);
            let allowed = tol.rtol * w.abs() + tol.atol * scale;
            let err = (w - h).abs();
            // NaN on either side is a failure (a NaN comparison is false).
            let ok = err <= allowed;
            if !ok {
                bad += 1;
                let ratio = if err.is_nan() {
                    f64::INFINITY
                } else {
                    err / allowed
                };
                if worst.is_none_or(|(_, r)| ratio > r) {
                    worst = Some((i, ratio));
                }
            }
        }
        if let Some((i, ratio)) = worst {
            failures.push(format!(
                "{case}/{name} on {device}: {bad} of {} values off (worst [{i}]: {} vs CPU {}, \
                 {ratio:.1}x the tolerance)",
                want.len(),
                have[i],
                want[i]
            ));
        }
    }
    failures
}

fn describe_panic(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// Runs every case on the CPU and on every device; fails listing every mismatch.
fn check_all(cases: Vec<Case<'_>>, tol: Tol) {
    let cpu = cpu();
    let devices: Vec<(&str, Device)> = device_names()
        .into_iter()
        .map(|n| (n, parse_device(n).unwrap()))
        .collect();
    let mut failures = Vec::new();
    for (case, run) in &cases {
        let want = match catch_unwind(AssertUnwindSafe(|| run(&cpu))) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{case} on cpu panicked: {}", describe_panic(e)));
                continue;
            }
        };
        // The reference itself must say something: finite, and not identically zero.
        for (name, values) in &want {
            if values.iter().any(|v| !v.is_finite()) || values.iter().all(|&v| v == 0.0) {
                failures.push(format!("{case}/{name} on cpu is non-finite or all zero"));
            }
        }
        for (name, device) in &devices {
            let t = std::time::Instant::now();
            match catch_unwind(AssertUnwindSafe(|| run(device))) {
                Ok(got) => failures.extend(compare(case, name, &want, &got, tol)),
                Err(e) => {
                    failures.push(format!("{case} on {name} panicked: {}", describe_panic(e)))
                }
            }
            eprintln!("{case} on {name}: {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es) against the CPU:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Host data and small helpers.

/// `shape` of i.i.d. N(0, 1) values drawn from `seed` on the host.
fn normal(seed: u64, shape: &[usize]) -> TensorData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    TensorData::new(v, shape.to_vec())
}

/// `[rows, cols]` of unit rows (the L2-normalised embeddings several losses expect).
fn unit_rows(seed: u64, rows: usize, cols: usize) -> TensorData {
    let v = normal(seed, &[rows, cols]).try_to_vec::<f32>().unwrap();
    let unit: Vec<f32> = v
        .chunks(cols)
        .flat_map(|r| {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter().map(move |x| x / n).collect::<Vec<_>>()
        })
        .collect();
    TensorData::new(unit, [rows, cols])
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("read a float tensor back")
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    t.flatten(0, D - 1)
}

/// A leaf that requires its gradient, on `ad` (an autodiff device).
fn leaf<const D: usize>(data: &TensorData, ad: &Device) -> Tensor<D> {
    Tensor::from_data(data.clone(), ad).require_grad()
}

/// The outputs' values, then the gradients `grads_of` reads from the backward pass of a fixed
/// random weighting of the outputs (so that every output element gets its own weight).
fn values_and_grads(
    outs: Vec<(&str, Tensor<1>)>,
    grads_of: impl FnOnce(&Gradients) -> Vec<(String, Tensor<1>)>,
) -> Outputs {
    let probe = outs
        .iter()
        .enumerate()
        .map(|(k, (_, t))| {
            let n = t.dims()[0];
            let w = Tensor::<1>::from_data(normal(9000 + k as u64, &[n]), &t.device());
            (t.clone() * w).sum()
        })
        .reduce(|a, b| a + b)
        .expect("at least one output");
    let grads = probe.backward();
    let mut result: Outputs = outs
        .into_iter()
        .map(|(n, t)| (n.to_string(), host(t)))
        .collect();
    result.extend(
        grads_of(&grads)
            .into_iter()
            .map(|(n, t)| (format!("grad {n}"), host(t))),
    );
    result
}

/// Every float parameter's gradient, named by its path in the module.
fn param_grads<M: Module>(module: &M, grads: &Gradients) -> Vec<(String, Tensor<1>)> {
    struct Collect<'a> {
        grads: &'a Gradients,
        path: Vec<String>,
        out: Vec<(String, Tensor<1>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.push((self.path.join("."), flat(g)));
            }
        }
    }
    let mut c = Collect {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// Every float parameter's value (BatchNorm running statistics included), by path.
fn param_values<M: Module>(module: &M) -> Outputs {
    struct Collect {
        path: Vec<String>,
        out: Outputs,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out
                .push((self.path.join("."), host(param.val().inner())));
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// A module built on the CPU (autodiff, so that its parameters require gradients) with seeded
/// weights: the same weights at every call.
fn on_cpu<M: Module>(seed: u64, init: impl FnOnce(&Device) -> M) -> M {
    let ad = cpu().autodiff();
    seeded_init(&ad, seed, || Ok::<_, ()>(init(&ad))).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Losses: value and gradient with respect to the embeddings (and learnable weights).

const N: usize = 12;
const DIM: usize = 16;
/// 4 classes x 3, shuffled.
const LABELS: [i64; N] = [2, 0, 1, 3, 0, 2, 1, 3, 3, 0, 2, 1];
/// 4 classes x 3, class-contiguous (Smooth-AP's layout).
const BLOCKS: [i64; N] = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];

/// A loss of one `[N, D]` embedding tensor: its value and its gradient.
fn embedding_loss<'a>(
    data: TensorData,
    f: impl Fn(Tensor<2>) -> Tensor<1> + 'a,
) -> Box<dyn Fn(&Device) -> Outputs + 'a> {
    Box::new(move |device| {
        let x = leaf::<2>(&data, &device.clone().autodiff());
        let loss = f(x.clone());
        values_and_grads(vec![("value", loss)], |g| {
            vec![("embeddings".into(), flat(x.grad(g).unwrap()))]
        })
    })
}

/// A cross-view loss of `(sat, grd)`.
fn cross_view_loss<'a>(
    f: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<1> + 'a,
) -> Box<dyn Fn(&Device) -> Outputs + 'a> {
    let (sat, grd) = (unit_rows(21, 8, DIM), unit_rows(22, 8, DIM));
    Box::new(move |device| {
        let ad = device.clone().autodiff();
        let (s, g) = (leaf::<2>(&sat, &ad), leaf::<2>(&grd, &ad));
        let loss = f(s.clone(), g.clone());
        values_and_grads(vec![("value", loss)], |gr| {
            vec![
                ("sat".into(), flat(s.grad(gr).unwrap())),
                ("grd".into(), flat(g.grad(gr).unwrap())),
            ]
        })
    })
}

/// A loss with learnable weights (built on the CPU by `build`, forked to each device).
fn module_loss<'a, M: Module + 'a>(
    data: TensorData,
    build: impl Fn() -> M + 'a,
    f: impl Fn(&M, Tensor<2>) -> Tensor<1> + 'a,
) -> Box<dyn Fn(&Device) -> Outputs + 'a> {
    Box::new(move |device| {
        let ad = device.clone().autodiff();
        let m = build().fork(&ad);
        let x = leaf::<2>(&data, &ad);
        let loss = f(&m, x.clone());
        values_and_grads(vec![("value", loss)], |g| {
            let mut v = vec![("embeddings".to_string(), flat(x.grad(g).unwrap()))];
            v.extend(param_grads(&m, g));
            v
        })
    })
}

#[test]
fn every_loss_matches_the_cpu_in_value_and_gradient() {
    let raw = normal(1, &[N, DIM]);
    let unit = unit_rows(2, N, DIM);
    let triplet = |selection, distance, reducer| {
        TripletMarginLoss::new(0.2)
            .with_selection(selection)
            .with_distance(distance)
            .with_reducer(reducer)
    };
    let normalized = Distance::Euclidean { normalize: true };
    let cases: Vec<Case<'_>> = vec![
        (
            "triplet all (normalised euclidean, mean non-zero)",
            embedding_loss(raw.clone(), move |x| {
                triplet(TripletSelection::All, normalized, Reducer::MeanNonZero)
                    .forward(x, &LABELS)
                    .unwrap()
            }),
        ),
        (
            "triplet batch-hard (euclidean, mean)",
            embedding_loss(raw.clone(), move |x| {
                triplet(
                    TripletSelection::BatchHard,
                    Distance::Euclidean { normalize: false },
                    Reducer::Mean,
                )
                .forward(x, &LABELS)
                .unwrap()
            }),
        ),
        (
            "triplet semi-hard (cosine, sum)",
            embedding_loss(raw.clone(), move |x| {
                triplet(
                    TripletSelection::FaceNetSemiHard,
                    Distance::Cosine,
                    Reducer::Sum,
                )
                .forward(x, &LABELS)
                .unwrap()
            }),
        ),
        (
            "triplet all (dot product, mean)",
            embedding_loss(unit.clone(), move |x| {
                triplet(TripletSelection::All, Distance::DotProduct, Reducer::Mean)
                    .forward(x, &LABELS)
                    .unwrap()
            }),
        ),
        (
            "CGD batch-hard triplet",
            embedding_loss(raw.clone(), |x| {
                TripletMarginLoss::cgd(0.1).forward(x, &LABELS).unwrap()
            }),
        ),
        (
            "contrastive",
            embedding_loss(raw.clone(), |x| {
                ContrastiveLoss::new(0.1, 0.9).forward(x, &LABELS).unwrap()
            }),
        ),
        (
            "contrastive (cosine)",
            embedding_loss(raw.clone(), |x| {
                ContrastiveLoss {
                    distance: Distance::Cosine,
                    ..ContrastiveLoss::new(0.8, 0.3)
                }
                .forward(x, &LABELS)
                .unwrap()
            }),
        ),
        (
            "NT-Xent",
            embedding_loss(raw.clone(), |x| {
                NtXentLoss::default().forward(x, &LABELS).unwrap()
            }),
        ),
        (
            "multi-similarity",
            embedding_loss(raw.clone(), |x| {
                MultiSimilarityLoss::default().forward(x, &LABELS).unwrap()
            }),
        ),
        (
            "Smooth-AP",
            embedding_loss(unit.clone(), |x| {
                SmoothApLoss::new(3).forward(x, &BLOCKS).unwrap()
            }),
        ),
        (
            "Smooth-AP excluding the query",
            embedding_loss(unit.clone(), |x| {
                SmoothApLoss::new(3)
                    .excluding_query()
                    .forward(x, &BLOCKS)
                    .unwrap()
            }),
        ),
        (
            "label-smoothing cross entropy",
            embedding_loss(normal(3, &[N, 4]), |logits| {
                LabelSmoothingCrossEntropy::default()
                    .forward(logits, &LABELS)
                    .unwrap()
            }),
        ),
        (
            "meta-class cross entropy",
            Box::new(|device: &Device| {
                let x = leaf::<3>(&normal(4, &[N, 3, 5]), &device.clone().autodiff());
                let meta: Vec<i64> = (0..N * 3).map(|k| ((k * 7 + 1) % 5) as i64).collect();
                let loss = MetaClassCrossEntropy.forward(x.clone(), &meta).unwrap();
                values_and_grads(vec![("value", loss)], |g| {
                    vec![("logits".into(), flat(x.grad(g).unwrap()))]
                })
            }),
        ),
        (
            "proxy-anchor",
            module_loss(
                raw.clone(),
                || {
                    ProxyAnchorLossConfig {
                        seed: 5,
                        ..ProxyAnchorLossConfig::new(4, DIM)
                    }
                    .init(&cpu().autodiff())
                },
                |m, x| m.forward(x, &LABELS).unwrap(),
            ),
        ),
        (
            "ArcFace",
            module_loss(
                raw.clone(),
                || ClassifierLossConfig::new(4, DIM).arcface(28.6, 64.0, &cpu().autodiff()),
                |m, x| m.forward(x, &LABELS).unwrap(),
            ),
        ),
        (
            "CosFace",
            module_loss(
                raw.clone(),
                || ClassifierLossConfig::new(4, DIM).cosface(0.35, 64.0, &cpu().autodiff()),
                |m, x| m.forward(x, &LABELS).unwrap(),
            ),
        ),
        (
            "NormSoftmax",
            module_loss(
                raw.clone(),
                || ClassifierLossConfig::new(4, DIM).norm_softmax(0.05, 0.1, &cpu().autodiff()),
                |m, x| m.forward(x, &LABELS).unwrap(),
            ),
        ),
        (
            "ams",
            module_loss(
                unit.clone(),
                || ClassifierLossConfig::new(4, DIM).ams(0.3, 30.0, &cpu().autodiff()),
                |m, x| m.forward(x, &LABELS).unwrap(),
            ),
        ),
        (
            "soft-margin triplet (cross-view)",
            cross_view_loss(|s, g| SoftMarginTripletLoss::default().forward(s, g).unwrap()),
        ),
        (
            "cross-view InfoNCE",
            cross_view_loss(|s, g| CrossViewInfoNce::default().forward(s, g).unwrap()),
        ),
        (
            "SemiSoftTriHard (cross-view)",
            cross_view_loss(|s, g| SemiSoftTriHardLoss::default().forward(s, g).unwrap()),
        ),
    ];
    check_all(cases, TOL);
}

// ---------------------------------------------------------------------------------------------
// Descriptors: forward (and the gradient of a random weighting of the output).

/// A module of one `[B, ...]` input, built on the CPU by `build` (afresh for every run: clones
/// of a BatchNorm share their running statistics) and forked to the device: its outputs, the
/// input gradient and the parameter gradients.
fn descriptor<'a, M: Module + 'a, const D: usize>(
    data: TensorData,
    build: impl Fn() -> M + 'a,
    f: impl Fn(&M, Tensor<D>) -> Vec<(&'static str, Tensor<1>)> + 'a,
) -> Box<dyn Fn(&Device) -> Outputs + 'a> {
    Box::new(move |device| {
        let ad = device.clone().autodiff();
        // `fork` makes every parameter a leaf of the device's graph.
        let m = build().fork(&ad);
        let x = leaf::<D>(&data, &ad);
        let outs = f(&m, x.clone());
        values_and_grads(outs, |g| {
            let mut v = vec![("input".to_string(), flat(x.grad(g).unwrap()))];
            v.extend(param_grads(&m, g));
            v
        })
    })
}

#[test]
fn every_descriptor_matches_the_cpu() {
    let map = normal(31, &[2, 8, 5, 5]);
    let tokens = normal(32, &[2, 6, 8]);
    let empty = || on_cpu(0, |_| Spoc);
    let cases: Vec<Case<'_>> = vec![
        (
            "SPoC",
            descriptor(map.clone(), empty, |_, x: Tensor<4>| {
                vec![("out", flat(Spoc.forward(x)))]
            }),
        ),
        (
            "MAC",
            descriptor(map.clone(), empty, |_, x: Tensor<4>| {
                vec![("out", flat(Mac.forward(x)))]
            }),
        ),
        (
            "GeM p = 3 (clamped)",
            descriptor(
                map.clone(),
                || on_cpu(0, |d| GemConfig::new(3.0).init(d)),
                |m, x: Tensor<4>| vec![("out", flat(m.forward(x)))],
            ),
        ),
        (
            "GeM learnable p",
            descriptor(
                map.clone(),
                || on_cpu(0, |d| GemConfig::new(2.5).learnable().init(d)),
                |m, x: Tensor<4>| vec![("out", flat(m.forward(x)))],
            ),
        ),
        (
            "GeM CGD (signed)",
            descriptor(
                map.clone(),
                || on_cpu(0, |d| GemConfig::cgd().init(d)),
                |m, x: Tensor<4>| vec![("out", flat(m.forward(x)))],
            ),
        ),
        (
            "GAP",
            descriptor(tokens.clone(), empty, |_, x: Tensor<3>| {
                vec![("out", flat(Gap.forward(x)))]
            }),
        ),
        (
            "SMD",
            descriptor(
                tokens.clone(),
                || on_cpu(33, |d| SmdConfig::new(6).init(d)),
                |m, x: Tensor<3>| vec![("out", flat(m.forward(x)))],
            ),
        ),
        (
            "CGD head SMG (BatchNorm training)",
            descriptor(
                normal(34, &[4, 8, 3, 3]),
                || {
                    on_cpu(35, |d| {
                        CgdHeadConfig::new(3)
                            .with_descriptors("SMG")
                            .with_feature_dim(12)
                            .with_in_channels(8)
                            .init(d)
                            .unwrap()
                    })
                },
                |m, x: Tensor<4>| {
                    let out = m.forward(x);
                    vec![
                        ("embedding", flat(out.embedding)),
                        ("logits", flat(out.logits)),
                    ]
                },
            ),
        ),
        (
            "CGD head GS (BatchNorm inference)",
            Box::new(|device: &Device| {
                let head = on_cpu(36, |d| {
                    CgdHeadConfig::new(3)
                        .with_descriptors("GS")
                        .with_feature_dim(8)
                        .with_in_channels(8)
                        .init(d)
                        .unwrap()
                })
                // Without autodiff (and with training flags off): the inference path.
                .valid()
                .fork(device);
                let x = Tensor::<4>::from_data(normal(37, &[4, 8, 3, 3]), device);
                let out = head.forward(x);
                vec![
                    ("embedding".into(), host(out.embedding)),
                    ("logits".into(), host(out.logits)),
                ]
            }),
        ),
        (
            "meta-class ensemble head",
            descriptor(
                normal(38, &[4, 3, 8]),
                || {
                    on_cpu(39, |d| {
                        MetaClassEnsembleHeadConfig {
                            branches: 3,
                            feature_dim: 8,
                            meta_classes: 4,
                            with_fc: true,
                        }
                        .init(d)
                    })
                },
                |m, x: Tensor<3>| {
                    vec![
                        ("logits", flat(m.logits(x.clone()).unwrap())),
                        (
                            "retrieval embedding",
                            flat(MetaClassEnsembleHead::retrieval_embedding(x)),
                        ),
                    ]
                },
            ),
        ),
        (
            // Burn's own GELU gradient is the tanh approximation's on wgpu / cuda; metron uses
            // an erf composition instead (metron_core::gelu), in SMD and ViT.
            "GELU (exact gradient)",
            descriptor(normal(40, &[8, 16]), empty, |_, x: Tensor<2>| {
                vec![("out", flat(metron::core::gelu(x)))]
            }),
        ),
    ];
    check_all(cases, TOL);
}

// ---------------------------------------------------------------------------------------------
// Backbones: each family in its smallest configuration that still has every layer type,
// forward on an autodiff device (BatchNorm in training mode unless frozen), plus the input
// gradient of a random weighting of the output.

fn backbone<'a, M: Module + 'a>(
    image: [usize; 4],
    seed: u64,
    model: impl Fn() -> M + 'a,
    f: impl Fn(&M, Tensor<4>) -> Vec<(&'static str, Tensor<1>)> + 'a,
) -> Box<dyn Fn(&Device) -> Outputs + 'a> {
    descriptor(normal(seed, &image), model, f)
}

#[test]
fn resnet18_matches_the_cpu() {
    // Base width 8 at 64 x 64: every stage, the downsampling projections, BatchNorm with batch
    // statistics, max-pool; the final map is 2 x 2.
    let model = move || {
        on_cpu(41, |d| {
            ResNetConfig::resnet18().with_base_width(8).init(d).unwrap()
        })
    };
    check_all(
        vec![(
            "resnet18 (width 8, 64 x 64)",
            backbone([2, 3, 64, 64], 42, model, |m, x| {
                vec![("features", flat(m.features(x)))]
            }),
        )],
        BACKBONE_TOL,
    );
}

#[test]
fn resnext_bottleneck_matches_the_cpu() {
    // Bottleneck blocks with grouped 3 x 3 convolutions (4 groups), frozen BatchNorm (running
    // statistics), one block per stage, layer3 stride 1, and an input of 112 x 112 so that the
    // 1 x 1 convolutions of stages 1 and 2 take the matrix-product path (maps of >= 14 x 14,
    // strided in stage 2's projection) and the later ones Burn's convolution.
    let config = ResNetConfig {
        block: BlockKind::Bottleneck,
        layers: [1, 1, 1, 1],
        groups: 4,
        width_per_group: 16,
        ..ResNetConfig::resnet50()
    }
    .with_base_width(8)
    .with_frozen_batch_norm(true)
    .with_num_classes(Some(5));
    let model = move || on_cpu(43, |d| config.init(d).unwrap());
    check_all(
        vec![(
            "resnext-style bottleneck (4 groups, width 8, 112 x 112)",
            backbone([2, 3, 112, 112], 44, model, |m, x| {
                vec![("logits", flat(m.forward(x)))]
            }),
        )],
        BACKBONE_TOL,
    );
}

#[test]
fn vgg16_matches_the_cpu() {
    // 32 x 32: every convolution and max-pool down to 1 x 1, then the adaptive average pool
    // to 7 x 7; WGOL's stage outputs too.
    let model = move || on_cpu(45, |d| Vgg16Config::default().init(d));
    check_all(
        vec![(
            "vgg16 (32 x 32)",
            backbone([2, 3, 32, 32], 46, model, |m, x| {
                let s = m.stages(x.clone());
                vec![("forward", flat(m.forward(x))), ("f4", flat(s.f4))]
            }),
        )],
        BACKBONE_TOL,
    );
}

/// Gives a zero-initialised parameter random values (from the host), so that it matters.
fn randomised<const D: usize>(p: &Param<Tensor<D>>, seed: u64) -> Param<Tensor<D>> {
    let shape = p.val().dims();
    let device = p.val().device();
    Param::from_tensor(
        Tensor::from_data(normal(seed, &shape), &device)
            .mul_scalar(0.2)
            .require_grad(),
    )
}

#[test]
fn vit_matches_the_cpu() {
    // 2 blocks, width 32, 4 heads, 8-pixel patches at 32 x 32 (4 x 4 grid + CLS); a 40 x 40
    // input re-grids the position embedding (bicubic, anti-aliased) on the fly.
    let config = VitConfig {
        embed_dim: 32,
        depth: 2,
        heads: 4,
        patch_size: 8,
        image_size: [32, 32],
        mlp_ratio: 2,
    };
    let model = move || {
        on_cpu(47, |d| {
            let mut vit: VisionTransformer = config.init(d).unwrap();
            vit.cls_token = randomised(&vit.cls_token, 48);
            vit.pos_embed = randomised(&vit.pos_embed, 49);
            vit
        })
    };
    check_all(
        vec![
            (
                "ViT (depth 2, width 32, 32 x 32)",
                backbone([2, 3, 32, 32], 50, model, |m, x| {
                    vec![("tokens", flat(m.tokens(x)))]
                }),
            ),
            (
                "ViT at 40 x 40 (resized position embedding)",
                backbone([2, 3, 40, 40], 51, model, |m, x| {
                    vec![("cls", flat(m.forward(x)))]
                }),
            ),
        ],
        BACKBONE_TOL,
    );
}

#[test]
fn saig_matches_the_cpu() {
    // The full convolutional stem (BatchNorm training) at 32 x 32 -> 2 x 2 tokens, 2
    // attention-only blocks of width 32 with 4 heads.
    let config = SaigConfig {
        depth: 2,
        embed_dim: 32,
        heads: 4,
        image_size: [32, 32],
        stem_width: 64,
    };
    let model = move || {
        on_cpu(52, |d| {
            let mut saig = config.init(d).unwrap();
            saig.pos_embed = randomised(&saig.pos_embed, 53);
            saig
        })
    };
    check_all(
        vec![(
            "SAIG (depth 2, width 32, 32 x 32)",
            backbone([2, 3, 32, 32], 54, model, |m, x| {
                vec![("tokens", flat(m.tokens(x)))]
            }),
        )],
        BACKBONE_TOL,
    );
}

// ---------------------------------------------------------------------------------------------
// One SAM step (rho 0.05 around Adam) of a small CGD model.

/// One SAM step (rho 0.05) around Adam (learning rate `lr`, epsilon `eps`) of a small CGD
/// model built on the CPU and forked to `device`: the loss before the step, then every weight
/// and BatchNorm statistic after it.
fn sam_step(device: &Device, lr: f64, eps: f32) -> Outputs {
    let config = CgdModelConfig {
        backbone: "resnet18".into(),
        base_width: 4,
        layer3_stride_1: true,
        frozen_batch_norm: false,
        descriptors: "SG".into(),
        feature_dim: 8,
        ..CgdModelConfig::paper(4)
    };
    let ad = device.clone().autodiff();
    let m: CgdModel = on_cpu(61, |d| config.init(d).unwrap()).fork(&ad);
    let x = Tensor::<4>::from_data(normal(62, &[8, 3, 32, 32]), &ad);
    let labels: Vec<i64> = vec![0, 1, 2, 3, 0, 1, 2, 3];
    let mut sam = SamConfig::sam(0.05).init(AdamConfig::new().with_epsilon(eps).init());
    let (m, loss) = sam.step(lr, m, |m| m.loss_of(x.clone(), &labels).unwrap().total);
    let mut out = vec![("loss".to_string(), vec![loss as f32])];
    // `valid` folds the last pending BatchNorm update into the running statistics (a visitor
    // alone would read them one update behind).
    out.extend(param_values(&m.valid()));
    out
}

#[test]
fn a_sam_step_of_a_cgd_model_matches_the_cpu() {
    // Adam's first step is lr * g / (|g| + eps): with a small eps it is nearly lr * sign(g),
    // and the weights whose gradient is ~eps move by an amount that f32 rounding decides (the
    // CPU's own f32 step differs from an f64 step by up to 2% of the weights' scale there).
    // Its slope in g is at most lr / eps: eps = 0.1 bounds it by 0.1, so a gradient that
    // differs by f32 noise between backends (~1e-4 on a few entries of a ResNet's conv
    // weights after SAM's two passes) moves a weight by ~1e-5, inside the bound (with
    // eps = 1e-2 one weight of 144 landed at 1.1x it). Weights still move by up to
    // lr |g| / (|g| + 0.1): ~1e-3 for |g| ~ 1e-2, a hundred times the tolerance.
    let step = |device: &Device| sam_step(device, 0.01, 0.1);
    let cases: Vec<Case<'_>> = vec![("SAM step, CGD resnet18 width 4", Box::new(step))];
    check_all(cases, SAM_TOL);
}
