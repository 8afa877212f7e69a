//! AntiMetric's network: a ResNet cut after `share`, one shared trunk, and E learners each
//! holding its own copy of the rest (own BatchNorm statistics); every learner classifies the
//! image into its own meta-classes, and retrieval averages the learners' cosine similarities.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use metron_backbones::{
    Architecture, ResNet, ResNetBranch, ResNetConfig, ResNetStage, ResNetTrunk, parameter_count,
};
use metron_datasets::ImageBatch;
use metron_descriptors::{MetaClassEnsembleHead, MetaClassEnsembleHeadConfig, meta_class_codes};
use metron_losses::MetaClassCrossEntropy;
use metron_train::{EmbeddingModel, LossOutput, Result, TrainError, TrainModel, batch_images};

/// Everything that defines an AntiMetric ensemble, its meta-class codes included (so a
/// checkpoint, a resumed run and `metron embed` all see the same codes). Defaults are the
/// original's (spec s. 5): share layer1, no fully connected layer (the pooled feature is the
/// logit vector), no random branch weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AntiMetricModelConfig {
    /// `resnet18`, `resnet34`, `resnet50` or `resnext50_32x4d`.
    pub backbone: String,
    /// Stem / stage-1 width of the ResNet (64 = torchvision; smaller for CPU runs).
    pub base_width: usize,
    /// Where the trunk ends: `maxpool`, `layer1`, `layer2`, `layer3` or `layer4`.
    pub share: String,
    /// E, the number of learners.
    pub ensemble_size: usize,
    /// M, the meta-classes each learner tells apart.
    pub meta_classes: usize,
    /// A `Linear(D -> M)` per learner; off, the pooled D-d feature itself is the logit vector
    /// (targets < M), as the original's default.
    pub with_fc: bool,
    /// In training, scale the trunk's output for learner e by `softmax(u)_e`, `u ~ U(0, 1)^E`
    /// drawn per image (1 at evaluation).
    pub with_random: bool,
    /// `codes[c][e]`: the meta-class of training class `c` (position in the sorted class
    /// names) for learner `e`; all rows distinct, each column balanced (`create_id`).
    pub codes: Vec<Vec<usize>>,
}

/// Which of the per-image random streams the branch weights draw from (the augmentation uses
/// the stream itself).
const BRANCH_WEIGHT_STREAM: u64 = 0xB4A7_C4E5;

impl AntiMetricModelConfig {
    /// The ensemble for `classes` training classes, its codes drawn from `seed`.
    pub fn new(
        backbone: &str,
        ensemble_size: usize,
        meta_classes: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self> {
        let codes = meta_class_codes(classes, meta_classes, ensemble_size, seed)?;
        Ok(AntiMetricModelConfig {
            backbone: backbone.into(),
            base_width: 64,
            share: "layer1".into(),
            ensemble_size,
            meta_classes,
            with_fc: false,
            with_random: false,
            codes,
        })
    }

    /// The ResNet the trunk and learners are cut from (load pretrained weights into it, then
    /// [`AntiMetricModelConfig::from_resnet`]).
    pub fn resnet_config(&self) -> Result<ResNetConfig> {
        let entry = metron_backbones::backbone_entry(&self.backbone)?;
        let Architecture::ResNet(config) = entry.architecture else {
            return Err(TrainError::Config(format!(
                "AntiMetric's backbone '{}' is not a ResNet",
                self.backbone
            )));
        };
        Ok(config().with_base_width(self.base_width))
    }

    fn stage(&self) -> Result<ResNetStage> {
        Ok(self.share.parse::<ResNetStage>()?)
    }

    /// The width of one learner's output: M with the fully connected layer, else the
    /// ResNet's pooled feature width.
    pub fn feature_dim(&self) -> Result<usize> {
        Ok(if self.with_fc {
            self.meta_classes
        } else {
            self.resnet_config()?.out_channels()
        })
    }

    /// The retrieval embedding's width: E learners' unit features side by side.
    pub fn embedding_dim(&self) -> Result<usize> {
        Ok(self.ensemble_size * self.feature_dim()?)
    }

    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(TrainError::Config(why));
        if self.ensemble_size == 0 || self.meta_classes < 2 {
            return bad(format!(
                "AntiMetric needs at least one learner and two meta-classes, got E = {}, M = {}",
                self.ensemble_size, self.meta_classes
            ));
        }
        let width = self.resnet_config()?.out_channels();
        if !self.with_fc && self.meta_classes > width {
            return bad(format!(
                "without a fully connected layer the {width}-d pooled feature is the logit \
                 vector: M = {} meta-classes do not fit (use --with-fc or fewer meta-classes)",
                self.meta_classes
            ));
        }
        if let Some((c, code)) = self.codes.iter().enumerate().find(|(_, code)| {
            code.len() != self.ensemble_size || code.iter().any(|&m| m >= self.meta_classes)
        }) {
            return bad(format!(
                "meta-class code of class {c} ({code:?}) needs {} entries below {}",
                self.ensemble_size, self.meta_classes
            ));
        }
        Ok(())
    }

