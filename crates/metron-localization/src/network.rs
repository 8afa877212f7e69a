//! WGOL's network (`vgg_sst`, spec s. 2.1 and 2.3) and its training loss (s. 2.4).

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use metron_backbones::{Vgg16, Vgg16Config};

use crate::sos_target::label_indices;
use crate::{
    HscConfig, LocalizationError, MapHead, MapHeadConfig, RaLossConfig, Result, SosTargetConfig,
    StructureAttention, StructureAttentionConfig, WgolMode, class_scores, edge_code, ra_loss,
    self_correlation, sos_bce_loss, sos_target, structure_map,
};

/// Which stages' self-correlations make the self-attention's edge code (`sa_edge_stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStages {
    /// conv5 only (the ILSVRC validation script).
    F5,
    /// conv4 and conv5 (the CUB scripts; the default).
    F4F5,
}

/// Configuration of [`WgolNet`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WgolNetConfig {
    /// Classes (maps of the `cls` head).
    pub classes: usize,
    /// Heads and wiring.
    pub mode: WgolMode,
    /// Every VGG-16 convolution, the heads' 1024 hidden channels and the attention width are
    /// divided by this (1 = the original network).
    pub width_divisor: usize,
    /// A BatchNorm after every backbone convolution (`vgg16_bn`; the original: none).
    pub batch_norm: bool,
    /// Attention heads (`sa_head`, 8).
    pub sa_heads: usize,
    /// Weight of the edge code in the attention logits (`sa_edge_weight`, 1).
    pub sa_edge_weight: f64,
    /// Stages of the edge code.
    pub sa_edge_stages: EdgeStages,
    /// Thresholds of the self-correlations (SPA maps, SOS targets, edge code).
    pub hsc: HscConfig,
}

impl WgolNetConfig {
    /// The original network for `classes` classes in `mode`.
    pub fn new(classes: usize, mode: WgolMode) -> Self {
        WgolNetConfig {
            classes,
            mode,
            width_divisor: 1,
            batch_norm: false,
            sa_heads: 8,
            sa_edge_weight: 1.0,
            sa_edge_stages: EdgeStages::F4F5,
            hsc: HscConfig::default(),
        }
    }

    /// Channels of conv5 (512 / `width_divisor`).
    pub fn feature_channels(&self) -> usize {
        self.backbone().feature_channels()
    }

    fn backbone(&self) -> Vgg16Config {
        Vgg16Config {
            num_classes: None,
            width_divisor: self.width_divisor,
            batch_norm: self.batch_norm,
        }
    }

    /// The network: the backbone with Burn's default initialisation (ImageNet weights are
    /// meant to be loaded over it), the heads initialised as the original.
    pub fn init(&self, device: &Device) -> WgolNet {
        let c = self.feature_channels();
        let hidden = (1024 / self.width_divisor.max(1)).max(1);
        let head = |outputs| {
            MapHeadConfig {
                in_channels: c,
                hidden,
                outputs,
            }
            .init(device)
        };
        let sa = self.mode.has_sa().then(|| {
            let mut a = StructureAttentionConfig::new(c);
            a.heads = self.sa_heads;
            a.edge_weight = self.sa_edge_weight;
            a.init(device)
        });
        WgolNet {
            backbone: self.backbone().init(device),
            cls: head(self.classes),
            sos: self.mode.has_sos().then(|| head(1)),
            sa,
            mode: self.mode,
            classes: self.classes,
            edge_from_f4: self.sa_edge_stages == EdgeStages::F4F5,
            hsc: self.hsc,
        }
    }
}

/// When a forward pass runs: at test, or in training with the epoch's switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Training. `sos`: the epoch is `>= sos_start`; `sa`: the epoch is `>= sa_start`.
    Train {
        /// The SOS head is trained this epoch.
        sos: bool,
        /// The self-attention is in use this epoch.
        sa: bool,
    },
    /// Evaluation: every head in use, structure maps computed for localisation.
    Test,
}

/// What a forward pass gives.
#[derive(Debug, Clone)]
pub struct WgolOutput {
    /// Class maps `[B, K, h, w]`; class scores are their spatial means.
    pub cls_maps: Tensor<4>,
    /// SOS logits `[B, h, w]`, when the mode has SOS and it is active.
    pub sos_maps: Option<Tensor<3>>,
    /// SPA's structure map `S = S_4 + S_5` `[B, hw, hw]`, detached: at test, and in
    /// training whenever SOS needs targets.
    pub structure: Option<Tensor<3>>,
}

