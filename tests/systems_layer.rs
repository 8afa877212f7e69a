//! The systems layer with a second, tiny system defined here: it trains through the same
//! `Trainer` with a class-contiguous sampler, AdamW with parameter groups, a per-iteration
//! warmup-cosine schedule and clipping, resumes exactly, and its checkpoint loads by the kind
//! recorded in it. Parameter groups are checked against hand-computed SGD steps.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use metron::systems::{System, SystemError, entry, load_checkpoint};
use metron_datasets::{
    Batch, ImageBatch, ImageBatches, ImageSource, InMemoryImages, LoadBatch, Pipeline, decode_batch,
};
use metron_losses::{ContrastiveLoss, NtXentLoss};
use metron_samplers::{ClassContiguousSampler, ShuffleSampler};
use metron_train::{
    CrossViewEvaluation, CrossViewModel, EmbeddingModel, Evaluation, GroupedOptimizer, LossOutput,
    LrSchedule, OptimizerSetting, ParamGroupSetting, PipelineSpec, RetrievalEvaluation, RunDir,
    StepUnit, TrainModel, TrainOutcome, Trainer, TrainerConfig, batch_images, param_paths,
};

const SIDE: u32 = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TinyConfig {
    hidden: usize,
    dim: usize,
}

/// Pixels -> linear encoder -> ReLU -> linear head -> unit vector; contrastive loss.
#[derive(Module, Debug)]
struct TinyModel {
    encoder: Linear,
    head: Linear,
    #[module(skip)]
    config: TinyConfig,
}

impl TinyConfig {
    fn init(&self, device: &Device) -> TinyModel {
        let inputs = 3 * (SIDE * SIDE) as usize;
        TinyModel {
            encoder: LinearConfig::new(inputs, self.hidden).init(device),
            head: LinearConfig::new(self.hidden, self.dim).init(device),
            config: self.clone(),
        }
    }
}

impl EmbeddingModel for TinyModel {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = images.dims();
        let x = self.encoder.forward(images.reshape([b, c * h * w]));
        let e = self.head.forward(burn::tensor::activation::relu(x));
        let norm = e.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        e / norm
    }
}

impl TrainModel for TinyModel {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> metron_train::Result<LossOutput> {
        let e = self.embed(batch_images(batch, device));
        let total = ContrastiveLoss::new(0.0, 0.5).forward(e, &batch.labels)?;
        Ok(LossOutput {
            total: total.clone(),
            parts: vec![("contrastive", total)],
        })
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": Tiny::KIND, "config": self.config })
    }
}

struct Tiny;

impl System for Tiny {
    const KIND: &'static str = "tiny_test";
    const DESCRIPTION: &'static str = "a two-layer embedding for tests";
    const PRESETS: &'static [&'static str] = &["cpu"];
    type ModelConfig = TinyConfig;
    type Model = TinyModel;

    fn build(config: &TinyConfig, device: &Device) -> Result<TinyModel, SystemError> {
        Ok(config.init(device))
    }

    fn embedding_dim(config: &TinyConfig) -> usize {
        config.dim
    }
}

/// Class c: a bright square at a class-specific place; images built in memory.
fn images(classes: usize, per_class: usize, seed: u32) -> InMemoryImages {
    let mut pictures = Vec::new();
    let mut labels = Vec::new();
    for c in 0..classes {
        for i in 0..per_class {
            let (cx, cy) = (1 + 3 * (c as u32 % 2), 1 + 3 * (c as u32 / 2));
            pictures.push(RgbImage::from_fn(SIDE, SIDE, |x, y| {
                let noise = ((x * 31 + y * 17 + i as u32 * 13 + seed * 7) % 60) as u8;
                if x.abs_diff(cx) < 2 && y.abs_diff(cy) < 2 {
                    Rgb([190 + noise, 150, 30 * c as u8])
                } else {
                    Rgb([noise, noise, noise])
                }
            }));
            labels.push(c);
        }
    }
    InMemoryImages::new(format!("tiny-{seed}"), pictures, labels).unwrap()
}

