//! SAIG's network: two unshared SAIG backbones (ground, aerial), each with its own GAP or SMD
//! head, trained to put the two views of a place together (`../shared/specs/seed-systems.md`
//! s. 1).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use metron_backbones::{LoadMode, LoadReport, SAIG_ORIGINAL_KEYS, Saig, SaigConfig};
use metron_descriptors::{Gap, Smd, SmdConfig};
use metron_losses::{CrossViewInfoNce, SemiSoftTriHardLoss, SoftMarginTripletLoss};
use metron_train::{CrossViewModel, LossOutput, Result, TrainError, TrainModel, batch_images};

use super::pairs::ViewPairBatch;

/// The descriptor on top of the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SaigPool {
    /// Mean of the tokens (width `embed_dim`).
    Gap,
    /// SAIG's spatial-mixing descriptor: 8 learned spatial projections per channel
    /// (width `8 embed_dim`).
    Smd,
}

/// The cross-view loss, with its one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaigLoss {
    /// Soft-margin weighted triplet over every in-batch pair, both anchor directions.
    Triplet {
        /// Scale inside the softplus (10).
        alpha: f64,
    },
    /// InfoNCE over satellite rows with negatives from both views.
    InfoNce {
        /// Temperature (0.02).
        temperature: f64,
    },
    /// Soft-margin triplet over the floor(sqrt(B)) hardest negatives per anchor.
    SemiSoftTriHard {
        /// Scale inside the softplus (10).
        alpha: f64,
    },
}

impl SaigLoss {
    /// The short name used by `--loss`.
    pub fn name(&self) -> &'static str {
        match self {
            SaigLoss::Triplet { .. } => "triplet",
            SaigLoss::InfoNce { .. } => "infonce",
            SaigLoss::SemiSoftTriHard { .. } => "semi_soft_tri_hard",
        }
    }

    /// The loss `name` with SAIG's default parameter, or `alpha` / `temperature` when given.
    pub fn from_name(name: &str, alpha: Option<f64>, temperature: Option<f64>) -> Option<Self> {
        match name {
            "triplet" => Some(SaigLoss::Triplet {
                alpha: alpha.unwrap_or(10.0),
            }),
            "infonce" => Some(SaigLoss::InfoNce {
                temperature: temperature.unwrap_or(0.02),
            }),
            "semi_soft_tri_hard" | "semi-triplet" => Some(SaigLoss::SemiSoftTriHard {
                alpha: alpha.unwrap_or(10.0),
            }),
            _ => None,
        }
    }

    fn parameter(&self) -> f64 {
        match *self {
            SaigLoss::Triplet { alpha } | SaigLoss::SemiSoftTriHard { alpha } => alpha,
            SaigLoss::InfoNce { temperature } => temperature,
        }
    }
}

/// Configuration of [`SaigModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaigModelConfig {
    /// Attention blocks per branch: 11 (SAIG-S) or 22 (SAIG-D).
    pub depth: usize,
    /// Token width (384).
    pub embed_dim: usize,
    /// Attention heads (12).
    pub heads: usize,
    /// Channels of the first stem convolution (64 in the original).
    pub stem_width: usize,
    /// Ground input `[height, width]` (128 x 512 for CVUSA).
    pub ground_size: [usize; 2],
    /// Aerial input `[height, width]` (256 x 256, or 128 x 512 when polar-transformed).
    pub aerial_size: [usize; 2],
    /// The descriptor of both branches.
    pub pool: SaigPool,
    /// The training loss.
    pub loss: SaigLoss,
}

impl SaigModelConfig {
    /// SAIG-S with a GAP head and the soft-margin triplet, as CVUSA's default script, at the
    /// given input sizes.
    pub fn saig_s(ground_size: [usize; 2], aerial_size: [usize; 2]) -> Self {
        SaigModelConfig {
            depth: 11,
            embed_dim: 384,
            heads: 12,
            stem_width: 64,
            ground_size,
            aerial_size,
            pool: SaigPool::Gap,
            loss: SaigLoss::Triplet { alpha: 10.0 },
        }
    }

