//! Losses without an oracle record: finite-difference gradient checks in f64, naive
//! reference implementations written from the definitions, degenerate batches and errors.

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_losses::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn random(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn t64<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), (device, DType::F64))
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// Autodiff gradient of `f` at `x0` against central differences (h = 1e-6), in f64.
fn fd_check<const D: usize>(
    what: &str,
    x0: &[f64],
    shape: [usize; D],
    f: impl Fn(Tensor<D>) -> Tensor<1>,
) {
    let device = device();
    let x = t64(x0, shape, &device).require_grad();
    let loss = f(x.clone());
    let grads = loss.backward();
    let g: Vec<f64> = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_into_vec_as::<f64>()
        .unwrap();
    let h = 1e-6;
    for k in 0..x0.len() {
        let mut plus = x0.to_vec();
        let mut minus = x0.to_vec();
        plus[k] += h;
        minus[k] -= h;
        let fd = (scalar(f(t64(&plus, shape, &device))) - scalar(f(t64(&minus, shape, &device))))
            / (2.0 * h);
        assert!(
            (g[k] - fd).abs() <= 1e-7 + 1e-5 * fd.abs(),
            "{what}: d/dx[{k}] autodiff {} vs finite difference {fd}",
            g[k]
        );
    }
}

const LABELS: [i64; 12] = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];

#[test]
fn finite_difference_gradients_of_pair_and_triplet_losses() {
    let x = random(12, 5, 1);
    let sh = [12, 5];
    for selection in [
        TripletSelection::All,
        TripletSelection::BatchHard,
        TripletSelection::FaceNetSemiHard,
        TripletSelection::SemiHard { margin: 0.4 },
    ] {
        for distance in [
            Distance::Euclidean { normalize: true },
            Distance::Euclidean { normalize: false },
            Distance::Cosine,
        ] {
            let loss = TripletMarginLoss::new(0.3)
                .with_distance(distance)
                .with_selection(selection);
            fd_check(
                &format!("triplet {selection:?} {distance:?}"),
                &x,
                sh,
                |t| loss.forward(t, &LABELS).unwrap(),
            );
        }
    }
    let mut cos = ContrastiveLoss::new(0.9, 0.2);
    cos.distance = Distance::Cosine;
    fd_check("contrastive cosine", &x, sh, |t| {
        cos.forward(t, &LABELS).unwrap()
    });
    fd_check("contrastive", &x, sh, |t| {
        ContrastiveLoss::new(0.1, 0.8).forward(t, &LABELS).unwrap()
    });
    fd_check("ntxent", &x, sh, |t| {
        NtXentLoss::new(0.2).forward(t, &LABELS).unwrap()
    });
    fd_check("multisim", &x, sh, |t| {
        MultiSimilarityLoss::default().forward(t, &LABELS).unwrap()
    });
    fd_check("cgd batch hard", &x, sh, |t| {
        TripletMarginLoss::cgd(0.1).forward(t, &LABELS).unwrap()
    });
    for include in [true, false] {
        let mut l = SmoothApLoss::new(3);
        l.temperature = 0.1;
        l.include_query = include;
        fd_check(&format!("smooth-ap include_query={include}"), &x, sh, |t| {
            l.forward(t, &LABELS).unwrap()
        });
    }
}

#[test]
fn finite_difference_gradients_of_classifier_and_cross_view_losses() {
    let device = device();
    let x = random(12, 5, 2);
    let sh = [12, 5];
    let w = random(5, 4, 3);
    let cfg = ClassifierLossConfig::new(4, 5);
    let mut arc = cfg.arcface(28.6, 16.0, &device);
    arc.weight = Param::from_tensor(t64(&w, [5, 4], &device));
    fd_check("arcface", &x, sh, |t| arc.forward(t, &LABELS).unwrap());
    let mut proxies =
        ProxyAnchorLoss::from_proxies(t64(&random(4, 5, 4), [4, 5], &device), 0.1, 32.0);
    fd_check("proxy anchor", &x, sh, |t| {
        proxies.forward(t, &LABELS).unwrap()
    });
    proxies.alpha = 8.0;
    fd_check("proxy anchor alpha 8", &x, sh, |t| {
        proxies.forward(t, &LABELS).unwrap()
    });
    let sat = random(6, 5, 5);
    let grd = random(6, 5, 6);
    let grd_t = t64(&grd, [6, 5], &device);
    fd_check("soft-margin triplet", &sat, [6, 5], |t| {
        SoftMarginTripletLoss::default()
            .forward(t, grd_t.clone())
            .unwrap()
    });
    fd_check("cross-view infonce", &sat, [6, 5], |t| {
        CrossViewInfoNce { temperature: 0.5 }
            .forward(t, grd_t.clone())
            .unwrap()
    });
    fd_check("semi soft tri hard", &sat, [6, 5], |t| {
        SemiSoftTriHardLoss::default()
            .forward(t, grd_t.clone())
            .unwrap()
    });
    let logits = random(6, 3 * 4, 7);
    let meta: Vec<i64> = (0..18).map(|k| (k * 7 % 4) as i64).collect();
    fd_check("meta-class ce", &logits, [6, 3, 4], |t| {
        MetaClassCrossEntropy.forward(t, &meta).unwrap()
    });
}

