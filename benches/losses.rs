//! Forward + backward of the batch losses at N = 384, D = 512 on the CPU backend (Burn flex,
//! autodiff), the sizes of Smooth-AP's and CGD's training batches.
//!
//! `cargo bench --bench losses` for criterion's statistics; `scripts/bench.sh` times the same
//! cases beside pytorch-metric-learning and plain PyTorch (`docs/benchmarks.md`).

use std::time::Duration;

use burn::tensor::{Tensor, TensorData};
use criterion::{BenchmarkId, Criterion};
use metron_bench::{LossName, PER_CLASS, loss_fn, unit_rows};

const N: usize = 384;
const D: usize = 512;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let device = metron_core::parse_device("cpu")
        .expect("flex is the default backend")
        .autodiff();
    let data = unit_rows(N, D, 0);
    // 96 classes x 4 samples, class-contiguous (what Smooth-AP requires; the others do not care).
    let labels: Vec<i64> = (0..N).map(|i| (i / PER_CLASS) as i64).collect();
    let leaf =
        || Tensor::<2>::from_data(TensorData::new(data.clone(), [N, D]), &device).require_grad();
    let mut group = c.benchmark_group("loss_fwd_bwd");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for name in LossName::ALL {
        let loss = loss_fn(name);
        group.bench_function(BenchmarkId::new(name.name(), format!("{N}x{D}")), |b| {
            b.iter(|| {
                let x = leaf();
                let grads = loss(x.clone(), &labels).expect("valid batch").backward();
                x.grad(&grads).expect("the loss depends on x")
            })
        });
    }
    group.finish();
    c.final_summary();
}
