//! The training loop end to end on a tiny synthetic image set with a small CGD model: a resumed
//! run ends exactly where an uninterrupted one does, a non-finite loss stops the run and leaves
//! the last checkpoint, and the run directory holds every artefact.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use image::{Rgb, RgbImage};

use metron::systems::cgd::{CgdModel, CgdModelConfig};
use metron_datasets::{
    ImageBatch, ImageBatches, LoadBatch, LoaderConfig, Pipeline, Sample, Split, Transform,
};
use metron_samplers::{BatchSampler, MPerClassSampler};
use metron_train::{
    EmbeddingModel, LossOutput, LrSchedule, OptimizerSetting, PipelineSpec, RetrievalEvaluation,
    RunDir, SamSetting, TrainError, TrainModel, TrainOutcome, TrainState, Trainer, TrainerConfig,
    batch_images, read_checkpoint,
};

/// Class c is a bright square at a class-specific place on a noisy background.
fn write_split(dir: &Path, name: &str, classes: usize, per_class: usize, seed: u32) -> Split {
    let mut samples = Vec::new();
    for c in 0..classes {
        for i in 0..per_class {
            let path = dir.join(format!("{name}_{c}_{i}.png"));
            let (cx, cy) = (4 + 6 * (c as u32 % 3), 4 + 6 * (c as u32 / 3));
            RgbImage::from_fn(20, 20, |x, y| {
                let noise = ((x * 31 + y * 17 + i as u32 * 13 + seed * 7) % 50) as u8;
                if x.abs_diff(cx) < 3 && y.abs_diff(cy) < 3 {
                    Rgb([200 + noise, 180, 40 * c as u8])
                } else {
                    Rgb([noise, noise, noise])
                }
            })
            .save(&path)
            .unwrap();
            samples.push(Sample {
                path,
                label: c,
                bbox: None,
            });
        }
    }
    Split {
        name: name.into(),
        samples,
        classes: (0..classes).map(|c| c.to_string()).collect(),
    }
}

struct Data {
    train: Split,
    test: Split,
    train_pipeline: Pipeline,
    test_pipeline: PipelineSpec,
}

fn data(dir: &Path) -> Data {
    Data {
        train: write_split(dir, "train", 4, 6, 1),
        test: write_split(dir, "test", 4, 3, 2),
        train_pipeline: Pipeline::new(vec![
            Transform::Resize { size: [18, 18] },
            Transform::RandomCrop { size: [16, 16] },
            Transform::HorizontalFlip { p: 0.5 },
        ]),
        test_pipeline: PipelineSpec::resize(
            [16, 16],
            Pipeline::IMAGENET_MEAN,
            Pipeline::IMAGENET_STD,
        ),
    }
}

impl Data {
    fn labels(&self) -> Vec<usize> {
        self.train.samples.iter().map(|s| s.label).collect()
    }

    fn loader(&self) -> Arc<dyn LoadBatch<Batch = ImageBatch>> {
        Arc::new(ImageBatches::new(
            Arc::new(self.train.samples.clone()),
            Arc::new(self.train_pipeline.clone()),
            false,
        ))
    }

    fn evaluation(&self) -> RetrievalEvaluation {
        RetrievalEvaluation {
            query: Arc::new(self.test.samples.clone()),
            gallery: None,
            pipeline: Arc::new(self.test_pipeline.pipeline()),
            ks: vec![1, 2],
            batch_size: 5,
            loader: LoaderConfig::default(),
            clustering_seed: None,
        }
    }

    /// CGD's batches: 8 images, 2 per class.
    fn sampler(&self) -> MPerClassSampler {
        MPerClassSampler::new(&self.labels(), 8, 2, 5).unwrap()
    }
}

/// Trains on `data` with CGD's batches.
fn fit<M: TrainModel<Batch = ImageBatch> + EmbeddingModel>(
    trainer: &Trainer,
    model: M,
    data: &Data,
    device: &Device,
) -> metron_train::Result<TrainOutcome<M>> {
    fit_with(trainer, model, &data.sampler(), data, device)
}

