//! WGOL weakly supervised localisation end to end: train VGG-16 classifiers on canvases of
//! Omniglot glyphs with image labels only, then localise the target glyph with the CAM, SPA
//! and SOS maps and report classification, Top-1 / Top-5 and GT-known localisation beside the
//! whole-canvas box, a centred box of the mean size and the untrained network.
//!
//! ```text
//! cargo run --release --example wgol              # the Omniglot canvases, CPU, minutes
//! cargo run --release --example wgol -- --json    # the report as JSON on the last line
//! ```

use std::process::ExitCode;

use clap::Parser;
use metron::systems::retrieval::print_stopped;
use metron::systems::wgol::{
    WgolArgs, WgolOutcome, describe_outputs, format_table, report_json, run,
};

#[derive(Debug, Parser)]
#[command(
    name = "wgol",
    about = "Train and evaluate WGOL weakly supervised localisation"
)]
struct Cli {
    #[command(flatten)]
    args: WgolArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(WgolOutcome::Finished(report)) => {
            println!("{}", format_table(&report).trim_end());
            println!("{}", describe_outputs(&report.run_dir));
            if cli.args.run.json {
                println!("{}", report_json(&report));
            }
            ExitCode::SUCCESS
        }
        Ok(WgolOutcome::Stopped {
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
