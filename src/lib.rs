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
pub mod logging;
pub mod media;
pub mod message;
pub mod metrics;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod probe;
pub mod progress;
pub mod quality;
pub mod rate;
pub mod record;
pub mod remux;
pub mod report;
pub mod run;
pub mod serve;
pub mod stdout;
pub mod thumbs;
