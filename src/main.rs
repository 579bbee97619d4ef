//! The `ladder` binary: parse, set up logging, run, map the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // SVT-AV1 prints its banner to stdout unless told otherwise (1 = errors only).
    if std::env::var_os("SVT_LOG").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("SVT_LOG", "1") };
    }
    // The allocator and libav's SIMD flags, before any other thread could use them.
    ladder::media::init();
    let cli = ladder::cli::Cli::parse();
    ladder::cli::init_logging(&cli.global);
    match ladder::cli::run(cli) {
        Ok(outcome) => outcome.into(),
        // `ladder … | head`: the reader has what it wanted.
        Err(err) if ladder::stdout::is_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let outcome = ladder::cli::outcome_of(&err);
            tracing::debug!(?outcome, "failed");
            let _ = writeln!(std::io::stderr(), "error: {}", ladder::message::render(&err));
            outcome.into()
        }
    }
}
