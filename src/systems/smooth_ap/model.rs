//! Smooth-AP's network (seed spec s.3.1): a ResNet with every BatchNorm frozen, global average
//! pooling, `last_linear` to the embedding and L2 normalisation; or a DINO ViT whose CLS token
//! (after the final norm) is the embedding. Trained with Smooth-AP (s.3.2) or, as baselines,
//! the `ams` / `ce` classifiers on the normalised embedding (s.3.3).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use metron_backbones::{Architecture, BackboneEntry, DropPath, ResNet, VisionTransformer};
use metron_datasets::ImageBatch;
use metron_losses::{AmsLoss, ClassifierLossConfig, SmoothApLoss};
use metron_train::{EmbeddingModel, LossOutput, Result, TrainError, TrainModel, batch_images};

/// The training loss of a Smooth-AP model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmoothApLossKind {
    /// Smooth-AP (the paper's loss): `1 - mean AP` with sigmoid-smoothed ranks over
    /// class-contiguous batches.
    Smoothap,
    /// Additive-margin softmax: `CE(s (z - m onehot), y)` with `z` a biased linear classifier
    /// on the normalised embedding (m 0.3, s 30).
    Ams,
    /// Plain cross entropy of the same classifier with integer labels. The published `ce`
    /// (`-sum_c t_bc log softmax(z)_bc`) expects one-hot targets and mis-broadcasts the
    /// integer labels its loader yields (seed spec s.3.3): it computes no meaningful loss, so
    /// it is not kept as an option.
    Ce,
}

impl SmoothApLossKind {
    /// The name used in flags, configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            SmoothApLossKind::Smoothap => "smoothap",
            SmoothApLossKind::Ams => "ams",
            SmoothApLossKind::Ce => "ce",
        }
    }
}

/// Everything that defines a Smooth-AP model and its loss. [`SmoothApModelConfig::paper`] is
/// the seed spec's ResNet-50 setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothApModelConfig {
    /// A ResNet (`resnet18`, `resnet34`, `resnet50`, `resnext50_32x4d`) or a ViT
    /// (`vit_small_patch16`, `vit_base_patch16`) of metron-backbones' table.
    pub backbone: String,
    /// Stem / stage-1 width of a ResNet (64 = torchvision; smaller for CPU runs).
    pub base_width: usize,
    /// Normalise with BatchNorm's running statistics also while training, affine parameters
    /// still trained (the paper's ResNet: statistics from ImageNet). Random statistics cannot
    /// be frozen usefully, so a from-scratch run sets this off.
    pub frozen_batch_norm: bool,
    /// Input size the ViT's position embedding is laid out for (227 in Smooth-AP's ViT runs;
    /// ignored by ResNets).
    pub image_size: usize,
    /// Embedding width: `last_linear`'s output for a ResNet (128 in PSS, 512 in the original
    /// code); a ViT's embedding is its CLS token, so this must equal its width.
    pub embed_dim: usize,
    /// The training loss.
    pub loss: SmoothApLossKind,
    /// Sigmoid temperature tau of Smooth-AP (0.01).
    pub temperature: f64,
    /// Images per class block in a batch (4): Smooth-AP reads a batch as contiguous blocks.
    pub samples_per_class: usize,
    /// Count the query among its own positives and ranks, as the official code does (true);
    /// false gives the textbook AP.
    pub include_query: bool,
    /// Margin m of `ams` (0.3).
    pub ams_margin: f64,
    /// Scale s of `ams` (30).
    pub ams_scale: f64,
    /// Training classes: the width of the `ams` / `ce` classifier (unused by Smooth-AP).
    pub num_classes: usize,
    /// Stochastic depth of the ViT's last block, ramped linearly from 0 at block 0 (0.1 for
    /// DINO ViT-B/16; ignored by ResNets).
    pub drop_path: f64,
}

impl SmoothApModelConfig {
    /// The seed spec's ResNet-50 model: frozen BatchNorm, 128-d embedding, Smooth-AP with tau
    /// 0.01 over blocks of 4, query included.
    pub fn paper(num_classes: usize) -> Self {
        SmoothApModelConfig {
            backbone: "resnet50".into(),
            base_width: 64,
            frozen_batch_norm: true,
            image_size: 224,
            embed_dim: 128,
            loss: SmoothApLossKind::Smoothap,
            temperature: 0.01,
            samples_per_class: 4,
            include_query: true,
            ams_margin: 0.3,
            ams_scale: 30.0,
            num_classes,
            drop_path: 0.0,
        }
    }

