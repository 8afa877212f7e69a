//! Checkpoints: one file holding the run state (JSON), the model and the optimizer state
//! (burnpack), written atomically, so a crash mid-write leaves the previous checkpoint whole.
//!
//! Layout: `METRONCK`, a little-endian `u32` version, then three sections each prefixed by its
//! `u64` length: state JSON, model record, optimizer record (empty for a model-only file).

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Result, TrainError};

const MAGIC: &[u8; 8] = b"METRONCK";
const VERSION: u32 = 1;

/// The three parts of a checkpoint, still serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointBytes {
    /// The run state, as JSON.
    pub state: Vec<u8>,
    /// The model record, as burnpack bytes.
    pub model: Vec<u8>,
    /// The optimizer record, as burnpack bytes; empty for a model-only checkpoint.
    pub optimizer: Vec<u8>,
}

fn record_error(path: &Path, what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::run_file(path, format!("{what}: {e}"))
}

/// Writes `state`, `model` and (if given) `optimizer` to `path` atomically.
pub fn save_checkpoint<S: Serialize, M: Module>(
    path: &Path,
    state: &S,
    model: &M,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<()> {
    let state = serde_json::to_vec_pretty(state)
        .map_err(|e| record_error(path, "cannot serialise the run state", e))?;
    let model = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| record_error(path, "cannot serialise the model", e))?;
    let optimizer = match optimizer {
        Some(o) => o
            .into_bytes()
            .map_err(|e| record_error(path, "cannot serialise the optimizer", e))?
            .to_vec(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(32 + state.len() + model.len() + optimizer.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for part in [&state[..], &model[..], &optimizer[..]] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    metron_core::atomic_write(path, &out)?;
    Ok(())
}

/// Reads the three sections of the checkpoint at `path`; a truncated or foreign file is an error
/// naming it.
pub fn read_checkpoint(path: &Path) -> Result<CheckpointBytes> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    parse_checkpoint(&bytes).map_err(|why| TrainError::run_file(path, why))
}

fn parse_checkpoint(bytes: &[u8]) -> std::result::Result<CheckpointBytes, String> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err("not a metron checkpoint (bad magic bytes)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "checkpoint version {version}, this build reads {VERSION}"
        ));
    }
    let mut rest = &bytes[12..];
    let mut parts = Vec::with_capacity(3);
    for name in ["state", "model", "optimizer"] {
        if rest.len() < 8 {
            return Err(format!("truncated before the {name} section"));
        }
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        rest = &rest[8..];
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| {
                format!(
                    "truncated {name} section ({len} bytes announced, {} left)",
                    rest.len()
                )
            })?;
        parts.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the last section",
            rest.len()
        ));
    }
    let optimizer = parts.pop().expect("three parts");
    let model = parts.pop().expect("three parts");
    let state = parts.pop().expect("three parts");
    Ok(CheckpointBytes {
        state,
        model,
        optimizer,
    })
}

impl CheckpointBytes {
    /// Parses the state section as `S`; `path` names the checkpoint in the error.
    pub fn state<S: DeserializeOwned>(&self, path: &Path) -> Result<S> {
        serde_json::from_slice(&self.state)
            .map_err(|e| record_error(path, "the run state does not parse", e))
    }

    /// Loads the model section into `model` (same architecture; every parameter must match).
    pub fn load_model<M: Module>(&self, model: M, path: &Path) -> Result<M> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| record_error(path, "the model section does not parse", e))?;
        model
            .try_load_record(record)
            .map_err(|e| record_error(path, "the model does not match this architecture", e))
    }

    /// Loads the optimizer section into `optimizer` (unchanged when the section is empty).
    pub fn load_optimizer(
        &self,
        optimizer: ModuleOptimizer,
        path: &Path,
    ) -> Result<ModuleOptimizer> {
        if self.optimizer.is_empty() {
            return Ok(optimizer);
        }
        optimizer
            .from_bytes(Bytes::from_bytes_vec(self.optimizer.clone()))
            .map_err(|e| record_error(path, "the optimizer section does not parse", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Tensor, TensorData};

    #[test]
    fn a_checkpoint_round_trips_model_optimizer_and_state() {
        let device = metron_core::parse_device("cpu").unwrap().autodiff();
        device.seed(1);
        let mut model: Linear = LinearConfig::new(3, 2).init(&device);
        let mut optim = AdamConfig::new().init();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 0.5, 0.3, 0.1, 4.0], [2, 3]),
            &device,
        );
        let loss = |m: &Linear| m.forward(x.clone()).square().mean();
        for _ in 0..2 {
            let g = GradientsParams::from_grads(loss(&model).backward(), &model);
            model = optim.step(0.01, model, g);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/last.ckpt");
        save_checkpoint(&path, &vec![7u32, 8], &model, Some(&optim)).unwrap();

        let ck = read_checkpoint(&path).unwrap();
        assert_eq!(ck.state::<Vec<u32>>(&path).unwrap(), vec![7, 8]);
        device.seed(99);
        let fresh: Linear = LinearConfig::new(3, 2).init(&device);
        let loaded = ck.load_model(fresh, &path).unwrap();
        let w = |m: &Linear| m.weight.val().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(w(&loaded), w(&model));
        // The restored Adam moments give the same next step as the original optimizer.
        let mut restored = ck.load_optimizer(AdamConfig::new().init(), &path).unwrap();
        let g1 = GradientsParams::from_grads(loss(&model).backward(), &model);
        let g2 = GradientsParams::from_grads(loss(&loaded).backward(), &loaded);
        let a = optim.step(0.01, model, g1);
        let b = restored.step(0.01, loaded, g2);
        assert_eq!(w(&a), w(&b));
        let mut fresh_optim = AdamConfig::new().init();
        let c = {
            let m = ck
                .load_model(LinearConfig::new(3, 2).init(&device), &path)
                .unwrap();
            let g = GradientsParams::from_grads(loss(&m).backward(), &m);
            fresh_optim.step(0.01, m, g)
        };
        assert_ne!(
            w(&a),
            w(&c),
            "a fresh Adam must step differently, or the test proves nothing"
        );
    }

    #[test]
    fn damaged_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ckpt");
        std::fs::write(&path, b"hello").unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("x.ckpt") && e.contains("magic"), "{e}");

        let device = metron_core::parse_device("cpu").unwrap();
        let model: Linear = LinearConfig::new(2, 2).init(&device);
        save_checkpoint(&path, &1u8, &model, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Drop the (empty) optimizer section's length and the model's last 3 bytes.
        std::fs::write(&path, &bytes[..bytes.len() - 11]).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("truncated model section"), "{e}");

        std::fs::write(&path, &bytes).unwrap();
        let ck = read_checkpoint(&path).unwrap();
        let other: Linear = LinearConfig::new(5, 2).init(&device);
        let e = ck.load_model(other, &path).unwrap_err().to_string();
        assert!(e.contains("x.ckpt") && e.contains("architecture"), "{e}");
        assert!(
            read_checkpoint(&dir.path().join("none.ckpt"))
                .unwrap_err()
                .to_string()
                .contains("none.ckpt")
        );
    }
}
