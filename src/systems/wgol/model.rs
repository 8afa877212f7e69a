//! WGOL's trainable model: [`metron_localization::WgolNet`] with the epoch switches of its
//! loss (`sos_start`, `sa_start`, `ram_start`), and the canvas batches it trains on.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use metron_core::rng_from_seed;
use metron_datasets::{Batch, ImageBatch, LoadBatch};
use metron_localization::{
    EdgeStages, HscConfig, PixelBox, RaLossConfig, Segmentation, SosTargetConfig, WgolLoss,
    WgolLossConfig, WgolMode, WgolNet, WgolNetConfig,
};
use metron_train::{LossOutput, TrainModel, batch_images};

use super::canvas::{Canvas, CanvasConfig, Glyph, render_canvas};
use crate::systems::SystemError;

/// ImageNet's mean and standard deviation, the original's normalisation.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Everything that rebuilds a [`WgolModel`] (recorded in its checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgolModelConfig {
    /// Classes.
    pub classes: usize,
    /// `spa`, `spa+sa`, `sos`, `sos+sa_v2` or `sos+sa_v3`.
    pub mode: String,
    /// VGG-16 and head widths divided by this (1: the original).
    pub width_divisor: usize,
    /// A BatchNorm after every backbone convolution (torchvision's `vgg16_bn`; the original
    /// fine-tunes the plain VGG-16).
    pub batch_norm: bool,
    /// Attention heads (`sa_head`, 8).
    pub sa_heads: usize,
    /// Edge-code weight in the attention logits (`sa_edge_weight`, 1).
    pub sa_edge_weight: f64,
    /// Edge code from conv4 and conv5 (`true`, CUB) or conv5 only.
    pub sa_edge_from_f4: bool,
    /// First-order threshold (`scg_fosc_th`, 0.2).
    pub fo_threshold: f64,
    /// High-order threshold in units of `1 / (h w)` (`scg_sosc_th`, 1).
    pub so_threshold: f64,
    /// Power of the propagation (`scg_order`, 2).
    pub order: usize,
    /// First epoch (0-based) of the SOS loss (`sos_start`).
    pub sos_start: usize,
    /// First epoch of the self-attention (`sa_start`).
    pub sa_start: usize,
    /// First epoch of the RA loss (`ram_start`); `None`: no RA loss.
    pub ram_start: Option<usize>,
    /// λ_sos (0.5).
    pub sos_weight: f64,
    /// λ_ra (1 CUB, 0.5 ILSVRC).
    pub ra_weight: f64,
    /// RA background threshold (0.1).
    pub ra_background: f64,
    /// RA foreground gap (0.2).
    pub ra_gap: f64,
    /// SOS target foreground threshold (0.2).
    pub sos_fg: f64,
    /// SOS target background threshold (0.1).
    pub sos_bg: f64,
    /// SOS target segmentation: `tc` (three classes) or `bc` (two).
    pub sos_segmentation: String,
}

impl WgolModelConfig {
    /// The original's settings for `classes` classes in `mode` (CUB's switches: SOS from
    /// epoch 0, SA from 20, RA from 20).
    pub fn new(classes: usize, mode: WgolMode) -> Self {
        let hsc = HscConfig::default();
        let ra = RaLossConfig::default();
        let target = SosTargetConfig::default();
        WgolModelConfig {
            classes,
            mode: mode.name().to_string(),
            width_divisor: 1,
            batch_norm: false,
            sa_heads: 8,
            sa_edge_weight: 1.0,
            sa_edge_from_f4: true,
            fo_threshold: hsc.first_order_threshold,
            so_threshold: hsc.high_order_threshold,
            order: hsc.order,
            sos_start: 0,
            sa_start: 20,
            ram_start: Some(20),
            sos_weight: 0.5,
            ra_weight: 1.0,
            ra_background: ra.background,
            ra_gap: ra.gap,
            sos_fg: target.foreground,
            sos_bg: target.background,
            sos_segmentation: "tc".into(),
        }
    }

    /// The mode, checked.
    pub fn mode(&self) -> Result<WgolMode, SystemError> {
        self.mode
            .parse()
            .map_err(|e: metron_localization::LocalizationError| SystemError::Usage(e.to_string()))
    }

