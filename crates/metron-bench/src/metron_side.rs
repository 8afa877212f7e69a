//! metron's side of each job, run in this process on the CPU backend (Burn flex).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use image::{Rgb, RgbImage};
use metron_backbones::{ResNetConfig, SaigConfig, Vgg16Config, VitConfig};
use metron_datasets::{BatchLoader, LoaderConfig, Pipeline, Sample, Transform};
use metron_losses::{
    MultiSimilarityLoss, NtXentLoss, SmoothApLoss, TripletMarginLoss, TripletSelection,
};
use metron_metrics::{KnnOptions, Similarity};
use rand::SeedableRng;
use rand_distr::{Distribution as _, StandardNormal};

use crate::job::{Job, KnnMetric, LossName, Mode, Model};
use crate::measurement::{Measurement, rss};
use crate::{BenchError, Result};

/// Samples per class in the loss batches (Smooth-AP's and CGD's samplers draw 4).
pub const PER_CLASS: usize = 4;

/// Most repetitions of either phase that `min_seconds` can add.
const MAX_REPS: usize = 1000;

/// Runs `job` untimed at least `warmup` times, then timed at least `reps` times, and reports
/// it. With `min_seconds`, each phase also goes on until it has lasted that long (at most
/// [`MAX_REPS`] repetitions; no warm-up at all when `warmup` is 0), so millisecond jobs reach
/// their steady state as second-long ones do; `peer.py --min-seconds` follows the same rule.
pub fn run_job(job: &Job, reps: usize, warmup: usize, min_seconds: f64) -> Result<Measurement> {
    let mut versions = BTreeMap::new();
    versions.insert("metron".to_string(), env!("CARGO_PKG_VERSION").to_string());
    versions.insert("burn".to_string(), "0.22".to_string());
    let gemm = format!("gemm on {}", metron_metrics::gemm_isa());
    let (kind, variant, kernel, mut step): (&str, String, String, Step) = match job {
        Job::Knn {
            k, metric, data, ..
        } => (
            "knn",
            "metron exact kNN".into(),
            gemm,
            knn_step(data, *k, *metric)?,
        ),
        Job::Loss { loss, n, dim } => (
            "loss",
            format!("metron-losses {}", loss.name()),
            String::new(),
            loss_step(*loss, *n, *dim)?,
        ),
        Job::Backbone {
            model,
            mode,
            batch,
            input,
        } => {
            let kernel = match (metron_ops::KERNELS, model.has_attention()) {
                (true, true) => format!(
                    "{gemm}; metron-ops fused attention (strided GEMMs, one-pass softmax), \
                     LayerNorm and GELU"
                ),
                (true, false) => format!("{gemm}; metron-ops convolution + BatchNorm/ReLU"),
                (false, _) => format!("{gemm}; Burn's generic ops (metron-ops without flex)"),
            };
            (
                "backbone",
                format!("metron-backbones {} (Burn flex)", model.name()),
                kernel,
                backbone_step(*model, *mode, *batch, *input)?,
            )
        }
        Job::Data { images, .. } => (
            "data",
            "metron-datasets BatchLoader (rayon decode)".into(),
            String::new(),
            jpeg_epochs(images)?,
        ),
        Job::Cgd { binary } => (
            "cgd",
            "cargo run --release --example cgd".into(),
            gemm,
            cgd_step(binary.clone()),
        ),
    };
    let (times, base) = repeat(&mut step, reps, warmup, min_seconds)?;
    drop(step);
    let end = rss();
    let peak_rss_mb = match job {
        // The example ran as a child: its peak is the children's.
        Job::Cgd { .. } => children_peak_rss_mb(),
        _ => end.peak_mb,
    };
    Ok(Measurement {
        job: kind.to_string(),
        peer: "metron".to_string(),
        variant,
        times_s: times,
        base_rss_mb: base.current_mb,
        peak_rss_mb,
        after_rss_mb: end.current_mb,
        kernel,
        versions,
    })
}

/// One repetition of a job.
pub type Step = Box<dyn FnMut() -> Result<()>>;

