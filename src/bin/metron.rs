use std::process::ExitCode;

use clap::Parser;
use metron::cli::{Cli, CliError, Command, datasets, embed, eval, knn, localize, polar, synth};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Knn(args) => knn::run(args),
        Command::KnnMerge(args) => knn::run_merge(args),
        Command::Synth(args) => synth::run(args),
        Command::Datasets(args) => datasets::run(args),
        Command::Embed(args) => embed::run_embed(args),
        Command::Search(args) => embed::run_search(args),
        Command::Polar(args) => polar::run(args),
        Command::Localize(args) => localize::run(args),
    };
    match result {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(CliError::CheckFailed(report)) => {
            println!("{}", report.trim_end());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
