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
    /// [`LoadMode::Strict`], except that checkpoint tensors whose key (after renaming) starts
    /// with one of these prefixes may go unused: a classifier the backbone does not have, as
    /// `&["head."]` for SAIG's original checkpoints. They are still listed in
    /// [`LoadReport::unused`]; every other unused key, and every missing one, is an error.
    StrictIgnoringUnused(&'static [&'static str]),
    /// Missing and unused keys are allowed (fine-tuning from a backbone-only checkpoint, or
    /// loading a backbone out of a bigger model). Shape mismatches are errors in every mode.
    Partial,
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// How many checkpoint tensors were loaded into the model.
    pub applied: usize,
    /// Model parameters the checkpoint did not provide (empty unless [`LoadMode::Partial`]).
    pub missing: Vec<String>,
    /// Checkpoint tensors, after renaming, that match no model parameter (BatchNorm's
    /// `num_batches_tracked` counters left out).
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
    model: M,
    path: impl AsRef<Path>,
    keys: KeyMap<'_>,
    mode: LoadMode,
) -> Result<(M, LoadReport)> {
    load(model, path.as_ref(), None, keys, mode)
}

/// [`load_pytorch`] for a `.pth` checkpoint that nests its state dict under `entry` of a
/// dictionary, as training scripts save it next to the optimizer state and the epoch (timm's
/// `"state_dict"`, which SAIG's pretrained checkpoints use; `"model"`). The other entries are
/// not read.
pub fn load_pytorch_entry<M: Module + ModuleSnapshot>(
    model: M,
    path: impl AsRef<Path>,
    entry: &str,
    keys: KeyMap<'_>,
    mode: LoadMode,
) -> Result<(M, LoadReport)> {
    load(model, path.as_ref(), Some(entry), keys, mode)
}

/// [`load_pytorch`] for a checkpoint in any of the layouts training scripts save: a flat
/// state dict, one nested under `"state_dict"`, `"model"` or DINO's `"teacher"` (`.pth` only), and keys with
/// DataParallel's `module.` prefix. The first layout that loads under `mode` wins; when none
/// does, the error is the flat layout's (which names the first missing or unused key), so a
/// file of another architecture (timm names for a torchvision model, say) is never taken as
/// "0 tensors loaded".
pub fn load_pytorch_any_layout<M: Module + ModuleSnapshot + Clone>(
    model: M,
    path: impl AsRef<Path>,
    keys: KeyMap<'_>,
    mode: LoadMode,
) -> Result<(M, LoadReport)> {
    let path = path.as_ref();
    let mut with_prefix: Vec<(&str, &str)> = vec![(r"^module\.", "")];
    with_prefix.extend_from_slice(keys);
    let flat = load(model.clone(), path, None, &with_prefix, mode);
    let is_pth = !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if flat.is_ok() || !is_pth {
        return flat;
    }
    // `teacher`: a DINO training checkpoint (its student is the other entry).
    for entry in ["state_dict", "model", "teacher"] {
        if let Ok(loaded) = load(model.clone(), path, Some(entry), &with_prefix, mode) {
            return Ok(loaded);
        }
    }
    flat
}

fn load<M: Module + ModuleSnapshot>(
    mut model: M,
    path: &Path,
    entry: Option<&str>,
    keys: KeyMap<'_>,
    mode: LoadMode,
) -> Result<(M, LoadReport)> {
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
    if is_safetensors && let Some(entry) = entry {
        return Err(err(format!(
            "a safetensors file is flat, it has no entry '{entry}' to select"
        )));
    }
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
        let mut store = PytorchStore::from_file(path);
        if let Some(entry) = entry {
            store = store.with_top_level_key(entry);
        }
        let mut store = store.remap(remapper).allow_partial(true).validate(false);
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
    // The prefixes whose unused keys a strict mode lets pass; none for partial loading.
    let tolerated: Option<&[&str]> = match mode {
        LoadMode::Strict => Some(&[]),
        LoadMode::StrictIgnoringUnused(prefixes) => Some(prefixes),
        LoadMode::Partial => None,
    };
    if let Some(tolerated) = tolerated {
        if let Some(first) = missing.first() {
            return Err(BackboneError::MissingKeys {
                path: PathBuf::from(path),
                count: missing.len(),
                first: first.clone(),
            });
        }
        let stray: Vec<&String> = unused
            .iter()
            .filter(|k| !tolerated.iter().any(|p| k.starts_with(p)))
            .collect();
        if let Some(first) = stray.first() {
            return Err(BackboneError::UnusedKeys {
                path: PathBuf::from(path),
                count: stray.len(),
                first: (*first).clone(),
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
