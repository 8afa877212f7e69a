//! Backbones by name, each with its default preprocessing, as timm's registry.

use burn::module::Module;
use burn::tensor::Device;

use crate::{
    BackboneError, KeyMap, ResNet, ResNetConfig, Result, SAIG_ORIGINAL_KEYS, Saig, SaigConfig,
    TORCHVISION_RESNET_KEYS, Vgg16, Vgg16Config, VisionTransformer, VitConfig,
    torchvision_vgg16_keys,
};

/// How images are prepared for a backbone: resize / crop to `image_size`, scale to [0, 1],
/// then `(x - mean) / std` per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Height and width.
    pub image_size: [usize; 2],
    /// Per-channel (RGB) mean subtracted from the [0, 1]-scaled pixels.
    pub mean: [f32; 3],
    /// Per-channel (RGB) standard deviation the centred pixels are divided by.
    pub std: [f32; 3],
}

const IMAGENET_224: Preprocessing = Preprocessing {
    image_size: [224, 224],
    mean: metron_core::IMAGENET_MEAN,
    std: metron_core::IMAGENET_STD,
};

/// SAIG's statistics (mean = std = 0.5) at the satellite size; CVUSA's ground images are
/// 128 x 512: build SAIG with [`SaigConfig`] for those.
const SAIG_256: Preprocessing = Preprocessing {
    image_size: [256, 256],
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// How an entry builds its network.
#[derive(Debug, Clone, Copy)]
pub enum Architecture {
    /// A torchvision ResNet / ResNeXt (headless: feature maps).
    ResNet(fn() -> ResNetConfig),
    /// torchvision's VGG-16 trunk.
    Vgg16,
    /// A ViT at a square input size.
    Vit(fn(usize) -> VitConfig),
    /// A SAIG network at an input size.
    Saig(fn([usize; 2]) -> SaigConfig),
}

/// One backbone: everything a system needs to build it, feed it and load its weights.
#[derive(Debug, Clone, Copy)]
pub struct BackboneEntry {
    /// The registry name [`build`] takes, as timm spells it (`"resnet50"`, `"vit_small_patch16"`).
    pub name: &'static str,
    /// The family and configuration that builds the network.
    pub architecture: Architecture,
    /// The default input size and normalisation.
    pub preprocessing: Preprocessing,
    /// Renames from the published checkpoints' keys (torchvision, timm / DINO, SAIG) to
    /// metron's, for [`crate::load_pytorch`].
    pub key_map: fn() -> Vec<(String, String)>,
    /// Channels of the features (feature maps for CNNs, tokens for transformers) at the
    /// standard width.
    pub out_channels: usize,
    /// Whether the width can be narrowed (`base_width`: the ResNets).
    pub width_option: bool,
}

fn owned(keys: KeyMap<'_>) -> Vec<(String, String)> {
    keys.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn torchvision_resnet_keys() -> Vec<(String, String)> {
    owned(TORCHVISION_RESNET_KEYS)
}

/// timm / DINO ViTs use metron's names already.
fn no_renames() -> Vec<(String, String)> {
    Vec::new()
}

fn saig_keys() -> Vec<(String, String)> {
    owned(SAIG_ORIGINAL_KEYS)
}

const fn resnet(name: &'static str, config: fn() -> ResNetConfig, out: usize) -> BackboneEntry {
    BackboneEntry {
        name,
        architecture: Architecture::ResNet(config),
        preprocessing: IMAGENET_224,
        key_map: torchvision_resnet_keys,
        out_channels: out,
        width_option: true,
    }
}

/// Every backbone metron builds by name, as timm's registry.
pub const BACKBONES: [BackboneEntry; 9] = [
    resnet("resnet18", ResNetConfig::resnet18, 512),
    resnet("resnet34", ResNetConfig::resnet34, 512),
    resnet("resnet50", ResNetConfig::resnet50, 2048),
    resnet("resnext50_32x4d", ResNetConfig::resnext50_32x4d, 2048),
    BackboneEntry {
        name: "vgg16",
        architecture: Architecture::Vgg16,
        preprocessing: IMAGENET_224,
        key_map: torchvision_vgg16_keys,
        out_channels: 512,
        width_option: false,
    },
    BackboneEntry {
        name: "vit_small_patch16",
        architecture: Architecture::Vit(VitConfig::vit_small_patch16),
        preprocessing: IMAGENET_224,
        key_map: no_renames,
        out_channels: 384,
        width_option: false,
    },
    BackboneEntry {
        name: "vit_base_patch16",
        architecture: Architecture::Vit(VitConfig::vit_base_patch16),
        preprocessing: IMAGENET_224,
        key_map: no_renames,
        out_channels: 768,
        width_option: false,
    },
    BackboneEntry {
        name: "saig_s",
        architecture: Architecture::Saig(SaigConfig::saig_s),
        preprocessing: SAIG_256,
        key_map: saig_keys,
        out_channels: 384,
        width_option: false,
    },
    BackboneEntry {
        name: "saig_d",
        architecture: Architecture::Saig(SaigConfig::saig_d),
        preprocessing: SAIG_256,
        key_map: saig_keys,
        out_channels: 384,
        width_option: false,
    },
];

/// The names [`build`] knows, in [`BACKBONES`] order.
pub const BACKBONE_NAMES: [&str; 9] = {
    let mut names = [""; 9];
    let mut i = 0;
    while i < 9 {
        names[i] = BACKBONES[i].name;
        i += 1;
    }
    names
};

/// The entry of `name`.
pub fn backbone_entry(name: &str) -> Result<&'static BackboneEntry> {
    BACKBONES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| unknown(name))
}