    /// Builds the ensemble with random weights (under [`metron_core::seeded_init`] for a
    /// reproducible init): every learner starts from the same weights, as the original copies
    /// one pretrained network E times.
    pub fn init(&self, device: &Device) -> Result<AntiMetricModel> {
        self.from_resnet(self.resnet_config()?.init(device)?, device)
    }

    /// The ensemble cut from `resnet` (its weights, e.g. ImageNet's, start the trunk and every
    /// learner).
    pub fn from_resnet(&self, resnet: ResNet, device: &Device) -> Result<AntiMetricModel> {
        self.check()?;
        let (trunk, branch) = resnet.split(self.stage()?);
        let learners = (0..self.ensemble_size)
            .map(|_| branch.fresh_copy())
            .collect();
        let head = MetaClassEnsembleHeadConfig {
            branches: self.ensemble_size,
            feature_dim: self.resnet_config()?.out_channels(),
            meta_classes: self.meta_classes,
            with_fc: self.with_fc,
        }
        .init(device);
        Ok(AntiMetricModel {
            trunk,
            learners,
            head,
            config: self.clone(),
        })
    }

    /// The ensemble's parameters, counted from one network (the E learners' weights are never
    /// allocated). The network is built under [`metron_core::seeded_init`]'s lock, so counting
    /// never draws from the generator another thread is initialising a model from.
    pub fn parameter_count(&self, device: &Device) -> Result<ParameterCount> {
        self.check()?;
        let config = self.resnet_config()?;
        let resnet = metron_core::seeded_init(device, 0, || config.init(device))?;
        let (trunk, branch) = resnet.split(self.stage()?);
        let classifier = if self.with_fc {
            (self.resnet_config()?.out_channels() + 1) * self.meta_classes
        } else {
            0
        };
        Ok(ParameterCount {
            trunk: parameter_count(&trunk),
            learner: parameter_count(&branch),
            classifier,
            learners: self.ensemble_size,
        })
    }
}

/// An ensemble's trainable parameters, as PyTorch counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterCount {
    /// The shared trunk's.
    pub trunk: usize,
    /// One learner's (its stages after the cut).
    pub learner: usize,
    /// One learner's classifier (`(D + 1) M` with `with_fc`, else 0).
    pub classifier: usize,
    /// E.
    pub learners: usize,
}

impl ParameterCount {
    /// trunk + E x (learner + classifier).
    pub fn total(&self) -> usize {
        self.trunk + self.learners * (self.learner + self.classifier)
    }
}

/// An AntiMetric ensemble: shared trunk -> E learners -> global average pooling -> optional
/// per-learner classifier.
#[derive(Module, Debug)]
pub struct AntiMetricModel {
    /// The shared stem and stages up to `share`.
    pub trunk: ResNetTrunk,
    /// The E learners, each with its own copy of the stages after `share`.
    pub learners: Vec<ResNetBranch>,
    /// The per-learner classifiers (none without `with_fc`).
    pub head: MetaClassEnsembleHead,
    /// What the ensemble was built from (codes included).
    #[module(skip)]
    pub config: AntiMetricModelConfig,
}

impl AntiMetricModel {
    /// Every learner's output: its pooled feature, or its classifier's logits with `with_fc`.
    /// `weights` (`[B, E]`) scales the trunk's output per image and learner.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, E, D]`
    pub fn features(&self, images: Tensor<4>, weights: Option<Tensor<2>>) -> Result<Tensor<3>> {
        let x = self.trunk.forward(images);
        let [b, ..] = x.dims();
        let per_learner: Vec<Tensor<3>> = (0..self.learners.len())
            .map(|e| {
                let pooled = self.pooled_learner(e, x.clone(), weights.as_ref());
                let [_, c] = pooled.dims();
                pooled.reshape([b, 1, c])
            })
            .collect();
        Ok(self.head.logits(Tensor::cat(per_learner, 1))?)
    }

