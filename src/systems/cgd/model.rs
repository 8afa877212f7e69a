//! CGD (Jun et al., "Combination of Multiple Global Descriptors for Image Retrieval"): a ResNet
//! trunk, the multi-descriptor head, and its loss (label-smoothed, temperature-scaled cross
//! entropy on the auxiliary classifier + batch-hard triplet on the embedding, weight 1:1).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use metron_datasets::ImageBatch;
use serde::{Deserialize, Serialize};

use metron_backbones::{Architecture, BackboneEntry, ResNet, ResNetConfig};
use metron_descriptors::{CgdHead, CgdHeadConfig};
use metron_losses::{LabelSmoothingCrossEntropy, TripletMarginLoss};

use metron_train::{EmbeddingModel, LossOutput, Result, TrainError, TrainModel, batch_images};

/// Everything that defines a CGD model and its loss. Defaults are the paper's (section 4 of the
/// seed spec): ResNet-50 with layer3 stride 1 and frozen BatchNorm, SG, 1536-d.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgdModelConfig {
    /// `resnet18`, `resnet34`, `resnet50` or `resnext50_32x4d`.
    pub backbone: String,
    /// Stem / stage-1 width of the ResNet (64 = torchvision; smaller for CPU runs).
    pub base_width: usize,
    /// Keep layer3 at stride 1 (CGD's larger final feature map; the paper's setting).
    pub layer3_stride_1: bool,
    /// Normalise with BatchNorm's running statistics also while training (the paper's setting).
    pub frozen_batch_norm: bool,
    /// Global descriptors, e.g. `SG` (the first one feeds the auxiliary classifier).
    pub descriptors: String,
    /// Size of the embedding, split evenly among the descriptors (1536 in the paper).
    pub feature_dim: usize,
    /// Training classes (the auxiliary classifier's outputs).
    pub num_classes: usize,
    /// Label smoothing of the classifier's cross entropy, in `[0, 1)` (0.1 in the paper).
    pub label_smoothing: f64,
    /// Temperature dividing the classifier's logits, `> 0` (0.5 in the paper).
    pub temperature: f64,
    /// Margin of the batch-hard triplet loss, `>= 0` (0.1 in the paper).
    pub margin: f64,
}

impl CgdModelConfig {
    /// The paper's model for `num_classes` training classes.
    pub fn paper(num_classes: usize) -> Self {
        CgdModelConfig {
            backbone: "resnet50".into(),
            base_width: 64,
            layer3_stride_1: true,
            frozen_batch_norm: true,
            descriptors: "SG".into(),
            feature_dim: 1536,
            num_classes,
            label_smoothing: 0.1,
            temperature: 0.5,
            margin: 0.1,
        }
    }

    /// The backbone's entry in metron-backbones' table: its preprocessing and checkpoint key
    /// map come from there too.
    pub fn backbone_entry(&self) -> Result<&'static BackboneEntry> {
        Ok(metron_backbones::backbone_entry(&self.backbone)?)
    }

    fn resnet(&self) -> Result<ResNetConfig> {
        let Architecture::ResNet(config) = self.backbone_entry()?.architecture else {
            let resnets: Vec<&str> = metron_backbones::BACKBONES
                .iter()
                .filter(|e| matches!(e.architecture, Architecture::ResNet(_)))
                .map(|e| e.name)
                .collect();
            return Err(TrainError::Config(format!(
                "CGD backbone '{}' is not a ResNet ({})",
                self.backbone,
                resnets.join(", ")
            )));
        };
        Ok(config()
            .with_base_width(self.base_width)
            .with_layer3_stride_1(self.layer3_stride_1)
            .with_frozen_batch_norm(self.frozen_batch_norm))
    }

    /// Builds the model with random weights (under [`metron_core::seeded_init`] for a
    /// reproducible init).
    pub fn init(&self, device: &Device) -> Result<CgdModel> {
        if !(0.0..1.0).contains(&self.label_smoothing)
            || self.temperature <= 0.0
            || self.margin < 0.0
        {
            return Err(TrainError::Config(format!(
                "CGD loss needs 0 <= label_smoothing < 1, temperature > 0, margin >= 0; got {}, {}, {}",
                self.label_smoothing, self.temperature, self.margin
            )));
        }
        let resnet = self.resnet()?;
        let head = CgdHeadConfig::new(self.num_classes)
            .with_descriptors(&self.descriptors)
            .with_feature_dim(self.feature_dim)
            .with_in_channels(resnet.out_channels())
            .init(device)?;
        Ok(CgdModel {
            backbone: resnet.init(device)?,
            head,
            config: self.clone(),
        })
    }
}

