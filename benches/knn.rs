//! Exact self-retrieval kNN throughput (queries/s) on random unit vectors.
//!
//! `cargo bench --bench knn -- knn_self` runs the two sizes of the README table (N = 50,000 x
//! d = 512 and N = 200,000 x d = 128, top 10; about 15 minutes on 2 cores);
//! `cargo bench --bench knn -- knn_small` runs a 10,000 x 128 case and a block-size sweep in a
//! few minutes, for tuning. Criterion's filter picks the group; no filter runs everything.
//! Peak memory is not measurable from inside criterion: see benches/compare/run.sh.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use metron_metrics::{Blocking, KnnOptions, Similarity, knn_self};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn unit_vectors(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::from_shape_simple_fn((n, d), || {
        let v: f32 = StandardNormal.sample(&mut rng);
        v
    });
    for mut row in x.outer_iter_mut() {
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    x
}

fn self_knn(c: &mut Criterion, group: &str, n: usize, d: usize, k: usize) {
    let x = unit_vectors(n, d, 1);
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(n as u64));
    for sim in [Similarity::InnerProduct, Similarity::Cosine] {
        let opts = KnnOptions::new(sim);
        group.bench_with_input(
            BenchmarkId::new(format!("{sim}/top{k}"), format!("{n}x{d}")),
            &x,
            |b, x| b.iter(|| knn_self(x.view(), k, &opts).unwrap()),
        );
    }
    group.finish();
}

fn blocking_sweep(c: &mut Criterion) {
    let x = unit_vectors(20_000, 512, 2);
    let mut group = c.benchmark_group("knn_small_blocking");
    group.sample_size(10);
    group.throughput(Throughput::Elements(20_000));
    for (bq, bg) in [
        (128, 1024),
        (256, 1024),
        (256, 2048),
        (512, 1024),
        (512, 4096),
        (1024, 4096),
    ] {
        let opts = KnnOptions::new(Similarity::InnerProduct).with_blocking(Blocking {
            block_queries: bq,
            block_gallery: bg,
        });
        group.bench_with_input(
            BenchmarkId::new("20000x512", format!("{bq}x{bg}")),
            &x,
            |b, x| b.iter(|| knn_self(x.view(), 10, &opts).unwrap()),
        );
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // Inputs are generated only for groups the filter selects: the big ones take seconds.
    let wanted = |group: &str| {
        let filter: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        filter.is_empty()
            || filter
                .iter()
                .any(|f| group.contains(f.as_str()) || f.contains(group))
    };
    if wanted("knn_small") {
        self_knn(&mut c, "knn_small", 10_000, 128, 10);
    }
    if wanted("knn_small_blocking") {
        blocking_sweep(&mut c);
    }
    if wanted("knn_self") {
        self_knn(&mut c, "knn_self", 50_000, 512, 10);
        self_knn(&mut c, "knn_self", 200_000, 128, 10);
    }
    c.final_summary();
}
