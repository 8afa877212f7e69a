//! Loading PyTorch (torchvision / timm) state dicts into metron's backbones with burn-store.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use crate::{BackboneError, Result};

/// How strictly a checkpoint must match the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Every model parameter must come from the checkpoint and every checkpoint tensor must be
    /// used (BatchNorm's `num_batches_tracked` counters aside).
    #[default]
    Strict,
    /// Missing and unused keys are allowed (fine-tuning from a backbone-only checkpoint, or
    /// loading a backbone out of a bigger model). Shape mismatches are errors in both modes.
    Partial,
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub applied: usize,
    pub missing: Vec<String>,
    pub unused: Vec<String>,
}

/// Key renames from PyTorch names to metron's field names, as `(regex, replacement)` pairs.
pub type KeyMap<'a> = &'a [(&'a str, &'a str)];

/// torchvision ResNet keys: `nn.Sequential` indices of the shortcut become field names.
pub const TORCHVISION_RESNET_KEYS: KeyMap<'static> = &[
    (r"downsample\.0\.", "downsample.conv."),
    (r"downsample\.1\.", "downsample.bn."),
];

/// Loads a PyTorch checkpoint (`.pth`/`.pt` pickle, or `.safetensors`) into `model`, after
/// renaming keys with `keys`. Returns the model and what was applied; in
/// [`LoadMode::Strict`] any missing or unused key is an error that names it.
pub fn load_pytorch<M: Module + ModuleSnapshot>(
    mut model: M,
    path: impl AsRef<Path>,
    keys: KeyMap<'_>,
    mode: LoadMode,
) -> Result<(M, LoadReport)> {
    let path = path.as_ref();
    let err = |why: String| BackboneError::Checkpoint {
        path: path.to_path_buf(),
        why,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let mut remapper = KeyRemapper::new();
    for (from, to) in keys {
        remapper = remapper
            .add_pattern(*from, *to)
            .map_err(|e| BackboneError::InvalidConfig(format!("key pattern '{from}': {e}")))?;
    }
    let is_safetensors = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    let result = if is_safetensors {
        // A safetensors file made from a PyTorch state dict keeps PyTorch's conventions
        // (Linear weights [out, in], norm weight/bias): adapt them as the .pth reader does.
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .remap(remapper)
            .allow_partial(true)
            .validate(false);
        model
            .load_from(&mut store)
            .map_err(|e| err(e.to_string()))?
    } else {
        // Validation is ours: burn-store's report is a multi-line table, we name one key.
        let mut store = PytorchStore::from_file(path)
            .remap(remapper)
            .allow_partial(true)
            .validate(false);
        model
            .load_from(&mut store)
            .map_err(|e| err(e.to_string()))?
    };
    if let Some(e) = result.errors.first() {
        let why = match e {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => format!(
                "shape mismatch for '{key}': the model expects {:?}, the checkpoint has {:?}",
                expected.as_slice(),
                found.as_slice()
            ),
            other => format!("{other:?}"),
        };
        let more = match result.errors.len() {
            1 => String::new(),
            n => format!(" ({} more errors)", n - 1),
        };
        return Err(BackboneError::Mismatch {
            path: path.to_path_buf(),
            why: format!("{why}{more}"),
        });
    }
    let missing: Vec<String> = result.missing.iter().map(|(k, _)| k.clone()).collect();
    let unused: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    if mode == LoadMode::Strict {
        if let Some(first) = missing.first() {
            return Err(BackboneError::MissingKeys {
                path: PathBuf::from(path),
                count: missing.len(),
                first: first.clone(),
            });
        }
        if let Some(first) = unused.first() {
            return Err(BackboneError::UnusedKeys {
                path: PathBuf::from(path),
                count: unused.len(),
                first: first.clone(),
            });
        }
    }
    Ok((
        model,
        LoadReport {
            applied: result.applied.len(),
            missing,
            unused,
        },
    ))
}
