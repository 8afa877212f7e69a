//! `metron datasets list` and `metron datasets check NAME`: what the registry knows, and
//! whether a dataset on disk is complete and readable.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use metron_datasets::{Registry, check_counts, load_image};
use rayon::prelude::*;
use serde_json::json;

use super::CliError;
use super::progress::Bar;

/// Arguments of `metron datasets`: the registry file and the subcommand.
#[derive(Debug, Clone, Args)]
pub struct DatasetsArgs {
    /// The registry file (default: ./datasets.toml, else the one in metron's source tree).
    #[arg(long, global = true)]
    pub registry: Option<PathBuf>,
    /// What to do with the registry.
    #[command(subcommand)]
    pub command: DatasetsCommand,
}

/// The subcommands of `metron datasets`.
#[derive(Debug, Clone, Subcommand)]
pub enum DatasetsCommand {
    /// The registered datasets, their readers, roots and expected sizes.
    List,
    /// Parses a dataset, decodes every image, and compares the counts with the registry.
    Check {
        /// The dataset's name in the registry.
        name: String,
        /// Dataset root (default: the entry's environment variable, then its default root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// One JSON object: `splits.<name>.images` / `.classes` and an `errors` list.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

/// The registry at `path`, else `./datasets.toml`, else the one in metron's source tree.
pub fn registry(path: Option<&Path>) -> Result<Registry, CliError> {
    crate::systems::retrieval::load_registry(path).map_err(|e| CliError::Usage(e.to_string()))
}

/// Runs the subcommand; `Err` for a failed check carries the report already printed.
pub fn run(args: &DatasetsArgs) -> Result<String, CliError> {
    let reg = registry(args.registry.as_deref())?;
    match &args.command {
        DatasetsCommand::List => Ok(reg
            .entries
            .iter()
            .map(|(name, e)| {
                let count = |c: Option<usize>| c.map_or("?".to_string(), |c| c.to_string());
                let splits: Vec<String> = e
                    .splits
                    .iter()
                    .map(|(s, c)| {
                        format!(
                            "{s}: {} images / {} classes",
                            count(c.images),
                            count(c.classes)
                        )
                    })
                    .collect();
                format!(
                    "{name:<12} reader {:<17} root {}{} | {}",
                    e.reader,
                    e.root,
                    e.env
                        .as_ref()
                        .map(|v| format!(" (${v})"))
                        .unwrap_or_default(),
                    splits.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")),
        DatasetsCommand::Check {
            name,
            root,
            json,
            quiet,
        } => {
            let entry = reg
                .entry(name)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            if entry.reader == "idx" {
                return check_idx(&reg, name, root.as_deref(), *json);
            }
            let ds = reg
                .read(name, root.as_deref())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let total: usize = ds.splits.iter().map(|s| s.samples.len()).sum();
            let bar = Bar::new(total, "decoding", *quiet || *json);
            let mut errors: Vec<String> = ds
                .splits
                .iter()
                .flat_map(|s| &s.samples)
                .par_bridge()
                .filter_map(|s| {
                    let r = load_image(&s.path).err().map(|e| e.to_string());
                    metron_metrics::Progress::advance(&bar, 1);
                    r
                })
                .collect();
            bar.finish();
            errors.sort();
            errors.extend(check_counts(&ds, entry).iter().map(|m| m.to_string()));
            let splits: serde_json::Map<String, serde_json::Value> = ds
                .splits
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        json!({"images": s.samples.len(), "classes": s.classes_present()}),
                    )
                })
                .collect();
            let report = if *json {
                json!({"dataset": name, "splits": splits, "errors": errors}).to_string()
            } else {
                let mut out = String::new();
                for s in &ds.splits {
                    let want = entry.splits.get(&s.name);
                    out.push_str(&format!(
                        "{:<10} {} images, {} classes{}\n",
                        s.name,
                        s.samples.len(),
                        s.classes_present(),
                        want.map(|w| format!(
                            " (expected {} / {})",
                            w.images.map_or("?".into(), |c| c.to_string()),
                            w.classes.map_or("?".into(), |c| c.to_string())
                        ))
                        .unwrap_or_default()
                    ));
                }
                for e in &errors {
                    out.push_str(&format!("error: {e}\n"));
                }
                out
            };
            if errors.is_empty() {
                Ok(report)
            } else {
                Err(CliError::CheckFailed(report))
            }
        }
    }
}

/// `datasets check` for an IDX dataset: the reader has already validated every byte (magic
/// numbers, sizes, label count), so what is left is the counts.
fn check_idx(
    reg: &Registry,
    name: &str,
    root: Option<&Path>,
    json: bool,
) -> Result<String, CliError> {
    let entry = reg
        .entry(name)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let data = reg
        .read_idx(name, root)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut errors = Vec::new();
    let mut splits = serde_json::Map::new();
    let mut text = String::new();
    for (split, s) in [("train", &data.train), ("test", &data.test)] {
        let classes = s
            .labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if let Some(want) = entry.splits.get(split) {
            for (what, expected, found) in [
                ("images", want.images, s.count),
                ("classes", want.classes, classes),
            ] {
                if let Some(expected) = expected
                    && expected != found
                {
                    errors.push(format!(
                        "split '{split}': {found} {what} found, {expected} expected"
                    ));
                }
            }
        }
        splits.insert(
            split.to_string(),
            json!({"images": s.count, "classes": classes, "height": s.height, "width": s.width}),
        );
        text.push_str(&format!(
            "{split:<10} {} images of {} x {}, {classes} classes\n",
            s.count, s.height, s.width
        ));
    }
    for e in &errors {
        text.push_str(&format!("error: {e}\n"));
    }
    let report = if json {
        json!({"dataset": name, "splits": splits, "errors": errors}).to_string()
    } else {
        text
    };
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(CliError::CheckFailed(report))
    }
}
