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
    few_malloc_arenas();
    let cli = ladder::cli::Cli::parse();
    ladder::cli::init_logging(&cli.global);
    match ladder::cli::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            let outcome = ladder::exit::classify(&err);
            tracing::debug!(?outcome, "failed");
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            outcome.into()
        }
    }
}

/// Two malloc arenas instead of glibc's eight per CPU, unless `MALLOC_ARENA_MAX` says
/// otherwise. A run has a dozen threads (decoder, rungs, audio, storage, S3 requests), and
/// what each freed into an arena of its own stayed mapped: ~25-35 MB of peak RSS on the bench,
/// at the same CPU time within the machine's noise (figures in docs/performance.md).
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: plain glibc tuning call, made before any other thread exists; a failure
        // (0) leaves the default in place.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}