/// VGG-16 with WGOL's heads (`vgg_sst`).
#[derive(Module, Debug)]
pub struct WgolNet {
    /// The convolutional trunk, split f12 / f3 / f4 / f5 (no pool5).
    pub backbone: Vgg16,
    /// One map per class.
    pub cls: MapHead,
    /// The class-agnostic object map (modes with SOS).
    pub sos: Option<MapHead>,
    /// The structure-aware self-attention (modes with SA).
    pub sa: Option<StructureAttention>,
    /// Wiring.
    #[module(skip)]
    pub mode: WgolMode,
    /// Classes.
    #[module(skip)]
    pub classes: usize,
    /// Whether conv4's self-correlation joins conv5's in the edge code.
    #[module(skip)]
    pub edge_from_f4: bool,
    /// Self-correlation thresholds.
    #[module(skip)]
    pub hsc: HscConfig,
}

impl WgolNet {
    /// The forward pass of spec s. 2.3's table.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> class maps `[B, K, H/16, W/16]`, SOS `[B, H/16, W/16]`,
    ///   structure `[B, n, n]` with `n = (H/16)(W/16)`
    pub fn forward(&self, x: Tensor<4>, phase: Phase) -> WgolOutput {
        let stages = self.backbone.stages(x);
        let (f4, f5) = (stages.f4, stages.f5);
        let (sos_on, sa_on, test) = match phase {
            Phase::Train { sos, sa } => (sos, sa, false),
            Phase::Test => (true, true, true),
        };
        let mode = self.mode;
        let sos_on = sos_on && mode.has_sos();
        let sa_on = sa_on && mode.has_sa();
        let correlations = (test || sos_on || sa_on).then(|| {
            [
                self_correlation(f4.clone(), &self.hsc),
                self_correlation(f5.clone(), &self.hsc),
            ]
        });
        let attended = match (&self.sa, &correlations) {
            (Some(sa), Some(c)) if sa_on => {
                let edge = if self.edge_from_f4 {
                    edge_code(c)
                } else {
                    edge_code(&c[1..])
                };
                Some(sa.forward(f5.clone(), Some(edge)))
            }
            _ => None,
        };
        let (cls_in, sos_in) = match (mode, attended) {
            (WgolMode::SpaSa, Some(a)) => (a, f5),
            (WgolMode::SosSaV2, Some(a)) => (f5, a),
            (WgolMode::SosSaV3, Some(a)) => (a.clone(), a),
            _ => (f5.clone(), f5),
        };
        let cls_maps = self.cls.forward(cls_in);
        let sos_maps = match &self.sos {
            Some(head) if sos_on => {
                let m = head.forward(sos_in);
                let [b, _, h, w] = m.dims();
                Some(m.reshape([b, h, w]))
            }
            _ => None,
        };
        let structure = match correlations {
            Some(c) if test || sos_on => Some(structure_map(&c, self.hsc.high_order_weight)),
            _ => None,
        };
        WgolOutput {
            cls_maps,
            sos_maps,
            structure,
        }
    }
}

/// Weights and switches of [`WgolLoss`]; defaults are the CUB script's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WgolLossConfig {
    /// λ_sos (`sos_loss_weight`, 0.5).
    pub sos_weight: f64,
    /// The SOS target's thresholds.
    pub sos_target: SosTargetConfig,
    /// The RA loss's thresholds, `None` without it (`ram`).
    pub ra: Option<RaLossConfig>,
    /// λ_ra (1 for CUB, 0.5 for ILSVRC).
    pub ra_weight: f64,
}

impl Default for WgolLossConfig {
    fn default() -> Self {
        WgolLossConfig {
            sos_weight: 0.5,
            sos_target: SosTargetConfig::default(),
            ra: Some(RaLossConfig::default()),
            ra_weight: 1.0,
        }
    }
}

/// The parts of one batch's loss.
#[derive(Debug, Clone)]
pub struct WgolLosses {
    /// `ce + λ_sos sos + λ_ra ra`.
    pub total: Tensor<1>,
    /// Cross entropy of the class scores.
    pub ce: Tensor<1>,
    /// SOS's BCE against its pseudo ground truth, when SOS was active.
    pub sos: Option<Tensor<1>>,
    /// The RA loss, when active.
    pub ra: Option<Tensor<1>>,
}