    fn backbone(&self, image_size: [usize; 2]) -> SaigConfig {
        SaigConfig {
            depth: self.depth,
            embed_dim: self.embed_dim,
            heads: self.heads,
            image_size,
            stem_width: self.stem_width,
        }
    }

    /// The width of the descriptors.
    pub fn embedding_dim(&self) -> usize {
        match self.pool {
            SaigPool::Gap => self.embed_dim,
            SaigPool::Smd => 8 * self.embed_dim,
        }
    }

    /// The ground backbone's configuration.
    pub fn ground_backbone(&self) -> SaigConfig {
        self.backbone(self.ground_size)
    }

    /// The aerial backbone's configuration.
    pub fn aerial_backbone(&self) -> SaigConfig {
        self.backbone(self.aerial_size)
    }

    /// Builds both branches with the original's random initialisation (under
    /// [`metron_core::seeded_init`] for a reproducible one). A loss parameter that is not a
    /// positive number, or a backbone that cannot be built, is an error.
    pub fn init(&self, device: &Device) -> Result<SaigModel> {
        let p = self.loss.parameter();
        if !(p.is_finite() && p > 0.0) {
            return Err(TrainError::Config(format!(
                "the {} loss needs a positive parameter, got {p}",
                self.loss.name()
            )));
        }
        let branch = |config: SaigConfig| -> Result<(Saig, SaigHead)> {
            let backbone = config
                .init(device)
                .map_err(|e| TrainError::Config(e.to_string()))?;
            let [gh, gw] = config.grid();
            let head = SaigHead {
                smd: (self.pool == SaigPool::Smd).then(|| SmdConfig::new(gh * gw).init(device)),
            };
            Ok((backbone, head))
        };
        let (ground, ground_head) = branch(self.ground_backbone())?;
        let (aerial, aerial_head) = branch(self.aerial_backbone())?;
        Ok(SaigModel {
            ground,
            ground_head,
            aerial,
            aerial_head,
            config: self.clone(),
        })
    }
}

/// A branch's descriptor: SMD when present, else GAP (which has no parameters).
#[derive(Module, Debug)]
pub struct SaigHead {
    /// The spatial-mixing descriptor, or `None` for the mean of the tokens.
    pub smd: Option<Smd>,
}

impl SaigHead {
    /// # Shapes
    /// - `tokens`: `[B, N, C]` -> `[B, D]`, unit rows
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<2> {
        match &self.smd {
            Some(smd) => smd.forward(tokens),
            None => Gap.forward(tokens),
        }
    }
}

/// SAIG: ground branch and aerial branch, unshared.
#[derive(Module, Debug)]
pub struct SaigModel {
    /// The ground (street-view) backbone.
    pub ground: Saig,
    /// The ground branch's descriptor.
    pub ground_head: SaigHead,
    /// The aerial (satellite) backbone.
    pub aerial: Saig,
    /// The aerial branch's descriptor.
    pub aerial_head: SaigHead,
    /// What the model was built from (also the loss).
    #[module(skip)]
    pub config: SaigModelConfig,
}

impl SaigModel {
    /// The loss of matched rows: `aerial[i]` and `ground[i]` are one place.
    ///
    /// # Shapes
    /// - `aerial`, `ground`: `[B, D]` unit rows -> scalar
    pub fn loss_of(&self, aerial: Tensor<2>, ground: Tensor<2>) -> Result<LossOutput> {
        let loss = match self.config.loss {
            SaigLoss::Triplet { alpha } => SoftMarginTripletLoss { alpha }.forward(aerial, ground),
            SaigLoss::InfoNce { temperature } => {
                CrossViewInfoNce { temperature }.forward(aerial, ground)
            }
            SaigLoss::SemiSoftTriHard { alpha } => {
                SemiSoftTriHardLoss { alpha }.forward(aerial, ground)
            }
        }?;
        Ok(LossOutput {
            total: loss.clone(),
            parts: vec![(self.config.loss.name(), loss)],
        })
    }
}