fn test_pipeline() -> PipelineSpec {
    PipelineSpec::resize([SIDE, SIDE], [0.5; 3], [0.25; 3])
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

fn model(device: &Device, seed: u64) -> TinyModel {
    let config = TinyConfig { hidden: 16, dim: 6 };
    metron_core::seeded_init(device, seed, || Ok::<_, ()>(config.init(device))).unwrap()
}

fn trainer_config() -> TrainerConfig {
    TrainerConfig {
        schedule: LrSchedule::WarmupCosine {
            warmup: 2,
            floor: 0.01,
        },
        schedule_unit: StepUnit::Iteration,
        param_groups: vec![
            ParamGroupSetting::new("head.**").with_lr_multiplier(10.0),
            ParamGroupSetting::new("**.bias")
                .with_lr_multiplier(2.0)
                .with_no_weight_decay(),
        ],
        clip_grad_norm: Some(1.0),
        eval_every: 2,
        seed: 3,
        ..TrainerConfig::new(3, OptimizerSetting::adamw(0.05), 3e-3)
    }
}

/// Runs (or resumes) the tiny system in `root`.
fn train(
    root: &Path,
    config: &TrainerConfig,
    start: TinyModel,
    stop_after: Option<usize>,
) -> TrainOutcome<TinyModel> {
    let train_images = images(4, 6, 1);
    let labels = train_images.labels.clone();
    let sampler = ClassContiguousSampler::new(&labels, 8, 4, 3).unwrap();
    let pipeline = Pipeline::new(vec![metron_datasets::Transform::HorizontalFlip { p: 0.5 }])
        .with_normalization([0.5; 3], [0.25; 3]);
    let train = Arc::new(ImageBatches::new(
        Arc::new(train_images),
        Arc::new(pipeline),
        false,
    ));
    let evaluation = evaluation();
    let run = if root.join("config.json").is_file() {
        RunDir::open(root).unwrap()
    } else {
        RunDir::create(root, config).unwrap()
    };
    let mut t = Trainer::new(config.clone(), run);
    t.quiet = true;
    t.stop_after = stop_after;
    t.eval_pipeline = Some(test_pipeline());
    t.fit(start, &sampler, train, &evaluation, &device())
        .unwrap()
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn a_second_system_trains_through_the_same_loop_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let config = trainer_config();
    let straight = train(
        &dir.path().join("straight"),
        &config,
        model(&device, 1),
        None,
    );
    assert!(straight.finished);
    // Untrained, then epochs 1..3, evaluated after epoch 2 and the last one only.
    let evaluated: Vec<bool> = straight
        .state
        .history
        .iter()
        .map(|r| !r.test.is_empty())
        .collect();
    assert_eq!(evaluated, vec![true, false, true, true]);
    // 4 classes of 6 images, blocks of 4, 2 classes per batch: 2 iterations per epoch. The
    // warmup (2 iterations) starts at 0; iteration 4 is half-way through the 4 cosine steps.
    assert_eq!(straight.state.iterations_done, 6);
    let lrs: Vec<f64> = straight.state.history[1..].iter().map(|r| r.lr).collect();
    assert_eq!(lrs[0], 0.0);
    assert_eq!(lrs[1], 3e-3, "iteration 2 ends the warmup");
    assert!((lrs[2] - 1.5e-3).abs() < 1e-12, "{lrs:?}");

    let root = dir.path().join("resumed");
    assert!(!train(&root, &config, model(&device, 1), Some(1)).finished);
    let resumed = train(&root, &config, model(&device, 77), None);
    assert!(resumed.finished);
    let w = |m: &TinyModel| (values(m.encoder.weight.val()), values(m.head.weight.val()));
    assert_eq!(w(&straight.model), w(&resumed.model));
    assert_ne!(
        w(&straight.model),
        w(&model(&device, 1)),
        "training moved nothing"
    );
    let metrics = |o: &TrainOutcome<TinyModel>| {
        o.state
            .history
            .iter()
            .map(|r| (r.epoch, r.lr, r.loss, r.test.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&straight), metrics(&resumed));

    // Its checkpoint loads by the kind recorded in it, with a table that lists the system.
    let best = root.join("checkpoints/last.ckpt");
    let plain = metron_core::parse_device("cpu").unwrap();
    let loaded = load_checkpoint(
        &best,
        &plain,
        &[entry::<metron::systems::cgd::Cgd>(), entry::<Tiny>()],
    )
    .unwrap();
    assert_eq!((loaded.kind, loaded.embedding_dim), ("tiny_test", 6));
    let test_images: Arc<dyn ImageSource> = Arc::new(images(4, 3, 2));
    let bar = metron_train::Bar::new(0, "", true);
    let e = loaded
        .embed_images(test_images, 4, Default::default(), &bar)
        .unwrap();
    let run_own = resumed.last_evaluation.unwrap().embeddings.unwrap().query;
    let diff = e
        .embeddings
        .iter()
        .zip(run_own.embeddings.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "embeddings differ by {diff}");
    // metron's own table does not know this kind: a clear error naming it and the known ones.
    let err = load_checkpoint(&best, &plain, metron::systems::SYSTEMS).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("'tiny_test'") && msg.contains("known: cgd") && msg.contains("last.ckpt"),
        "{msg}"
    );
}

/// A one-layer model with a bias whose loss is `sum(W x + b)`, so every gradient is known.
fn sgd_step(groups: Vec<ParamGroupSetting>, weight_decay: f64) -> (Vec<f32>, Vec<f32>, Linear) {
    let device = device();
    let lin: Linear = metron_core::seeded_init(&device, 4, || {
        Ok::<_, ()>(LinearConfig::new(2, 2).init(&device))
    })
    .unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
    let (g, mut optimizer) =
        GroupedOptimizer::new(&OptimizerSetting::sgd(0.0, weight_decay), &groups, &lin).unwrap();
    let lin_now = g.freeze(lin.clone());
    let loss = lin_now.forward(x).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &lin_now);
    let stepped = optimizer.step(g.learning_rate(0.1), lin_now, grads);
    let w = values(stepped.weight.val());
    let b = stepped
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    (w, b, lin)
}

