//! `ladder`: a batch transcoder for recordings of live events.
//!
//! The data flow (see `ARCHITECTURE.md`): [`probe`] a recording, [`plan`] the work from a
//! [`preset`], [`run`] it (chunks through [`pipeline`], stored at a [`location`] with
//! [`record`]s), then [`assemble`] and publish. Media work goes through libav ([`media`]).

pub mod assemble;
pub mod cli;
pub mod dispatch;
pub mod exit;
pub mod layout;
pub mod location;
pub mod media;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod probe;
pub mod progress;
pub mod quality;
pub mod rate;
pub mod record;
pub mod report;
pub mod run;
pub mod serve;
pub mod thumbs;

/// The exit class of a failure that reached the binary: that of the first error in its
/// cause chain whose type is one of the crate's (each type decides its own, see [`exit`]).
pub fn outcome_of(err: &anyhow::Error) -> exit::Outcome {
    use exit::class_of;
    exit::classify(
        err,
        &[
            class_of::<run::RunError>,
            class_of::<location::StorageError>,
            class_of::<preset::PresetError>,
            class_of::<exit::UsageError>,
            class_of::<probe::ProbeError>,
            class_of::<plan::PlanError>,
            class_of::<dispatch::DispatchError>,
            class_of::<pipeline::video::ChunkError>,
            class_of::<pipeline::audio::AudioError>,
            class_of::<media::encoder::EncoderError>,
            class_of::<assemble::AssembleError>,
        ],
    )
}
