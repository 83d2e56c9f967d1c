//! `cargo run -p xtask -- nix-fmt [--check] [FILES...]`
//! `cargo run -p xtask -- nixos-eval [--require]`
//! `cargo run -p xtask -- options-doc [--check]`

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "alertlab repository tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Format Nix files with alejandra (the library behind `nix fmt`'s formatter).
    ///
    /// Without FILES, every .nix file of the repository (outside target/ and .git/).
    /// Exit status: 0 formatted, 2 with --check when a file needs formatting, 1 on error.
    NixFmt {
        /// Only check: list the files that need formatting, change nothing.
        #[arg(long)]
        check: bool,
        /// Files to format (default: all .nix files of the repository).
        files: Vec<PathBuf>,
    },
    /// Evaluate the NixOS modules with ../shared/tools/nixos-eval (check.sh): each module
    /// alone, the lab profile and the example host, against nixpkgs' real modules.
    ///
    /// Without the harness's nixpkgs subset (NIXOS_EVAL_SUBSET, default /tmp/nixpkgs-subset)
    /// it says loudly that it skipped and exits 0, or 3 with --require.
    NixosEval {
        /// Fail (exit 3) instead of skipping when the subset or the harness is missing.
        #[arg(long)]
        require: bool,
    },
    /// Regenerate the README's table of the NixOS modules' options from their source.
    ///
    /// Exit status: 0 up to date (or rewritten), 2 with --check when it is stale, 1 on error.
    OptionsDoc {
        /// Only check that README.md's table is current.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Command::NixFmt { check, files } => match run_nix_fmt(check, files) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("xtask nix-fmt: {error:#}");
                ExitCode::from(1)
            }
        },
        Command::NixosEval { require } => run_nixos_eval(require),
        Command::OptionsDoc { check } => match run_options_doc(check) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("xtask options-doc: {error:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn run_options_doc(check: bool) -> anyhow::Result<ExitCode> {
    let root = xtask::repo_root();
    let path = root.join("README.md");
    let readme = std::fs::read_to_string(&path)?;
    let updated =
        xtask::options_doc::readme_with_table(&readme, &xtask::options_doc::options_table(&root)?)?;
    if updated == readme {
        println!("README.md's options table is up to date");
        Ok(ExitCode::SUCCESS)
    } else if check {
        eprintln!("README.md's options table is stale: run `cargo run -p xtask -- options-doc`");
        Ok(ExitCode::from(2))
    } else {
        std::fs::write(&path, updated)?;
        println!("README.md's options table rewritten");
        Ok(ExitCode::SUCCESS)
    }
}

fn run_nixos_eval(require: bool) -> ExitCode {
    let root = xtask::repo_root();
    let check_sh = xtask::nixos_eval_check_sh();
    let subset = xtask::nixos_eval_subset();
    let missing = [
        (&check_sh, "the nixos-eval harness"),
        (&subset, "the nixos-eval nixpkgs subset"),
    ]
    .into_iter()
    .find(|(path, _)| !path.exists());
    if let Some((path, what)) = missing {
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!(
            "!! SKIPPED: NixOS module evaluation: {what} is missing at {}",
            path.display()
        );
        eprintln!("!! (see ../shared/tools/nixos-eval/README.md to assemble the subset)");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        return if require {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        };
    }
    let overlay = root.join("nixos-modules/eval/overlay.nix");
    let scratch = std::env::temp_dir().join(format!("xtask-nixos-eval-{}", std::process::id()));
    let mut failed = Vec::new();
    for (index, case) in xtask::NIXOS_EVAL_CASES.iter().enumerate() {
        let dump = scratch.join(format!("case-{index}"));
        let _ = std::fs::remove_dir_all(&dump);
        let status = std::process::Command::new("bash")
            .arg(&check_sh)
            .args(if case.vm {
                ["--mode", "vm"]
            } else {
                ["--mode", "host"]
            })
            .arg("--strict-warnings")
            .arg("--subset")
            .arg(&subset)
            .arg("--overlay")
            .arg(&overlay)
            .arg("--dump")
            .arg(&dump)
            .args(case.files.iter().map(|file| root.join(file)))
            .status();
        let problems = match status {
            Ok(status) if status.success() => report_problems(&root, case, &dump),
            Ok(status) => vec![format!("check.sh failed ({status})")],
            Err(error) => vec![format!("could not run check.sh: {error}")],
        };
        if problems.is_empty() {
            println!("nixos-eval OK: {}", case.what);
        } else {
            println!("nixos-eval FAILED: {}", case.what);
            for problem in &problems {
                println!("  {problem}");
            }
            failed.push(case.what);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let total = xtask::NIXOS_EVAL_CASES.len();
    println!(
        "nixos-eval: {} passed, {} failed",
        total - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What a passing case's report shows against its expectations.
fn report_problems(
    root: &std::path::Path,
    case: &xtask::EvalCase,
    dump: &std::path::Path,
) -> Vec<String> {
    let report = std::fs::read_to_string(dump.join("report.json"))
        .map_err(anyhow::Error::from)
        .and_then(|text| Ok(serde_json::from_str(&text)?));
    let scratch = dump.join("units");
    match report.and_then(|report: serde_json::Value| {
        std::fs::create_dir_all(&scratch)?;
        // Every case: each unit of ours has the limits of nixos-modules/lib/unit-limits.json.
        let mut problems = xtask::eval_report::unit_limit_problems(root, &report)?;
        problems.extend(xtask::eval_report::check(
            root,
            &report,
            case.expect,
            &scratch,
        )?);
        Ok(problems)
    }) {
        Ok(problems) => problems,
        Err(error) => vec![format!("reading the report: {error:#}")],
    }
}

fn run_nix_fmt(check: bool, files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = if files.is_empty() {
        xtask::nix_files(&xtask::repo_root())?
    } else {
        files
    };
    let changed = xtask::nix_fmt(&files, check)?;
    for file in &changed {
        if check {
            println!("needs formatting: {}", file.display());
        } else {
            println!("formatted: {}", file.display());
        }
    }
    if check && !changed.is_empty() {
        eprintln!(
            "{} of {} Nix files need formatting; run `cargo run -p xtask -- nix-fmt` (or `nix fmt`)",
            changed.len(),
            files.len()
        );
        return Ok(ExitCode::from(2));
    }
    println!(
        "{} Nix files {}",
        files.len(),
        if check { "are formatted" } else { "checked" }
    );
    Ok(ExitCode::SUCCESS)
}