    /// The seed spec's DINO ViT-B/16 model: 227 crops, 768-d CLS embedding, drop path 0.1.
    pub fn paper_vit(num_classes: usize) -> Self {
        SmoothApModelConfig {
            backbone: "vit_base_patch16".into(),
            image_size: 227,
            embed_dim: 768,
            drop_path: 0.1,
            frozen_batch_norm: false,
            ..Self::paper(num_classes)
        }
    }

    /// The backbone's entry in metron-backbones' table (preprocessing, checkpoint keys).
    pub fn backbone_entry(&self) -> Result<&'static BackboneEntry> {
        Ok(metron_backbones::backbone_entry(&self.backbone)?)
    }

    /// Whether the backbone is a ViT (embedding = CLS token; no `last_linear`).
    pub fn is_vit(&self) -> Result<bool> {
        match self.backbone_entry()?.architecture {
            Architecture::ResNet(_) => Ok(false),
            Architecture::Vit(_) => Ok(true),
            _ => Err(TrainError::Config(format!(
                "Smooth-AP's backbone must be a ResNet or a ViT, not '{}'",
                self.backbone
            ))),
        }
    }

    /// The ViT parameters Smooth-AP's ViT runs freeze: the patch embedding and every block but
    /// the last (the final norm, CLS token and position embedding stay trainable, as in the
    /// original, where only `patch_embed` and `blocks[:-1]` lose `requires_grad`). `None` for
    /// a ResNet. A pattern for [`metron_train::ParamGroupSetting`] (paths go through the
    /// trunk's enum variant, `trunk.Vit.`).
    pub fn frozen_vit_params(&self) -> Result<Option<String>> {
        if !self.is_vit()? {
            return Ok(None);
        }
        let Architecture::Vit(config) = self.backbone_entry()?.architecture else {
            unreachable!("is_vit checked the architecture")
        };
        let depth = config(self.image_size).depth;
        Ok(Some(format!(
            "trunk.Vit.patch_embed.**|trunk.Vit.blocks.{{0-{}}}.**",
            depth.saturating_sub(2)
        )))
    }

    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(TrainError::Config(format!("Smooth-AP model: {why}")));
        if self.temperature <= 0.0 {
            return bad(format!("temperature must be > 0, got {}", self.temperature));
        }
        if self.samples_per_class == 0 {
            return bad("samples_per_class must be >= 1".into());
        }
        if self.embed_dim == 0 {
            return bad("embed_dim must be >= 1".into());
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return bad(format!(
                "drop_path must be in [0, 1), got {}",
                self.drop_path
            ));
        }
        if self.loss != SmoothApLossKind::Smoothap && self.num_classes == 0 {
            return bad(format!(
                "the {} classifier needs num_classes >= 1",
                self.loss.name()
            ));
        }
        Ok(())
    }

    /// Builds the model with random weights (under [`metron_core::seeded_init`] for a
    /// reproducible init).
    pub fn init(&self, device: &Device) -> Result<SmoothApModel> {
        self.check()?;
        let entry = self.backbone_entry()?;
        let (trunk, last_linear, width) = match entry.architecture {
            Architecture::ResNet(config) => {
                let resnet = config()
                    .with_base_width(self.base_width)
                    .with_frozen_batch_norm(self.frozen_batch_norm);
                let channels = resnet.out_channels();
                let linear = LinearConfig::new(channels, self.embed_dim).init(device);
                (
                    SmoothApTrunk::ResNet(resnet.init(device)?),
                    Some(linear),
                    self.embed_dim,
                )
            }
            Architecture::Vit(config) => {
                let config = config(self.image_size);
                if config.embed_dim != self.embed_dim {
                    return Err(TrainError::Config(format!(
                        "a ViT's embedding is its CLS token: embed_dim must be {} for {}, got {}",
                        config.embed_dim, self.backbone, self.embed_dim
                    )));
                }
                let mut vit = config.init(device)?;
                // DINO re-grids its position embedding with its own bicubic call.
                vit.position_resize = metron_backbones::PositionResize::DinoBicubic;
                (SmoothApTrunk::Vit(vit), None, config.embed_dim)
            }
            _ => {
                self.is_vit()?;
                unreachable!("is_vit refuses other architectures")
            }
        };
        let classifier = match self.loss {
            SmoothApLossKind::Smoothap => None,
            SmoothApLossKind::Ams => Some(ClassifierLossConfig::new(self.num_classes, width).ams(
                self.ams_margin,
                self.ams_scale,
                device,
            )),
            // Cross entropy is the same classifier without margin or scale.
            SmoothApLossKind::Ce => {
                Some(ClassifierLossConfig::new(self.num_classes, width).ams(0.0, 1.0, device))
            }
        };
        Ok(SmoothApModel {
            trunk,
            last_linear,
            classifier,
            config: self.clone(),
        })
    }
}