/// Key renames from the original's fine-tuned checkpoints (`twoviewmodel`: `model_grd` and
/// `model_sat`, each a `Branch` or `MixerHead_Branch` holding the SAIG backbone as `backbone`
/// and, for SMD, `linear1..3`) to [`SaigModel`]'s fields. DataParallel's `module.` prefix is
/// removed by the loader.
pub fn original_checkpoint_keys() -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for (original, ours) in [("model_grd", "ground"), ("model_sat", "aerial")] {
        for (from, to) in SAIG_ORIGINAL_KEYS {
            let rest = from.trim_start_matches('^');
            keys.push((
                format!(r"^{original}\.backbone\.{rest}"),
                format!("{ours}.{to}"),
            ));
        }
        for (linear, field) in [
            ("linear1", "mix1"),
            ("linear2", "mix2"),
            ("linear3", "project"),
        ] {
            keys.push((
                format!(r"^{original}\.{linear}\."),
                format!("{ours}_head.smd.{field}."),
            ));
        }
        keys.push((format!(r"^{original}\.backbone\."), format!("{ours}.")));
    }
    keys
}

impl SaigModel {
    /// Loads one of the original's fine-tuned checkpoints (both branches and, for SMD, both
    /// heads), strictly: a missing or stray key is an error naming it. The model must be
    /// configured as the checkpoint was trained (sizes, depth, pool).
    pub fn load_original_checkpoint(self, path: &std::path::Path) -> Result<(Self, LoadReport)> {
        let keys = original_checkpoint_keys();
        let keys: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        metron_backbones::load_pytorch_any_layout(self, path, &keys, LoadMode::Strict)
            .map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Starts both backbones from the original's ImageNet-pretrained SAIG file (a 224 x 224
    /// model under `state_dict`; its classifier `head.*` unused), the position embedding
    /// resized to each branch's grid as the original's training script does. The heads keep
    /// their initialisation.
    pub fn load_imagenet_backbones(
        mut self,
        path: &std::path::Path,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let config = SaigConfig {
            image_size: [224, 224],
            ..self.config.ground_backbone()
        };
        // Under the init lock: its random draws (replaced by the file's) must not shift
        // another thread's seeded initialisation.
        let backbone = metron_core::seeded_init(device, 0, || config.init(device))
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let (backbone, report) = metron_backbones::load_pytorch_any_layout(
            backbone,
            path,
            SAIG_ORIGINAL_KEYS,
            LoadMode::StrictIgnoringUnused(&["head."]),
        )
        .map_err(|e| TrainError::Config(e.to_string()))?;
        let regrid = |grid: [usize; 2]| {
            backbone
                .clone()
                .resize_position_embedding(grid)
                .map_err(|e| TrainError::Config(e.to_string()))
        };
        self.ground = regrid(self.config.ground_backbone().grid())?;
        self.aerial = regrid(self.config.aerial_backbone().grid())?;
        Ok((self, report))
    }
}

impl CrossViewModel for SaigModel {
    fn embed_query(&self, images: Tensor<4>) -> Tensor<2> {
        self.ground_head.forward(self.ground.tokens(images))
    }

    fn embed_reference(&self, images: Tensor<4>) -> Tensor<2> {
        self.aerial_head.forward(self.aerial.tokens(images))
    }
}

impl TrainModel for SaigModel {
    type Batch = ViewPairBatch;

    fn loss(&self, batch: &ViewPairBatch, device: &Device) -> Result<LossOutput> {
        let ground = self.embed_query(batch_images(&batch.ground, device));
        let aerial = self.embed_reference(batch_images(&batch.aerial, device));
        self.loss_of(aerial, ground)
    }

