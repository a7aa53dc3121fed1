//! `strata`: parse the command line, run it, report an error once.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapKind;
use strata::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                ClapKind::DisplayHelp | ClapKind::DisplayVersion => 0,
                // runc exits 1 on a usage error.
                _ => 1,
            };
            // Printing help or a usage error can only fail on a closed stdout/stderr.
            let _printed = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(e) => {
            strata::logging::error(&e.chain());
            ExitCode::from(1)
        }
    }
}