fn fit_with<M: TrainModel<Batch = ImageBatch> + EmbeddingModel>(
    trainer: &Trainer,
    model: M,
    sampler: &dyn BatchSampler,
    data: &Data,
    device: &Device,
) -> metron_train::Result<TrainOutcome<M>> {
    trainer.fit(model, sampler, data.loader(), &data.evaluation(), device)
}

fn trainer_config() -> TrainerConfig {
    TrainerConfig {
        schedule: LrSchedule::MultiStep {
            milestones: vec![2],
            gamma: 0.1,
        },
        seed: 5,
        ..TrainerConfig::new(3, OptimizerSetting::adam(0.0), 1e-3)
    }
}

fn cgd_config() -> CgdModelConfig {
    CgdModelConfig {
        backbone: "resnet18".into(),
        base_width: 4,
        frozen_batch_norm: false,
        feature_dim: 8,
        ..CgdModelConfig::paper(4)
    }
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn seeded_model(device: &Device, seed: u64) -> CgdModel {
    metron_core::seeded_init(device, seed, || cgd_config().init(device)).unwrap()
}

fn fresh_model(device: &Device) -> CgdModel {
    seeded_model(device, 5)
}

fn weights(m: &CgdModel) -> Vec<f32> {
    m.backbone
        .conv1
        .weight
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn a_resumed_run_ends_with_the_same_metrics_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();

    let straight_run = RunDir::create(dir.path().join("straight"), &trainer_config()).unwrap();
    let mut straight = Trainer::new(trainer_config(), straight_run);
    straight.quiet = true;
    let a = fit(&straight, fresh_model(&device), &data, &device).unwrap();
    assert!(a.finished);
    assert_eq!(a.state.epochs_done, 3);
    assert_eq!(a.state.history.len(), 4, "untrained + 3 epochs");

    let root = dir.path().join("interrupted");
    let mut first = Trainer::new(
        trainer_config(),
        RunDir::create(&root, &trainer_config()).unwrap(),
    );
    first.quiet = true;
    first.stop_after = Some(1);
    let part = fit(&first, fresh_model(&device), &data, &device).unwrap();
    assert!(!part.finished);
    assert_eq!(part.state.epochs_done, 1);

    // Resume with a model initialised from another seed: the checkpoint must replace it.
    let mut second = Trainer::new(trainer_config(), RunDir::open(&root).unwrap());
    second.quiet = true;
    let other = seeded_model(&device, 999);
    let b = fit(&second, other, &data, &device).unwrap();
    assert!(b.finished);

    let strip = |s: &TrainState| {
        s.history
            .iter()
            .map(|r| (r.epoch, r.loss, r.loss_parts.clone(), r.test.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a.state), strip(&b.state));
    assert_eq!(weights(&a.model), weights(&b.model));
    // Training changed the weights (so the equality above is not vacuous).
    assert_ne!(weights(&a.model), weights(&fresh_model(&device)));
    let log = std::fs::read_to_string(root.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4);
    assert_eq!(
        log,
        std::fs::read_to_string(dir.path().join("straight/metrics.jsonl"))
            .unwrap()
            .lines()
            .zip(log.lines())
            .map(|(_, l)| format!("{l}\n"))
            .collect::<String>()
    );
}

#[test]
fn artefacts_land_in_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();
    let run = RunDir::create(dir.path().join("run"), &trainer_config()).unwrap();
    let mut t = Trainer::new(
        TrainerConfig {
            epochs: 1,
            ..trainer_config()
        },
        run.clone(),
    );
    t.quiet = true;
    t.eval_pipeline = Some(data.test_pipeline.clone());
    let out = fit(&t, fresh_model(&device), &data, &device).unwrap();
    let emb = out.last_evaluation.unwrap().embeddings.unwrap().query;
    assert_eq!(emb.embeddings.dim(), (12, 8));
    metron_train::write_curves(&run.curves_path(), &out.state.history).unwrap();
    metron_train::write_retrieval_grid(&run.grid_path(), (&emb, &data.test.samples), None, 2, 2)
        .unwrap();
    metron_train::write_embeddings(&run.embeddings_path(), &run.labels_path(), &emb).unwrap();
    for p in [run.curves_path(), run.grid_path()] {
        image::open(&p).unwrap();
    }
    let e = metron_core::read_embeddings(run.embeddings_path()).unwrap();
    assert_eq!((e.nrows(), e.ncols()), (12, 8));
    let ck = read_checkpoint(&run.best_checkpoint()).unwrap();
    let state: TrainState = ck.state(&run.best_checkpoint()).unwrap();
    assert_eq!(state.architecture["kind"], "cgd");
    assert_eq!(state.eval_pipeline.unwrap().size, [16, 16]);
    // The metrics of every evaluated epoch include the embedding spread.
    assert!(
        state
            .history
            .iter()
            .all(|r| r.test.contains_key("embedding_spread"))
    );
    // A fresh run refuses to overwrite this one.
    assert!(RunDir::create(run.root(), &1).is_err());
}

/// A linear model whose loss turns NaN from its `nan_from`-th call on.
#[derive(Module, Debug)]
struct NanAfter {
    lin: Linear,
    #[module(skip)]
    calls: Arc<AtomicUsize>,
    #[module(skip)]
    nan_from: usize,
}

impl TrainModel for NanAfter {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> metron_train::Result<LossOutput> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let scale = if call >= self.nan_from { f64::NAN } else { 1.0 };
        let total = self
            .embed(batch_images(batch, device))
            .square()
            .mean()
            .mul_scalar(scale);
        Ok(LossOutput {
            total,
            parts: vec![],
        })
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({"kind": "nan_after"})
    }
}