    /// The network's configuration.
    pub fn net(&self) -> Result<WgolNetConfig, SystemError> {
        let mode = self.mode()?;
        if self.classes < 2 {
            return Err(SystemError::Usage(format!(
                "WGOL needs at least 2 classes, got {}",
                self.classes
            )));
        }
        if mode == WgolMode::SosSaV2 && self.sos_start > self.sa_start {
            return Err(SystemError::Usage(
                "sos+sa_v2 needs sos_start <= sa_start (as the original asserts)".into(),
            ));
        }
        let mut c = WgolNetConfig::new(self.classes, mode);
        c.width_divisor = self.width_divisor.max(1);
        c.batch_norm = self.batch_norm;
        c.sa_heads = self.sa_heads;
        c.sa_edge_weight = self.sa_edge_weight;
        c.sa_edge_stages = if self.sa_edge_from_f4 {
            EdgeStages::F4F5
        } else {
            EdgeStages::F5
        };
        c.hsc = HscConfig {
            first_order_threshold: self.fo_threshold,
            high_order_threshold: self.so_threshold,
            order: self.order,
            high_order_weight: 1.0,
        };
        Ok(c)
    }

    /// The loss's configuration.
    pub fn loss(&self) -> Result<WgolLossConfig, SystemError> {
        let segmentation = match self.sos_segmentation.as_str() {
            "tc" => Segmentation::Ternary,
            "bc" => Segmentation::Binary,
            other => {
                return Err(SystemError::Usage(format!(
                    "the SOS segmentation is tc or bc, not '{other}'"
                )));
            }
        };
        Ok(WgolLossConfig {
            sos_weight: self.sos_weight,
            sos_target: SosTargetConfig {
                foreground: self.sos_fg,
                background: self.sos_bg,
                segmentation,
            },
            ra: self.ram_start.map(|_| RaLossConfig {
                background: self.ra_background,
                gap: self.ra_gap,
            }),
            ra_weight: self.ra_weight,
        })
    }

    /// The model with the original's initialisation of the heads.
    pub fn init(&self, device: &Device) -> Result<WgolModel, SystemError> {
        self.loss()?;
        Ok(WgolModel {
            net: self.net()?.init(device),
            config: self.clone(),
            epoch: 0,
        })
    }
}

/// The network and the switches of its loss.
#[derive(Module, Debug)]
pub struct WgolModel {
    /// VGG-16 with WGOL's heads.
    pub net: WgolNet,
    /// What rebuilds it.
    #[module(skip)]
    pub config: WgolModelConfig,
    /// The epoch being trained (0-based), set by the loop.
    #[module(skip)]
    pub epoch: usize,
}

/// Canvases with their classes (in `images.labels`) and ground-truth boxes.
#[derive(Debug, Clone)]
pub struct CanvasBatch {
    /// The normalised canvases.
    pub images: ImageBatch,
    /// The target's ink box on each canvas.
    pub boxes: Vec<PixelBox>,
}

impl Batch for CanvasBatch {
    fn items(&self) -> usize {
        self.images.len()
    }
}

impl TrainModel for WgolModel {
    type Batch = CanvasBatch;

    fn loss(&self, batch: &CanvasBatch, device: &Device) -> metron_train::Result<LossOutput> {
        let c = &self.config;
        let phase = metron_localization::Phase::Train {
            sos: self.epoch >= c.sos_start,
            sa: self.epoch >= c.sa_start,
        };
        let out = self.net.forward(batch_images(&batch.images, device), phase);
        let config = self
            .config
            .loss()
            .map_err(|e| metron_train::TrainError::Config(e.to_string()))?;
        let ra_active = c.ram_start.is_some_and(|s| self.epoch >= s);
        let parts = WgolLoss { config }
            .forward(&out, &batch.images.labels, ra_active)
            .map_err(|e| metron_train::TrainError::Config(e.to_string()))?;
        let mut named = vec![("cross_entropy", parts.ce)];
        if let Some(s) = parts.sos {
            named.push(("sos", s));
        }
        if let Some(r) = parts.ra {
            named.push(("ra", r));
        }
        Ok(LossOutput {
            total: parts.total,
            parts: named,
        })
    }

    fn at_epoch(mut self, epoch: usize) -> Self {
        self.epoch = epoch;
        self
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": super::KIND, "config": self.config })
    }
}

