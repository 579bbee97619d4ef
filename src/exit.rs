//! Exit codes, the contract with Kubernetes' `podFailurePolicy` and with scripts:
//! 0 done · 2 usage/preset error · 3 bad input (do not retry) · 4 transient (retry) ·
//! 5 interrupted (resumable).
//!
//! Each error type states its own class next to its definition ([`ExitClass`]); a wrapping
//! error delegates to the error it wraps. This module depends on nothing above it: the
//! binary tells [`classify`] which error types to look for.

use std::error::Error;

/// How a run ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    Done = 0,
    /// Bad command line or preset: fix the call, then retry.
    Usage = 2,
    /// The input can never be transcoded: do not retry.
    BadInput = 3,
    /// Storage or another passing failure: retry.
    Transient = 4,
    /// Stopped by a signal; finished chunks are kept, a rerun resumes.
    Interrupted = 5,
}

impl Outcome {
    /// The class's name in logs and metrics: `done`, `usage`, `bad_input`, `transient`,
    /// `interrupted`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Usage => "usage",
            Self::BadInput => "bad_input",
            Self::Transient => "transient",
            Self::Interrupted => "interrupted",
        }
    }
}

impl From<Outcome> for std::process::ExitCode {
    fn from(o: Outcome) -> Self {
        Self::from(o as u8)
    }
}

/// An error that knows its exit class.
pub trait ExitClass {
    fn outcome(&self) -> Outcome;
}

/// A usage problem found by a command handler rather than by clap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl ExitClass for UsageError {
    fn outcome(&self) -> Outcome {
        Outcome::Usage
    }
}

/// Reads one cause's class if it is of a given error type: see [`class_of`].
pub type ClassReader = fn(&(dyn Error + 'static)) -> Option<Outcome>;

/// The class of `cause` if it is an `E`.
pub fn class_of<E: ExitClass + Error + 'static>(cause: &(dyn Error + 'static)) -> Option<Outcome> {
    cause.downcast_ref::<E>().map(E::outcome)
}

/// Classifies a failure by the first error in its cause chain that one of `readers`
/// knows. Anything unknown is treated as transient: retrying a bug costs a retry, while
/// calling a passing storage failure permanent would lose a recording.
pub fn classify(err: &anyhow::Error, readers: &[ClassReader]) -> Outcome {
    err.chain().find_map(|cause| readers.iter().find_map(|read| read(cause))).unwrap_or(Outcome::Transient)
}

/// The class of an I/O failure on a path the user named: one that waiting cannot fix
/// (not a folder, no permission, read-only) is theirs to fix (exit 2); the rest pass.
pub fn io_class(e: &std::io::Error) -> Outcome {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::AlreadyExists
        | ErrorKind::ReadOnlyFilesystem => Outcome::Usage,
        _ => Outcome::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bad input")]
    struct Bad;

    impl ExitClass for Bad {
        fn outcome(&self) -> Outcome {
            Outcome::BadInput
        }
    }

    const READERS: &[ClassReader] = &[class_of::<Bad>, class_of::<UsageError>];

    #[test]
    fn causes_deep_in_the_chain_decide() {
        let err = anyhow::Error::new(Bad).context("probing the input").context("running");
        assert_eq!(classify(&err, READERS), Outcome::BadInput);
        let err = anyhow::Error::new(UsageError("bad".into())).context("outer");
        assert_eq!(classify(&err, READERS), Outcome::Usage);
        assert_eq!(classify(&anyhow::anyhow!("socket closed"), READERS), Outcome::Transient);
    }

    #[test]
    fn io_failures_a_user_must_fix_are_usage() {
        let not_dir = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        assert_eq!(io_class(&not_dir), Outcome::Usage);
        assert_eq!(io_class(&std::io::Error::from(std::io::ErrorKind::TimedOut)), Outcome::Transient);
    }
}
