//! Backbones for metric learning on Burn, in the layouts of torchvision and timm so that their
//! state dicts load unchanged (up to documented key renames) and give the same outputs.

#![warn(missing_docs)]

mod error;
mod load;
mod registry;
mod resnet;
mod saig;
mod vgg;
mod vit;

pub use error::{BackboneError, Result};
pub use load::{
    KeyMap, LoadMode, LoadReport, TORCHVISION_RESNET_KEYS, load_pytorch, load_pytorch_any_layout,
    load_pytorch_entry,
};
pub use registry::{
    Architecture, BACKBONE_NAMES, BACKBONES, Backbone, BackboneEntry, Preprocessing,
    backbone_entry, build, preprocessing,
};
pub use resnet::{
    Block, BlockKind, Downsample, ResNet, ResNetBranch, ResNetConfig, ResNetStage, ResNetTrunk,
};
pub use saig::{SAIG_ORIGINAL_KEYS, Saig, SaigBlock, SaigConfig, StemLayer};
pub use vgg::{Vgg16, Vgg16Config, VggStages, torchvision_vgg16_bn_keys, torchvision_vgg16_keys};
pub use vit::{
    Attention, DropPath, Mlp, PatchEmbed, PositionResize, VisionTransformer, VitBlock, VitConfig,
    bicubic_matrix, bicubic_resize,
};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{FloatDType, Tensor};

/// `module` with new ids for its trainable parameters (values unchanged), each a new autodiff
/// leaf: a clone of a parameter tensor is the same node of the autodiff graph, so two copies
/// used in one graph would otherwise both receive the sum of their gradients. Not enough on its
/// own for modules with BatchNorm: Burn's `RunningState` clones share their storage (see
/// [`ResNetBranch::fresh_copy`]).
pub(crate) fn renew_param_ids<M: Module>(module: M) -> M {
    struct Renew;
    impl ModuleMapper for Renew {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, tensor, mapper) = param.consume();
            // `detach` makes a new node and keeps `require_grad`.
            Param::from_mapped_value(burn::module::ParamId::new(), tensor.detach(), mapper)
        }
    }
    module.map(&mut Renew)
}

/// The module with every float parameter and buffer converted to `dtype` (e.g. f64 for a
/// reference-precision run of a network loaded from f32 weights).
pub fn with_float_dtype<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    module.map(&mut Cast(dtype))
}

/// Number of trainable scalars, counted as PyTorch's `sum(p.numel() for p in
/// model.parameters())`: BatchNorm running statistics are buffers, not parameters. (Burn's
/// `num_params` counts them too.)
pub fn parameter_count<M: Module>(module: &M) -> usize {
    struct Count {
        path: Vec<String>,
        total: usize,
    }
    impl ModuleVisitor for Count {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let buffer = self
                .path
                .last()
                .is_some_and(|n| n == "running_mean" || n == "running_var");
            if !buffer {
                self.total += param.shape().num_elements();
            }
        }
    }
    let mut c = Count {
        path: Vec::new(),
        total: 0,
    };
    module.visit(&mut c);
    c.total
}
