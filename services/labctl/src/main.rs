use std::process::ExitCode;

use clap::Parser;
use labctl::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Two workers, and the blocking pool bounded as in the services (the sink's file
    // writes and the store audit use it).
    let runtime = match shop_telemetry::runtime::build(2) {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("labctl: error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(labctl::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("labctl: error: {}", labctl::http::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
