//! The image pipeline: decode JPEG + random resized crop to 224 + horizontal flip + normalise,
//! in batches of 64, decoded in parallel on rayon's pool (one thread per core) with the
//! loader's background prefetch.
//!
//! `cargo bench --bench data` writes 512 JPEGs (500 x 375, CUB-like) to `target/bench-data/jpeg`
//! once; `scripts/bench.sh` times the same pipeline beside torchvision's DataLoader at the same
//! worker count (`docs/benchmarks.md`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use metron_datasets::{BatchLoader, LoaderConfig, Pipeline, Sample, Transform};

const IMAGES: usize = 512;
const BATCH: usize = metron_bench::DATA_BATCH;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/jpeg");
    let samples: Vec<Sample> = metron_bench::write_jpegs(&dir, IMAGES)
        .expect("write the bench JPEGs")
        .into_iter()
        .enumerate()
        .map(|(i, path)| Sample {
            path,
            label: i % 32,
            bbox: None,
        })
        .collect();
    let samples = Arc::new(samples);
    let pipeline = Arc::new(Pipeline::new(vec![
        Transform::random_resized_crop([224, 224]),
        Transform::HorizontalFlip { p: 0.5 },
    ]));
    let batches: Vec<Vec<usize>> = (0..IMAGES)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[usize]>::to_vec)
        .collect();

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("jpeg_rrc224_flip_normalize");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(IMAGES as u64));
    let mut epoch = 0u64;
    group.bench_function("epoch_of_512", |b| {
        b.iter(|| {
            epoch += 1;
            let loader = BatchLoader::images(
                samples.clone(),
                batches.clone(),
                pipeline.clone(),
                0,
                epoch,
                LoaderConfig::default(),
            );
            loader.map(|b| b.expect("decodable").len()).sum::<usize>()
        })
    });
    group.finish();
    c.final_summary();
}