/// Smooth-AP straight from the definition, with plain loops.
fn naive_smooth_ap(x: &[f64], n: usize, d: usize, g: usize, tau: f64, include: bool) -> f64 {
    let s = |i: usize, j: usize| (0..d).map(|k| x[i * d + k] * x[j * d + k]).sum::<f64>();
    let sig = |v: f64| 1.0 / (1.0 + (-v / tau).clamp(-50.0, 50.0).exp());
    let mut total = 0.0;
    for i in 0..n {
        let class = |j: usize| j / g == i / g;
        let mut ap = 0.0;
        for k in (0..n).filter(|&k| class(k) && (include || k != i)) {
            let counted = |j: usize| j != k && (include || j != i);
            let r_all = 1.0
                + (0..n)
                    .filter(|&j| counted(j))
                    .map(|j| sig(s(i, j) - s(i, k)))
                    .sum::<f64>();
            let r_pos = 1.0
                + (0..n)
                    .filter(|&j| counted(j) && class(j))
                    .map(|j| sig(s(i, j) - s(i, k)))
                    .sum::<f64>();
            ap += r_pos / r_all;
        }
        total += ap / if include { g } else { g - 1 } as f64;
    }
    1.0 - total / n as f64
}

#[test]
fn smooth_ap_matches_a_naive_implementation_both_ways() {
    let device = device();
    let x = random(12, 4, 8);
    for include in [true, false] {
        let mut l = SmoothApLoss::new(3);
        l.include_query = include;
        l.temperature = 0.05;
        let got = scalar(l.forward(t64(&x, [12, 4], &device), &LABELS).unwrap());
        let want = naive_smooth_ap(&x, 12, 4, 3, 0.05, include);
        assert!(
            (got - want).abs() < 1e-12,
            "include={include}: {got} vs {want}"
        );
    }
}