    /// Learner `e` on the trunk's output `x` (scaled per image by column `e` of `weights`),
    /// globally average-pooled.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`, `weights`: `[B, E]` -> `[B, D]`
    fn pooled_learner(&self, e: usize, x: Tensor<4>, weights: Option<&Tensor<2>>) -> Tensor<2> {
        let [b, ..] = x.dims();
        let input = match weights {
            Some(w) => x * w.clone().slice([0..b, e..e + 1]).reshape([b, 1, 1, 1]),
            None => x,
        };
        let map = self.learners[e].forward(input);
        let [_, c, _, _] = map.dims();
        map.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    /// `softmax(u)` with `u ~ U(0, 1)^E` per image, from each image's own random stream.
    ///
    /// # Shapes
    /// - `-> [B, E]`
    fn branch_weights(&self, seeds: &[u64], device: &Device) -> Tensor<2> {
        let e = self.config.ensemble_size;
        let u: Vec<f32> = seeds
            .iter()
            .flat_map(|&s| {
                let mut rng =
                    metron_core::rng_from_seed(metron_core::split_seed(s, BRANCH_WEIGHT_STREAM));
                (0..e).map(move |_| rng.random::<f32>())
            })
            .collect();
        softmax(
            Tensor::<2>::from_data(TensorData::new(u, [seeds.len(), e]), device),
            1,
        )
    }

    /// The meta-class labels of a batch, row-major `[B, E]`.
    fn meta_labels(&self, labels: &[i64]) -> Result<Vec<i64>> {
        labels
            .iter()
            .map(|&l| {
                usize::try_from(l)
                    .ok()
                    .and_then(|c| self.config.codes.get(c))
                    .ok_or_else(|| {
                        TrainError::Config(format!(
                            "label {l} has no meta-class code (the ensemble knows {} classes)",
                            self.config.codes.len()
                        ))
                    })
            })
            .map(|code| Ok(code?.iter().map(|&m| m as i64).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>>>()
            .map(|rows| rows.concat())
    }
}

impl TrainModel for AntiMetricModel {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> Result<LossOutput> {
        let weights = self
            .config
            .with_random
            .then(|| self.branch_weights(&batch.seeds, device));
        let logits = self.features(batch_images(batch, device), weights)?;
        let ce = MetaClassCrossEntropy.forward(logits, &self.meta_labels(&batch.labels)?)?;
        Ok(LossOutput {
            total: ce.clone(),
            parts: vec![("meta_class_ce", ce)],
        })
    }

    /// One learner at a time: the trunk runs once, each learner's forward and backward run in
    /// turn from the trunk's (detached) output, their gradients with respect to it are summed,
    /// and the trunk's backward runs once with that sum. The gradients are those of
    /// [`TrainModel::loss`] (the joint loss is the mean of the learners' losses), but only one
    /// learner's activations are alive at a time: at the paper's E = 48, a 48th of the
    /// learners' activation memory.
    fn loss_and_grads(
        &self,
        batch: &ImageBatch,
        device: &Device,
    ) -> Result<(LossOutput, GradientsParams)> {
        let e_count = self.config.ensemble_size;
        let labels = self.meta_labels(&batch.labels)?;
        let weights = self
            .config
            .with_random
            .then(|| self.branch_weights(&batch.seeds, device));
        let trunk_out = self.trunk.forward(batch_images(batch, device));
        let [b, ..] = trunk_out.dims();
        let leaf = trunk_out.clone().detach().require_grad();
        let mut grads = GradientsParams::new();
        let mut total: Option<Tensor<1>> = None;
        let mut upstream: Option<Tensor<4>> = None;
        for (e, learner) in self.learners.iter().enumerate() {
            let pooled = self.pooled_learner(e, leaf.clone(), weights.as_ref());
            let classifier = self.head.classifiers.get(e);
            let logits = match classifier {
                Some(fc) => fc.forward(pooled),
                None => pooled,
            };
            let m = logits.dims()[1];
            let learner_labels: Vec<i64> = (0..b).map(|i| labels[i * e_count + e]).collect();
            let loss = MetaClassCrossEntropy
                .forward(logits.reshape([b, 1, m]), &learner_labels)?
                .mul_scalar(1.0 / e_count as f64);
            let mut g = loss.backward();
            let dx = leaf.grad(&g).ok_or_else(|| {
                TrainError::Config("the trunk's output received no gradient".into())
            })?;
            upstream = Some(match upstream {
                Some(sum) => sum + dx,
                None => dx,
            });
            absorb(
                &mut grads,
                GradientsParams::from_module(&mut g, learner),
                learner,
            );
            if let Some(fc) = classifier {
                absorb(&mut grads, GradientsParams::from_module(&mut g, fc), fc);
            }
            let value = loss.detach();
            total = Some(match total {
                Some(t) => t + value,
                None => value,
            });
        }
        let (Some(total), Some(upstream)) = (total, upstream) else {
            return Err(TrainError::Config("an ensemble without learners".into()));
        };
        // d(sum(trunk_out * g)) / d(trunk) is the trunk's gradient for upstream gradient g.
        let mut g = (trunk_out * upstream.inner()).sum().backward();
        absorb(
            &mut grads,
            GradientsParams::from_module(&mut g, &self.trunk),
            &self.trunk,
        );
        Ok((
            LossOutput {
                total: total.clone(),
                parts: vec![("meta_class_ce", total)],
            },
            grads,
        ))
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": super::KIND, "config": self.config })
    }
}

/// Moves `module`'s gradients from `from` into `into` (their parameters are disjoint).
fn absorb<M: Module>(into: &mut GradientsParams, mut from: GradientsParams, module: &M) {
    struct Move<'a> {
        into: &'a mut GradientsParams,
        from: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Move<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.remove::<D>(param.id) {
                self.into.register::<D>(param.id, g);
            }
        }
    }
    module.visit(&mut Move {
        into,
        from: &mut from,
    });
}

impl EmbeddingModel for AntiMetricModel {
    /// The learners' L2-normalised features side by side, scaled by `1/sqrt(E)`: the cosine
    /// of two such embeddings is the mean of the learners' cosines.
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let features = self
            .features(images, None)
            .expect("the ensemble's own head matches its learners");
        MetaClassEnsembleHead::retrieval_embedding(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(with_fc: bool) -> AntiMetricModelConfig {
        AntiMetricModelConfig {
            base_width: 4,
            with_fc,
            ..AntiMetricModelConfig::new("resnet18", 3, 4, 6, 1).unwrap()
        }
    }

    /// Four random images from a local generator: Burn's process-wide one is shared with the
    /// other tests' (seeded, locked) model initialisation.
    fn batch(_device: &Device) -> ImageBatch {
        let mut rng = metron_core::rng_from_seed(77);
        ImageBatch {
            images: (0..4 * 3 * 32 * 32).map(|_| rng.random::<f32>()).collect(),
            shape: [4, 3, 32, 32],
            labels: vec![0, 1, 2, 5],
            indices: vec![0, 1, 2, 3],
            seeds: vec![10, 11, 12, 13],
            skipped: vec![],
        }
    }

    #[test]
    fn without_fc_the_pooled_feature_is_the_logit_vector() {
        let device = metron_core::parse_device("cpu").unwrap();
        let model = metron_core::seeded_init(&device, 3, || tiny(false).init(&device)).unwrap();
        let b = batch(&device);
        let images = batch_images(&b, &device);
        let logits = model.features(images.clone(), None).unwrap();
        // ResNet-18 at base width 4: 32-d pooled features, one row per learner.
        assert_eq!(logits.dims(), [4, 3, 32]);
        // Learner 1's logits are its own pooled feature map, computed by hand.
        let map = model.learners[1].forward(model.trunk.forward(images));
        let pooled: Vec<f32> = map
            .mean_dim(3)
            .mean_dim(2)
            .reshape([4, 32])
            .into_data()
            .try_into_vec_as()
            .unwrap();
        let got: Vec<f32> = logits
            .slice([0..4, 1..2, 0..32])
            .reshape([4, 32])
            .into_data()
            .try_into_vec_as()
            .unwrap();
        assert_eq!(got, pooled);
        // With fc the logits are M-wide.
        let with_fc = metron_core::seeded_init(&device, 3, || tiny(true).init(&device)).unwrap();
        assert_eq!(
            with_fc
                .features(batch_images(&b, &device), None)
                .unwrap()
                .dims(),
            [4, 3, 4]
        );
        // The retrieval embedding is E unit blocks scaled by 1/sqrt(E): norm 1.
        let e: Vec<f32> = model
            .embed(batch_images(&b, &device))
            .into_data()
            .try_into_vec_as()
            .unwrap();
        for row in e.chunks(3 * 32) {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
    }

    #[test]
    fn the_loss_reads_each_class_code_and_random_weights_are_seeded_per_image() {
        let device = metron_core::parse_device("cpu").unwrap().autodiff();
        let mut config = tiny(false);
        config.with_random = true;
        let model = metron_core::seeded_init(&device, 4, || config.init(&device)).unwrap();
        let b = batch(&device);
        let labels = model.meta_labels(&b.labels).unwrap();
        let want: Vec<i64> = [0usize, 1, 2, 5]
            .iter()
            .flat_map(|&c| config.codes[c].iter().map(|&m| m as i64))
            .collect();
        assert_eq!(labels, want);
        let v = |t: Tensor<1>| t.into_scalar::<f64>();
        let a = v(model.loss(&b, &device).unwrap().total);
        assert_eq!(
            a,
            v(model.loss(&b, &device).unwrap().total),
            "same seeds, same loss"
        );
        let mut other = batch(&device);
        other.images = b.images.clone();
        other.seeds = vec![20, 21, 22, 23];
        assert_ne!(a, v(model.loss(&other, &device).unwrap().total));
        let w: Vec<f32> = model
            .branch_weights(&b.seeds, &device)
            .into_data()
            .try_into_vec_as()
            .unwrap();
        for row in w.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // A label past the codes is an error, not a panic.
        assert!(model.meta_labels(&[6]).is_err());
    }

    /// Every parameter's gradient, by id.
    fn gradient_values(model: &AntiMetricModel, grads: &GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'a> {
            grads: &'a GradientsParams,
            out: Vec<Vec<f32>>,
        }
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self
                    .grads
                    .get::<D>(param.id)
                    .map(|g| g.into_data().try_into_vec_as::<f32>().unwrap())
                    .unwrap_or_default();
                self.out.push(g);
            }
        }
        let mut c = Collect {
            grads,
            out: Vec::new(),
        };
        model.visit(&mut c);
        c.out
    }

