//! `datasets.toml`: one entry per dataset with its reader, default root and the expected
//! image and class counts per split, so a half-extracted download is caught before training.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Dataset, DatasetError, Result};

/// Expected size of one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ExpectedCounts {
    pub images: usize,
    pub classes: usize,
}

/// One dataset of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DatasetEntry {
    /// Which reader parses it (`omniglot`, `csv`).
    pub reader: String,
    /// Default root, relative to the folder of `datasets.toml` unless absolute.
    pub root: String,
    /// Environment variable that overrides the root.
    pub env: String,
    /// For the `csv` reader: the CSV file, relative to the root.
    #[serde(default)]
    pub file: Option<String>,
    pub splits: BTreeMap<String, ExpectedCounts>,
}

/// The parsed `datasets.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub entries: BTreeMap<String, DatasetEntry>,
    /// Folder the relative roots are resolved against.
    pub base: PathBuf,
}

impl Registry {
    /// Parses `datasets.toml` at `path`.
    pub fn load(path: &Path) -> Result<Registry> {
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
        let entries: BTreeMap<String, DatasetEntry> = toml::from_str(&text)
            .map_err(|e| DatasetError::Registry(format!("{}: {e}", path.display())))?;
        Ok(Registry {
            entries,
            base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        })
    }

    pub fn entry(&self, name: &str) -> Result<&DatasetEntry> {
        self.entries.get(name).ok_or_else(|| {
            DatasetError::Registry(format!(
                "no dataset '{name}' (known: {})",
                self.entries.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The root of `name`: `root` if given, else the entry's environment variable, else its
    /// default.
    pub fn root(&self, name: &str, root: Option<&Path>) -> Result<PathBuf> {
        let entry = self.entry(name)?;
        Ok(match root {
            Some(r) => r.to_path_buf(),
            None => match std::env::var_os(&entry.env) {
                Some(v) => PathBuf::from(v),
                None => self.base.join(&entry.root),
            },
        })
    }

    /// Parses dataset `name` with its reader.
    pub fn read(&self, name: &str, root: Option<&Path>) -> Result<Dataset> {
        let entry = self.entry(name)?;
        let root = self.root(name, root)?;
        let mut dataset = match entry.reader.as_str() {
            "omniglot" => crate::read_omniglot(&root)?,
            "cub" => crate::read_cub(&root)?,
            "sop" => crate::read_sop(&root)?,
            "inshop" => crate::read_inshop(&root)?,
            "csv" => {
                let file = entry.file.as_deref().ok_or_else(|| {
                    DatasetError::Registry(format!("{name}: the csv reader needs `file`"))
                })?;
                crate::read_csv(&root.join(file))?
            }
            other => {
                return Err(DatasetError::Registry(format!(
                    "{name}: unknown reader '{other}' (omniglot, cub, sop, inshop, csv)"
                )));
            }
        };
        dataset.name = name.to_string();
        Ok(dataset)
    }
}

/// One difference between what a dataset holds and what the registry expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMismatch {
    pub split: String,
    pub what: &'static str,
    pub expected: usize,
    pub found: usize,
}

impl std::fmt::Display for CountMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "split '{}': {} {} found, {} expected",
            self.split, self.found, self.what, self.expected
        )
    }
}

/// Every difference between `dataset` and the counts `entry` expects (missing splits too).
pub fn check_counts(dataset: &Dataset, entry: &DatasetEntry) -> Vec<CountMismatch> {
    let mut out = Vec::new();
    for (name, want) in &entry.splits {
        let (images, classes) = match dataset.split(name) {
            Ok(s) => (s.samples.len(), s.classes_present()),
            Err(_) => (0, 0),
        };
        for (what, expected, found) in [
            ("images", want.images, images),
            ("classes", want.classes, classes),
        ] {
            if expected != found {
                out.push(CountMismatch {
                    split: name.clone(),
                    what,
                    expected,
                    found,
                });
            }
        }
    }
    out
}
