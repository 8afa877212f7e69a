//! Starting weights of the paper's recipes, loaded with strict key checks: torchvision's
//! ImageNet VGG-16 (`vgg16-397923af.pth`) into the backbone (CUB), and an original WGOL
//! checkpoint (`ilsvrc_epoch_20.pth.tar` of the SPA classifier: `state_dict`, DataParallel's
//! `module.` prefix) into the whole network (ILSVRC's `load_finetune`).

use std::path::Path;

use metron_backbones::{LoadMode, load_pytorch, load_pytorch_any_layout, torchvision_vgg16_keys};
use metron_localization::WgolNet;

use crate::systems::SystemError;

/// The original's module names (`conv1_2`, `conv3`, `conv4`, `conv5` Sequentials cut from
/// torchvision's `features` at 10, 17 and 24; `cls` / `sos` Sequentials with convolutions at
/// 0, 2, 4; `sa.fc_q/k/v/o`) as `(regex, replacement)` renames to [`WgolNet`]'s paths.
pub fn original_checkpoint_keys() -> Vec<(String, String)> {
    // (stage, index in the stage's Sequential) of each of the 13 convolutions.
    let convs = [
        ("conv1_2", 0),
        ("conv1_2", 2),
        ("conv1_2", 5),
        ("conv1_2", 7),
        ("conv3", 0),
        ("conv3", 2),
        ("conv3", 4),
        ("conv4", 0),
        ("conv4", 2),
        ("conv4", 4),
        ("conv5", 0),
        ("conv5", 2),
        ("conv5", 4),
    ];
    let mut keys: Vec<(String, String)> = convs
        .iter()
        .enumerate()
        .map(|(k, (stage, i))| (format!(r"^{stage}\.{i}\."), format!("backbone.convs.{k}.")))
        .collect();
    for head in ["cls", "sos"] {
        for (i, conv) in [(0, "conv1"), (2, "conv2"), (4, "conv3")] {
            keys.push((format!(r"^{head}\.{i}\."), format!("{head}.{conv}.")));
        }
    }
    keys
}

/// Loads torchvision's ImageNet VGG-16 (`.pth` or `.safetensors`) into `net`'s backbone:
/// every convolution must come from the file, and every tensor of the file must be used
/// except torchvision's classifier (`classifier.*`, which WGOL drops). The network must be
/// the plain VGG-16 at the file's width (a mismatch is an error naming the tensor).
pub fn load_imagenet_vgg16(mut net: WgolNet, path: &Path) -> Result<WgolNet, SystemError> {
    let keys = torchvision_vgg16_keys();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (backbone, _) = load_pytorch(
        net.backbone,
        path,
        &keys,
        LoadMode::StrictIgnoringUnused(&["fc1.", "fc2.", "fc3."]),
    )?;
    net.backbone = backbone;
    Ok(net)
}

/// Loads an original WGOL checkpoint into `net`. The file must provide the backbone and the
/// cls head and every tensor in it must be used; heads `net` has but the file lacks (the SOS
/// head and the self-attention, when fine-tuning from the SPA classifier) keep their fresh
/// initialisation and are named in the returned list.
pub fn load_original_checkpoint(
    net: WgolNet,
    path: &Path,
) -> Result<(WgolNet, Vec<&'static str>), SystemError> {
    let keys = original_checkpoint_keys();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let has = [net.sos.is_some(), net.sa.is_some()];
    // Try the file against the network with each subset of its optional heads, smallest
    // first: the subset under which every key matches is what the file holds.
    let mut first_error = None;
    for (sos, sa) in [(false, false), (true, false), (false, true), (true, true)] {
        if (sos && !has[0]) || (sa && !has[1]) {
            continue;
        }
        let mut view = net.clone();
        if !sos {
            view.sos = None;
        }
        if !sa {
            view.sa = None;
        }
        match load_pytorch_any_layout(view, path, &keys, LoadMode::Strict) {
            Ok((loaded, _)) => {
                let mut out = net;
                out.backbone = loaded.backbone;
                out.cls = loaded.cls;
                let mut fresh = Vec::new();
                if sos {
                    out.sos = loaded.sos;
                } else if has[0] {
                    fresh.push("sos");
                }
                if sa {
                    out.sa = loaded.sa;
                } else if has[1] {
                    fresh.push("sa");
                }
                return Ok((out, fresh));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .map(SystemError::from)
        .unwrap_or_else(|| SystemError::Usage("no layout was tried".into())))
}