    #[test]
    fn one_learner_at_a_time_gives_the_joint_gradients() {
        let device = metron_core::parse_device("cpu").unwrap().autodiff();
        for with_fc in [false, true] {
            let mut config = tiny(with_fc);
            config.with_random = true;
            let build = || metron_core::seeded_init(&device, 5, || config.init(&device)).unwrap();
            let b = batch(&device);
            // The joint graph: every learner at once.
            let joint_model = build();
            let joint = joint_model.loss(&b, &device).unwrap();
            let joint_value = joint.total.clone().into_scalar::<f64>();
            let joint_grads = GradientsParams::from_grads(joint.total.backward(), &joint_model);
            let model = build();
            let (out, grads) = model.loss_and_grads(&b, &device).unwrap();
            let value = out.total.into_scalar::<f64>();
            assert!(
                (value - joint_value).abs() < 1e-5 * joint_value.abs(),
                "{value} vs {joint_value}"
            );
            let (a, j) = (
                gradient_values(&model, &grads),
                gradient_values(&joint_model, &joint_grads),
            );
            assert_eq!(a.len(), j.len());
            let mut compared = 0;
            for (pa, pj) in a.iter().zip(&j) {
                assert_eq!(pa.len(), pj.len(), "a parameter lacks a gradient");
                for (x, y) in pa.iter().zip(pj) {
                    assert!((x - y).abs() <= 1e-5 + 1e-3 * y.abs(), "{x} vs {y}");
                    compared += 1;
                }
            }
            assert!(compared > 1000, "{compared} gradient entries");
        }
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let device = metron_core::parse_device("cpu").unwrap();
        let mut c = tiny(false);
        c.meta_classes = 40; // more than the 32-d pooled feature
        assert!(
            metron_core::seeded_init(&device, 0, || c.init(&device))
                .unwrap_err()
                .to_string()
                .contains("--with-fc")
        );
        let mut c = tiny(false);
        c.share = "layer9".into();
        assert!(
            metron_core::seeded_init(&device, 0, || c.init(&device))
                .unwrap_err()
                .to_string()
                .contains("layer9")
        );
        let mut c = tiny(false);
        c.codes[2] = vec![0, 9, 0];
        assert!(
            metron_core::seeded_init(&device, 0, || c.init(&device))
                .unwrap_err()
                .to_string()
                .contains("class 2")
        );
    }
}
