//! Multiply-accumulates of a backbone's forward pass, counted layer by layer from its
//! architecture: convolutions, linear layers and attention's two batched matrix products.
//! Normalisation, activations and pooling are left out, the convention of torchvision's and
//! fvcore's counts (they are memory-bound and a few percent of the arithmetic).

use crate::job::Model;

/// The forward pass's multiply-accumulates for one image of `input` (height, width).
pub fn forward_macs(model: Model, input: [usize; 2]) -> f64 {
    match model {
        Model::Resnet50 => resnet_macs(input, 1, 64),
        Model::Resnext50 => resnet_macs(input, 32, 4),
        Model::Vgg16 => vgg16_macs(input),
        Model::VitS16 => vit_macs(input, 384, 12, true, 4),
        Model::VitB16 => vit_macs(input, 768, 12, true, 4),
        Model::SaigS => saig_macs(input, 384, 11),
    }
}

/// Output side of a convolution or pooling window.
fn out_side(side: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (side + 2 * padding - kernel) / stride + 1
}

/// One convolution on a `[c_in, h, w]` input; returns its MACs and output size.
fn conv(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    hw: [usize; 2],
) -> (f64, [usize; 2]) {
    let padding = kernel / 2;
    let out = hw.map(|s| out_side(s, kernel, stride, padding));
    let macs = (c_out * (c_in / groups) * kernel * kernel) as f64 * (out[0] * out[1]) as f64;
    (macs, out)
}

/// torchvision's ResNet-50 family (bottleneck blocks, stride on the 3x3 convolution) through
/// layer4. `groups` x `width_per_group` is the first stage's 3x3 width (1 x 64 for ResNet-50,
/// 32 x 4 for ResNeXt-50 32x4d).
fn resnet_macs(input: [usize; 2], groups: usize, width_per_group: usize) -> f64 {
    let (mut total, hw) = conv(3, 64, 7, 2, 1, input);
    let mut hw = hw.map(|s| out_side(s, 3, 2, 1));
    let mut c_in = 64;
    for (stage, blocks) in [3usize, 4, 6, 3].into_iter().enumerate() {
        let planes = 64 << stage;
        let width = planes * width_per_group * groups / 64;
        let c_out = planes * 4;
        for block in 0..blocks {
            let stride = if block == 0 && stage > 0 { 2 } else { 1 };
            let (a, _) = conv(c_in, width, 1, 1, 1, hw);
            let (b, out) = conv(width, width, 3, stride, groups, hw);
            let (c, _) = conv(width, c_out, 1, 1, 1, out);
            total += a + b + c;
            if block == 0 {
                total += (c_in * c_out) as f64 * (out[0] * out[1]) as f64;
            }
            c_in = c_out;
            hw = out;
        }
    }
    total
}

/// VGG-16's 13 3x3 convolutions, pooled after 2, 4, 7, 10 and 13.
fn vgg16_macs(input: [usize; 2]) -> f64 {
    const STAGES: [(usize, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];
    let (mut total, mut hw, mut c_in) = (0.0, input, 3);
    for (c_out, convs) in STAGES {
        for _ in 0..convs {
            let (m, out) = conv(c_in, c_out, 3, 1, 1, hw);
            total += m;
            hw = out;
            c_in = c_out;
        }
        hw = hw.map(|s| s / 2);
    }
    total
}

/// One pre-norm transformer block on `tokens` tokens of width `d`: QKV, the two attention
/// products, the output projection and (when `mlp_ratio > 0`) the MLP.
fn block_macs(tokens: usize, d: usize, mlp_ratio: usize) -> f64 {
    let (n, d) = (tokens as f64, d as f64);
    let qkv = n * d * 3.0 * d;
    let attention = 2.0 * n * n * d;
    let proj = n * d * d;
    let mlp = 2.0 * n * d * (mlp_ratio as f64) * d;
    qkv + attention + proj + mlp
}

/// ViT with 16 x 16 patches (and a CLS token when `cls`).
fn vit_macs(input: [usize; 2], d: usize, depth: usize, cls: bool, mlp_ratio: usize) -> f64 {
    let patches = (input[0] / 16) * (input[1] / 16);
    let embed = (patches * d * 3 * 16 * 16) as f64;
    let tokens = patches + usize::from(cls);
    embed + depth as f64 * block_macs(tokens, d, mlp_ratio)
}

/// SAIG: six 3x3 convolution stem layers (/16 in all), a 1x1 projection to `d`, then
/// attention-only blocks (no MLP) on the patch tokens (no CLS token).
fn saig_macs(input: [usize; 2], d: usize, depth: usize) -> f64 {
    const STEM: [(usize, usize); 6] = [(64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)];
    let (mut total, mut hw, mut c_in) = (0.0, input, 3);
    for (c_out, stride) in STEM {
        let (m, out) = conv(c_in, c_out, 3, stride, 1, hw);
        total += m;
        hw = out;
        c_in = c_out;
    }
    let tokens = hw[0] * hw[1];
    total += (c_in * d * tokens) as f64;
    total + depth as f64 * block_macs(tokens, d, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchvision's model tables give GMACs (as "GFLOPS") at 224 x 224 with the classifier;
    /// the trunks here have none, so the classifier's MACs are taken off.
    fn close(got: f64, published_gmacs: f64, classifier_macs: f64) {
        let want = published_gmacs * 1e9 - classifier_macs;
        assert!(
            (got - want).abs() / want < 0.005,
            "counted {got:.4e} MACs, published {want:.4e}"
        );
    }

    #[test]
    fn counts_match_torchvisions_published_figures() {
        close(
            forward_macs(Model::Resnet50, [224, 224]),
            4.09,
            2048.0 * 1000.0,
        );
        close(
            forward_macs(Model::Resnext50, [224, 224]),
            4.23,
            2048.0 * 1000.0,
        );
        let vgg_classifier = 25088.0 * 4096.0 + 4096.0 * 4096.0 + 4096.0 * 1000.0;
        close(
            forward_macs(Model::Vgg16, [224, 224]),
            15.47,
            vgg_classifier,
        );
        close(
            forward_macs(Model::VitB16, [224, 224]),
            17.56,
            768.0 * 1000.0,
        );
    }

    #[test]
    fn saig_counts_its_stem_and_attention_by_hand() {
        // At 32 x 32: stem outputs 16, 8, 8, 4, 4, 2 pixels square; 4 tokens of 384.
        let stem = [
            (3, 64, 16 * 16),
            (64, 128, 8 * 8),
            (128, 128, 8 * 8),
            (128, 256, 4 * 4),
            (256, 256, 4 * 4),
            (256, 512, 2 * 2),
        ]
        .iter()
        .map(|&(i, o, px)| (i * o * 9 * px) as f64)
        .sum::<f64>();
        let proj = (512 * 384 * 4) as f64;
        let block = (4 * 384 * 1152 + 2 * 4 * 4 * 384 + 4 * 384 * 384) as f64;
        assert_eq!(
            forward_macs(Model::SaigS, [32, 32]),
            stem + proj + 11.0 * block
        );
    }

    #[test]
    fn cost_grows_with_the_pixel_count() {
        let small = forward_macs(Model::Resnet50, [224, 224]);
        let big = forward_macs(Model::Resnet50, [448, 448]);
        assert!((big / small - 4.0).abs() < 0.01, "{}", big / small);
    }
}
