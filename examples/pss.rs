//! The PSS loop (Progressive Sample Selection) end to end: train Smooth-AP on the labelled
//! images, cluster the embeddings of all training images, fine-tune on labelled + selected
//! pseudo-labelled images, repeat; report per iteration the pseudo-labels' quality against
//! the hidden classes and held-out Recall@K.
//!
//! ```text
//! cargo run --release --example pss                         # Omniglot, minutes on a CPU
//! cargo run --release --example pss -- --dataset inaturalist-pss --root data/iNaturalist2018 \
//!     --preset paper --pretrained resnet50.pth --device cuda:0
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::retrieval::recall_ks;
use metron::systems::smooth_ap::pss::{PssArgs, PssOutcome, format_pss_table, run};

#[derive(Debug, Parser)]
#[command(
    name = "pss",
    about = "Progressive Sample Selection (Cao et al. 2022) with Smooth-AP, on a kNN-graph clustering"
)]
struct Cli {
    #[command(flatten)]
    args: PssArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(PssOutcome::Finished(report)) => {
            let ks = report
                .iterations
                .first()
                .map(|r| recall_ks(&r.test))
                .unwrap_or_default();
            println!("{}", format_pss_table(&report, &ks).trim_end());
            println!(
                "images: trained on; selected (of them seen classes): unlabelled images given a \
                 pseudo-label; P / R / NMI: pairwise precision, recall and NMI of the \
                 pseudo-labels against the hidden classes; R@K / NMI: held-out test classes; \
                 Kc: the control, the same fine-tuning on the labelled images alone"
            );
            println!(
                "run directory {}: report.json, iter_K/ (a Smooth-AP run each; features/ holds \
                 the exported features and labels)",
                report.run_dir.display()
            );
            if cli.args.smooth_ap.run.json {
                println!("{}", serde_json::to_value(&*report).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Ok(PssOutcome::Stopped {
            run_dir,
            iteration,
            epochs_done,
        }) => {
            println!(
                "stopped in iteration {iteration} after epoch {epochs_done}; continue with --resume {}",
                run_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
