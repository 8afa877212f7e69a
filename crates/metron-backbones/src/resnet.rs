//! ResNet-18/34/50 and ResNeXt-50 32x4d in torchvision's (v1.5) layout, so torchvision state
//! dicts load with two key renames (`downsample.0/1` -> `downsample.conv/bn`).

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use metron_ops::conv2d_forward;
use metron_ops::{
    RunningVariance, batch_norm_forward_with as bn_forward,
    batch_norm_relu_forward_with as bn_relu_forward,
};

use crate::{BackboneError, Result};

/// Which residual block a ResNet stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1x1, 3x3 (grouped for ResNeXt), 1x1 (ResNet-50 and deeper), expansion 4.
    Bottleneck,
}

/// Configuration of [`ResNet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Basic blocks (ResNet-18/34) or bottlenecks (ResNet-50, ResNeXt).
    pub block: BlockKind,
    /// Blocks per stage, e.g. `[3, 4, 6, 3]` for ResNet-50.
    pub layers: [usize; 4],
    /// Groups of the 3x3 convolutions (32 for ResNeXt-50 32x4d).
    pub groups: usize,
    /// Channels per group of a stage-1 bottleneck (4 for 32x4d; 64 for plain ResNets).
    pub width_per_group: usize,
    /// CGD's change: the first block of layer3 keeps the resolution (2048 x 14 x 14 maps at
    /// 224 x 224 for ResNet-50).
    pub layer3_stride_1: bool,
    /// BatchNorm always normalises with its running statistics, also while training; its
    /// affine parameters still train (Smooth-AP and CGD).
    pub frozen_batch_norm: bool,
    /// A final classifier `Linear(features, num_classes)` as torchvision's `fc`; `None` for a
    /// headless backbone.
    pub num_classes: Option<usize>,
    /// Channels of the stem and of stage 1 (64 in torchvision); stages 2-4 double it each time.
    /// Smaller widths give the narrow ResNets that train on a CPU in minutes (16 costs about
    /// 1/16 of the FLOPs); pretrained weights exist only for 64.
    pub base_width: usize,
    /// How training batches update BatchNorm's running variance: PyTorch's unbiased
    /// estimate by default (what torchvision checkpoints and published recipes assume).
    pub running_variance: RunningVariance,
}

impl ResNetConfig {
    fn new(block: BlockKind, layers: [usize; 4]) -> Self {
        ResNetConfig {
            block,
            layers,
            groups: 1,
            width_per_group: 64,
            layer3_stride_1: false,
            frozen_batch_norm: false,
            num_classes: None,
            base_width: 64,
            running_variance: RunningVariance::Unbiased,
        }
    }

