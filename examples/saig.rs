//! SAIG cross-view geo-localisation end to end: train two unshared SAIG branches to match a
//! ground view of a place with its aerial view, then report Recall@K, top-1 % and hit rate of
//! the trained model beside the untrained model and a polar-correlation baseline.
//!
//! ```text
//! cargo run --release --example saig                      # the Omniglot two-view task, CPU
//! cargo run --release --example saig -- --preset paper --dataset cvusa --root data/CVUSA \
//!     --device cuda:0
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::retrieval::print_stopped;
use metron::systems::saig::{
    SaigArgs, SaigOutcome, describe_outputs, format_table, recall_ks, report_json, run,
};

#[derive(Debug, Parser)]
#[command(
    name = "saig",
    about = "Train and evaluate SAIG cross-view geo-localisation"
)]
struct Cli {
    #[command(flatten)]
    args: SaigArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(SaigOutcome::Finished(report)) => {
            let ks = recall_ks(&report);
            println!("{}", format_table(&report, &ks).trim_end());
            println!("{}", describe_outputs(&report.run_dir));
            if cli.args.run.json {
                println!("{}", report_json(&report));
            }
            ExitCode::SUCCESS
        }
        Ok(SaigOutcome::Stopped {
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
