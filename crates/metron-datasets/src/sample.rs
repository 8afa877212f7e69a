//! What every reader produces.

use std::path::PathBuf;

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image file, already joined to the dataset root (absolute when the root is).
    pub path: PathBuf,
    /// Dense class index within the dataset (0..classes), in sorted class-name order.
    pub label: usize,
    /// Axis-aligned box `[x1, y1, x2, y2]` in pixels, where the dataset has one.
    pub bbox: Option<[f32; 4]>,
}

/// The samples of one split, with the class names their labels index.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The split's name (`train`, `test`, `query`, `gallery`, ...), as [`Dataset::split`] finds it.
    pub name: String,
    /// The split's images with their labels, in the reader's fixed order.
    pub samples: Vec<Sample>,
    /// `classes[label]` is the dataset's own name of the class. Splits that are compared with
    /// each other (query and gallery) share one list, so their labels compare directly.
    pub classes: Vec<String>,
}

impl Split {
    /// Number of classes that have at least one sample in this split.
    pub fn classes_present(&self) -> usize {
        let mut seen = vec![false; self.classes.len()];
        self.samples.iter().for_each(|s| seen[s.label] = true);
        seen.iter().filter(|&&s| s).count()
    }
}

/// A parsed dataset: its splits in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The dataset's name (its `datasets.toml` entry name when read through the registry).
    pub name: String,
    /// The dataset's splits, in the reader's fixed order.
    pub splits: Vec<Split>,
}

impl Dataset {
    /// The split called `name`.
    pub fn split(&self, name: &str) -> crate::Result<&Split> {
        self.splits.iter().find(|s| s.name == name).ok_or_else(|| {
            crate::DatasetError::UnknownSplit {
                dataset: self.name.clone(),
                split: name.to_string(),
                known: self
                    .splits
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
    }
}