#[test]
fn parameter_groups_scale_exempt_and_freeze_as_configured() {
    let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
    // d loss / d W[i][j] = x[i] (Burn's Linear weight is [in, out]); d loss / d b = 1.
    let (w, b, start) = sgd_step(vec![], 0.0);
    let w0 = values(start.weight.val());
    let b0 = start
        .bias
        .unwrap()
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let grad_w = [1.0f32, 1.0, 2.0, 2.0];
    for i in 0..4 {
        assert!(close(w[i], w0[i] - 0.1 * grad_w[i]), "plain SGD weight {i}");
    }
    assert!(b.iter().zip(&b0).all(|(b, b0)| close(*b, b0 - 0.1)));

    // "bias x2, no decay" beside a decayed weight: SGD adds wd * w to the gradient.
    let groups = vec![
        ParamGroupSetting::new("bias")
            .with_lr_multiplier(2.0)
            .with_no_weight_decay(),
    ];
    let (w, b, _) = sgd_step(groups, 0.5);
    for i in 0..4 {
        assert!(
            close(w[i], w0[i] - 0.1 * (grad_w[i] + 0.5 * w0[i])),
            "decayed weight {i}"
        );
    }
    assert!(
        b.iter().zip(&b0).all(|(b, b0)| close(*b, b0 - 0.2)),
        "bias x2 without decay"
    );

    // Frozen: the weight never moves, the bias does.
    let (w, b, _) = sgd_step(vec![ParamGroupSetting::new("weight").frozen()], 0.0);
    assert_eq!(w, w0);
    assert!(b.iter().zip(&b0).all(|(b, b0)| close(*b, b0 - 0.1)));

    // A group that matches nothing is an error naming it and the real names.
    let device = device();
    let lin: Linear = LinearConfig::new(2, 2).init(&device);
    let err = match GroupedOptimizer::new(
        &OptimizerSetting::adam(0.0),
        &[ParamGroupSetting::new("head.**")],
        &lin,
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a group matching nothing was accepted"),
    };
    assert!(err.contains("head.**") && err.contains("weight"), "{err}");
    let names: Vec<String> = param_paths(&lin).into_iter().map(|(_, p)| p).collect();
    assert_eq!(names, vec!["weight", "bias"]);
}

/// Two augmentations of each image, a SimCLR-style batch: not (images, labels).
#[derive(Debug)]
struct TwoViews {
    first: ImageBatch,
    second: ImageBatch,
}

impl Batch for TwoViews {
    fn items(&self) -> usize {
        self.first.len()
    }
}

