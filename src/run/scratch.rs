//! The scratch folder muxers write into.

use std::path::{Path, PathBuf};

use super::RunError;

/// The scratch folder: the one asked for, or a temporary one removed afterwards.
pub(super) enum Scratch {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Scratch {
    pub(super) fn new(given: Option<&Path>) -> Result<Self, RunError> {
        let err = |path: &Path| {
            let path = path.display().to_string();
            move |source| RunError::Scratch { path, source }
        };
        match given {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(err(dir))?;
                Ok(Self::Given(dir.to_owned()))
            }
            None => {
                let dir = tempfile::Builder::new().prefix("ladder-").tempdir().map_err(err(&std::env::temp_dir()))?;
                Ok(Self::Temporary(dir))
            }
        }
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temporary(t) => t.path(),
        }
    }
}
