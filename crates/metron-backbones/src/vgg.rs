//! VGG-16 in torchvision's layout, with WGOL's split into stages f12, f3, f4 and f5 (no pool5).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use metron_ops::{batch_norm_relu_forward, conv2d_forward};

/// Output channels of the 13 convolutions; a max-pool follows convolutions 1, 3, 6, 9, 12.
const CHANNELS: [usize; 13] = [
    64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512,
];
/// Index of each convolution in torchvision's `features` Sequential.
const TORCH_INDEX: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
/// Convolutions after which a 2x2 max-pool runs (pool5, after the last one, is separate).
const POOL_AFTER: [usize; 4] = [1, 3, 6, 9];

/// torchvision key renames for [`Vgg16`] with `batch_norm` (`vgg16_bn`): convolution `k` is
/// `features.<i>` and its BatchNorm `features.<i + 1>` (each followed by a ReLU, the pools
/// between blocks), the classifier as in [`torchvision_vgg16_keys`].
pub fn torchvision_vgg16_bn_keys() -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut i = 0;
    for k in 0..CHANNELS.len() {
        keys.push((format!(r"^features\.{i}\."), format!("convs.{k}.")));
        keys.push((format!(r"^features\.{}\.", i + 1), format!("norms.{k}.")));
        i += 3;
        if POOL_AFTER.contains(&k) || k == CHANNELS.len() - 1 {
            i += 1;
        }
    }
    for (i, name) in [(0, "fc1"), (3, "fc2"), (6, "fc3")] {
        keys.push((format!(r"^classifier\.{i}\."), format!("{name}.")));
    }
    keys
}

/// torchvision key renames for [`Vgg16`]: `features.<i>.` -> `convs.<k>.`,
/// `classifier.0/3/6.` -> `fc1/fc2/fc3.`.
pub fn torchvision_vgg16_keys() -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = TORCH_INDEX
        .iter()
        .enumerate()
        .map(|(k, i)| (format!(r"^features\.{i}\."), format!("convs.{k}.")))
        .collect();
    for (i, name) in [(0, "fc1"), (3, "fc2"), (6, "fc3")] {
        keys.push((format!(r"^classifier\.{i}\."), format!("{name}.")));
    }
    keys
}

/// Configuration of [`Vgg16`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vgg16Config {
    /// torchvision's classifier (`Linear(25088, 4096)`, `Linear(4096, 4096)`,
    /// `Linear(4096, classes)` on a 7x7 adaptive average pool); `None` for the convolutional
    /// trunk only (what WGOL uses).
    pub num_classes: Option<usize>,
    /// Every convolution's output channels divided by this (1 = VGG-16 itself). A divisor
    /// of 8 gives a 64-channel conv5 that trains on a laptop CPU; torchvision weights load
    /// only at 1.
    pub width_divisor: usize,
    /// A BatchNorm after every convolution (torchvision's `vgg16_bn`). A VGG-16 without it
    /// barely leaves chance level when trained from scratch; the original WGOL fine-tunes
    /// ImageNet weights of the plain network.
    pub batch_norm: bool,
}

impl Default for Vgg16Config {
    /// The full-width convolutional trunk without classifier (what WGOL builds on).
    fn default() -> Self {
        Vgg16Config {
            num_classes: None,
            width_divisor: 1,
            batch_norm: false,
        }
    }
}

impl Vgg16Config {
    fn channels(&self, full: usize) -> usize {
        (full / self.width_divisor.max(1)).max(1)
    }

    /// Channels of the last stages (f4, f5): 512 / `width_divisor`.
    pub fn feature_channels(&self) -> usize {
        self.channels(512)
    }