/// Runs `step` untimed, then timed, by the rule of [`run_job`]; returns the timed seconds and
/// the memory after the warm-up.
fn repeat(
    step: &mut Step,
    reps: usize,
    warmup: usize,
    min_seconds: f64,
) -> Result<(Vec<f64>, crate::measurement::Rss)> {
    let start = Instant::now();
    let mut done = 0;
    // A job planned without warm-up (a whole kNN search, the cgd example) gets none.
    while done < warmup
        || (warmup > 0 && start.elapsed().as_secs_f64() < min_seconds && done < MAX_REPS)
    {
        step()?;
        done += 1;
    }
    // After the warm-up: Burn materialises parameters at their first use, and both sides'
    // allocators keep what the first steps grew.
    let base = rss();
    let mut times: Vec<f64> = Vec::with_capacity(reps);
    while times.len() < reps || (times.iter().sum::<f64>() < min_seconds && times.len() < MAX_REPS)
    {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((times, base))
}

fn knn_step(data: &Path, k: usize, metric: KnnMetric) -> Result<Step> {
    let array = match metron_core::read_embeddings(data) {
        Ok(metron_core::Embeddings::F32(a)) => a,
        Ok(_) => {
            return Err(BenchError::Job(format!(
                "{}: expected f32 embeddings",
                data.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let similarity = match metric {
        KnnMetric::Cosine => Similarity::Cosine,
        KnnMetric::L2 => Similarity::SquaredL2,
    };
    let options = KnnOptions::new(similarity);
    Ok(Box::new(move || {
        let nn = metron_metrics::knn_self(array.view(), k, &options)
            .map_err(|e| BenchError::Job(e.to_string()))?;
        std::hint::black_box(nn);
        Ok(())
    }))
}

/// `n` rows of `dim` standard normals, each scaled to unit length (a model's embedding head
/// output), from a seeded generator.
pub fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..n * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    for row in x.chunks_mut(dim.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    x
}

/// A batch loss: embeddings `[N, D]` and their labels to the scalar loss.
pub type LossFn = Box<dyn Fn(Tensor<2>, &[i64]) -> Result<Tensor<1>>>;

/// The loss as a function of a batch and its labels, with the settings every side uses.
pub fn loss_fn(loss: LossName) -> LossFn {
    let err = |e: metron_losses::LossError| BenchError::Job(e.to_string());
    match loss {
        LossName::BatchHardTriplet => Box::new(move |x, l| {
            TripletMarginLoss::new(0.05)
                .with_selection(TripletSelection::BatchHard)
                .forward(x, l)
                .map_err(err)
        }),
        LossName::MultiSimilarity => {
            Box::new(move |x, l| MultiSimilarityLoss::default().forward(x, l).map_err(err))
        }
        LossName::Ntxent => Box::new(move |x, l| NtXentLoss::new(0.07).forward(x, l).map_err(err)),
        LossName::SmoothAp => {
            Box::new(move |x, l| SmoothApLoss::new(PER_CLASS).forward(x, l).map_err(err))
        }
    }
}

fn loss_step(loss: LossName, n: usize, dim: usize) -> Result<Step> {
    let device = cpu()?.autodiff();
    let data = unit_rows(n, dim, 0);
    // Class-contiguous (what Smooth-AP requires; the others do not care).
    let labels: Vec<i64> = (0..n).map(|i| (i / PER_CLASS) as i64).collect();
    let f = loss_fn(loss);
    Ok(Box::new(move || {
        let x =
            Tensor::<2>::from_data(TensorData::new(data.clone(), [n, dim]), &device).require_grad();
        let grads = f(x.clone(), &labels)?.backward();
        std::hint::black_box(x.grad(&grads));
        Ok(())
    }))
}

fn cpu() -> Result<Device> {
    let device = metron_core::parse_device("cpu")?;
    device.seed(0);
    Ok(device)
}

/// The network's feature extractor: the trunk's last map for CNNs, all tokens for
/// transformers (what the peers' `features` / `forward_features` return).
type Features = Box<dyn Fn(Tensor<4>) -> Tensor<4>>;

fn features(model: Model, input: [usize; 2], device: &Device) -> Result<Features> {
    let err = |e: metron_backbones::BackboneError| BenchError::Job(e.to_string());
    // Token outputs `[B, T, D]` are viewed as `[B, T, D, 1]` so every model has one type.
    let tokens = |t: Tensor<3>| {
        let [b, n, d] = t.dims();
        t.reshape([b, n, d, 1])
    };
    Ok(match model {
        Model::Resnet50 => {
            let m = ResNetConfig::resnet50().init(device).map_err(err)?;
            Box::new(move |x| m.features(x))
        }
        Model::Resnext50 => {
            let m = ResNetConfig::resnext50_32x4d().init(device).map_err(err)?;
            Box::new(move |x| m.features(x))
        }
        Model::Vgg16 => {
            let m = Vgg16Config::default().init(device);
            Box::new(move |x| m.features(x))
        }
        Model::VitS16 | Model::VitB16 => {
            let mut config = if model == Model::VitS16 {
                VitConfig::vit_small_patch16(input[0])
            } else {
                VitConfig::vit_base_patch16(input[0])
            };
            config.image_size = input;
            let m = config.init(device).map_err(err)?;
            Box::new(move |x| tokens(m.tokens(x)))
        }
        Model::SaigS => {
            let m = SaigConfig::saig_s(input).init(device).map_err(err)?;
            Box::new(move |x| tokens(m.tokens(x)))
        }
    })
}

fn backbone_step(model: Model, mode: Mode, batch: usize, input: [usize; 2]) -> Result<Step> {
    let cpu = cpu()?;
    let device = match mode {
        Mode::Infer => cpu,
        Mode::Train => cpu.autodiff(),
    };
    let f = features(model, input, &device)?;
    let x = Tensor::<4>::random(
        [batch, 3, input[0], input[1]],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    Ok(match mode {
        Mode::Infer => Box::new(move || {
            std::hint::black_box(f(x.clone()).sum().into_scalar::<f32>());
            Ok(())
        }),
        Mode::Train => Box::new(move || {
            let grads = f(x.clone()).mean().backward();
            std::hint::black_box(grads);
            Ok(())
        }),
    })
}

/// Writes `count` CUB-sized (500 x 375) JPEGs of smooth colour fields with some texture, so
/// they compress to ordinary sizes; files already there are kept.
pub fn write_jpegs(dir: &Path, count: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    (0..count)
        .map(|i| {
            let path = dir.join(format!("{i:04}.jpg"));
            if !path.is_file() {
                let k = i as u32;
                RgbImage::from_fn(500, 375, |x, y| {
                    let t = ((x * 7 + y * 13 + k * 31) % 64) as u8;
                    Rgb([
                        ((x + k) % 256) as u8 / 2 + t,
                        ((y * 2 + k) % 256) as u8 / 2 + t,
                        ((x + y + 3 * k) % 256) as u8 / 2,
                    ])
                })
                .save(&path)
                .map_err(|e| BenchError::Job(format!("{}: {e}", path.display())))?;
            }
            Ok(path)
        })
        .collect()
}

/// Batches of the image pipeline (64 per batch).
pub const DATA_BATCH: usize = 64;

/// One epoch of the image pipeline per call over the JPEGs in `images`: decode, random resized
/// crop to 224, flip, normalise, in batches of [`DATA_BATCH`] decoded on rayon's pool; each
/// call is the next epoch (new augmentations).
pub fn jpeg_epochs(images: &Path) -> Result<Step> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(images)
        .map_err(|e| BenchError::io(images, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(BenchError::Job(format!("no JPEGs in {}", images.display())));
    }
    let samples: Arc<Vec<Sample>> = Arc::new(
        paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| Sample {
                path,
                label: i % 32,
                bbox: None,
            })
            .collect(),
    );
    let pipeline = Arc::new(Pipeline::new(vec![
        Transform::random_resized_crop([224, 224]),
        Transform::HorizontalFlip { p: 0.5 },
    ]));
    let batches: Vec<Vec<usize>> = (0..samples.len())
        .collect::<Vec<_>>()
        .chunks(DATA_BATCH)
        .map(<[usize]>::to_vec)
        .collect();
    let mut epoch = 0u64;
    Ok(Box::new(move || {
        epoch += 1;
        let loader = BatchLoader::images(
            samples.clone(),
            batches.clone(),
            pipeline.clone(),
            0,
            epoch,
            LoaderConfig::default(),
        );
        for batch in loader {
            let batch = batch.map_err(|e| BenchError::Job(e.to_string()))?;
            std::hint::black_box(batch.len());
        }
        Ok(())
    }))
}

/// Runs the example as a user would, from the repository root (where its `datasets.toml`
/// finds Omniglot), into a fresh run directory each time.
fn cgd_step(binary: PathBuf) -> Step {
    let mut run = 0;
    Box::new(move || {
        run += 1;
        let out =
            std::env::temp_dir().join(format!("metron-bench-cgd-{}-{run}", std::process::id()));
        let output = Command::new(&binary)
            .arg("--run-dir")
            .arg(&out)
            .args(["--quiet", "--json"])
            .output()
            .map_err(|e| BenchError::io(&binary, e))?;
        let _ = std::fs::remove_dir_all(&out);
        if !output.status.success() {
            return Err(BenchError::Job(format!(
                "{} failed ({}): {}",
                binary.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    })
}

/// The largest peak resident memory of the waited-for child processes, MiB.
#[cfg(unix)]
fn children_peak_rss_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole rusage into the pointer on success, and the value is
    // read only then.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) == 0 {
            // Linux reports ru_maxrss in KiB.
            return usage.assume_init().ru_maxrss as f64 / 1024.0;
        }
    }
    0.0
}

#[cfg(not(unix))]
fn children_peak_rss_mb() -> f64 {
    0.0
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    fn counting(sleep_ms: u64) -> (Step, Rc<Cell<usize>>) {
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let step: Step = Box::new(move || {
            c.set(c.get() + 1);
            std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
            Ok(())
        });
        (step, calls)
    }

    #[test]
    fn counts_are_minimums_and_min_seconds_extends_both_phases_but_adds_no_warm_up() {
        // Slow steps: the counts rule, and no warm-up is added where none was asked for.
        let (mut step, calls) = counting(30);
        let (times, _) = repeat(&mut step, 1, 0, 0.01).unwrap();
        assert_eq!((times.len(), calls.get()), (1, 1));
        // Fast steps: both phases go on for the minimum time.
        let (mut step, calls) = counting(1);
        let (times, _) = repeat(&mut step, 2, 1, 0.05).unwrap();
        assert!(
            times.len() >= 10 && times.iter().sum::<f64>() >= 0.05,
            "{times:?}"
        );
        let warmups = calls.get() - times.len();
        assert!(warmups >= 10, "{warmups} warm-up steps");
        // No minimum time: exactly the counts.
        let (mut step, calls) = counting(0);
        let (times, _) = repeat(&mut step, 3, 2, 0.0).unwrap();
        assert_eq!((times.len(), calls.get()), (3, 5));
    }
}