/// WGOL's training loss `CE(GAP(cls), y) + λ_sos L_sos [e >= sos_start] + λ_ra L_RA [ram,
/// e >= ram_start]` (`get_loss`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WgolLoss {
    /// Weights and thresholds.
    pub config: WgolLossConfig,
}

impl WgolLoss {
    /// The loss of one forward pass; `ra_active` is `e >= ram_start`. SOS counts when the
    /// output has SOS maps (the forward pass decides that from the phase).
    pub fn forward(&self, out: &WgolOutput, labels: &[i64], ra_active: bool) -> Result<WgolLosses> {
        let [b, k, _, _] = out.cls_maps.dims();
        let index = label_indices("WgolLoss", labels, b, k, &out.cls_maps.device())?;
        let logp = log_softmax(class_scores(out.cls_maps.clone()), 1);
        let picked = logp.gather(1, index.reshape([b, 1]));
        let ce = picked.mean().neg();
        let mut total = ce.clone();
        let sos = match &out.sos_maps {
            Some(pred) => {
                let structure = out.structure.clone().ok_or(LocalizationError::Shape {
                    what: "WgolLoss",
                    why: "SOS maps without the structure map their targets come from".into(),
                })?;
                let target = sos_target(
                    out.cls_maps.clone(),
                    labels,
                    structure,
                    &self.config.sos_target,
                )?;
                let l = sos_bce_loss(pred.clone(), target)?;
                total = total + l.clone().mul_scalar(self.config.sos_weight);
                Some(l)
            }
            None => None,
        };
        let ra = match self.config.ra {
            Some(ra) if ra_active => {
                let l = ra_loss(out.cls_maps.clone(), labels, &ra)?;
                total = total + l.clone().mul_scalar(self.config.ra_weight);
                Some(l)
            }
            _ => None,
        };
        Ok(WgolLosses { total, ce, sos, ra })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(mode: WgolMode, device: &Device) -> WgolNet {
        let mut c = WgolNetConfig::new(3, mode);
        c.width_divisor = 32;
        c.sa_heads = 2;
        metron_core::seeded_init(device, 5, || Ok::<_, ()>(c.init(device))).unwrap()
    }

    #[test]
    fn every_mode_gives_the_maps_its_table_row_says() {
        let device = Device::flex();
        let x = Tensor::<1, burn::tensor::Int>::arange(0..2 * 3 * 32 * 32, &device)
            .float()
            .reshape([2, 3, 32, 32])
            .mul_scalar(1.0 / 6144.0)
            .sin();
        // The same seed gives every mode the same backbone and cls head, so before
        // sos_start / sa_start every mode computes the class maps of plain conv5.
        let plain: Vec<f32> = net(WgolMode::Spa, &device)
            .forward(
                x.clone(),
                Phase::Train {
                    sos: false,
                    sa: false,
                },
            )
            .cls_maps
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        for mode in WgolMode::ALL {
            let n = net(mode, &device);
            assert_eq!(n.sa.is_some(), mode.has_sa(), "{mode}");
            assert_eq!(n.sos.is_some(), mode.has_sos(), "{mode}");
            let test = n.forward(x.clone(), Phase::Test);
            assert_eq!(test.cls_maps.dims(), [2, 3, 2, 2], "{mode}");
            assert_eq!(
                test.sos_maps.as_ref().map(|m| m.dims()),
                mode.has_sos().then_some([2, 2, 2])
            );
            assert_eq!(test.structure.unwrap().dims(), [2, 4, 4]);
            let early = n.forward(
                x.clone(),
                Phase::Train {
                    sos: false,
                    sa: false,
                },
            );
            assert!(
                early.sos_maps.is_none() && early.structure.is_none(),
                "{mode}"
            );
            let early = early.cls_maps.into_data().try_into_vec_as::<f32>().unwrap();
            assert_eq!(early, plain, "{mode}");
            // With SA on, the modes that put it in front of cls change the class maps.
            let late = n
                .forward(
                    x.clone(),
                    Phase::Train {
                        sos: true,
                        sa: true,
                    },
                )
                .cls_maps
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            let sa_feeds_cls = matches!(mode, WgolMode::SpaSa | WgolMode::SosSaV3);
            assert_eq!(late != plain, sa_feeds_cls, "{mode}");
        }
    }
}