/// The feature extractor of a Smooth-AP model.
// One value per model, built once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SmoothApTrunk {
    /// A ResNet, globally average-pooled.
    ResNet(ResNet),
    /// A ViT; its CLS token after the final norm.
    Vit(VisionTransformer),
}

/// A Smooth-AP network: trunk -> (`last_linear`) -> L2-normalised embedding (-> classifier).
#[derive(Module, Debug)]
pub struct SmoothApModel {
    /// The feature extractor.
    pub trunk: SmoothApTrunk,
    /// The projection to the embedding after a ResNet (`None` for a ViT).
    pub last_linear: Option<Linear>,
    /// The `ams` / `ce` classifier on the normalised embedding (`None` for Smooth-AP).
    pub classifier: Option<AmsLoss>,
    /// The configuration the model was built from (also defines the loss).
    #[module(skip)]
    pub config: SmoothApModelConfig,
}

impl SmoothApModel {
    /// The L2-normalised embedding; `drop_path` applies stochastic depth to a ViT (training).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, embed_dim]`
    pub fn embedding(&self, images: Tensor<4>, drop_path: Option<&DropPath>) -> Tensor<2> {
        let features = match &self.trunk {
            SmoothApTrunk::ResNet(resnet) => resnet.forward(images),
            SmoothApTrunk::Vit(vit) => vit.cls_with_drop_path(images, drop_path),
        };
        let projected = match &self.last_linear {
            Some(linear) => linear.forward(features),
            None => features,
        };
        metron_core::l2_normalize(projected)
    }

