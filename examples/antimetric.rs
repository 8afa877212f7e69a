//! AntiMetric (meta-class ensembles) end to end: train the ensemble and one learner alone,
//! then report Recall@K of both beside the untrained ensemble and raw pixels.
//!
//! ```text
//! cargo run --release --example antimetric                  # Omniglot, minutes on a CPU
//! cargo run --release --example antimetric -- --dataset cars196 --root data/CARS196 \
//!     --preset paper --pretrained resnet18.pth --device cuda:0
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::antimetric::{AntiMetricArgs, AntiMetricOutcome, run};
use metron::systems::retrieval::{describe_outputs, format_table, print_stopped, recall_ks};

#[derive(Debug, Parser)]
#[command(
    name = "antimetric",
    about = "Train and evaluate AntiMetric meta-class ensembles"
)]
struct Cli {
    #[command(flatten)]
    args: AntiMetricArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(AntiMetricOutcome::Finished(report)) => {
            let ks = recall_ks(&report.ensemble.trained);
            let single: Vec<_> = report
                .single_learner
                .iter()
                .map(|m| ("one learner (E = 1)", m))
                .collect();
            let table = format_table(&report.ensemble, &ks, "trained ensemble", &single);
            println!("{}", table.trim_end());
            println!("{}", describe_outputs(&report.ensemble.run_dir));
            if cli.args.run.json {
                println!("{}", serde_json::to_value(&*report).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Ok(AntiMetricOutcome::Stopped {
            run_dir,
            epochs_done,
        }) => {
            print_stopped(&run_dir, epochs_done);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
