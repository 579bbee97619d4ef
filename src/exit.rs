//! Exit codes, the contract with Kubernetes' `podFailurePolicy` and with scripts:
//! 0 done · 2 usage/preset error · 3 bad input (do not retry) · 4 transient (retry) ·
//! 5 interrupted (resumable).

use crate::dispatch::DispatchError;
use crate::plan::PlanError;
use crate::preset::PresetError;
use crate::probe::ProbeError;

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

impl From<Outcome> for std::process::ExitCode {
    fn from(o: Outcome) -> Self {
        Self::from(o as u8)
    }
}

/// A usage problem found by a command handler rather than by clap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Classifies a failure by the first typed error in its cause chain. Anything unknown is
/// treated as transient: retrying a bug costs a retry, while calling a passing storage
/// failure permanent would lose a recording.
pub fn classify(err: &anyhow::Error) -> Outcome {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::run::RunError>() {
            return e.outcome();
        }
        if let Some(e) = cause.downcast_ref::<crate::location::StorageError>() {
            return if e.is_usage() {
                Outcome::Usage
            } else if e.is_bad_input() {
                Outcome::BadInput
            } else {
                Outcome::Transient
            };
        }
        if cause.is::<PresetError>() || cause.is::<UsageError>() {
            return Outcome::Usage;
        }
        if let Some(e) = cause.downcast_ref::<ProbeError>() {
            return if e.is_transient() { Outcome::Transient } else { Outcome::BadInput };
        }
        if cause.is::<PlanError>() {
            return Outcome::BadInput;
        }
        if let Some(e) = cause.downcast_ref::<DispatchError>() {
            return e.outcome();
        }
        if let Some(e) = cause.downcast_ref::<crate::remux::RemuxError>() {
            return e.outcome();
        }
    }
    Outcome::Transient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_deep_in_the_chain_decide() {
        let err = anyhow::Error::new(ProbeError::Empty { path: "x".into() }).context("probing the input");
        assert_eq!(classify(&err), Outcome::BadInput);
        let err = anyhow::Error::new(UsageError("bad".into())).context("outer");
        assert_eq!(classify(&err), Outcome::Usage);
        assert_eq!(classify(&anyhow::anyhow!("socket closed")), Outcome::Transient);
    }

    #[test]
    fn storage_failures_split_into_deployment_input_and_passing_ones() {
        use crate::location::StorageError;
        let location = || "s3://b/p".to_owned();
        let config = StorageError::Config { location: location(), problem: "bucket \"b\" does not exist".into() };
        assert_eq!(classify(&anyhow::Error::new(config).context("opening the output")), Outcome::Usage);
        let missing = StorageError::InputMissing { location: location(), key: "rec.mp4".into() };
        assert_eq!(classify(&anyhow::Error::new(missing)), Outcome::BadInput);
        let remote =
            StorageError::Remote { location: location(), action: "storing", key: "k".into(), detail: "503".into() };
        assert_eq!(classify(&anyhow::Error::new(remote)), Outcome::Transient);
        let run = crate::run::RunError::from(StorageError::InputMissing { location: location(), key: "k".into() });
        assert_eq!(classify(&anyhow::Error::new(run)), Outcome::BadInput);
    }
}
