//! Why a run failed, and the exit class of each way.

use crate::assemble::AssembleError;
use crate::exit::{ExitClass, Outcome};
use crate::location::StorageError;
use crate::media::encoder::EncoderError;
use crate::pipeline::audio::AudioError;
use crate::pipeline::video::ChunkError;
use crate::plan::PlanError;
use crate::probe::ProbeError;
use crate::remux::RemuxError;
use crate::subtitles::SubtitleError;

/// Why a run failed. Each wrapped error decides its own exit class.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Remux(#[from] RemuxError),
    #[error(transparent)]
    Subtitles(#[from] SubtitleError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("preparing the encoders: {0}")]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    #[error("scratch folder {path}: {source}")]
    Scratch { path: String, source: std::io::Error },
    /// The process's own parts disagree (a bug, or a machine fault): retried.
    #[error("{0}")]
    Inconsistent(String),
    #[error("{}", owned_message(output, input, preset, writer.as_deref()))]
    Owned { output: String, input: String, preset: String, writer: Option<String> },
    #[error("interrupted: finished chunks are recorded in the output; run the same command again to finish")]
    Interrupted,
}

impl ExitClass for RunError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Storage(e) => e.outcome(),
            Self::Probe(e) => e.outcome(),
            Self::Plan(e) => e.outcome(),
            Self::Remux(e) => e.outcome(),
            Self::Subtitles(e) => e.outcome(),
            Self::Chunk(e) => e.outcome(),
            Self::Audio(e) => e.outcome(),
            Self::Encoder(e) => e.outcome(),
            Self::Assemble(e) => e.outcome(),
            // A folder the user named that cannot be used is theirs to fix; a full disk passes.
            Self::Scratch { source, .. } => crate::exit::io_class(source),
            Self::Inconsistent(_) => Outcome::Transient,
            // Another recording's output: the call must name another, or say to overwrite.
            Self::Owned { .. } => Outcome::Usage,
            Self::Interrupted => Outcome::Interrupted,
        }
    }
}

fn owned_message(output: &str, input: &str, preset: &str, writer: Option<&str>) -> String {
    match writer {
        Some(writer) => format!(
            "{output} is being written right now by {writer}, for {input} (preset {preset}): give another --out, \
             or wait for that run to end before using --overwrite"
        ),
        None => format!(
            "{output} holds the ladder of another recording, {input} (preset {preset}): give another --out, or \
             --overwrite to replace it"
        ),
    }
}
