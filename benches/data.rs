//! The image pipeline: decode JPEG + random resized crop to 224 + horizontal flip + normalise,
//! in batches of 64, decoded in parallel on rayon's pool (one thread per core) with the
//! loader's background prefetch.
//!
//! `cargo bench --bench data` writes 512 JPEGs (500 x 375, CUB-like) to `target/bench-data/jpeg`
//! once; `scripts/bench.sh` times the same pipeline beside torchvision's DataLoader at the same
//! worker count (`docs/benchmarks.md`).

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput};

const IMAGES: usize = 512;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/jpeg");
    metron_bench::write_jpegs(&dir, IMAGES).expect("write the bench JPEGs");
    let mut epoch = metron_bench::jpeg_epochs(&dir).expect("the bench JPEGs");

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("jpeg_rrc224_flip_normalize");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(IMAGES as u64));
    group.bench_function("epoch_of_512", |b| {
        b.iter(|| epoch().expect("decodable JPEGs"))
    });
    group.finish();
    c.final_summary();
}
