//! `ladder`: a batch transcoder for recordings of live events.
//!
//! The data flow (see `ARCHITECTURE.md`): [`probe`] a recording, [`plan`] the work from a
//! [`preset`], `run` it (chunks through [`pipeline`], stored at a [`location`] with
//! `record`s), then `assemble` and publish. Media work goes through libav ([`media`]).
//!
//! What is public is what something outside the library uses: the binary (`cli`, `exit`,
//! `message`, `stdout`, `media::init`), the integration tests (`probe`, `plan`, `preset`,
//! `location`, `dispatch`, `serve`, `pipeline`, `package::cmaf`, `progress`, `rate`,
//! `report`, `media::encoder`) and the fuzz target (`remux`, `pipeline`). Everything else is
//! `pub(crate)`, and `unreachable_pub` keeps it so.

#![warn(unreachable_pub)]

pub(crate) mod assemble;
pub mod cli;
pub mod dead_air;
pub mod dispatch;
pub mod exit;
pub(crate) mod language;
pub(crate) mod layout;
pub mod location;
pub(crate) mod logging;
pub mod media;
pub mod memory;
pub mod message;
pub(crate) mod metrics;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod probe;
pub mod progress;
pub(crate) mod quality;
pub mod rate;
pub(crate) mod record;
pub mod remux;
pub mod report;
pub(crate) mod run;
pub mod serve;
pub mod stdout;
pub mod subtitles;
pub(crate) mod thumbs;
pub mod trim;
