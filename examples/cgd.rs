//! CGD (Combination of Global Descriptors) end to end: train, then report Recall@K of the
//! trained network beside the untrained network and raw pixels.
//!
//! ```text
//! cargo run --release --example cgd                      # Omniglot, minutes on a CPU
//! cargo run --release --example cgd -- --dataset cub --root data/CUB_200_2011 \
//!     --preset paper --pretrained resnet50.pth --device cuda:0
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::cgd::{CgdArgs, run};
use metron::systems::retrieval::{
    RetrievalOutcome, describe_outputs, format_table, print_stopped, recall_ks, report_json,
};

#[derive(Debug, Parser)]
#[command(name = "cgd", about = "Train and evaluate CGD (Jun et al. 2019)")]
struct Cli {
    #[command(flatten)]
    args: CgdArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(RetrievalOutcome::Finished(report)) => {
            let ks = recall_ks(&report.trained);
            println!(
                "{}",
                format_table(&report, &ks, "trained (CGD)", &[]).trim_end()
            );
            println!("{}", describe_outputs(&report.run_dir));
            if cli.args.run.json {
                println!("{}", report_json(&report));
            }
            ExitCode::SUCCESS
        }
        Ok(RetrievalOutcome::Stopped {
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
