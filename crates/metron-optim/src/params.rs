//! Walking a module's float parameters together with their gradients.

use std::collections::HashSet;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// SamsungLabs' ASAM scales a parameter when its PyTorch name contains `weight`: convolution
/// and linear weights and the normalisation scales (PyTorch's `weight`, Burn's `gamma`), but
/// not biases, class tokens, position embeddings, GeM's `p` or proxies.
fn is_weight(name: &str) -> bool {
    name.contains("weight") || name == "gamma"
}

/// Ids of the parameters that count as weights in ASAM's sense ([`is_weight`]), recognised by
/// the field name a parameter is reached through.
pub(crate) fn weight_ids<M: Module>(module: &M) -> HashSet<ParamId> {
    param_paths(module)
        .into_iter()
        .filter(|(_, path)| path.rsplit('.').next().is_some_and(is_weight))
        .map(|(id, _)| id)
        .collect()
}

/// Every float parameter of `module` with its dotted path (`backbone.layer1.0.conv1.weight`;
/// the field names it is reached through, joined as Burn's optimizer records join them), in
/// visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<(ParamId, String)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(ParamId, String)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.push((param.id, self.path.join(".")));
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// `sqrt(sum_p ||f(p, w_p) * g_p||^2)` over every parameter that has a gradient, where
/// `f` gives the per-element scale T(w) (or `None` for 1).
pub(crate) fn scaled_grad_norm<M: Module>(
    module: &M,
    grads: &GradientsParams,
    scale: &dyn Fn(ParamId, Tensor<1>) -> Option<Tensor<1>>,
) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        scale: &'a dyn Fn(ParamId, Tensor<1>) -> Option<Tensor<1>>,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(g) = self.grads.get::<D>(param.id) else {
                return;
            };
            let g: Tensor<1> = g.flatten(0, D - 1);
            let w: Tensor<1> = param.val().inner().flatten(0, D - 1);
            let t = match (self.scale)(param.id, w) {
                Some(s) => s * g,
                None => g,
            };
            let sq = t.square().sum();
            self.total = Some(match self.total.take() {
                Some(acc) => acc + sq,
                None => sq,
            });
        }
    }
    let mut v = Norm {
        grads,
        scale,
        total: None,
    };
    module.visit(&mut v);
    v.total
        .map(|t| t.into_scalar::<f64>().sqrt())
        .unwrap_or(0.0)
}

/// Replaces parameters: `update(id, w, g)` gets each float parameter flattened (without
/// autodiff) and its flattened gradient from `grads` (if any), and returns the new flattened
/// value or `None` to keep it. Ids, shapes and `require_grad` are preserved.
pub(crate) fn map_params<M: Module>(
    module: M,
    grads: Option<&GradientsParams>,
    update: &mut dyn FnMut(ParamId, Tensor<1>, Option<Tensor<1>>) -> Option<Tensor<1>>,
) -> M {
    struct Map<'a> {
        grads: Option<&'a GradientsParams>,
        update: &'a mut dyn FnMut(ParamId, Tensor<1>, Option<Tensor<1>>) -> Option<Tensor<1>>,
    }
    impl ModuleMapper for Map<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            let flat: Tensor<1> = tensor.clone().inner().flatten(0, D - 1);
            let grad = self
                .grads
                .and_then(|g| g.get::<D>(id))
                .map(|g| g.flatten::<1>(0, D - 1));
            let tensor = match (self.update)(id, flat, grad) {
                Some(new) => {
                    let new: Tensor<D> = new.reshape(shape);
                    let new = if tensor.is_autodiff() {
                        new.autodiff()
                    } else {
                        new
                    };
                    if tensor.is_require_grad() {
                        new.require_grad()
                    } else {
                        new
                    }
                }
                None => tensor,
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    module.map(&mut Map { grads, update })
}