    /// ResNet-18: basic blocks, `[2, 2, 2, 2]`.
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2])
    }

    /// ResNet-34: basic blocks, `[3, 4, 6, 3]`.
    pub fn resnet34() -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3])
    }

    /// ResNet-50: bottlenecks, `[3, 4, 6, 3]`.
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
    }

    /// ResNeXt-50 32x4d: ResNet-50 with 32 groups of 4 channels in the 3x3 convolutions.
    pub fn resnext50_32x4d() -> Self {
        ResNetConfig {
            groups: 32,
            width_per_group: 4,
            ..Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
        }
    }

    /// Sets [`ResNetConfig::layer3_stride_1`] (off by default).
    pub fn with_layer3_stride_1(mut self, on: bool) -> Self {
        self.layer3_stride_1 = on;
        self
    }

    /// Sets [`ResNetConfig::frozen_batch_norm`] (off by default).
    pub fn with_frozen_batch_norm(mut self, on: bool) -> Self {
        self.frozen_batch_norm = on;
        self
    }

    /// Sets [`ResNetConfig::base_width`] (64 by default).
    pub fn with_base_width(mut self, base_width: usize) -> Self {
        self.base_width = base_width;
        self
    }

    /// Sets [`ResNetConfig::running_variance`] (unbiased by default).
    pub fn with_running_variance(mut self, running_variance: RunningVariance) -> Self {
        self.running_variance = running_variance;
        self
    }

    /// Sets [`ResNetConfig::num_classes`] (`None`, headless, by default).
    pub fn with_num_classes(mut self, num_classes: Option<usize>) -> Self {
        self.num_classes = num_classes;
        self
    }

    fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Channels of the final feature map (512 or 2048 at the standard width).
    pub fn out_channels(&self) -> usize {
        8 * self.base_width * self.expansion()
    }

    /// Builds the network with PyTorch's default initialisation scheme; weights are meant to be
    /// loaded (see [`crate::load_pytorch`] with [`crate::TORCHVISION_RESNET_KEYS`]). `device.seed(..)` first for a reproducible
    /// random init.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        if self.block == BlockKind::Basic && (self.groups != 1 || self.width_per_group != 64) {
            return Err(BackboneError::InvalidConfig(
                "basic blocks support only groups = 1 and width_per_group = 64".into(),
            ));
        }
        if self.groups == 0
            || self.width_per_group == 0
            || self.base_width == 0
            || self.layers.contains(&0)
        {
            return Err(BackboneError::InvalidConfig(format!(
                "ResNet needs positive groups, width and blocks per stage, got {self:?}"
            )));
        }
        let bn = |c: usize| batch_norm(c, self.frozen_batch_norm, device);
        let w = self.base_width;
        let mut inplanes = w;
        let mut stages = Vec::with_capacity(4);
        for (s, (&blocks, planes)) in self.layers.iter().zip([w, 2 * w, 4 * w, 8 * w]).enumerate() {
            let stride = if s == 0 || (s == 2 && self.layer3_stride_1) {
                1
            } else {
                2
            };
            let mut stage = Vec::with_capacity(blocks);
            for b in 0..blocks {
                let block_stride = if b == 0 { stride } else { 1 };
                stage.push(self.block(inplanes, planes, block_stride, device));
                inplanes = planes * self.expansion();
            }
            stages.push(stage);
        }
        let mut stages = stages.into_iter();
        Ok(ResNet {
            conv1: conv(3, w, 7, 2, 3, 1, device),
            bn1: bn(w),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: stages.next().expect("four stages"),
            layer2: stages.next().expect("four stages"),
            layer3: stages.next().expect("four stages"),
            layer4: stages.next().expect("four stages"),
            fc: self
                .num_classes
                .map(|c| LinearConfig::new(self.out_channels(), c).init(device)),
            running_variance: self.running_variance,
        })
    }

    fn block(&self, inplanes: usize, planes: usize, stride: usize, device: &Device) -> Block {
        let out = planes * self.expansion();
        let bn = |c: usize| batch_norm(c, self.frozen_batch_norm, device);
        let downsample = (stride != 1 || inplanes != out).then(|| Downsample {
            conv: conv(inplanes, out, 1, stride, 0, 1, device),
            bn: bn(out),
        });
        match self.block {
            BlockKind::Basic => Block {
                conv1: conv(inplanes, planes, 3, stride, 1, 1, device),
                bn1: bn(planes),
                conv2: conv(planes, planes, 3, 1, 1, 1, device),
                bn2: bn(planes),
                conv3: None,
                bn3: None,
                downsample,
                running_variance: self.running_variance,
            },
            BlockKind::Bottleneck => {
                let width = planes * self.width_per_group / 64 * self.groups;
                Block {
                    conv1: conv(inplanes, width, 1, 1, 0, 1, device),
                    bn1: bn(width),
                    // v1.5: the stride sits on the 3x3 convolution.
                    conv2: conv(width, width, 3, stride, 1, self.groups, device),
                    bn2: bn(width),
                    conv3: Some(conv(width, out, 1, 1, 0, 1, device)),
                    bn3: Some(bn(out)),
                    downsample,
                    running_variance: self.running_variance,
                }
            }
        }
    }
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

fn batch_norm(channels: usize, frozen: bool, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    if frozen {
        bn.training = Param::from_bool(false);
    }
    bn
}

/// The 1x1 projection of a block whose shape changes.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1x1 convolution (no bias) to the block's output channels, with the block's stride.
    pub conv: Conv2d,
    /// BatchNorm after the projection.
    pub bn: BatchNorm,
}

