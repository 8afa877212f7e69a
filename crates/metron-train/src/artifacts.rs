//! The files a finished run leaves for people: curves, a retrieval grid, embeddings.

use std::path::Path;

use ndarray::{Array1, Array2};

use metron_datasets::Sample;
use metron_metrics::{KnnOptions, Similarity, knn};
use metron_viz::{GridRow, LinePlot, Series, save_line_plots, save_retrieval_grid};

use crate::{EmbeddedSplit, EpochRecord, Result, TrainError};

/// `curves.png`: mean training loss and test Recall@1 (in %) per epoch; the untrained network
/// is epoch 0 of the Recall@1 curve.
pub fn write_curves(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let loss: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| r.loss.map(|l| (r.epoch as f64, l)))
        .collect();
    let recall: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| {
            r.test
                .get("recall_at_1")
                .map(|v| (r.epoch as f64, 100.0 * v))
        })
        .collect();
    let plots = [
        LinePlot::new("training loss", "epoch", "loss").with_series(Series::new("train", loss)),
        LinePlot::new("Recall@1 on the test split", "epoch", "Recall@1 (%)")
            .with_series(Series::new("test", recall)),
    ];
    save_line_plots(path, &plots, 560, 380)?;
    Ok(())
}

/// `retrieval_grid.png`: `queries` test images spread evenly over the split, each followed by
/// its `k` nearest neighbours (cosine) framed green (same class) or red. Neighbours come from
/// `gallery` when given, else from the queries' own split with the query itself left out.
pub fn write_retrieval_grid(
    path: &Path,
    query: (&EmbeddedSplit, &[Sample]),
    gallery: Option<(&EmbeddedSplit, &[Sample])>,
    queries: usize,
    k: usize,
) -> Result<()> {
    let self_retrieval = gallery.is_none();
    let (q_emb, q_samples) = query;
    let (g_emb, g_samples) = gallery.unwrap_or(query);
    let n = q_emb.embeddings.nrows();
    let available =
        g_emb.embeddings.nrows() - usize::from(self_retrieval).min(g_emb.embeddings.nrows());
    let queries = queries.min(n);
    let k = k.min(available);
    if queries == 0 || k == 0 {
        return Ok(());
    }
    let depth = (k + usize::from(self_retrieval)).min(g_emb.embeddings.nrows());
    let rows: Vec<usize> = (0..queries).map(|i| i * n / queries).collect();
    let q = q_emb.embeddings.select(ndarray::Axis(0), &rows);
    let neighbors = knn(
        q.view(),
        g_emb.embeddings.view(),
        depth,
        &KnnOptions::new(Similarity::Cosine),
    )?;
    let grid: Vec<GridRow> = rows
        .iter()
        .enumerate()
        .map(|(qi, &row)| {
            let hits = neighbors.indices[qi * depth..(qi + 1) * depth]
                .iter()
                .filter(|&&g| !(self_retrieval && g == row))
                .take(k);
            hits.fold(
                GridRow::new(q_samples[q_emb.indices[row]].path.clone()),
                |r, &g| {
                    r.with_result(
                        g_samples[g_emb.indices[g]].path.clone(),
                        g_emb.labels[g] == q_emb.labels[row],
                    )
                },
            )
        })
        .collect();
    save_retrieval_grid(path, &grid, 96)?;
    Ok(())
}

/// `embeddings.npy` (`[N, D]` f32) and `labels.npy` (`[N]` i64), row-aligned.
pub fn write_embeddings(
    embeddings_path: &Path,
    labels_path: &Path,
    emb: &EmbeddedSplit,
) -> Result<()> {
    let e: &Array2<f32> = &emb.embeddings;
    metron_core::write_npy(embeddings_path, e)?;
    metron_core::write_npy(labels_path, &Array1::from(emb.labels.clone())).map_err(TrainError::from)
}
