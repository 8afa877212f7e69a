//! Smooth-AP end to end: train with the smoothed-AP loss on class-contiguous batches, train the
//! same network with a classification loss (`ams`) as a baseline, then report Recall@K and NMI
//! of both beside the untrained network and raw pixels.
//!
//! ```text
//! cargo run --release --example smooth_ap                   # Omniglot, minutes on a CPU
//! cargo run --release --example smooth_ap -- --dataset inaturalist-smoothap \
//!     --root data/iNaturalist2018 --preset paper --pretrained resnet50.pth --device cuda:0
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::retrieval::{describe_outputs, format_table, print_stopped, recall_ks};
use metron::systems::smooth_ap::{SmoothApArgs, SmoothApOutcome, run};

#[derive(Debug, Parser)]
#[command(
    name = "smooth_ap",
    about = "Train and evaluate Smooth-AP (Brown et al. 2020), beside an ams baseline"
)]
struct Cli {
    #[command(flatten)]
    args: SmoothApArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(SmoothApOutcome::Finished(report)) => {
            let ks = recall_ks(&report.main.trained);
            let name = format!("trained ({})", loss_name(&report.main.setup));
            let baseline_name = report
                .baseline
                .as_ref()
                .map(|b| format!("trained ({})", b.loss.name()));
            let extra: Vec<_> = report
                .baseline
                .iter()
                .zip(&baseline_name)
                .map(|(b, n)| (n.as_str(), &b.metrics))
                .collect();
            let table = format_table(&report.main, &ks, &name, &extra);
            println!("{}", table.trim_end());
            println!("{}", describe_outputs(&report.main.run_dir));
            if cli.args.run.json {
                println!("{}", serde_json::to_value(&*report).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Ok(SmoothApOutcome::Stopped {
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

/// The loss's short name from the report's setup line (`"smoothap (tau ...)"`).
fn loss_name(setup: &serde_json::Value) -> &str {
    setup["loss"]
        .as_str()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("smoothap")
}
