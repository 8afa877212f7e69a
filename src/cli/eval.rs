//! `metron eval`: retrieval metrics of an embedding file.

use std::path::{Path, PathBuf};

use clap::Args;
use metron_core::Embeddings;
use metron_core::NpyElement;
use metron_metrics::{Real, RetrievalConfig, RetrievalReport, evaluate_retrieval};
use ndarray::ArrayView2;

use super::CliError;
use super::common::{
    WithPrecision, in_common_precision, parse_compute, parse_similarity, read_finite,
};
use super::progress::Bar;

/// Arguments of `metron eval`: embedding and label files and the metrics to compute.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Query embeddings (`.npy` f32/f64 [N, d], or `.safetensors`). Without --gallery every
    /// item queries all the others (self-retrieval).
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Labels of --embeddings: `.npy` of any integer type, or a text file, one per line.
    #[arg(long)]
    pub labels: PathBuf,
    /// Gallery embeddings, for query/gallery protocols such as In-shop.
    #[arg(long, requires = "gallery_labels")]
    pub gallery: Option<PathBuf>,
    /// Labels of --gallery.
    #[arg(long, requires = "gallery")]
    pub gallery_labels: Option<PathBuf>,
    /// Similarity: cosine, ip (inner product) or l2 (squared Euclidean).
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// The K of Recall@K, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub k: Vec<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also compute mAP over the full ranking (two more passes over the gallery).
    #[arg(long)]
    pub map: bool,
    /// Skip k-means, NMI and AMI.
    #[arg(long)]
    pub no_clustering: bool,
    /// Seed of the k-means behind NMI and AMI.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the similarity GEMMs run: cpu (plain CPU code, the fastest on a CPU), wgpu,
    /// tch, tch:cuda:N or cuda:N (a Burn device; ranking stays on the host).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn read_set(emb_path: &Path, labels_path: &Path) -> Result<(Embeddings, Vec<i64>), CliError> {
    let emb = read_finite(emb_path)?;
    let labels = metron_core::read_labels(labels_path)?;
    if labels.len() != emb.nrows() {
        return Err(CliError::Usage(format!(
            "{}: {} labels, but {} has {} rows",
            labels_path.display(),
            labels.len(),
            emb_path.display(),
            emb.nrows()
        )));
    }
    if emb.nrows() == 0 {
        return Err(CliError::Usage(format!(
            "{}: no embeddings",
            emb_path.display()
        )));
    }
    Ok((emb, labels))
}

struct Evaluation<'a> {
    query_labels: &'a [i64],
    gallery_labels: Option<&'a [i64]>,
    config: &'a RetrievalConfig,
    bar: &'a Bar,
}

impl WithPrecision for Evaluation<'_> {
    type Output = metron_metrics::Result<RetrievalReport>;
    fn run<T: Real + NpyElement>(
        self,
        query: ArrayView2<'_, T>,
        gallery: Option<ArrayView2<'_, T>>,
    ) -> Self::Output {
        let gallery = gallery.zip(self.gallery_labels);
        evaluate_retrieval(query, self.query_labels, gallery, self.config, self.bar)
    }
}

/// Runs the evaluation and returns the report.
pub fn evaluate(args: &EvalArgs) -> Result<RetrievalReport, CliError> {
    let similarity = parse_similarity(&args.metric)?;
    let compute = parse_compute(&args.device)?;
    let (query, query_labels) = read_set(&args.embeddings, &args.labels)?;
    let gallery = match (&args.gallery, &args.gallery_labels) {
        (Some(g), Some(gl)) => Some(read_set(g, gl)?),
        _ => None,
    };
    let config = RetrievalConfig {
        ks: args.k.clone(),
        similarity,
        compute,
        clustering_seed: (!args.no_clustering).then_some(args.seed),
        full_map: args.map,
        ..Default::default()
    };
    let bar = Bar::new(query.nrows(), "kNN", args.quiet || args.json);
    let work = Evaluation {
        query_labels: &query_labels,
        gallery_labels: gallery.as_ref().map(|g| g.1.as_slice()),
        config: &config,
        bar: &bar,
    };
    let report =
        in_common_precision(&query, gallery.as_ref().map(|g| &g.0), work).map_err(|source| {
            CliError::Metrics {
                context: match &args.gallery {
                    Some(g) => format!("{} vs {}", args.embeddings.display(), g.display()),
                    None => args.embeddings.display().to_string(),
                },
                source,
            }
        })?;
    bar.finish();
    Ok(report)
}

/// The JSON object printed by `--json`: metric name -> value.
pub fn report_json(report: &RetrievalReport) -> serde_json::Value {
    serde_json::Value::Object(
        report
            .metrics()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::from(v)))
            .collect(),
    )
}

/// A human-readable table, with the setting that produced the numbers on top.
pub fn report_table(report: &RetrievalReport) -> String {
    let mut out = format!(
        "{} queries vs {} gallery items ({}), {} similarity\n",
        report.num_queries,
        report.num_gallery,
        if report.self_retrieval {
            "self-retrieval, query excluded"
        } else {
            "query/gallery"
        },
        report.similarity
    );
    if report.lone_queries > 0 {
        out.push_str(&format!(
            "{} queries have no relevant item: they count as misses in Recall@K and are left \
             out of the other metrics\n",
            report.lone_queries
        ));
    }
    for (name, value) in report.metrics() {
        out.push_str(&format!("{name:<16} {value:.4}\n"));
    }
    out
}

/// `metron eval`: the text to print on stdout.
pub fn run(args: &EvalArgs) -> Result<String, CliError> {
    let report = evaluate(args)?;
    Ok(if args.json {
        report_json(&report).to_string()
    } else {
        report_table(&report)
    })
}