impl EmbeddingModel for NanAfter {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = images.dims();
        self.lin.forward(images.reshape([b, c * h * w]))
    }
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();
    let run = RunDir::create(dir.path().join("run"), &trainer_config()).unwrap();
    let mut t = Trainer::new(trainer_config(), run.clone());
    t.quiet = true;
    // 24 training images / batch 8 = 3 steps per epoch: the 5th call is epoch 2, step 2.
    // Seeded under the lock like every init here: the tests share one generator.
    let model = metron_core::seeded_init(&device, 1, || {
        Ok::<_, ()>(NanAfter {
            lin: LinearConfig::new(3 * 16 * 16, 4).init(&device),
            calls: Arc::new(AtomicUsize::new(0)),
            nan_from: 4,
        })
    })
    .unwrap();
    let err = fit(&t, model, &data, &device).unwrap_err();
    match &err {
        TrainError::NonFiniteLoss {
            epoch,
            step,
            value,
            checkpoint,
        } => {
            assert_eq!((*epoch, *step), (2, 2));
            assert!(value.is_nan());
            assert_eq!(checkpoint.as_deref(), Some(run.last_checkpoint().as_path()));
        }
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    assert!(err.to_string().contains("last.ckpt"), "{err}");
    let ck = read_checkpoint(&run.last_checkpoint()).unwrap();
    let state: TrainState = ck.state(&run.last_checkpoint()).unwrap();
    assert_eq!(state.epochs_done, 1);
}

/// A pipeline whose custom step panics on the image at `bad` (one of the split's files).
fn panicking(mut pipeline: Pipeline, bad: std::path::PathBuf) -> Pipeline {
    let bad = image::open(&bad).unwrap().to_rgb8();
    let boom = metron_datasets::CustomTransform::new("boom", move |img: RgbImage, _rng: &mut _| {
        assert!(img != bad, "custom transform failed");
        img
    });
    pipeline.steps.insert(0, Transform::Custom(boom));
    pipeline
}

