//! Exact self-retrieval kNN throughput (queries/s) on random unit vectors.
//!
//! `cargo bench --bench knn -- knn_self` runs the two sizes of the README table (N = 50,000 x
//! d = 512 and N = 200,000 x d = 128, top 10; about 15 minutes on 2 cores);
//! `cargo bench --bench knn -- knn_small` runs a 10,000 x 128 case and a block-size sweep in a
//! few minutes, for tuning; `cargo bench --bench knn -- knn_shards` shows how a sharded search
//! scales over the cores (20,000 x 256, top 10: one shard on one core, two shards on a core
//! each at once, as two processes would run, and the unsharded search on every core).
//! Criterion's filter picks the group; no filter runs everything.
//! Peak memory is not measurable from inside criterion: `scripts/bench.sh` reports it beside
//! faiss's (`docs/benchmarks.md`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use metron_metrics::{
    Blocking, KnnOptions, NoProgress, ShardRunner, Similarity, knn_self, knn_sharded,
};
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

fn shards(c: &mut Criterion) {
    let (n, d, k) = (20_000, 256, 10);
    let x = unit_vectors(n, d, 3);
    let opts = KnnOptions::new(Similarity::InnerProduct);
    let mut group = c.benchmark_group("knn_shards");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    for (name, shards, runner) in [
        ("1 shard, 1 core", 1, ShardRunner::CpuPools(1)),
        ("2 shards, 1 core each", 2, ShardRunner::CpuPools(1)),
        ("2 shards, one after another", 2, ShardRunner::Sequential),
    ] {
        group.bench_with_input(BenchmarkId::new(name, format!("{n}x{d}")), &x, |b, x| {
            b.iter(|| knn_sharded(x.view(), None, k, shards, &runner, &opts, &NoProgress).unwrap())
        });
    }
    group.bench_with_input(
        BenchmarkId::new("unsharded, every core", format!("{n}x{d}")),
        &x,
        |b, x| b.iter(|| knn_self(x.view(), k, &opts).unwrap()),
    );
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
    if wanted("knn_shards") {
        shards(&mut c);
    }
    if wanted("knn_self") {
        self_knn(&mut c, "knn_self", 50_000, 512, 10);
        self_knn(&mut c, "knn_self", 200_000, 128, 10);
    }
    c.final_summary();
}
