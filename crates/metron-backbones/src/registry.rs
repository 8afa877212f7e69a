//! Backbones by name, each with its default preprocessing, as timm's registry.

use burn::module::Module;
use burn::tensor::Device;

use crate::{
    BackboneError, ResNet, ResNetConfig, Result, Saig, SaigConfig, Vgg16, Vgg16Config,
    VisionTransformer, VitConfig,
};

/// How images are prepared for a backbone: resize / crop to `image_size`, scale to [0, 1],
/// then `(x - mean) / std` per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Height and width.
    pub image_size: [usize; 2],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

const IMAGENET: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

/// The names [`build`] knows.
pub const BACKBONE_NAMES: [&str; 9] = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext50_32x4d",
    "vgg16",
    "vit_small_patch16",
    "vit_base_patch16",
    "saig_s",
    "saig_d",
];

/// A built backbone of any family.
// One value per model, built once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    ResNet(ResNet),
    Vgg16(Vgg16),
    Vit(VisionTransformer),
    Saig(Saig),
}

fn unknown(name: &str) -> BackboneError {
    BackboneError::UnknownName {
        name: name.to_string(),
        known: BACKBONE_NAMES.join(", "),
    }
}

/// The default preprocessing of `name`: ImageNet statistics at 224 x 224 for the CNNs and
/// DINO's ViTs; SAIG's mean = std = 0.5 at the satellite size 256 x 256 (CVUSA's ground
/// images are 128 x 512: build SAIG with [`SaigConfig`] for those).
pub fn preprocessing(name: &str) -> Result<Preprocessing> {
    let (mean, std) = IMAGENET;
    let imagenet = Preprocessing {
        image_size: [224, 224],
        mean,
        std,
    };
    match name {
        n if n.starts_with("saig_") && BACKBONE_NAMES.contains(&n) => Ok(Preprocessing {
            image_size: [256, 256],
            mean: [0.5; 3],
            std: [0.5; 3],
        }),
        n if BACKBONE_NAMES.contains(&n) => Ok(imagenet),
        other => Err(unknown(other)),
    }
}

/// Builds `name` for its default input size (random weights; load a checkpoint next). CNNs are
/// headless: they return feature maps.
pub fn build(name: &str, device: &Device) -> Result<Backbone> {
    let size = preprocessing(name)?.image_size;
    Ok(match name {
        "resnet18" => Backbone::ResNet(ResNetConfig::resnet18().init(device)?),
        "resnet34" => Backbone::ResNet(ResNetConfig::resnet34().init(device)?),
        "resnet50" => Backbone::ResNet(ResNetConfig::resnet50().init(device)?),
        "resnext50_32x4d" => Backbone::ResNet(ResNetConfig::resnext50_32x4d().init(device)?),
        "vgg16" => Backbone::Vgg16(Vgg16Config { num_classes: None }.init(device)),
        "vit_small_patch16" => Backbone::Vit(VitConfig::vit_small_patch16(size[0]).init(device)?),
        "vit_base_patch16" => Backbone::Vit(VitConfig::vit_base_patch16(size[0]).init(device)?),
        "saig_s" => Backbone::Saig(SaigConfig::saig_s(size).init(device)?),
        "saig_d" => Backbone::Saig(SaigConfig::saig_d(size).init(device)?),
        other => return Err(unknown(other)),
    })
}
