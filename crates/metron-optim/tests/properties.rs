//! ASAM (no oracle record): the perturbation against the formula computed by hand from the
//! same gradients; gradient clipping and schedules against hand-computed values.

use burn::module::Param;
use burn::nn::Linear;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_optim::{MultiStep, SamConfig, WarmupCosine, clip_grad_norm};

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn f64s<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec_as::<f64>()
        .unwrap()
}

fn model(device: &Device) -> Linear {
    let w = vec![0.5, -1.0, 2.0, 0.25, -0.75, 1.5];
    Linear {
        weight: Param::from_tensor(
            Tensor::from_data(TensorData::new(w, [3, 2]), (device, DType::F64)).require_grad(),
        ),
        bias: Some(Param::from_tensor(
            Tensor::from_data(TensorData::new(vec![0.1, -0.2], [2]), (device, DType::F64))
                .require_grad(),
        )),
    }
}

fn loss(m: &Linear, device: &Device) -> Tensor<1> {
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0, 2.0, -1.0, 0.5, 0.0, 3.0], [2, 3]),
        (device, DType::F64),
    );
    m.forward(x).powi_scalar(2).sum()
}

#[test]
fn asam_perturbation_follows_the_formula_and_undoes_by_subtraction() {
    let device = device();
    let (rho, eta) = (0.5, 0.01);
    let m = model(&device);
    let grads = GradientsParams::from_grads(loss(&m, &device).backward(), &m);
    let w = f64s(m.weight.val());
    let b = f64s(m.bias.as_ref().unwrap().val());
    let gw = f64s(grads.get::<2>(m.weight.id).unwrap());
    let gb = f64s(grads.get::<1>(m.bias.as_ref().unwrap().id).unwrap());
    // T = |w| + eta on the weight, 1 on the bias; e = rho T^2 g / (||T g|| + 1e-16).
    let tw: Vec<f64> = w.iter().map(|v| v.abs() + eta).collect();
    let norm = (tw
        .iter()
        .zip(&gw)
        .map(|(t, g)| (t * g).powi(2))
        .sum::<f64>()
        + gb.iter().map(|g| g * g).sum::<f64>())
    .sqrt();
    let ew: Vec<f64> = tw
        .iter()
        .zip(&gw)
        .map(|(t, g)| rho * t * t * g / (norm + 1e-16))
        .collect();
    let eb: Vec<f64> = gb.iter().map(|g| rho * g / (norm + 1e-16)).collect();
    let mut sam = SamConfig::asam(rho, eta).init(SgdConfig::new().init());
    let (perturbed, undo) = sam.ascend(m, &grads);
    assert!(
        (undo.grad_norm - norm).abs() < 1e-12 * norm,
        "{} vs {norm}",
        undo.grad_norm
    );
    for (got, want) in f64s(perturbed.weight.val())
        .iter()
        .zip(w.iter().zip(&ew).map(|(a, e)| a + e))
    {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    for (got, want) in f64s(perturbed.bias.as_ref().unwrap().val())
        .iter()
        .zip(b.iter().zip(&eb).map(|(a, e)| a + e))
    {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // Descent: back to w (up to rounding), then SGD with the gradient at w + e.
    let grads2 = GradientsParams::from_grads(loss(&perturbed, &device).backward(), &perturbed);
    let g2 = f64s(grads2.get::<2>(perturbed.weight.id).unwrap());
    let stepped = sam.descend(0.1, perturbed, undo, grads2);
    for ((got, w), g) in f64s(stepped.weight.val()).iter().zip(&w).zip(&g2) {
        assert!(
            (got - (w - 0.1 * g)).abs() < 1e-12,
            "{got} vs {}",
            w - 0.1 * g
        );
    }
}

#[test]
fn one_call_step_equals_the_two_pass_api() {
    let device = device();
    let mut a = SamConfig::adaptive(2.0).init(SgdConfig::new().init());
    let mut b = a.clone();
    let (m1, l1) = a.step(0.05, model(&device), |m| loss(m, &device));
    let m2 = model(&device);
    let l = loss(&m2, &device);
    let l2 = l.clone().into_scalar::<f64>();
    let grads = GradientsParams::from_grads(l.backward(), &m2);
    let (p, undo) = b.ascend(m2, &grads);
    let grads = GradientsParams::from_grads(loss(&p, &device).backward(), &p);
    let m2 = b.descend(0.05, p, undo, grads);
    assert_eq!(l1, l2);
    assert_eq!(f64s(m1.weight.val()), f64s(m2.weight.val()));
}

#[test]
fn clip_grad_norm_scales_only_above_the_threshold() {
    let device = device();
    let m = model(&device);
    let grads = GradientsParams::from_grads(loss(&m, &device).backward(), &m);
    let gw = f64s(grads.get::<2>(m.weight.id).unwrap());
    let gb = f64s(grads.get::<1>(m.bias.as_ref().unwrap().id).unwrap());
    let total = gw.iter().chain(&gb).map(|g| g * g).sum::<f64>().sqrt();
    let (clipped, norm) = clip_grad_norm(&m, grads, 1.0);
    assert!((norm - total).abs() < 1e-12 * total);
    assert!(total > 1.0);
    let cw = f64s(clipped.get::<2>(m.weight.id).unwrap());
    let cb = f64s(clipped.get::<1>(m.bias.as_ref().unwrap().id).unwrap());
    let after = cw.iter().chain(&cb).map(|g| g * g).sum::<f64>().sqrt();
    assert!((after - total / (total + 1e-6)).abs() < 1e-9, "{after}");
    let (same, _) = clip_grad_norm(&m, clipped, 10.0);
    assert_eq!(f64s(same.get::<2>(m.weight.id).unwrap()), cw);
}

#[test]
fn schedules_hand_computed() {
    let s = WarmupCosine::new(1.0, 0, 100);
    assert_eq!(s.lr(0), 1.0);
    assert!((s.lr(50) - 0.5).abs() < 1e-12);
    assert_eq!(s.lr(100), 1e-6);
    let w = WarmupCosine::new(2.0, 10, 110);
    assert_eq!(w.lr(5), 1.0);
    assert_eq!(w.lr(10), 2.0);
    assert!((w.lr(60) - 1.0).abs() < 1e-12);
    let m = MultiStep::cgd(1e-4, 20);
    assert_eq!(m.milestones, vec![12, 16]);
    assert_eq!(m.lr(11), 1e-4);
    assert!((m.lr(12) - 1e-5).abs() < 1e-18);
    assert!((m.lr(19) - 1e-6).abs() < 1e-18);
}

/// A model with the parameters ASAM must tell apart: a linear weight and a normalisation scale
/// (PyTorch's `weight`s) against a bias, a normalisation shift and a class-token-like vector.
#[derive(burn::module::Module, Debug)]
struct Mixed {
    lin: Linear,
    norm: burn::nn::LayerNorm,
    cls_token: Param<Tensor<1>>,
}

#[test]
fn asam_scales_only_parameters_named_weight_as_samsunglabs_does() {
    let device = device();
    let (rho, eta) = (0.5, 0.01);
    let mut norm = burn::nn::LayerNormConfig::new(2).init(&device);
    norm.gamma = Param::from_tensor(
        Tensor::from_data(TensorData::new(vec![1.5, -0.5], [2]), (&device, DType::F64))
            .require_grad(),
    );
    norm.beta = Some(Param::from_tensor(
        Tensor::from_data(TensorData::new(vec![0.2, 0.3], [2]), (&device, DType::F64))
            .require_grad(),
    ));
    let m = Mixed {
        lin: model(&device),
        norm,
        cls_token: Param::from_tensor(
            Tensor::from_data(TensorData::new(vec![0.7, -0.4], [2]), (&device, DType::F64))
                .require_grad(),
        ),
    };
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0, 2.0, -1.0, 0.5, 0.0, 3.0], [2, 3]),
        (&device, DType::F64),
    );
    let out = m.norm.forward(m.lin.forward(x)) + m.cls_token.val().unsqueeze::<2>();
    let grads = GradientsParams::from_grads(out.powi_scalar(2).sum().backward(), &m);
    // (parameter value, gradient, scaled by |w| + eta?) in a fixed order.
    let params: Vec<(Vec<f64>, Vec<f64>, bool)> = vec![
        (
            f64s(m.lin.weight.val()),
            f64s(grads.get::<2>(m.lin.weight.id).unwrap()),
            true,
        ),
        {
            let b = m.lin.bias.as_ref().unwrap();
            (f64s(b.val()), f64s(grads.get::<1>(b.id).unwrap()), false)
        },
        (
            f64s(m.norm.gamma.val()),
            f64s(grads.get::<1>(m.norm.gamma.id).unwrap()),
            true,
        ),
        {
            let b = m.norm.beta.as_ref().unwrap();
            (f64s(b.val()), f64s(grads.get::<1>(b.id).unwrap()), false)
        },
        (
            f64s(m.cls_token.val()),
            f64s(grads.get::<1>(m.cls_token.id).unwrap()),
            false,
        ),
    ];
    let t = |w: f64, scaled: bool| if scaled { w.abs() + eta } else { 1.0 };
    let norm = params
        .iter()
        .flat_map(|(w, g, s)| w.iter().zip(g).map(move |(w, g)| (t(*w, *s) * g).powi(2)))
        .sum::<f64>()
        .sqrt();
    let sam = SamConfig::asam(rho, eta).init(SgdConfig::new().init());
    let (p, _) = sam.ascend(m, &grads);
    let got = [
        f64s(p.lin.weight.val()),
        f64s(p.lin.bias.as_ref().unwrap().val()),
        f64s(p.norm.gamma.val()),
        f64s(p.norm.beta.as_ref().unwrap().val()),
        f64s(p.cls_token.val()),
    ];
    for ((w, g, s), got) in params.iter().zip(&got) {
        for ((w, g), got) in w.iter().zip(g).zip(got) {
            let want = w + rho * t(*w, *s).powi(2) * g / (norm + 1e-16);
            assert!((got - want).abs() < 1e-12, "scaled {s}: {got} vs {want}");
        }
    }
}