/// A built backbone of any family.
// One value per model, built once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    /// A headless ResNet / ResNeXt returning feature maps.
    ResNet(ResNet),
    /// VGG-16's convolutional trunk.
    Vgg16(Vgg16),
    /// A Vision Transformer returning tokens.
    Vit(VisionTransformer),
    /// A SAIG-S / SAIG-D network returning tokens.
    Saig(Saig),
}

fn unknown(name: &str) -> BackboneError {
    BackboneError::UnknownName {
        name: name.to_string(),
        known: BACKBONE_NAMES.join(", "),
    }
}

/// The default preprocessing of `name`: ImageNet statistics at 224 x 224 for the CNNs and
/// DINO's ViTs; SAIG's mean = std = 0.5 at the satellite size 256 x 256.
pub fn preprocessing(name: &str) -> Result<Preprocessing> {
    Ok(backbone_entry(name)?.preprocessing)
}

/// Builds `name` for its default input size (random weights; load a checkpoint next). CNNs are
/// headless: they return feature maps.
pub fn build(name: &str, device: &Device) -> Result<Backbone> {
    let entry = backbone_entry(name)?;
    let size = entry.preprocessing.image_size;
    Ok(match entry.architecture {
        Architecture::ResNet(config) => Backbone::ResNet(config().init(device)?),
        Architecture::Vgg16 => Backbone::Vgg16(Vgg16Config::default().init(device)),
        Architecture::Vit(config) => Backbone::Vit(config(size[0]).init(device)?),
        Architecture::Saig(config) => Backbone::Saig(config(size).init(device)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is consistent with the configurations it builds, and every key map is a set
    /// of valid patterns.
    #[test]
    fn entries_agree_with_their_architectures() {
        for e in &BACKBONES {
            let out = match e.architecture {
                Architecture::ResNet(config) => config().out_channels(),
                Architecture::Vgg16 => 512,
                Architecture::Vit(config) => config(e.preprocessing.image_size[0]).embed_dim,
                Architecture::Saig(config) => config(e.preprocessing.image_size).embed_dim,
            };
            assert_eq!(out, e.out_channels, "{}", e.name);
            assert_eq!(
                e.width_option,
                matches!(e.architecture, Architecture::ResNet(_)),
                "{}",
                e.name
            );
            let mut remapper = burn::store::KeyRemapper::new();
            for (from, to) in (e.key_map)() {
                remapper = remapper
                    .add_pattern(&from, &to)
                    .unwrap_or_else(|err| panic!("{}: '{from}': {err}", e.name));
            }
        }
        assert_eq!(BACKBONE_NAMES[2], "resnet50");
        assert_eq!(
            backbone_entry("saig_s").unwrap().preprocessing.mean,
            [0.5; 3]
        );
        assert_eq!(
            preprocessing("resnet50").unwrap().mean,
            metron_core::IMAGENET_MEAN
        );
        assert!(backbone_entry("resnet51").is_err());
    }
}