/// A residual block; `conv3`/`bn3` exist for bottlenecks only.
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution: 3x3 with the block's stride (basic), or the 1x1 reduction
    /// (bottleneck).
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// Second convolution: 3x3, carrying the stride and the groups in a bottleneck.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm,
    /// The bottleneck's 1x1 expansion to `4 * planes` channels; `None` in basic blocks.
    pub conv3: Option<Conv2d>,
    /// BatchNorm after `conv3`; `None` in basic blocks.
    pub bn3: Option<BatchNorm>,
    /// Projection of the shortcut when the stride or the channel count changes; `None` for
    /// the identity.
    pub downsample: Option<Downsample>,
    /// How training batches update the BatchNorms' running variance.
    #[module(skip)]
    pub running_variance: RunningVariance,
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let rv = self.running_variance;
        let identity = match &self.downsample {
            Some(d) => bn_forward(&d.bn, conv2d_forward(&d.conv, x.clone()), rv),
            None => x.clone(),
        };
        let y = bn_relu_forward(&self.bn1, conv2d_forward(&self.conv1, x), rv);
        let y = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let y = bn_relu_forward(&self.bn2, conv2d_forward(&self.conv2, y), rv);
                bn_forward(bn3, conv2d_forward(conv3, y), rv)
            }
            _ => bn_forward(&self.bn2, conv2d_forward(&self.conv2, y), rv),
        };
        relu(y + identity)
    }
}

/// A torchvision-layout ResNet / ResNeXt.
#[derive(Module, Debug)]
pub struct ResNet {
    /// The stem's 7x7 stride-2 convolution (no bias), 3 -> `base_width` channels.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// The stem's 3x3 stride-2 max-pool.
    pub maxpool: MaxPool2d,
    /// Stage 1: `base_width` planes, stride 1.
    pub layer1: Vec<Block>,
    /// Stage 2: `2 * base_width` planes, stride 2.
    pub layer2: Vec<Block>,
    /// Stage 3: `4 * base_width` planes, stride 2 (1 with `layer3_stride_1`).
    pub layer3: Vec<Block>,
    /// Stage 4: `8 * base_width` planes, stride 2.
    pub layer4: Vec<Block>,
    /// torchvision's classifier on the pooled features; `None` for a headless backbone.
    pub fc: Option<Linear>,
    /// How training batches update the stem's BatchNorm running variance; use
    /// [`ResNet::set_running_variance`] to switch every block's too.
    #[module(skip)]
    pub running_variance: RunningVariance,
}

impl ResNet {
    /// The stem: conv1, bn1, ReLU, max-pool (stride 4 overall).
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, base_width, H/4, W/4]`
    pub fn stem(&self, x: Tensor<4>) -> Tensor<4> {
        self.maxpool.forward(bn_relu_forward(
            &self.bn1,
            conv2d_forward(&self.conv1, x),
            self.running_variance,
        ))
    }

    /// Switches every BatchNorm's running-variance rule (see [`RunningVariance`]).
    pub fn set_running_variance(&mut self, rule: RunningVariance) {
        self.running_variance = rule;
        for block in [
            &mut self.layer1,
            &mut self.layer2,
            &mut self.layer3,
            &mut self.layer4,
        ]
        .into_iter()
        .flatten()
        {
            block.running_variance = rule;
        }
    }

    /// Runs stage `index` (1..=4) on `x`.
    pub fn stage(&self, index: usize, mut x: Tensor<4>) -> Tensor<4> {
        let blocks = match index {
            1 => &self.layer1,
            2 => &self.layer2,
            3 => &self.layer3,
            _ => &self.layer4,
        };
        for block in blocks {
            x = block.forward(x);
        }
        x
    }

    /// The final feature map, before pooling: what descriptor heads consume.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, 512 or 2048, H/32, W/32]` (`H/16` with layer3 stride 1)
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        (1..=4).fold(self.stem(x), |x, s| self.stage(s, x))
    }

    /// torchvision's classifier output: global average pool, then `fc` (if configured).
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, num_classes]` (or `[B, channels]` without `fc`)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let f = self.features(x);
        let [b, c, h, w] = f.dims();
        let pooled = f.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        match &self.fc {
            Some(fc) => fc.forward(pooled),
            None => pooled,
        }
    }
}

/// Where a ResNet is cut into a shared trunk and per-branch rest (AntiMetric's `share_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResNetStage {
    /// Trunk = conv1, bn1, ReLU, max-pool.
    MaxPool,
    /// Trunk = the stem and layer1.
    Layer1,
    /// Trunk = the stem, layer1 and layer2.
    Layer2,
    /// Trunk = the stem and layers 1-3; branches hold layer4.
    Layer3,
    /// Trunk = the whole network (branches are empty).
    Layer4,
}

impl std::str::FromStr for ResNetStage {
    type Err = BackboneError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "maxpool" => ResNetStage::MaxPool,
            "layer1" => ResNetStage::Layer1,
            "layer2" => ResNetStage::Layer2,
            "layer3" => ResNetStage::Layer3,
            "layer4" => ResNetStage::Layer4,
            other => {
                return Err(BackboneError::InvalidConfig(format!(
                    "unknown ResNet stage '{other}' (maxpool, layer1, layer2, layer3, layer4)"
                )));
            }
        })
    }
}