/// A CGD network: ResNet feature map -> [`CgdHead`].
#[derive(Module, Debug)]
pub struct CgdModel {
    /// The ResNet trunk producing the feature map.
    pub backbone: ResNet,
    /// The descriptors, their projection and the auxiliary classifier.
    pub head: CgdHead,
    /// The configuration the model was built from (also defines the loss).
    #[module(skip)]
    pub config: CgdModelConfig,
}

impl CgdModel {
    /// The loss of a batch of images with their class labels.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, `labels`: `[B]`
    pub fn loss_of(&self, images: Tensor<4>, labels: &[i64]) -> Result<LossOutput> {
        let out = self.head.forward(self.backbone.features(images));
        let ce = LabelSmoothingCrossEntropy {
            epsilon: self.config.label_smoothing,
            temperature: self.config.temperature,
        }
        .forward(out.logits, labels)?;
        let triplet = TripletMarginLoss::cgd(self.config.margin).forward(out.embedding, labels)?;
        Ok(LossOutput {
            total: ce.clone() + triplet.clone(),
            parts: vec![("cross_entropy", ce), ("triplet", triplet)],
        })
    }
}

impl TrainModel for CgdModel {
    type Batch = ImageBatch;

    fn loss(&self, batch: &ImageBatch, device: &Device) -> Result<LossOutput> {
        self.loss_of(batch_images(batch, device), &batch.labels)
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": super::KIND, "config": self.config })
    }
}

impl EmbeddingModel for CgdModel {
    fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.features(images)).embedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(num_classes: usize) -> CgdModelConfig {
        CgdModelConfig {
            backbone: "resnet18".into(),
            base_width: 8,
            layer3_stride_1: true,
            frozen_batch_norm: false,
            descriptors: "SG".into(),
            feature_dim: 16,
            ..CgdModelConfig::paper(num_classes)
        }
    }

    /// Uniform noise from a local generator: Burn's process-wide one belongs to the other
    /// tests' locked, seeded model initialisation ([`metron_core::seeded_init`]).
    fn local_random(shape: [usize; 4], device: &Device) -> Tensor<4> {
        use rand::Rng as _;
        let mut rng = metron_core::rng_from_seed(7);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        Tensor::from_data(burn::tensor::TensorData::new(v, shape), device)
    }

    #[test]
    fn embeddings_are_unit_rows_of_feature_dim() {
        let device = metron_core::parse_device("cpu").unwrap();
        let model = metron_core::seeded_init(&device, 0, || tiny(3).init(&device)).unwrap();
        let x = local_random([2, 3, 32, 32], &device);
        let e = model.embed(x).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(e.len(), 2 * 16);
        for row in e.chunks(16) {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
    }

    #[test]
    fn the_loss_is_the_sum_of_its_parts() {
        let device = metron_core::parse_device("cpu").unwrap().autodiff();
        let model = metron_core::seeded_init(&device, 1, || tiny(2).init(&device)).unwrap();
        let x = local_random([4, 3, 32, 32], &device);
        let batch = ImageBatch {
            images: x.into_data().try_into_vec_as::<f32>().unwrap(),
            shape: [4, 3, 32, 32],
            labels: vec![0, 0, 1, 1],
            indices: vec![0, 1, 2, 3],
            seeds: vec![0; 4],
            skipped: vec![],
        };
        let out = model.loss(&batch, &device).unwrap();
        let v = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
        let sum: f64 = out.parts.iter().map(|(_, t)| v(t)).sum();
        assert!((v(&out.total) - sum).abs() < 1e-6);
        // Cross entropy over 2 classes at init is near ln 2 / T-scaled logits: positive, finite.
        assert!(
            out.parts
                .iter()
                .all(|(_, t)| v(t).is_finite() && v(t) >= 0.0)
        );
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let device = metron_core::parse_device("cpu").unwrap();
        let mut c = tiny(2);
        c.backbone = "vgg16".into();
        assert!(
            metron_core::seeded_init(&device, 0, || c.init(&device))
                .unwrap_err()
                .to_string()
                .contains("vgg16")
        );
        let mut c = tiny(2);
        c.feature_dim = 15;
        assert!(metron_core::seeded_init(&device, 0, || c.init(&device)).is_err());
        let mut c = tiny(2);
        c.temperature = 0.0;
        assert!(
            metron_core::seeded_init(&device, 0, || c.init(&device))
                .unwrap_err()
                .to_string()
                .contains("temperature")
        );
    }
}
