use std::process::ExitCode;

use clap::Parser;
use labctl::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
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