/// The shared part of a split ResNet: the stem and the stages up to the cut.
#[derive(Module, Debug)]
pub struct ResNetTrunk {
    /// The stem's convolution ([`ResNet::conv1`]).
    pub conv1: Conv2d,
    /// The stem's BatchNorm ([`ResNet::bn1`]).
    pub bn1: BatchNorm,
    /// The stem's max-pool ([`ResNet::maxpool`]).
    pub maxpool: MaxPool2d,
    /// The stages before the cut, in order (empty for a cut at [`ResNetStage::MaxPool`]).
    pub stages: Vec<Vec<Block>>,
    /// The stem BatchNorm's running-variance rule.
    #[module(skip)]
    pub running_variance: RunningVariance,
}

/// The per-branch part of a split ResNet: the stages after the cut.
#[derive(Module, Debug)]
pub struct ResNetBranch {
    /// The stages after the cut, in order (empty for a cut at [`ResNetStage::Layer4`]).
    pub stages: Vec<Vec<Block>>,
}

fn run_stages(stages: &[Vec<Block>], mut x: Tensor<4>) -> Tensor<4> {
    for block in stages.iter().flatten() {
        x = block.forward(x);
    }
    x
}

impl ResNetTrunk {
    /// Runs the stem and the trunk's stages.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, C, H/s, W/s]`, the feature map at the cut (`s` = 4 after
    ///   the max-pool, up to 32 after layer4)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.maxpool.forward(bn_relu_forward(
            &self.bn1,
            conv2d_forward(&self.conv1, x),
            self.running_variance,
        ));
        run_stages(&self.stages, x)
    }
}

/// The same BatchNorm with running statistics of its own: Burn's `RunningState` clones share
/// one buffer, so two ensemble branches cloned from one network would otherwise update each
/// other's statistics.
fn own_running_stats(bn: BatchNorm) -> BatchNorm {
    BatchNorm {
        running_mean: RunningState::new(bn.running_mean.value()),
        running_var: RunningState::new(bn.running_var.value()),
        ..bn
    }
}

impl Block {
    fn with_own_running_stats(self) -> Self {
        Block {
            bn1: own_running_stats(self.bn1),
            bn2: own_running_stats(self.bn2),
            bn3: self.bn3.map(own_running_stats),
            downsample: self.downsample.map(|d| Downsample {
                conv: d.conv,
                bn: own_running_stats(d.bn),
            }),
            ..self
        }
    }
}

impl ResNetBranch {
    /// Runs the stages after the cut on the trunk's output.
    ///
    /// # Shapes
    /// - `x`: the trunk's feature map -> `[B, 512 or 2048, H/32, W/32]` (`H/16` with layer3
    ///   stride 1), as [`ResNet::features`]
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        run_stages(&self.stages, x)
    }

    /// An independent copy for another ensemble branch: the same weights (AntiMetric clones
    /// one pretrained network per learner), new parameter ids and BatchNorm statistics of its
    /// own, so the copies train apart.
    pub fn fresh_copy(&self) -> Self {
        let renewed = crate::renew_param_ids(self.clone());
        ResNetBranch {
            stages: renewed
                .stages
                .into_iter()
                .map(|s| s.into_iter().map(Block::with_own_running_stats).collect())
                .collect(),
        }
    }
}

impl ResNet {
    /// Cuts the network after `stage`: `trunk.forward` then `branch.forward` equals
    /// [`ResNet::features`]. For an ensemble, give each branch its own parameters with
    /// [`ResNetBranch::fresh_copy`].
    pub fn split(self, stage: ResNetStage) -> (ResNetTrunk, ResNetBranch) {
        let cut = match stage {
            ResNetStage::MaxPool => 0,
            ResNetStage::Layer1 => 1,
            ResNetStage::Layer2 => 2,
            ResNetStage::Layer3 => 3,
            ResNetStage::Layer4 => 4,
        };
        let mut stages = vec![self.layer1, self.layer2, self.layer3, self.layer4];
        let rest = stages.split_off(cut);
        (
            ResNetTrunk {
                conv1: self.conv1,
                bn1: self.bn1,
                maxpool: self.maxpool,
                stages,
                running_variance: self.running_variance,
            },
            ResNetBranch { stages: rest },
        )
    }
}
