//! ResNet-50 at batch 16, 224 x 224, on the CPU backend (Burn flex): inference forward, and
//! forward + backward in training mode (autodiff, batch statistics).
//!
//! `cargo bench --bench backbones` for criterion's statistics; `scripts/bench.sh` times every
//! backbone family beside PyTorch eager (`docs/benchmarks.md`).

use std::time::Duration;

use burn::tensor::{Distribution, Tensor};
use criterion::Criterion;
use metron_backbones::ResNetConfig;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("resnet50_b16_224");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    let cpu = metron_core::parse_device("cpu").expect("flex is the default backend");
    cpu.seed(0);
    let model = ResNetConfig::resnet50().init(&cpu).expect("valid config");
    let x = Tensor::<4>::random([16, 3, 224, 224], Distribution::Normal(0.0, 1.0), &cpu);
    group.bench_function("forward", |b| {
        b.iter(|| model.features(x.clone()).sum().into_scalar::<f32>())
    });
    let ad = cpu.autodiff();
    let model = ResNetConfig::resnet50().init(&ad).expect("valid config");
    let x = Tensor::<4>::random([16, 3, 224, 224], Distribution::Normal(0.0, 1.0), &ad);
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let loss = model.features(x.clone()).mean();
            loss.backward()
        })
    });
    group.finish();
    c.final_summary();
}