#[test]
fn a_loader_that_loses_its_worker_fails_fit_and_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = data(dir.path());
    let device = device();
    let bad = data.train.samples[10].path.clone();
    data.train_pipeline = panicking(data.train_pipeline.clone(), bad.clone());
    let run = RunDir::create(dir.path().join("run"), &trainer_config()).unwrap();
    let mut t = Trainer::new(
        TrainerConfig {
            evaluate_untrained: false,
            ..trainer_config()
        },
        run,
    );
    t.quiet = true;
    let err = fit(&t, fresh_model(&device), &data, &device).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("batch loader stopped"), "{msg}");
    assert!(msg.contains("custom transform failed"), "{msg}");

    // Embedding a split: an error, not fewer rows.
    let samples: Arc<dyn metron_datasets::ImageSource> = Arc::new(data.train.samples.clone());
    let pipeline = Arc::new(panicking(data.test_pipeline.pipeline(), bad));
    let err = metron_train::embed_samples(
        &fresh_model(&device),
        samples,
        pipeline,
        5,
        metron_datasets::LoaderConfig::default(),
        &device,
        &metron_train::Bar::new(0, "", true),
    )
    .unwrap_err();
    assert!(err.to_string().contains("custom transform failed"), "{err}");
}

#[test]
fn a_nan_in_sams_second_pass_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();
    let config = TrainerConfig {
        sam: Some(SamSetting::Sam { rho: 0.05 }),
        evaluate_untrained: false,
        ..trainer_config()
    };
    let run = RunDir::create(dir.path().join("run"), &config).unwrap();
    let mut t = Trainer::new(config, run);
    t.quiet = true;
    // Call 0 is step 1's first pass, call 1 its second (perturbed) pass.
    let model = metron_core::seeded_init(&device, 1, || {
        Ok::<_, ()>(NanAfter {
            lin: LinearConfig::new(3 * 16 * 16, 4).init(&device),
            calls: Arc::new(AtomicUsize::new(0)),
            nan_from: 1,
        })
    })
    .unwrap();
    match fit(&t, model, &data, &device).unwrap_err() {
        TrainError::NonFiniteLoss { epoch, step, .. } => assert_eq!((epoch, step), (1, 1)),
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
}

/// BatchNorm straight on the pixels, so that its running statistics depend on the batches
/// seen and not on the weights.
#[derive(Module, Debug)]
struct BnOnPixels {
    bn: burn::nn::BatchNorm,
    lin: Linear,
}

impl TrainModel for BnOnPixels {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> metron_train::Result<LossOutput> {
        Ok(LossOutput {
            total: self.embed(batch_images(batch, device)).square().mean(),
            parts: vec![],
        })
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({"kind": "bn_on_pixels"})
    }
}

impl EmbeddingModel for BnOnPixels {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = images.dims();
        let x = images.reshape([b, c * h * w]);
        self.lin
            .forward(metron_ops::batch_norm_forward(&self.bn, x))
    }
}

#[test]
fn sams_second_pass_leaves_batch_norm_statistics_alone_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();
    let running_mean = |sam_rho: Option<f64>, second_pass_updates: bool, name: &str| {
        let config = TrainerConfig {
            epochs: 1,
            sam: sam_rho.map(|rho| SamSetting::Sam { rho }),
            sam_second_pass_updates_batch_norm: second_pass_updates,
            evaluate_untrained: false,
            ..trainer_config()
        };
        let run = RunDir::create(dir.path().join(name), &config).unwrap();
        let mut t = Trainer::new(config, run);
        t.quiet = true;
        let model = metron_core::seeded_init(&device, 2, || {
            Ok::<_, ()>(BnOnPixels {
                bn: burn::nn::BatchNormConfig::new(3 * 16 * 16).init(&device),
                lin: LinearConfig::new(3 * 16 * 16, 4).init(&device),
            })
        })
        .unwrap();
        let out = fit(&t, model, &data, &device).unwrap();
        out.model
            .bn
            .running_mean
            .value_sync()
            .into_data()
            .iter::<f32>()
            .collect::<Vec<_>>()
    };
    let plain = running_mean(None, false, "plain");
    assert_eq!(running_mean(Some(0.05), false, "sam"), plain);
    assert_ne!(running_mean(Some(0.05), true, "sam-updates"), plain);
}