    fn architecture(&self) -> serde_json::Value {
        serde_json::json!({ "kind": super::KIND, "config": self.config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use rand::Rng as _;

    /// Inputs from a local generator: the device's own is shared by every test thread, and a
    /// draw from it here would shift another test's seeded initialisation.
    fn local_images(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
        let mut rng = metron_core::rng_from_seed(seed);
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn build(config: &SaigModelConfig, seed: u64, device: &Device) -> Result<SaigModel> {
        metron_core::seeded_init(device, seed, || config.init(device))
    }

    fn tiny(pool: SaigPool, loss: SaigLoss) -> SaigModelConfig {
        SaigModelConfig {
            depth: 1,
            embed_dim: 8,
            heads: 2,
            stem_width: 2,
            ground_size: [16, 64],
            aerial_size: [32, 32],
            pool,
            loss,
        }
    }

    #[test]
    fn both_branches_embed_unit_rows_of_the_pools_width() {
        let device = Device::flex();
        for (pool, width) in [(SaigPool::Gap, 8), (SaigPool::Smd, 64)] {
            let config = tiny(pool, SaigLoss::Triplet { alpha: 10.0 });
            assert_eq!(config.embedding_dim(), width);
            let model = build(&config, 3, &device).unwrap();
            let g = model.embed_query(local_images([3, 3, 16, 64], 1, &device));
            let a = model.embed_reference(local_images([3, 3, 32, 32], 2, &device));
            for e in [g, a] {
                assert_eq!(e.dims(), [3, width]);
                let norms: Vec<f32> = e
                    .powi_scalar(2)
                    .sum_dim(1)
                    .try_into_vec_as::<f32>()
                    .unwrap();
                assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
            }
        }
    }

    #[test]
    fn the_loss_is_the_configured_cross_view_loss_of_the_two_branches() {
        let device = Device::flex();
        let rows = |v: Vec<f32>| {
            metron_descriptors::l2_normalize(Tensor::<2>::from_data(
                TensorData::new(v, [3, 2]),
                &device,
            ))
        };
        let a = rows(vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]);
        let g = rows(vec![0.9, 0.1, 0.2, 1.0, 0.7, 0.7]);
        for loss in [
            SaigLoss::Triplet { alpha: 10.0 },
            SaigLoss::InfoNce { temperature: 0.02 },
            SaigLoss::SemiSoftTriHard { alpha: 5.0 },
        ] {
            let model = build(&tiny(SaigPool::Gap, loss), 0, &device).unwrap();
            let got: f32 = model
                .loss_of(a.clone(), g.clone())
                .unwrap()
                .total
                .into_scalar();
            let want: f32 = match loss {
                SaigLoss::Triplet { alpha } => {
                    SoftMarginTripletLoss { alpha }.forward(a.clone(), g.clone())
                }
                SaigLoss::InfoNce { temperature } => {
                    CrossViewInfoNce { temperature }.forward(a.clone(), g.clone())
                }
                SaigLoss::SemiSoftTriHard { alpha } => {
                    SemiSoftTriHardLoss { alpha }.forward(a.clone(), g.clone())
                }
            }
            .unwrap()
            .into_scalar();
            assert_eq!(got, want, "{loss:?}");
        }
        // By hand for the triplet at B = 3: d = 2 - 2 a g^T, mean over both directions.
        let d = |i: usize, j: usize| {
            let av: Vec<f32> = a
                .clone()
                .slice([i..i + 1, 0..2])
                .try_into_vec_as::<f32>()
                .unwrap();
            let gv: Vec<f32> = g
                .clone()
                .slice([j..j + 1, 0..2])
                .try_into_vec_as::<f32>()
                .unwrap();
            2.0 - 2.0 * (av[0] * gv[0] + av[1] * gv[1])
        };
        let sp = |x: f32| (1.0 + (10.0 * x).exp()).ln();
        let mut sum = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                sum += sp(d(j, j) - d(i, j)) + sp(d(i, i) - d(i, j));
            }
        }
        let triplet = tiny(SaigPool::Gap, SaigLoss::Triplet { alpha: 10.0 });
        let model = build(&triplet, 0, &device).unwrap();
        let got: f32 = model.loss_of(a, g).unwrap().total.into_scalar();
        assert!(
            (got - sum / 12.0).abs() < 1e-5 * sum,
            "{got} vs {}",
            sum / 12.0
        );
    }

    /// A fine-tuned checkpoint in the original's names (written from a model of ours by a
    /// hand-made inverse of the key map) loads back to the same embeddings.
    #[test]
    fn the_originals_fine_tuned_checkpoints_load_into_both_branches_and_heads() {
        use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, SafetensorsStore};
        let device = Device::flex();
        let config = tiny(SaigPool::Smd, SaigLoss::Triplet { alpha: 10.0 });
        let saved = build(&config, 1, &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saig_finetuned.safetensors");
        let mut remapper = KeyRemapper::new();
        for (ours, original) in [("ground", "model_grd"), ("aerial", "model_sat")] {
            for (layer, index) in [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12), (5, 15)] {
                remapper = remapper
                    .add_pattern(
                        format!(r"^{ours}\.stem\.{layer}\.conv\."),
                        format!("{original}.backbone.patch_embed.conv_stem.{index}."),
                    )
                    .unwrap()
                    .add_pattern(
                        format!(r"^{ours}\.stem\.{layer}\.bn\."),
                        format!("{original}.backbone.patch_embed.conv_stem.{}.", index + 1),
                    )
                    .unwrap();
            }
            remapper = remapper
                .add_pattern(
                    format!(r"^{ours}\.proj\."),
                    format!("{original}.backbone.patch_embed.conv_stem.18."),
                )
                .unwrap()
                .add_pattern(
                    format!(r"^{ours}_head\.smd\.mix1\."),
                    format!("{original}.linear1."),
                )
                .unwrap()
                .add_pattern(
                    format!(r"^{ours}_head\.smd\.mix2\."),
                    format!("{original}.linear2."),
                )
                .unwrap()
                .add_pattern(
                    format!(r"^{ours}_head\.smd\.project\."),
                    format!("{original}.linear3."),
                )
                .unwrap()
                .add_pattern(format!(r"^{ours}\."), format!("{original}.backbone."))
                .unwrap();
        }
        let mut store = SafetensorsStore::from_file(&path)
            .with_to_adapter(BurnToPyTorchAdapter)
            .remap(remapper);
        saved.save_into(&mut store).unwrap();

        let fresh = build(&config, 2, &device).unwrap();
        let (loaded, report) = fresh.load_original_checkpoint(&path).unwrap();
        assert!(report.applied > 0 && report.unused.is_empty());
        let g = local_images([2, 3, 16, 64], 3, &device);
        let a = local_images([2, 3, 32, 32], 4, &device);
        let (saved, loaded) = (saved.valid(), loaded.valid());
        for (x, y) in [
            (saved.embed_query(g.clone()), loaded.embed_query(g)),
            (saved.embed_reference(a.clone()), loaded.embed_reference(a)),
        ] {
            let d: f32 = (x - y).abs().max().into_scalar();
            assert!(d < 1e-6, "{d}");
        }
        // Another architecture's file is refused with the key it lacks.
        let other = tiny(SaigPool::Gap, SaigLoss::Triplet { alpha: 10.0 });
        let gap = build(&other, 2, &device).unwrap();
        let e = gap.load_original_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("linear") || e.contains("smd"), "{e}");
    }

    #[test]
    fn bad_loss_parameters_are_config_errors() {
        let device = Device::flex();
        let c = tiny(SaigPool::Gap, SaigLoss::InfoNce { temperature: 0.0 });
        assert!(
            build(&c, 0, &device)
                .unwrap_err()
                .to_string()
                .contains("infonce")
        );
        assert_eq!(
            SaigLoss::from_name("infonce", None, None),
            Some(SaigLoss::InfoNce { temperature: 0.02 })
        );
        assert_eq!(SaigLoss::from_name("nope", None, None), None);
    }
}
