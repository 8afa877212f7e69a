//! A run directory: everything one training run writes, in fixed places.
//!
//! ```text
//! RUN/config.json            the resolved configuration (every default filled in)
//! RUN/metrics.jsonl          one JSON object per epoch
//! RUN/checkpoints/last.ckpt  model + optimizer + run state after the last finished epoch
//! RUN/checkpoints/best.ckpt  the epoch with the best Recall@1 so far
//! RUN/report.json            the final report
//! RUN/embeddings.npy, RUN/labels.npy   test-split embeddings of the final model
//! RUN/curves.png             loss and Recall@1 per epoch
//! RUN/retrieval_grid.png     test queries with their top-K (green border: hit, red: miss)
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Result, TrainError};

/// The files of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A new run at `root` with its resolved configuration: refuses a directory that already
    /// holds a run, so results are never mixed (resume it with [`RunDir::open`] instead), and a
    /// non-empty directory that holds none.
    pub fn create<C: Serialize>(root: impl Into<PathBuf>, config: &C) -> Result<Self> {
        let run = RunDir { root: root.into() };
        if run.config_path().exists() {
            return Err(TrainError::run_file(
                run.config_path(),
                "a run already exists here: resume it (--resume) or choose another --run-dir",
            ));
        }
        // A folder of the user's own (not a run) is never written into: its files could be
        // overwritten by ours.
        if let Ok(mut entries) = std::fs::read_dir(&run.root)
            && entries.next().is_some()
        {
            return Err(TrainError::run_file(
                &run.root,
                "the folder is not empty and holds no run: choose an empty or new --run-dir",
            ));
        }
        std::fs::create_dir_all(run.checkpoint_dir()).map_err(|e| TrainError::io(&run.root, e))?;
        run.write_config(config)?;
        Ok(run)
    }

    /// An existing run, to resume or to read.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let run = RunDir { root: root.into() };
        if !run.config_path().is_file() {
            return Err(TrainError::run_file(
                run.config_path(),
                "not a run directory (no config.json)",
            ));
        }
        std::fs::create_dir_all(run.checkpoint_dir()).map_err(|e| TrainError::io(&run.root, e))?;
        Ok(run)
    }

    /// The run directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `RUN/config.json`: the resolved configuration.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// `RUN/metrics.jsonl`: one JSON object per epoch.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `RUN/checkpoints`: the folder of `last.ckpt` and `best.ckpt`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `RUN/checkpoints/last.ckpt`: the state after the last finished epoch.
    pub fn last_checkpoint(&self) -> PathBuf {
        self.checkpoint_dir().join("last.ckpt")
    }

    /// `RUN/checkpoints/best.ckpt`: the epoch with the best primary metric so far.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.checkpoint_dir().join("best.ckpt")
    }

    /// `RUN/report.json`: the final report.
    pub fn report_path(&self) -> PathBuf {
        self.root.join("report.json")
    }

    /// `RUN/embeddings.npy`: test-split embeddings of the final model.
    pub fn embeddings_path(&self) -> PathBuf {
        self.root.join("embeddings.npy")
    }

    /// `RUN/labels.npy`: the labels of the rows of `embeddings.npy`.
    pub fn labels_path(&self) -> PathBuf {
        self.root.join("labels.npy")
    }

    /// `RUN/curves.png`: loss and Recall@1 per epoch.
    pub fn curves_path(&self) -> PathBuf {
        self.root.join("curves.png")
    }

    /// `RUN/retrieval_grid.png`: test queries with their top-K results.
    pub fn grid_path(&self) -> PathBuf {
        self.root.join("retrieval_grid.png")
    }

    /// Writes `value` as pretty JSON to `path`, atomically.
    pub fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| TrainError::run_file(path, format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
        metron_core::atomic_write(path, &bytes)?;
        Ok(())
    }

    /// Writes `config` to `config.json`, atomically.
    pub fn write_config<T: Serialize>(&self, config: &T) -> Result<()> {
        self.write_json(&self.config_path(), config)
    }

    /// The saved configuration.
    pub fn read_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::run_file(&path, e.to_string()))
    }

    /// Rewrites the metrics log to exactly `records`, one JSON line each. The log is rewritten
    /// rather than appended so that a resumed run's log never holds epochs that the checkpoint
    /// it resumed from did not see.
    pub fn write_metrics<T: Serialize>(&self, records: &[T]) -> Result<()> {
        let path = self.metrics_path();
        let mut out = Vec::new();
        for r in records {
            serde_json::to_writer(&mut out, r)
                .map_err(|e| TrainError::run_file(&path, format!("cannot serialise: {e}")))?;
            out.push(b'\n');
        }
        metron_core::atomic_write(&path, &out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_is_created_once_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        assert!(
            RunDir::open(&root)
                .unwrap_err()
                .to_string()
                .contains("config.json")
        );
        let run = RunDir::create(&root, &serde_json::json!({"epochs": 3})).unwrap();
        let again = RunDir::create(&root, &1).unwrap_err().to_string();
        assert!(again.contains("--resume"), "{again}");
        let reopened = RunDir::open(&root).unwrap();
        let cfg: serde_json::Value = reopened.read_config().unwrap();
        assert_eq!(cfg["epochs"], 3);
        run.write_metrics(&[
            serde_json::json!({"epoch": 1}),
            serde_json::json!({"epoch": 2}),
        ])
        .unwrap();
        let log = std::fs::read_to_string(run.metrics_path()).unwrap();
        assert_eq!(log, "{\"epoch\":1}\n{\"epoch\":2}\n");
    }
}
