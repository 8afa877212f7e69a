//! `datasets.toml`: one entry per dataset with its reader, default root and, optionally, the
//! expected image and class counts per split, so a half-extracted download is caught before
//! training.
//!
//! A minimal entry for a dataset of one's own is two lines:
//!
//! ```toml
//! [mine]
//! reader = "csv"
//! root = "/data/mine"      # relative roots resolve against this file's folder
//! file = "dataset.csv"     # relative to root; image paths inside it resolve against the
//!                          # CSV file's own folder (or are absolute)
//! ```
//!
//! `env` (an environment variable overriding `root`) and `splits.<name> = { images = N,
//! classes = M }` (checked when given, either count alone too) are optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{CvactLayout, Dataset, DatasetError, Result};

/// Expected size of one split; each count is checked when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpectedCounts {
    /// Expected number of images in the split; unchecked when absent.
    #[serde(default)]
    pub images: Option<usize>,
    /// Expected number of classes with at least one image in the split; unchecked when absent.
    #[serde(default)]
    pub classes: Option<usize>,
}

/// One dataset of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DatasetEntry {
    /// Which reader parses it: one of [`READERS`].
    pub reader: String,
    /// Default root, relative to the folder of `datasets.toml` unless absolute.
    pub root: String,
    /// Environment variable that overrides the root.
    #[serde(default)]
    pub env: Option<String>,
    /// For the `csv` reader: the CSV file, relative to the root.
    #[serde(default)]
    pub file: Option<String>,
    /// For the `inaturalist-lists` reader: split name -> list file, relative to the root.
    #[serde(default)]
    pub lists: BTreeMap<String, String>,
    /// Split name -> the image and class counts that split must have (`metron datasets check`).
    #[serde(default)]
    pub splits: BTreeMap<String, ExpectedCounts>,
}

/// The reader names an entry may give. Variants of one layout are separate readers
/// (`cvact-polar`), so an entry stays a plain name and a root.
pub const READERS: [&str; 18] = [
    "omniglot",
    "cub",
    "cars196",
    "sop",
    "inshop",
    "csv",
    "cvusa",
    "cvusa-polar",
    "cvact",
    "cvact-polar",
    "cvact-saig-val",
    "inaturalist-json",
    "inaturalist-lists",
    "wgol-cub",
    "wgol-ilsvrc",
    "vigor",
    "vigor-cross",
    "idx",
];

/// The parsed `datasets.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Dataset name (the TOML table name) -> its entry.
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

    /// The entry of dataset `name`; [`DatasetError::Registry`] listing the known names if none.
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
            None => match entry.env.as_ref().and_then(std::env::var_os) {
                Some(v) => PathBuf::from(v),
                None => self.base.join(&entry.root),
            },
        })
    }

    /// Parses dataset `name` with its reader. A cross-view dataset reads as the splits of
    /// [`crate::PairSplit::to_splits`] (`train-ground`, `train-satellite`, ...); a WGOL one as
    /// its [`crate::LocalizationDataset::dataset`] (first box per image).
    pub fn read(&self, name: &str, root: Option<&Path>) -> Result<Dataset> {
        let entry = self.entry(name)?;
        let root = self.root(name, root)?;
        let mut dataset = match entry.reader.as_str() {
            "omniglot" => crate::read_omniglot(&root)?,
            "cub" => crate::read_cub(&root)?,
            "cars196" => crate::read_cars196(&root)?,
            "sop" => crate::read_sop(&root)?,
            "inshop" => crate::read_inshop(&root)?,
            "csv" => {
                let file = entry.file.as_deref().ok_or_else(|| {
                    DatasetError::Registry(format!("{name}: the csv reader needs `file`"))
                })?;
                crate::read_csv(&root.join(file))?
            }
            "cvusa" | "cvusa-polar" | "cvact" | "cvact-polar" | "cvact-saig-val" => Dataset {
                name: name.into(),
                splits: self
                    .read_pairs(name, Some(&root))?
                    .iter()
                    .flat_map(crate::PairSplit::to_splits)
                    .collect(),
            },
            "inaturalist-json" => crate::read_inaturalist_json(&root)?,
            "inaturalist-lists" => {
                if entry.lists.is_empty() {
                    return Err(DatasetError::Registry(format!(
                        "{name}: the inaturalist-lists reader needs `lists.<split> = \"file\"`"
                    )));
                }
                let lists: Vec<(&str, &Path)> = entry
                    .lists
                    .iter()
                    .map(|(s, f)| (s.as_str(), Path::new(f)))
                    .collect();
                crate::read_inaturalist_lists(&root, &lists)?
            }
            "wgol-cub" => crate::read_wgol(&root, crate::WgolSet::Cub)?.dataset,
            "wgol-ilsvrc" => crate::read_wgol(&root, crate::WgolSet::Ilsvrc)?.dataset,
            "vigor" | "vigor-cross" => Dataset {
                name: name.into(),
                splits: crate::read_vigor(&root, entry.reader == "vigor")?
                    .iter()
                    .flat_map(crate::VigorSplit::to_splits)
                    .collect(),
            },
            "idx" => {
                return Err(DatasetError::Registry(format!(
                    "{name}: an IDX dataset (MNIST, Fashion-MNIST) holds its images in memory, \
                     not as files: read it with Registry::read_idx"
                )));
            }
            other => return Err(unknown_reader(name, other)),
        };
        dataset.name = name.to_string();
        Ok(dataset)
    }

    /// IDX dataset `name` (reader `idx`: MNIST, Fashion-MNIST) as in-memory arrays.
    pub fn read_idx(&self, name: &str, root: Option<&Path>) -> Result<crate::IdxDataset> {
        let entry = self.entry(name)?;
        if entry.reader != "idx" {
            return Err(DatasetError::Registry(format!(
                "{name}: reader '{}' is not an IDX reader",
                entry.reader
            )));
        }
        crate::read_idx_dataset(&self.root(name, root)?)
    }

    /// The satellite / ground pairs of cross-view dataset `name` (readers `cvusa`,
    /// `cvusa-polar`, `cvact`, `cvact-polar`, `cvact-saig-val`).
    pub fn read_pairs(&self, name: &str, root: Option<&Path>) -> Result<Vec<crate::PairSplit>> {
        let entry = self.entry(name)?;
        let root = self.root(name, root)?;
        match entry.reader.as_str() {
            "cvusa" => crate::read_cvusa(&root, false),
            "cvusa-polar" => crate::read_cvusa(&root, true),
            "cvact" => crate::read_cvact(&root, CvactLayout::NonPolar),
            "cvact-polar" => crate::read_cvact(&root, CvactLayout::Polar),
            "cvact-saig-val" => crate::read_cvact(&root, CvactLayout::NonPolarSaigVal),
            other if READERS.contains(&other) => Err(DatasetError::Registry(format!(
                "{name}: reader '{other}' does not give satellite / ground pairs"
            ))),
            other => Err(unknown_reader(name, other)),
        }
    }
}

fn unknown_reader(name: &str, reader: &str) -> DatasetError {
    DatasetError::Registry(format!(
        "{name}: unknown reader '{reader}' ({})",
        READERS.join(", ")
    ))
}

/// One difference between what a dataset holds and what the registry expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMismatch {
    /// The split whose count differs.
    pub split: String,
    /// What was counted: `"images"` or `"classes"`.
    pub what: &'static str,
    /// The count the registry expects.
    pub expected: usize,
    /// The count the dataset has (0 when the split is missing).
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
            let Some(expected) = expected else { continue };
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
