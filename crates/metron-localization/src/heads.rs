//! The convolutional map heads of WGOL's VGG-16 (spec s. 2.1): `cls` gives one map per class,
//! `sos` one class-agnostic object map.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use metron_ops::conv2d_forward;

/// Configuration of a [`MapHead`]: `Conv3x3(in, hidden) -> ReLU -> Conv3x3(hidden, hidden)
/// -> ReLU -> Conv1x1(hidden, outputs)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapHeadConfig {
    /// Input channels (512, VGG-16's conv5).
    pub in_channels: usize,
    /// Hidden channels (1024 in the original, the "fc6/fc7" convolutions).
    pub hidden: usize,
    /// Output maps: the number of classes for `cls`, 1 for `sos`.
    pub outputs: usize,
}

impl MapHeadConfig {
    /// The original's head over `in_channels` with 1024 hidden channels.
    pub fn new(in_channels: usize, outputs: usize) -> Self {
        MapHeadConfig {
            in_channels,
            hidden: 1024,
            outputs,
        }
    }

    /// The head with the original's initialisation: Xavier-uniform weights, zero biases.
    pub fn init(&self, device: &Device) -> MapHead {
        let conv = |cin: usize, cout: usize, k: usize| {
            let pad = k / 2;
            let mut c = Conv2dConfig::new([cin, cout], [k, k])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device);
            c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
            c
        };
        MapHead {
            conv1: conv(self.in_channels, self.hidden, 3),
            conv2: conv(self.hidden, self.hidden, 3),
            conv3: conv(self.hidden, self.outputs, 1),
        }
    }
}

/// A fully convolutional head that turns features into maps.
#[derive(Module, Debug)]
pub struct MapHead {
    /// 3x3, `in -> hidden`, padding 1.
    pub conv1: Conv2d,
    /// 3x3, `hidden -> hidden`, padding 1.
    pub conv2: Conv2d,
    /// 1x1, `hidden -> outputs`.
    pub conv3: Conv2d,
}

impl MapHead {
    /// # Shapes
    /// - `x`: `[B, in, h, w]` -> `[B, outputs, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(conv2d_forward(&self.conv1, x));
        let x = relu(conv2d_forward(&self.conv2, x));
        conv2d_forward(&self.conv3, x)
    }
}

/// Class scores from a class map: the spatial mean (global average pooling).
///
/// # Shapes
/// - `maps`: `[B, K, h, w]` -> `[B, K]`
pub fn class_scores(maps: Tensor<4>) -> Tensor<2> {
    let [b, k, h, w] = maps.dims();
    maps.reshape([b, k, h * w]).mean_dim(2).reshape([b, k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_initialisation() {
        let device = Device::flex();
        let config = MapHeadConfig {
            in_channels: 6,
            hidden: 10,
            outputs: 3,
        };
        let head =
            metron_core::seeded_init(&device, 1, || Ok::<_, ()>(config.init(&device))).unwrap();
        let x = Tensor::<4>::ones([2, 6, 5, 4], &device);
        assert_eq!(head.forward(x).dims(), [2, 3, 5, 4]);
        // Xavier-uniform bound sqrt(6 / (fan_in + fan_out)) = sqrt(6 / (6*9 + 10*9)).
        let bound = (6.0f32 / (54.0 + 90.0)).sqrt();
        let w = head
            .conv1
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(w.iter().any(|v| v.abs() > bound / 2.0));
        let b = head
            .conv3
            .bias
            .unwrap()
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(b, vec![0.0; 3]);
        let maps = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(vec![1.0f32, 2.0, 3.0, 6.0], [1, 1, 2, 2]),
            &device,
        );
        let s = class_scores(maps)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(s, vec![3.0]);
    }
}
