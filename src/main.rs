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
/// otherwise. A run has a dozen threads (decoder, rungs, audio, storage, S3 requests); each
/// freeing into an arena of its own kept ~25 MB of peak RSS locally and ~35 MB with S3
/// (60 s bench input, `small`: local 325 -> 297 MiB, S3 -> S3 352 -> 318 MiB, CPU time
/// unchanged within the machine's noise). The encoders allocate per chunk, not per frame, so
/// the arenas' locks are not contended.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: plain glibc tuning call, made before any other thread exists; a failure
        // (0) leaves the default in place.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}