/// A second kind of run through the same loop: class-contiguous batches (Smooth-AP's sampler)
/// and AdamW instead of CGD's M-per-class batches and Adam; a resumed run still ends exactly
/// where an uninterrupted one does.
#[test]
fn any_sampler_and_adamw_train_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path());
    let device = device();
    let labels = data.labels();
    let sampler = metron_samplers::ClassContiguousSampler::new(&labels, 8, 4, 3).unwrap();
    let config = TrainerConfig {
        optimizer: metron_train::OptimizerSetting::adamw(0.05),
        ..trainer_config()
    };
    let run = |name: &str, stop_after: Option<usize>, model: CgdModel| {
        let root = dir.path().join(name);
        let run_dir = if root.exists() {
            RunDir::open(&root).unwrap()
        } else {
            RunDir::create(&root, &config).unwrap()
        };
        let mut t = Trainer::new(config.clone(), run_dir);
        t.quiet = true;
        t.stop_after = stop_after;
        fit_with(&t, model, &sampler, &data, &device).unwrap()
    };
    let straight = run("straight", None, fresh_model(&device));
    assert!(straight.finished);
    assert!(!run("resumed", Some(1), fresh_model(&device)).finished);
    let resumed = run("resumed", None, seeded_model(&device, 999));
    assert!(resumed.finished);
    assert_eq!(weights(&straight.model), weights(&resumed.model));
    assert_ne!(weights(&straight.model), weights(&fresh_model(&device)));
    let test = |o: &TrainOutcome<CgdModel>| {
        o.state
            .history
            .iter()
            .map(|r| r.test.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(test(&straight), test(&resumed));

    // A sampler whose indices do not fit the data is the loader's error, not a panic.
    let small: Vec<usize> = labels
        .iter()
        .copied()
        .chain(labels.iter().copied())
        .collect();
    let too_big = metron_samplers::ClassContiguousSampler::new(&small, 8, 4, 3).unwrap();
    let t = Trainer::new(
        config.clone(),
        RunDir::create(dir.path().join("bad"), &config).unwrap(),
    );
    let err = fit_with(&t, fresh_model(&device), &too_big, &data, &device).unwrap_err();
    assert!(err.to_string().contains("past the 24 samples"), "{err}");
}

/// Three linear maps whose loss is the sum of their weights (a gradient of 1 everywhere, so a
/// plain SGD step moves every weight by minus its learning rate), with a loss part `watch`
/// equal to the 0-based epoch.
#[derive(Module, Debug)]
struct ThreeSums {
    a: Linear,
    b: Linear,
    c: Linear,
    #[module(skip)]
    epoch: usize,
}

impl TrainModel for ThreeSums {
    type Batch = ImageBatch;

    fn loss(&self, _batch: &ImageBatch, device: &Device) -> metron_train::Result<LossOutput> {
        let total =
            self.a.weight.val().sum() + self.b.weight.val().sum() + self.c.weight.val().sum();
        let watch = Tensor::<1>::from_floats([self.epoch as f32], device);
        Ok(LossOutput {
            total,
            parts: vec![("watch", watch)],
        })
    }

    fn at_epoch(mut self, epoch: usize) -> Self {
        self.epoch = epoch;
        self
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({"kind": "three_sums"})
    }
}

impl EmbeddingModel for ThreeSums {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = images.dims();
        self.c.forward(images.reshape([b, c * h * w]))
    }
}

fn three_sums(device: &Device) -> ThreeSums {
    let lin = || {
        LinearConfig::new(3 * 16 * 16, 2)
            .with_bias(false)
            .init(device)
    };
    metron_core::seeded_init(device, 3, || {
        Ok::<_, ()>(ThreeSums {
            a: lin(),
            b: lin(),
            c: lin(),
            epoch: 0,
        })
    })
    .unwrap()
}

fn first_weight(l: &Linear) -> f64 {
    l.weight
        .val()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()[0]
}

