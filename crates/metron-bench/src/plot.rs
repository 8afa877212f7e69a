//! The report's pictures: the ratio chart and the scaling plots.

use std::path::Path;

use metron_viz::{BarChart, LinePlot, Series, save_bar_chart, save_line_plots};

use crate::Result;
use crate::job::{Job, Model};
use crate::report::{JobResult, Report, SideResult};
use crate::suite::Section;

/// One bar per (job, peer) of the main table: metron's median time over the peer's.
pub fn ratio_chart(report: &Report, path: &Path) -> Result<()> {
    let mut chart = BarChart::new(
        format!(
            "metron time / peer time ({} mode, below 1 = metron faster)",
            report.mode
        ),
        "ratio of median times",
    )
    .with_reference(1.0);
    for r in report.results.iter().filter(|r| r.section == Section::Main) {
        for p in &r.peers {
            if let Some(ratio) = r.ratio(p) {
                chart = chart.with_bar(format!("{} vs {}", short(&r.job), p.chart_name()), ratio);
            }
        }
    }
    if chart.bars.is_empty() {
        return Ok(());
    }
    save_bar_chart(path, &chart, 900)?;
    Ok(())
}

/// kNN time against N^2 d, training-step time against the batch, and peak memory against
/// the batch, each for metron and its first peer.
pub fn scaling_plots(report: &Report, path: &Path) -> Result<()> {
    let knn: Vec<&JobResult> = report
        .results
        .iter()
        .filter(|r| r.section == Section::KnnScaling)
        .collect();
    let batch: Vec<&JobResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.section, Section::BatchScaling | Section::Memory))
        .collect();
    if knn.is_empty() && batch.is_empty() {
        return Ok(());
    }
    let side_points = |rows: &[&JobResult],
                       x: &dyn Fn(&Job) -> f64,
                       y: &dyn Fn(&SideResult) -> Option<f64>,
                       peer: bool| {
        rows.iter()
            .filter_map(|r| {
                let side = if peer { r.peers.first()? } else { &r.metron };
                Some((x(&r.job), y(side)?))
            })
            .collect::<Vec<_>>()
    };
    let median = |s: &SideResult| s.median();
    let peak = |s: &SideResult| s.seconds.map(|_| s.peak_rss_mb);
    let mut plots = Vec::new();
    if !knn.is_empty() {
        let work = |j: &Job| match j {
            Job::Knn { n, dim, .. } => (*n as f64).powi(2) * *dim as f64 / 1e12,
            _ => f64::NAN,
        };
        let peer_name = knn[0].peers.first().map_or("peer", SideResult::chart_name);
        plots.push(
            LinePlot::new("exact kNN: time vs N*N*d", "N*N*d / 1e12", "seconds")
                .with_series(Series::new(
                    "metron",
                    side_points(&knn, &work, &median, false),
                ))
                .with_series(Series::new(
                    peer_name,
                    side_points(&knn, &work, &median, true),
                )),
        );
    }
    let batch_of = |j: &Job| match j {
        Job::Backbone { batch, .. } => *batch as f64,
        _ => f64::NAN,
    };
    let of_model = |m: Model| -> Vec<&JobResult> {
        batch
            .iter()
            .copied()
            .filter(|r| matches!(r.job, Job::Backbone { model, .. } if model == m))
            .collect()
    };
    let resnet = of_model(Model::Resnet50);
    let vit = of_model(Model::VitB16);
    if !resnet.is_empty() {
        plots.push(
            LinePlot::new(
                "ResNet-50 training step vs batch",
                "batch (224 x 224)",
                "seconds",
            )
            .with_series(Series::new(
                "metron",
                side_points(&resnet, &batch_of, &median, false),
            ))
            .with_series(Series::new(
                "PyTorch",
                side_points(&resnet, &batch_of, &median, true),
            )),
        );
    }
    if !resnet.is_empty() || !vit.is_empty() {
        plots.push(
            LinePlot::new("training-step peak RSS vs batch", "batch (224 x 224)", "MB")
                .with_series(Series::new(
                    "ResNet-50 metron",
                    side_points(&resnet, &batch_of, &peak, false),
                ))
                .with_series(Series::new(
                    "ResNet-50 PyTorch",
                    side_points(&resnet, &batch_of, &peak, true),
                ))
                .with_series(Series::new(
                    "ViT-B/16 metron",
                    side_points(&vit, &batch_of, &peak, false),
                ))
                .with_series(Series::new(
                    "ViT-B/16 PyTorch",
                    side_points(&vit, &batch_of, &peak, true),
                )),
        );
    }
    save_line_plots(path, &plots, 520, 360)?;
    Ok(())
}

fn short(job: &Job) -> String {
    match job {
        Job::Knn { n, dim, metric, .. } => format!(
            "knn {} {}k x {dim}",
            match metric {
                crate::job::KnnMetric::Cosine => "ip",
                crate::job::KnnMetric::L2 => "l2",
            },
            n / 1000
        ),
        Job::Loss { loss, .. } => loss.name().to_string(),
        Job::Backbone {
            model, mode, batch, ..
        } => format!(
            "{} {} b{batch}",
            model.name(),
            match mode {
                crate::job::Mode::Infer => "infer",
                crate::job::Mode::Train => "train",
            }
        ),
        Job::Data { .. } => "jpeg pipeline".to_string(),
        Job::Cgd { .. } => "cgd example".to_string(),
    }
}