#[test]
fn facenet_semi_hard_triplet_value_from_the_definition() {
    let device = device();
    let x = random(12, 3, 9);
    let got = scalar(
        TripletMarginLoss::new(0.2)
            .with_distance(Distance::Euclidean { normalize: false })
            .with_selection(TripletSelection::FaceNetSemiHard)
            .with_reducer(Reducer::Mean)
            .forward(t64(&x, [12, 3], &device), &LABELS)
            .unwrap(),
    );
    let dist = |i: usize, j: usize| {
        (0..3)
            .map(|k| (x[i * 3 + k] - x[j * 3 + k]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (mut sum, mut count) = (0.0, 0);
    for (a, &la) in LABELS.iter().enumerate() {
        for p in (0..12).filter(|&p| p != a && LABELS[p] == la) {
            let negs: Vec<usize> = (0..12).filter(|&m| LABELS[m] != la).collect();
            let beyond = negs.iter().copied().filter(|&m| dist(a, m) > dist(a, p));
            let m = beyond
                .min_by(|&u, &v| dist(a, u).total_cmp(&dist(a, v)))
                .unwrap_or_else(|| {
                    negs.iter()
                        .copied()
                        .max_by(|&u, &v| dist(a, u).total_cmp(&dist(a, v)))
                        .unwrap()
                });
            sum += (dist(a, p) - dist(a, m) + 0.2).max(0.0);
            count += 1;
        }
    }
    assert!(
        (got - sum / count as f64).abs() < 1e-9,
        "{got} vs {}",
        sum / count as f64
    );
}

/// The loss is finite and its gradient finite everywhere.
fn finite_loss_and_grad(what: &str, x: Tensor<2>, f: impl Fn(Tensor<2>) -> Tensor<1>) -> f64 {
    let x = x.require_grad();
    let loss = f(x.clone());
    let v = scalar(loss.clone());
    assert!(v.is_finite(), "{what}: loss {v}");
    let g: Vec<f64> = x
        .grad(&loss.backward())
        .unwrap()
        .into_data()
        .try_into_vec_as::<f64>()
        .unwrap();
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{what}: non-finite gradient"
    );
    v
}

#[test]
fn degenerate_batches_give_zero_or_finite_losses_not_crashes() {
    let device = device();
    let all_distinct: Vec<i64> = (0..6).collect();
    let one_class = vec![7i64; 6];
    let x = t64(&random(6, 4, 10), [6, 4], &device);
    let one = t64(&random(1, 4, 11), [1, 4], &device);
    type Loss = Box<dyn Fn(Tensor<2>, &[i64]) -> Tensor<1>>;
    let losses: Vec<(&str, Loss)> = vec![
        (
            "triplet all",
            Box::new(|t, l| TripletMarginLoss::new(0.1).forward(t, l).unwrap()),
        ),
        (
            "triplet hard",
            Box::new(|t, l| {
                TripletMarginLoss::new(0.1)
                    .with_selection(TripletSelection::BatchHard)
                    .forward(t, l)
                    .unwrap()
            }),
        ),
        (
            "triplet semi",
            Box::new(|t, l| {
                TripletMarginLoss::new(0.1)
                    .with_selection(TripletSelection::FaceNetSemiHard)
                    .forward(t, l)
                    .unwrap()
            }),
        ),
        (
            "contrastive",
            Box::new(|t, l| ContrastiveLoss::default().forward(t, l).unwrap()),
        ),
        (
            "ntxent",
            Box::new(|t, l| NtXentLoss::default().forward(t, l).unwrap()),
        ),
        (
            "cgd triplet",
            Box::new(|t, l| TripletMarginLoss::cgd(0.1).forward(t, l).unwrap()),
        ),
    ];
    for (name, f) in &losses {
        // No positive pair: nothing to pull together, loss exactly 0 (contrastive still
        // pushes its negative pairs apart) ...
        let v = finite_loss_and_grad(name, x.clone(), |t| f(t, &all_distinct));
        if *name != "contrastive" && *name != "cgd triplet" {
            assert_eq!(v, 0.0, "{name}");
        }
        // ... and a single item has nothing to compare at all. CGD's definition gives an
        // anchor without negatives the constant margin (its hardest "negative" is its own
        // zero distance pushed to the row maximum), with zero gradient.
        let v = finite_loss_and_grad(name, one.clone(), |t| f(t, &[3]));
        let want = if *name == "cgd triplet" { 0.1 } else { 0.0 };
        assert!((v - want).abs() < 1e-5, "{name}: {v}");
        // One class: no negatives. Triplets vanish; contrastive keeps its positive term;
        // NT-Xent's positives have nothing to beat (0); CGD's anchors have no negative.
        finite_loss_and_grad(name, x.clone(), |t| f(t, &one_class));
    }
    let ms = MultiSimilarityLoss::default();
    finite_loss_and_grad("multisim distinct", x.clone(), |t| {
        ms.forward(t, &all_distinct).unwrap()
    });
    finite_loss_and_grad("multisim one class", x.clone(), |t| {
        ms.forward(t, &one_class).unwrap()
    });
    assert_eq!(
        finite_loss_and_grad("multisim single", one.clone(), |t| ms
            .forward(t, &[0])
            .unwrap()),
        0.0
    );
    // Singleton classes: with the query counted, its only positive is itself, ranked
    // against everyone else (the original's semantics), so the loss is not 0 but finite.
    let sap = SmoothApLoss::new(1);
    finite_loss_and_grad("smooth-ap singletons", x.clone(), |t| {
        sap.forward(t, &all_distinct).unwrap()
    });
    let pa = ProxyAnchorLoss::from_proxies(t64(&random(6, 4, 12), [6, 4], &device), 0.1, 32.0);
    finite_loss_and_grad("proxy anchor one class", x.clone(), |t| {
        pa.forward(t, &[2; 6]).unwrap()
    });
    let sat = t64(&random(1, 4, 13), [1, 4], &device);
    finite_loss_and_grad("soft margin B=1", one.clone(), |t| {
        SoftMarginTripletLoss::default()
            .forward(t, sat.clone())
            .unwrap()
    });
    assert_eq!(
        finite_loss_and_grad("infonce B=1", one.clone(), |t| CrossViewInfoNce::default()
            .forward(t, sat.clone())
            .unwrap()),
        0.0
    );
    assert_eq!(
        finite_loss_and_grad("semi soft B=1", one.clone(), |t| {
            SemiSoftTriHardLoss::default()
                .forward(t, sat.clone())
                .unwrap()
        }),
        0.0
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let device = device();
    let x = t64(&random(6, 4, 14), [6, 4], &device);
    let mut nan = random(6, 4, 14);
    nan[5] = f64::NAN;
    let nan = t64(&nan, [6, 4], &device);
    let labels = [0i64, 0, 1, 1, 2, 2];
    assert!(matches!(
        TripletMarginLoss::default().forward(nan.clone(), &labels),
        Err(LossError::NonFinite { .. })
    ));
    assert!(matches!(
        NtXentLoss::default().forward(nan, &labels),
        Err(LossError::NonFinite { .. })
    ));
    assert!(matches!(
        ContrastiveLoss::default().forward(x.clone(), &labels[..5]),
        Err(LossError::LabelCount {
            labels: 5,
            rows: 6,
            ..
        })
    ));
    let empty = Tensor::<2>::zeros([0, 4], (&device, DType::F64));
    assert!(matches!(
        MultiSimilarityLoss::default().forward(empty, &[]),
        Err(LossError::EmptyBatch { .. })
    ));
    // Smooth-AP: wrong block size, interleaved classes, a class split over two blocks.
    let sap = SmoothApLoss::new(4);
    assert!(matches!(
        sap.forward(x.clone(), &labels),
        Err(LossError::BatchLayout { .. })
    ));
    let sap = SmoothApLoss::new(2);
    let err = sap
        .forward(x.clone(), &[0, 1, 0, 1, 2, 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class-contiguous") && err.contains("row 1"),
        "{err}"
    );
    assert!(matches!(
        sap.forward(x.clone(), &[0, 0, 1, 1, 0, 0]),
        Err(LossError::BatchLayout { .. })
    ));
    assert!(matches!(
        SmoothApLoss::new(1)
            .excluding_query()
            .forward(x.clone(), &labels),
        Err(LossError::BatchLayout { .. })
    ));
    // Classifier labels out of range.
    let arc = ClassifierLossConfig::new(3, 4).arcface(28.6, 64.0, &device);
    let w64 = t64(&random(4, 3, 15), [4, 3], &device);
    let arc = ArcFaceLoss {
        weight: Param::from_tensor(w64),
        ..arc
    };
    assert!(matches!(
        arc.forward(x.clone(), &[0, 1, 2, 3, 0, 1]),
        Err(LossError::LabelOutOfRange {
            label: 3,
            row: 3,
            classes: 3,
            ..
        })
    ));
    assert!(matches!(
        arc.forward(t64(&random(6, 5, 16), [6, 5], &device), &labels),
        Err(LossError::Shape { .. })
    ));
    // Cross-view views of different sizes.
    let other = t64(&random(5, 4, 17), [5, 4], &device);
    assert!(matches!(
        SoftMarginTripletLoss::default().forward(x.clone(), other),
        Err(LossError::Shape { .. })
    ));
    // Meta-class labels of the wrong count.
    let logits = Tensor::<3>::zeros([2, 3, 4], (&device, DType::F64));
    assert!(matches!(
        MetaClassCrossEntropy.forward(logits, &[0; 5]),
        Err(LossError::LabelCount { .. })
    ));
}

#[test]
fn seeded_initialisation_is_deterministic() {
    let device = device();
    let a = ProxyAnchorLossConfig::new(5, 3)
        .init(&device)
        .proxies
        .val()
        .into_data();
    let b = ProxyAnchorLossConfig::new(5, 3)
        .init(&device)
        .proxies
        .val()
        .into_data();
    let mut cfg = ProxyAnchorLossConfig::new(5, 3);
    cfg.seed = 1;
    let c = cfg.init(&device).proxies.val().into_data();
    assert_eq!(a, b);
    assert_ne!(a, c);
}
