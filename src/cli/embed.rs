//! `metron embed`: a trained checkpoint and a dataset split -> embeddings on disk, and
//! `metron search`: query images -> their nearest gallery images (CGD's `test.py`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use ndarray::Array2;
use serde_json::json;

use metron_datasets::{LoaderConfig, Sample};
use metron_metrics::{KnnOptions, Similarity, knn};
use metron_train::{Bar, EmbeddedSplit, write_embeddings};

use crate::systems::{LoadedModel, SYSTEMS, load_checkpoint};
use metron_viz::{GridRow, save_retrieval_grid};

use super::CliError;

/// Arguments of `metron embed`: a checkpoint, a dataset split and the output directory.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// A checkpoint of a run (`RUN/checkpoints/best.ckpt` or `last.ckpt`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A dataset of datasets.toml.
    #[arg(long, required_unless_present = "csv", conflicts_with = "csv")]
    pub dataset: Option<String>,
    /// A dataset CSV of one's own (`path,label,split`; paths relative to the CSV's folder)
    /// instead of --dataset.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The split to embed.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Dataset root (default: the entry's environment variable, then its default root).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The registry file (default: ./datasets.toml, else the one in metron's source tree).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Output directory: embeddings.npy (f32, N x D), labels.npy (i64, N), paths.txt.
    #[arg(long)]
    pub out: PathBuf,
    /// Where the model runs: cpu, wgpu, tch, tch:cuda:N or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Leave undecodable images out (listed on stderr) instead of stopping.
    #[arg(long)]
    pub skip_corrupt: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Replace an existing set of output files (as a whole: a crash leaves the old set or the
    /// new one).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `metron search`: a checkpoint, an embedded gallery and the query images.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// A checkpoint of a run (`RUN/checkpoints/best.ckpt` or `last.ckpt`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A directory written by `metron embed` (embeddings.npy, labels.npy, paths.txt).
    #[arg(long)]
    pub gallery: PathBuf,
    /// Query images (PNG or JPEG).
    #[arg(long = "query", required = true, num_args = 1..)]
    pub queries: Vec<PathBuf>,
    /// Results per query.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Also draw the queries and their results to this PNG. A border is green when the result
    /// has the query's class, red when not: the class is known when the query is itself a
    /// gallery image (it is then left out of its own results) or given by --query-label;
    /// otherwise the borders are grey and a caption says the class is unknown.
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// The class of each query (gallery label numbering), in --query order; one value applies
    /// to every query.
    #[arg(long = "query-label", value_delimiter = ',')]
    pub query_labels: Vec<i64>,
    /// Replace an existing --grid file.
    #[arg(long)]
    pub force: bool,
    /// Print the results as one JSON array instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the model runs: cpu, wgpu, tch, tch:cuda:N or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// The checkpoint's model, rebuilt by the system its recorded kind names.
fn load_model(checkpoint: &Path, device: &str) -> Result<LoadedModel, CliError> {
    let device = metron_core::parse_device(device)?;
    Ok(load_checkpoint(checkpoint, &device, SYSTEMS)?)
}

fn embed(
    model: &LoadedModel,
    samples: Vec<Sample>,
    batch_size: usize,
    skip_corrupt: bool,
    quiet: bool,
) -> Result<EmbeddedSplit, CliError> {
    let bar = Bar::new(samples.len(), "embedding", quiet);
    let out = model.embed_images(
        Arc::new(samples),
        batch_size,
        LoaderConfig {
            prefetch: 2,
            skip_corrupt,
        },
        &bar,
    )?;
    bar.finish();
    Ok(out)
}

/// What `metron embed` writes, as one set.
const EMBED_FILES: [&str; 3] = ["embeddings.npy", "labels.npy", "paths.txt"];

/// `metron embed`: writes the output files and returns a one-line summary.
pub fn run_embed(args: &EmbedArgs) -> Result<String, CliError> {
    // Refused before the (long) embedding, not after.
    super::output::refuse_existing_files(&args.out, &EMBED_FILES, args.force)?;
    let data = match (&args.csv, &args.dataset) {
        (Some(csv), _) => metron_datasets::read_csv(csv).map_err(usage)?,
        (None, Some(dataset)) => super::datasets::registry(args.registry.as_deref())?
            .read(dataset, args.root.as_deref())
            .map_err(usage)?,
        (None, None) => return Err(usage("give --dataset or --csv")),
    };
    let split = data.split(&args.split).map_err(usage)?;
    let model = load_model(&args.checkpoint, &args.device)?;
    let out = embed(
        &model,
        split.samples.clone(),
        args.batch_size,
        args.skip_corrupt,
        args.quiet,
    )?;
    for (path, why) in &out.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    let paths: String = out
        .indices
        .iter()
        .map(|&i| format!("{}\n", split.samples[i].path.display()))
        .collect();
    super::output::write_file_set(&args.out, &EMBED_FILES, args.force, |dir| {
        write_embeddings(&dir.join("embeddings.npy"), &dir.join("labels.npy"), &out)
            .map_err(usage)?;
        metron_core::atomic_write(dir.join("paths.txt"), paths.as_bytes())?;
        Ok(())
    })?;
    Ok(format!(
        "{} images of {}/{} -> {} ({} x {})",
        out.labels.len(),
        data.name,
        args.split,
        args.out.display(),
        out.embeddings.nrows(),
        out.embeddings.ncols()
    ))
}

struct Gallery {
    embeddings: Array2<f32>,
    labels: Vec<i64>,
    paths: Vec<PathBuf>,
}

fn read_gallery(dir: &Path) -> Result<Gallery, CliError> {
    let embeddings = super::common::read_finite(&dir.join("embeddings.npy"))?.to_f32();
    let labels = metron_core::read_labels(dir.join("labels.npy"))?;
    let paths_file = dir.join("paths.txt");
    let text = std::fs::read_to_string(&paths_file)
        .map_err(|e| usage(format!("{}: {e}", paths_file.display())))?;
    let paths: Vec<PathBuf> = text.lines().map(PathBuf::from).collect();
    if paths.len() != embeddings.nrows() || labels.len() != embeddings.nrows() {
        return Err(usage(format!(
            "{}: {} embeddings, {} labels and {} paths: the files are from different runs",
            dir.display(),
            embeddings.nrows(),
            labels.len(),
            paths.len()
        )));
    }
    Ok(Gallery {
        embeddings,
        labels,
        paths,
    })
}

/// `metron search`: the text to print on stdout (a table, or JSON with `--json`).
pub fn run_search(args: &SearchArgs) -> Result<String, CliError> {
    if let Some(grid) = &args.grid {
        super::output::refuse_existing_file(grid, args.force)?;
    }
    let given_label = |qi: usize| match args.query_labels.len() {
        0 => Ok(None),
        1 => Ok(Some(args.query_labels[0])),
        n if n == args.queries.len() => Ok(Some(args.query_labels[qi])),
        n => Err(usage(format!(
            "{n} --query-label values for {} queries: give one per query, or one for all",
            args.queries.len()
        ))),
    };
    given_label(0)?;
    let gallery = read_gallery(&args.gallery)?;
    let model = load_model(&args.checkpoint, &args.device)?;
    if gallery.embeddings.ncols() != model.embedding_dim {
        return Err(usage(format!(
            "{}: gallery embeddings have {} dimensions, the checkpoint's model {}",
            args.gallery.display(),
            gallery.embeddings.ncols(),
            model.embedding_dim
        )));
    }
    let samples: Vec<Sample> = args
        .queries
        .iter()
        .map(|p| Sample {
            path: p.clone(),
            label: 0,
            bbox: None,
        })
        .collect();
    let q = embed(&model, samples, 32, false, args.quiet)?;
    // One extra neighbour so a query that is itself in the gallery can drop itself.
    let k = args.k.min(gallery.embeddings.nrows());
    let depth = (k + 1).min(gallery.embeddings.nrows());
    let nn = knn(
        q.embeddings.view(),
        gallery.embeddings.view(),
        depth,
        &KnnOptions::new(Similarity::Cosine),
    )
    .map_err(|source| CliError::Metrics {
        context: args.gallery.display().to_string(),
        source,
    })?;
    let mut results = Vec::new();
    let mut grid = Vec::new();
    for (qi, query) in args.queries.iter().enumerate() {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let own = gallery
            .paths
            .iter()
            .position(|g| canonical(g) == canonical(query));
        let hits: Vec<(usize, f32)> = (0..depth)
            .map(|r| (nn.indices[qi * depth + r], nn.values[qi * depth + r]))
            .filter(|(g, _)| Some(*g) != own)
            .take(k)
            .collect();
        // Known from the gallery or the user; never guessed from the results.
        let class = own.map(|g| gallery.labels[g]).or(given_label(qi)?);
        results.push(json!({
            "query": query,
            "query_label": class,
            "results": hits.iter().map(|(g, s)| json!({
                "path": gallery.paths[*g], "label": gallery.labels[*g], "similarity": s,
                "hit": class.map(|c| c == gallery.labels[*g]),
            })).collect::<Vec<_>>(),
        }));
        grid.push(
            hits.iter()
                .fold(GridRow::new(query.clone()), |row, (g, _)| match class {
                    Some(c) => row.with_result(gallery.paths[*g].clone(), gallery.labels[*g] == c),
                    None => row.with_unjudged_result(gallery.paths[*g].clone()),
                }),
        );
    }
    if let Some(path) = &args.grid {
        save_retrieval_grid(path, &grid, 112).map_err(usage)?;
        if !args.quiet && results.iter().any(|r| r["query_label"].is_null()) {
            eprintln!(
                "{}: grey frames where the query's class is unknown (not a gallery image): \
                 pass --query-label to mark hits and misses",
                path.display()
            );
        }
    }
    if args.json {
        return Ok(serde_json::Value::Array(results).to_string());
    }
    let mut out = String::new();
    for r in &results {
        out.push_str(&format!("{}\n", r["query"].as_str().unwrap_or_default()));
        for (rank, hit) in r["results"].as_array().into_iter().flatten().enumerate() {
            out.push_str(&format!(
                "  {:>3}  {:.4}  label {:<6} {}\n",
                rank + 1,
                hit["similarity"].as_f64().unwrap_or(f64::NAN),
                hit["label"],
                hit["path"].as_str().unwrap_or_default()
            ));
        }
    }
    Ok(out)
}
