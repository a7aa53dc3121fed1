//! `strata`: parse the command line, run it, report an error once.

use std::process::ExitCode;

use strata::cli::{Parsed, command_help, parse_args, run, version_text};

fn main() -> ExitCode {
    strata::phases::mark("main");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse_args(&args) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Version) => {
            print!("{}", version_text());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // runc exits 1 on a usage error, after saying what is wrong.
            eprintln!("error: {}\n\n{}", e.message, command_help(e.command));
            return ExitCode::from(1);
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