/// Canvases a batch is made of: fresh ones for training (every item and epoch its own
/// placement, from the loader's per-item seed), or a fixed set for evaluation.
#[derive(Debug, Clone)]
pub enum CanvasSource {
    /// Item `i` is glyph `i % glyphs.len()` on a canvas drawn from the item's seed.
    Fresh {
        /// How canvases are drawn.
        config: CanvasConfig,
        /// Target glyphs.
        glyphs: Arc<Vec<Glyph>>,
        /// Distractor glyphs.
        distractors: Arc<Vec<Glyph>>,
        /// Canvases per glyph and epoch.
        repeats: usize,
    },
    /// Item `i` is canvas `i`.
    Fixed(Arc<Vec<Canvas>>),
}

/// A canvas as the network's input: `[3, H, W]` planes, ImageNet-normalised.
pub fn canvas_pixels(image: &image::RgbImage, out: &mut Vec<f32>) {
    let (w, h) = image.dimensions();
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = f32::from(image.get_pixel(x, y)[c]) / 255.0;
                out.push((v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
            }
        }
    }
}

impl CanvasSource {
    /// The canvas of item `index` with random stream `seed`.
    pub fn canvas(&self, index: usize, seed: u64) -> Canvas {
        match self {
            CanvasSource::Fresh {
                config,
                glyphs,
                distractors,
                ..
            } => render_canvas(
                config,
                &glyphs[index % glyphs.len()],
                distractors,
                &mut rng_from_seed(seed),
            ),
            CanvasSource::Fixed(c) => c[index].clone(),
        }
    }
}

impl LoadBatch for CanvasSource {
    type Batch = CanvasBatch;

    fn len(&self) -> usize {
        match self {
            CanvasSource::Fresh {
                glyphs, repeats, ..
            } => glyphs.len() * repeats,
            CanvasSource::Fixed(c) => c.len(),
        }
    }

    fn load(&self, indices: &[usize], seeds: &[u64]) -> metron_datasets::Result<CanvasBatch> {
        let canvases: Vec<Canvas> = indices
            .iter()
            .zip(seeds)
            .map(|(&i, &s)| self.canvas(i, s))
            .collect();
        let (w, h) = canvases
            .first()
            .map(|c| c.image.dimensions())
            .unwrap_or((0, 0));
        let mut images = Vec::with_capacity(canvases.len() * 3 * (w * h) as usize);
        for c in &canvases {
            canvas_pixels(&c.image, &mut images);
        }
        Ok(CanvasBatch {
            images: ImageBatch {
                images,
                shape: [canvases.len(), 3, h as usize, w as usize],
                labels: canvases.iter().map(|c| c.label as i64).collect(),
                indices: indices.to_vec(),
                seeds: seeds.to_vec(),
                skipped: Vec::new(),
            },
            boxes: canvases.iter().map(|c| c.gt_box).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};

    fn glyph(seed: u64, label: usize) -> Glyph {
        use rand::Rng as _;
        let mut rng = rng_from_seed(seed);
        let img = image::RgbImage::from_fn(12, 12, |_, _| {
            if rng.random::<f32>() < 0.4 {
                image::Rgb([0; 3])
            } else {
                image::Rgb([255; 3])
            }
        });
        Glyph::from_drawing(&img, label).unwrap()
    }

    #[test]
    fn steps_on_one_batch_lower_the_loss_from_chance() {
        let device = metron_core::parse_device("cpu").unwrap().autodiff();
        let mut config = WgolModelConfig::new(3, WgolMode::Spa);
        config.width_divisor = 16;
        config.batch_norm = true;
        let model = metron_core::seeded_init(&device, 1, || config.init(&device)).unwrap();
        let source = CanvasSource::Fresh {
            config: CanvasConfig {
                size: 32,
                target_side: [12, 20],
                distractors: 0,
                distractor_side: [8, 8],
            },
            glyphs: Arc::new((0..6).map(|i| glyph(i, (i % 3) as usize)).collect()),
            distractors: Arc::new(Vec::new()),
            repeats: 1,
        };
        let batch = source
            .load(&[0, 1, 2, 3, 4, 5], &[1, 2, 3, 4, 5, 6])
            .unwrap();
        let mut opt = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .init();
        let mut model = model;
        let mut losses = Vec::new();
        for _ in 0..30 {
            let out = model.loss(&batch, &device).unwrap();
            losses.push(out.total.clone().into_scalar::<f64>());
            let grads = GradientsParams::from_grads(out.total.backward(), &model);
            model = opt.step(0.01, model, grads);
        }
        // Chance is ln 3 = 1.0986; a network that learns leaves it within a few steps.
        assert!((losses[0] - 3f64.ln()).abs() < 0.1, "{losses:?}");
        assert!(losses[29] < losses[0] - 0.1, "{losses:?}");
    }
}