    /// Builds the network initialised as torchvision's `vgg16()` convolutions (Kaiming normal
    /// over the fan-out, zero biases; the classifier keeps Burn's default); ImageNet weights
    /// load over it (see [`crate::load_pytorch`] with [`torchvision_vgg16_keys`]).
    pub fn init(&self, device: &Device) -> Vgg16 {
        let mut cin = 3;
        let convs = CHANNELS
            .iter()
            .map(|&full| {
                let cout = self.channels(full);
                // torchvision's `vgg16()` initialisation: Kaiming normal over the fan-out,
                // zero biases. (Burn's default, PyTorch's bare `Conv2d` default, shrinks the
                // signal ~2.4x per layer: a VGG-16 trained from scratch with it learns
                // nothing.)
                let mut c = Conv2dConfig::new([cin, cout], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(Initializer::KaimingNormal {
                        gain: 2f64.sqrt(),
                        fan_out_only: true,
                    })
                    .init(device);
                c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
                cin = cout;
                c
            })
            .collect();
        let norms = if self.batch_norm {
            CHANNELS
                .iter()
                .map(|&full| BatchNormConfig::new(self.channels(full)).init(device))
                .collect()
        } else {
            Vec::new()
        };
        let head = self.num_classes.map(|c| {
            (
                LinearConfig::new(self.feature_channels() * 7 * 7, 4096).init(device),
                LinearConfig::new(4096, 4096).init(device),
                LinearConfig::new(4096, c).init(device),
            )
        });
        let (fc1, fc2, fc3) = match head {
            Some((a, b, c)) => (Some(a), Some(b), Some(c)),
            None => (None, None, None),
        };
        Vgg16 {
            convs,
            norms,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            fc1,
            fc2,
            fc3,
        }
    }
}

/// VGG-16 (configuration D, no BatchNorm).
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// The 13 3x3 convolutions (padding 1, with bias), each followed by a ReLU.
    pub convs: Vec<Conv2d>,
    /// The BatchNorm after each convolution (`vgg16_bn`); empty for VGG-16 itself.
    pub norms: Vec<BatchNorm>,
    /// The 2x2 stride-2 max-pool after each block of convolutions.
    pub pool: MaxPool2d,
    /// The 7x7 adaptive average pool in front of the classifier.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier layer 1, `Linear(25088, 4096)`; `None` without classifier.
    pub fc1: Option<Linear>,
    /// Classifier layer 2, `Linear(4096, 4096)`; `None` without classifier.
    pub fc2: Option<Linear>,
    /// Classifier output, `Linear(4096, num_classes)`; `None` without classifier.
    pub fc3: Option<Linear>,
}

/// WGOL's stage outputs.
#[derive(Debug, Clone)]
pub struct VggStages {
    /// After pool2: `[B, 128, H/4, W/4]`.
    pub f12: Tensor<4>,
    /// After pool3: `[B, 256, H/8, W/8]`.
    pub f3: Tensor<4>,
    /// After pool4: `[B, 512, H/16, W/16]`.
    pub f4: Tensor<4>,
    /// conv5_3 + ReLU, pool5 dropped: `[B, 512, H/16, W/16]`.
    pub f5: Tensor<4>,
}

impl Vgg16 {
    fn run(&self, range: std::ops::Range<usize>, mut x: Tensor<4>) -> Tensor<4> {
        for k in range {
            let y = conv2d_forward(&self.convs[k], x);
            x = match self.norms.get(k) {
                Some(bn) => batch_norm_relu_forward(bn, y),
                None => relu(y),
            };
            if POOL_AFTER.contains(&k) {
                x = self.pool.forward(x);
            }
        }
        x
    }

    /// WGOL's split (`conv1_2` = `features[0:10]`, `conv3` = `[10:17]`, `conv4` = `[17:24]`,
    /// `conv5` = `[24:30]`).
    pub fn stages(&self, x: Tensor<4>) -> VggStages {
        let f12 = self.run(0..4, x);
        let f3 = self.run(4..7, f12.clone());
        let f4 = self.run(7..10, f3.clone());
        let f5 = self.run(10..13, f4.clone());
        VggStages { f12, f3, f4, f5 }
    }

    /// torchvision's `features` output (after pool5).
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, 512, H/32, W/32]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool.forward(self.run(0..13, x))
    }

    /// torchvision's classifier output (dropout is the identity at inference).
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, num_classes]`, or the flattened 7x7 pool without head
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let pooled = self.avgpool.forward(self.features(x));
        let [b, c, h, w] = pooled.dims();
        let mut y = pooled.reshape([b, c * h * w]);
        if let (Some(fc1), Some(fc2), Some(fc3)) = (&self.fc1, &self.fc2, &self.fc3) {
            y = fc3.forward(relu(fc2.forward(relu(fc1.forward(y)))));
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg16_bn_keys_follow_torchvisions_features_layout() {
        // torchvision's vgg16_bn: conv, bn, relu per convolution; a pool after blocks.
        let convs: Vec<String> = torchvision_vgg16_bn_keys()
            .into_iter()
            .filter(|(_, to)| to.starts_with("convs."))
            .map(|(from, _)| from)
            .collect();
        let want = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];
        let got: Vec<usize> = convs
            .iter()
            .map(|f| {
                f.trim_start_matches(r"^features\.")
                    .trim_end_matches(r"\.")
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, want);
        assert!(
            torchvision_vgg16_bn_keys().contains(&(r"^features\.41\.".into(), "norms.12.".into()))
        );
    }
}
