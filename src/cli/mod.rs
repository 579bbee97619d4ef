//! The command line: the clap types (`args`), how flags become the library's settings
//! (`settings`), and one handler per command, each printing its own results. Handlers use
//! `anyhow`; everything they call returns typed errors. This is the only module that prints.

mod args;
mod dispatch;
mod plan;
mod presets;
mod probe;
mod run;
mod serve;
mod settings;

use crate::exit::Outcome;

pub use args::{Cli, GlobalArgs};
use args::{Command, LogFormat};

/// Sets up `tracing` on stderr (`crate::logging`).
pub fn init_logging(global: &GlobalArgs) {
    let format = match global.log_format {
        LogFormat::Auto => crate::logging::LogFormat::for_stderr(),
        LogFormat::Text => crate::logging::LogFormat::Text,
        LogFormat::Json => crate::logging::LogFormat::Json,
    };
    crate::logging::init(format, &global.log);
}

/// Runs a parsed command line; results go to stdout.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let mut out = crate::stdout::Stdout::lock();
    match cli.command {
        Command::Probe(args) => probe::execute(&mut out, &args),
        Command::Plan(args) => plan::execute(&mut out, &args),
        Command::Run(args) => run::execute(&mut out, &args),
        Command::Presets(command) => presets::execute(&mut out, &command),
        Command::Dispatch(args) => dispatch::execute(&mut out, &args),
        Command::Serve(args) => serve::execute(&mut out, args),
    }
}

/// The exit class of a failure that reached the binary: that of the first error in its
/// cause chain whose type is one of the crate's (each type decides its own, see
/// [`crate::exit`]).
pub fn outcome_of(err: &anyhow::Error) -> Outcome {
    use crate::exit::{UsageError, class_of, classify};
    use crate::{assemble, dispatch, location, media, pipeline, plan, preset, probe, run};
    classify(
        err,
        &[
            class_of::<run::RunError>,
            class_of::<location::StorageError>,
            class_of::<preset::PresetError>,
            class_of::<UsageError>,
            class_of::<probe::ProbeError>,
            class_of::<plan::PlanError>,
            class_of::<crate::remux::RemuxError>,
            class_of::<crate::subtitles::SubtitleError>,
            class_of::<dispatch::DispatchError>,
            class_of::<pipeline::video::ChunkError>,
            class_of::<pipeline::audio::AudioError>,
            class_of::<media::encoder::EncoderError>,
            class_of::<assemble::AssembleError>,
            class_of::<crate::metrics::PushError>,
        ],
    )
}
