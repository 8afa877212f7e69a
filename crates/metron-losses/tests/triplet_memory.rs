//! The all-triplets loss in bounded memory: at N = 1000 in f64 a dense [N, N, N] tensor of
//! triplet terms would be 8 GB (and several of them live in the graph). Its own test binary, so
//! that the process's peak memory belongs to this test alone.

use burn::tensor::{DType, Tensor, TensorData};
use metron_losses::{TripletMarginLoss, TripletSelection};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn all_and_semi_hard_triplets_at_n_1000_in_f64_stay_under_a_gigabyte() {
    let device = metron_core::parse_device("cpu").unwrap().autodiff();
    let (n, d) = (1000, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f64> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    // 100 classes of 10: 9 positives and 990 negatives per anchor, ~8.9 M triplets.
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 100).collect();
    for selection in [
        TripletSelection::All,
        TripletSelection::SemiHard { margin: 0.2 },
    ] {
        let x = Tensor::<2>::from_data(TensorData::new(x.clone(), [n, d]), (&device, DType::F64))
            .require_grad();
        let loss = TripletMarginLoss::new(0.2)
            .with_selection(selection)
            .forward(x.clone(), &labels)
            .unwrap();
        let value = loss.clone().into_scalar::<f64>();
        assert!(value.is_finite() && value > 0.0, "{selection:?}: {value}");
        let grads = loss.backward();
        let g: Vec<f64> = x.grad(&grads).unwrap().into_data().iter::<f64>().collect();
        assert_eq!(g.len(), n * d);
        assert!(
            g.iter().any(|v| *v != 0.0),
            "{selection:?}: a zero gradient"
        );
    }
    if let Some(peak) = peak_rss() {
        assert!(
            peak < 1 << 30,
            "peak memory {:.2} GB for N = 1000",
            peak as f64 / 1e9
        );
    }
}