/// One plain SGD step (no momentum, no decay) per epoch on `data` with `config`'s groups.
fn sgd_sums(
    dir: &Path,
    config: TrainerConfig,
    stop_after: Option<usize>,
) -> TrainOutcome<ThreeSums> {
    let data = data(dir);
    let device = device();
    let run = RunDir::open(dir.join("run"))
        .or_else(|_| RunDir::create(dir.join("run"), &1))
        .unwrap();
    let mut t = Trainer::new(config, run);
    t.quiet = true;
    t.stop_after = stop_after;
    let sampler = metron_samplers::ShuffleSampler::new(24, 24, true, 1).unwrap();
    fit_with(&t, three_sums(&device), &sampler, &data, &device).unwrap()
}

fn plain_sgd(epochs: usize) -> TrainerConfig {
    TrainerConfig {
        eval_every: 100,
        evaluate_untrained: false,
        ..TrainerConfig::new(epochs, OptimizerSetting::sgd(0.0, 0.0), 0.01)
    }
}

#[test]
fn per_group_warmup_ramps_the_listed_groups_and_stops_the_others() {
    use metron_train::{GroupWarmupStage, ParamGroupSetting};
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let start = three_sums(&device);
    let mut config = plain_sgd(6);
    config.param_groups = vec![
        ParamGroupSetting::new("a.**"),
        ParamGroupSetting::new("b.**").with_lr_multiplier(2.0),
    ];
    // As WGOL's ILSVRC warmup: stage epochs are inclusive of start + period.
    config.group_warmup = vec![
        GroupWarmupStage {
            start: 0,
            period: 2,
            groups: vec!["a.**".into()],
        },
        GroupWarmupStage {
            start: 3,
            period: 1,
            groups: vec!["*".into()],
        },
    ];
    let out = sgd_sums(dir.path(), config, None);
    // Per-epoch factors: a 0, .5, 1 (stage 1), 0 (stage 2 starts at 0), 1, 1;
    // b (x2) and c (default group) 0, 0, 0, 0, then full from epoch 4 on.
    let moved =
        |after: &Linear, before: &Linear| (first_weight(before) - first_weight(after)) / 0.01;
    for (name, got, want) in [
        ("a", moved(&out.model.a, &start.a), 3.5),
        ("b", moved(&out.model.b, &start.b), 4.0),
        ("c", moved(&out.model.c, &start.c), 2.0),
    ] {
        assert!(
            (got - want).abs() < 1e-3,
            "{name}: moved {got} learning rates, want {want}"
        );
    }
}

#[test]
fn a_loss_triggered_decay_cuts_the_rate_and_the_run_and_resumes_exactly() {
    use metron_train::LossTriggeredDecay;
    let config = || TrainerConfig {
        decay_on_loss: Some(LossTriggeredDecay {
            part: "watch".into(),
            threshold: 2.0,
            min_epoch: 2,
            gamma: 0.1,
            extra_epochs: 2,
        }),
        ..plain_sgd(10)
    };
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let start = three_sums(&device);
    let out = sgd_sums(dir.path(), config(), None);
    // `watch` of epoch n (1-based) is n - 1: first >= 2 after epoch 3, so epochs 4 and 5 run
    // at a tenth of the rate and the run ends after 5 of its 10 epochs.
    assert_eq!(out.state.decayed_after, Some(3));
    assert_eq!(out.state.epochs_done, 5);
    let lrs: Vec<f64> = out.state.history.iter().map(|r| r.lr).collect();
    let want = [0.01, 0.01, 0.01, 0.001, 0.001];
    assert!(
        lrs.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12),
        "{lrs:?}"
    );
    let moved = (first_weight(&start.c) - first_weight(&out.model.c)) / 0.01;
    assert!((moved - 3.2).abs() < 1e-3, "moved {moved}");
    // Stopped after the trigger's epoch and resumed: the same end.
    let dir2 = tempfile::tempdir().unwrap();
    let stopped = sgd_sums(dir2.path(), config(), Some(3));
    assert!(!stopped.finished);
    let resumed = sgd_sums(dir2.path(), config(), None);
    assert_eq!(resumed.state.epochs_done, 5);
    assert_eq!(first_weight(&resumed.model.c), first_weight(&out.model.c));
}
