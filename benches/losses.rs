//! Forward + backward of the batch losses at N = 384, D = 512 on the CPU backend (Burn flex,
//! autodiff), the sizes of Smooth-AP's and CGD's training batches.
//!
//! `cargo bench --bench losses`; `benches/compare/losses_pml.py` times the same cases with
//! pytorch-metric-learning for the README's ratio.

use std::time::Duration;

use burn::tensor::{Tensor, TensorData};
use criterion::{BenchmarkId, Criterion};
use metron_losses::{
    MultiSimilarityLoss, NtXentLoss, SmoothApLoss, TripletMarginLoss, TripletSelection,
};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 384;
const D: usize = 512;
const PER_CLASS: usize = 4;

fn embeddings() -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut x: Vec<f32> = (0..N * D)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    // Unit rows, as a model's embedding head would produce.
    for row in x.chunks_mut(D) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    x
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let device = metron_core::parse_device("cpu")
        .expect("flex is the default backend")
        .autodiff();
    let data = embeddings();
    // 96 classes x 4 samples, class-contiguous (what Smooth-AP requires; the others do not care).
    let labels: Vec<i64> = (0..N).map(|i| (i / PER_CLASS) as i64).collect();
    let leaf =
        || Tensor::<2>::from_data(TensorData::new(data.clone(), [N, D]), &device).require_grad();
    type Loss = Box<dyn Fn(Tensor<2>, &[i64]) -> Tensor<1>>;
    let cases: Vec<(&str, Loss)> = vec![
        (
            "batch_hard_triplet",
            Box::new(|x, l| {
                TripletMarginLoss::new(0.05)
                    .with_selection(TripletSelection::BatchHard)
                    .forward(x, l)
                    .expect("valid batch")
            }),
        ),
        (
            "multi_similarity",
            Box::new(|x, l| {
                MultiSimilarityLoss::default()
                    .forward(x, l)
                    .expect("valid batch")
            }),
        ),
        (
            "smooth_ap",
            Box::new(|x, l| {
                SmoothApLoss::new(PER_CLASS)
                    .forward(x, l)
                    .expect("valid batch")
            }),
        ),
        (
            "ntxent",
            Box::new(|x, l| NtXentLoss::new(0.07).forward(x, l).expect("valid batch")),
        ),
    ];
    let mut group = c.benchmark_group("loss_fwd_bwd");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for (name, loss) in &cases {
        group.bench_function(BenchmarkId::new(*name, format!("{N}x{D}")), |b| {
            b.iter(|| {
                let x = leaf();
                let grads = loss(x.clone(), &labels).backward();
                x.grad(&grads).expect("the loss depends on x")
            })
        });
    }
    group.finish();
    c.final_summary();
}