    /// The loss of normalised embeddings with their class labels.
    ///
    /// # Shapes
    /// - `embeddings`: `[B, embed_dim]`, `labels`: `[B]` (class-contiguous for Smooth-AP)
    pub fn loss_of(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<LossOutput> {
        let c = &self.config;
        let (name, loss) = match (&self.classifier, c.loss) {
            (None, _) => {
                let loss = SmoothApLoss {
                    temperature: c.temperature,
                    samples_per_class: c.samples_per_class,
                    include_query: c.include_query,
                };
                ("smooth_ap", loss.forward(embeddings, labels)?)
            }
            (Some(classifier), kind) => (kind.name(), classifier.forward(embeddings, labels)?),
        };
        Ok(LossOutput {
            total: loss.clone(),
            parts: vec![(name, loss)],
        })
    }
}

impl TrainModel for SmoothApModel {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> Result<LossOutput> {
        // Stochastic depth draws from the loader's per-image streams: reproducible, resumable.
        let drop_path = (self.config.drop_path > 0.0).then(|| DropPath {
            rate: self.config.drop_path,
            seeds: batch.seeds.clone(),
        });
        let embeddings = self.embedding(batch_images(batch, device), drop_path.as_ref());
        self.loss_of(embeddings, &batch.labels)
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": super::KIND, "config": self.config })
    }
}

impl EmbeddingModel for SmoothApModel {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.embedding(images, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(loss: SmoothApLossKind) -> SmoothApModelConfig {
        SmoothApModelConfig {
            backbone: "resnet18".into(),
            base_width: 8,
            frozen_batch_norm: false,
            embed_dim: 16,
            loss,
            samples_per_class: 2,
            ..SmoothApModelConfig::paper(3)
        }
    }

    /// Uniform noise from a local generator: Burn's process-wide one belongs to the other
    /// tests' locked, seeded model initialisation ([`metron_core::seeded_init`]).
    fn local_images(n: usize, side: usize) -> Vec<f32> {
        use rand::Rng as _;
        let mut rng = metron_core::rng_from_seed(5);
        (0..n * 3 * side * side)
            .map(|_| rng.random::<f32>())
            .collect()
    }

    fn batch(labels: Vec<i64>, side: usize) -> ImageBatch {
        let n = labels.len();
        ImageBatch {
            images: local_images(n, side),
            shape: [n, 3, side, side],
            labels,
            indices: (0..n).collect(),
            seeds: (0..n as u64).collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn embeddings_are_unit_rows_and_the_loss_matches_its_definition() {
        let device = Device::flex().autodiff();
        let model = metron_core::seeded_init(&device, 0, || {
            tiny(SmoothApLossKind::Smoothap).init(&device)
        })
        .unwrap();
        let b = batch(vec![0, 0, 1, 1, 2, 2], 32);
        let images = batch_images(&b, &device);
        let e = model.embedding(images, None);
        let rows = e.clone().into_data().try_into_vec_as::<f32>().unwrap();
        for row in rows.chunks(16) {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
        // The model's loss is Smooth-AP of its embeddings (tau 0.01, query included).
        let want = SmoothApLoss::new(2)
            .forward(e, &b.labels)
            .unwrap()
            .into_scalar::<f64>();
        let got = model.loss(&b, &device).unwrap().total.into_scalar::<f64>();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!((0.0..=1.0).contains(&got));
    }

    #[test]
    fn ce_is_plain_cross_entropy_of_the_classifier_on_the_normalised_embedding() {
        let device = Device::flex();
        let model =
            metron_core::seeded_init(&device, 1, || tiny(SmoothApLossKind::Ce).init(&device))
                .unwrap();
        let b = batch(vec![2, 0, 1, 1], 32);
        let e = model.embedding(batch_images(&b, &device), None);
        let classifier = model.classifier.as_ref().unwrap();
        let logits =
            e.matmul(classifier.weight.val().transpose()) + classifier.bias.val().unsqueeze_dim(0);
        let z = logits.into_data().try_into_vec_as::<f32>().unwrap();
        // -log softmax at the label, by hand in f64.
        let mut want = 0.0f64;
        for (row, &y) in z.chunks(3).zip(&b.labels) {
            let m = row.iter().fold(f32::MIN, |a, &v| a.max(v)) as f64;
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            want += lse - row[y as usize] as f64;
        }
        want /= 4.0;
        let got = model.loss(&b, &device).unwrap().total.into_scalar::<f64>();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn vit_embeds_its_cls_token_and_freezes_all_but_the_last_block() {
        let c = SmoothApModelConfig {
            backbone: "vit_small_patch16".into(),
            image_size: 32,
            embed_dim: 384,
            drop_path: 0.1,
            ..SmoothApModelConfig::paper(3)
        };
        assert_eq!(
            c.frozen_vit_params().unwrap().as_deref(),
            Some("trunk.Vit.patch_embed.**|trunk.Vit.blocks.{0-10}.**")
        );
        assert_eq!(
            tiny(SmoothApLossKind::Ams).frozen_vit_params().unwrap(),
            None
        );
        let device = Device::flex();
        let model = metron_core::seeded_init(&device, 2, || c.init(&device)).unwrap();
        assert!(model.last_linear.is_none());
        // The pattern names real parameters: the patch embedding and blocks 0-10, nothing of
        // block 11, the final norm or the tokens.
        let frozen = metron_train::ParamGroupSetting::new(c.frozen_vit_params().unwrap().unwrap());
        let paths: Vec<String> = metron_train::param_paths(&model)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let matched: Vec<&String> = paths.iter().filter(|p| frozen.matches(p)).collect();
        assert!(
            matched.iter().any(|p| p.contains("patch_embed")),
            "{paths:?}"
        );
        assert!(
            matched.iter().any(|p| p.contains("blocks.10.")),
            "{paths:?}"
        );
        assert!(!matched.iter().any(|p| p.contains("blocks.11.")));
        assert_eq!(
            matched.len(),
            2 + 11 * 12,
            "conv weight + bias, 12 tensors per block"
        );
        assert!(paths.iter().any(|p| p.ends_with("cls_token")) && paths.len() > matched.len());
        let b = batch(vec![0, 0, 1, 1], 32);
        let e = model
            .embed(batch_images(&b, &device))
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(e.len(), 4 * 384);
        let wrong = SmoothApModelConfig {
            embed_dim: 128,
            ..c
        };
        let err = metron_core::seeded_init(&device, 2, || wrong.init(&device)).unwrap_err();
        assert!(err.to_string().contains("embed_dim must be 384"), "{err}");
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let device = Device::flex();
        for (c, needle) in [
            (
                SmoothApModelConfig {
                    backbone: "vgg16".into(),
                    ..tiny(SmoothApLossKind::Smoothap)
                },
                "vgg16",
            ),
            (
                SmoothApModelConfig {
                    temperature: 0.0,
                    ..tiny(SmoothApLossKind::Smoothap)
                },
                "temperature",
            ),
            (
                SmoothApModelConfig {
                    num_classes: 0,
                    ..tiny(SmoothApLossKind::Ams)
                },
                "num_classes",
            ),
            (
                SmoothApModelConfig {
                    drop_path: 1.0,
                    ..tiny(SmoothApLossKind::Smoothap)
                },
                "drop_path",
            ),
        ] {
            let err = metron_core::seeded_init(&device, 0, || c.init(&device)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
