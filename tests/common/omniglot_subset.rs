//! A small slice of the real Omniglot images for end-to-end tests of the systems.

use std::path::{Path, PathBuf};

/// The first `classes` training and `classes` test characters of `../shared/data/omniglot`,
/// written as a CSV dataset (`path,label,split`) into `dir`; returns the CSV's path.
pub fn omniglot_subset_csv(dir: &Path, classes: usize) -> PathBuf {
    let root = PathBuf::from(format!(
        "{}/../shared/data/omniglot",
        env!("CARGO_MANIFEST_DIR")
    ));
    let omniglot = metron_datasets::read_omniglot(&root).unwrap();
    let mut csv = String::from("path,label,split\n");
    for split in ["train", "test"] {
        let s = omniglot.split(split).unwrap();
        for sample in s.samples.iter().filter(|x| x.label < classes) {
            csv.push_str(&format!(
                "{},{split}-{},{split}\n",
                sample.path.display(),
                s.classes[sample.label]
            ));
        }
    }
    let path = dir.join("subset.csv");
    std::fs::write(&path, csv).unwrap();
    path
}