struct TwoViewLoader {
    images: Arc<dyn ImageSource>,
    pipeline: Arc<Pipeline>,
}

impl LoadBatch for TwoViewLoader {
    type Batch = TwoViews;

    fn len(&self) -> usize {
        self.images.len()
    }

    fn load(&self, indices: &[usize], seeds: &[u64]) -> metron_datasets::Result<TwoViews> {
        let second: Vec<u64> = seeds
            .iter()
            .map(|&s| metron_core::split_seed(s, 1))
            .collect();
        let view =
            |seeds: &[u64]| decode_batch(&*self.images, indices, seeds, &self.pipeline, false);
        Ok(TwoViews {
            first: view(seeds)?,
            second: view(&second)?,
        })
    }
}

/// The tiny network trained to match the two views of each image (NT-Xent, the image index
/// as the pair id): class labels are never read.
#[derive(Module, Debug)]
struct TwoViewModel {
    net: TinyModel,
}

impl TrainModel for TwoViewModel {
    type Batch = TwoViews;

    fn loss(&self, batch: &TwoViews, device: &Device) -> metron_train::Result<LossOutput> {
        let e = Tensor::cat(
            vec![
                self.net.embed(batch_images(&batch.first, device)),
                self.net.embed(batch_images(&batch.second, device)),
            ],
            0,
        );
        let ids: Vec<i64> = batch
            .first
            .indices
            .iter()
            .chain(&batch.second.indices)
            .map(|&i| i as i64)
            .collect();
        let total = NtXentLoss::new(0.5).forward(e, &ids)?;
        Ok(LossOutput {
            total: total.clone(),
            parts: vec![("ntxent", total)],
        })
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": "two_view_test", "config": self.net.config })
    }
}

impl EmbeddingModel for TwoViewModel {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.embed(images)
    }
}

fn flip_pipeline() -> Pipeline {
    Pipeline::new(vec![
        metron_datasets::Transform::HorizontalFlip { p: 0.5 },
        metron_datasets::Transform::RandomCrop { size: [6, 6] },
        metron_datasets::Transform::Resize { size: [SIDE, SIDE] },
    ])
    .with_normalization([0.5; 3], [0.25; 3])
}

fn evaluation() -> RetrievalEvaluation {
    RetrievalEvaluation {
        query: Arc::new(images(4, 3, 2)),
        gallery: None,
        pipeline: Arc::new(test_pipeline().pipeline()),
        ks: vec![1, 2],
        batch_size: 5,
        loader: Default::default(),
        clustering_seed: None,
    }
}

#[test]
fn a_batch_of_two_views_trains_through_the_same_loop_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let source: Arc<dyn ImageSource> = Arc::new(images(4, 6, 1));
    let train: Arc<dyn LoadBatch<Batch = TwoViews>> = Arc::new(TwoViewLoader {
        images: source.clone(),
        pipeline: Arc::new(flip_pipeline()),
    });
    // The two views of a batch are different augmentations of the same images.
    let b = train.load(&[0, 1, 2, 3], &[11, 12, 13, 14]).unwrap();
    assert_eq!(b.first.indices, b.second.indices);
    assert_ne!(b.first.images, b.second.images);

    let config = TrainerConfig {
        evaluate_untrained: false,
        ..TrainerConfig::new(2, OptimizerSetting::adam(0.0), 1e-2)
    };
    let sampler = ShuffleSampler::new(source.len(), 8, true, 5).unwrap();
    let run = |name: &str, start: TwoViewModel, stop_after: Option<usize>| {
        let root = dir.path().join(name);
        let run = if root.join("config.json").is_file() {
            RunDir::open(&root).unwrap()
        } else {
            RunDir::create(&root, &config).unwrap()
        };
        let mut t = Trainer::new(config.clone(), run);
        t.quiet = true;
        t.stop_after = stop_after;
        t.fit(start, &sampler, train.clone(), &evaluation(), &device)
            .unwrap()
    };
    let start = |seed| TwoViewModel {
        net: model(&device, seed),
    };
    let straight = run("straight", start(2), None);
    assert!(!run("resumed", start(2), Some(1)).finished);
    let resumed = run("resumed", start(9), None);
    let w = |m: &TwoViewModel| values(m.net.encoder.weight.val());
    assert_eq!(w(&straight.model), w(&resumed.model));
    assert_ne!(w(&straight.model), w(&start(2)));
    let history = &straight.state.history;
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|r| r.loss_parts.contains_key("ntxent")));
    assert_eq!(history[1].test, resumed.state.history[1].test);
}

/// Every float parameter of the tiny model, flattened.
fn parameters(m: &TinyModel) -> Vec<f32> {
    let bias = |l: &Linear| values(l.bias.as_ref().unwrap().val().unsqueeze::<2>());
    [
        values(m.encoder.weight.val()),
        bias(&m.encoder),
        values(m.head.weight.val()),
        bias(&m.head),
    ]
    .concat()
}

#[test]
fn gradients_are_clipped_to_their_joint_norm() {
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let train_images = images(4, 6, 1);
    let sampler = ShuffleSampler::new(train_images.len(), 8, true, 1).unwrap();
    let train: Arc<dyn LoadBatch<Batch = ImageBatch>> = Arc::new(ImageBatches::new(
        Arc::new(train_images),
        Arc::new(test_pipeline().pipeline()),
        false,
    ));
    // Plain SGD at rate 1: a step moves the parameters by exactly the (clipped) gradient.
    let moved = |clip: Option<f64>, name: &str| {
        let config = TrainerConfig {
            clip_grad_norm: clip,
            evaluate_untrained: false,
            ..TrainerConfig::new(1, OptimizerSetting::sgd(0.0, 0.0), 1.0)
        };
        let mut t = Trainer::new(
            config.clone(),
            RunDir::create(dir.path().join(name), &config).unwrap(),
        );
        t.quiet = true;
        let before = parameters(&model(&device, 3));
        let out = t
            .fit(
                model(&device, 3),
                &sampler,
                train.clone(),
                &evaluation(),
                &device,
            )
            .unwrap();
        let after = parameters(&out.model);
        before
            .iter()
            .zip(&after)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    // 24 images in batches of 8: three steps, each of norm at most 1e-3.
    let clipped = moved(Some(1e-3), "clipped");
    assert!(clipped > 0.0 && clipped <= 3e-3 * (1.0 + 1e-4), "{clipped}");
    let free = moved(None, "free");
    assert!(
        free > 10.0 * 3e-3,
        "unclipped steps are larger ({free}), or the bound proves nothing"
    );
}

/// Two branches of the same tiny network (ground and aerial views of SAIG's kind).
#[derive(Module, Debug)]
struct TwoBranch {
    net: TinyModel,
}

impl CrossViewModel for TwoBranch {
    fn embed_query(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.embed(images)
    }

    fn embed_reference(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.embed(images)
    }
}

#[test]
fn cross_view_evaluation_ranks_each_query_against_every_reference() {
    let device = device();
    let model = TwoBranch {
        net: model(&device, 4),
    };
    let queries = images(4, 3, 2);
    let pipeline = Arc::new(test_pipeline().pipeline());
    let evaluate = |references: InMemoryImages| {
        let e = CrossViewEvaluation {
            queries: Arc::new(queries.clone()),
            query_pipeline: pipeline.clone(),
            references: Arc::new(references),
            reference_pipeline: pipeline.clone(),
            ks: vec![1, 5],
            positives: Default::default(),
            semi_positives: Default::default(),
            batch_size: 5,
            loader: Default::default(),
        };
        e.evaluate(&model, &device, true).unwrap().metrics
    };
    // Each query's reference is the same picture: its own embedding, similarity 1, first.
    let m = evaluate(queries.clone());
    assert_eq!((m["recall_at_1"], m["recall_at_5"]), (1.0, 1.0));
    // 12 references: K = 12 / 100 + 1 = 1, so top-1 % is Recall@1.
    assert_eq!(
        (m["top1_percent_k"], m["recall_at_top1_percent"]),
        (1.0, 1.0)
    );
    // References in reverse order: query i's match is picture 11 - i, never its own picture,
    // which now sits elsewhere in the gallery with similarity 1 and ranks first.
    let mut reversed = queries.clone();
    reversed.images.reverse();
    reversed.labels.reverse();
    let m = evaluate(reversed);
    assert_eq!(m["recall_at_1"], 0.0);
    assert!(m["recall_at_5"] < 1.0);
}
