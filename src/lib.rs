//! `ladder`: a batch transcoder for recordings of live events.
//!
//! The data flow (see `ARCHITECTURE.md`): [`probe`] a recording, [`plan`] the work from a
//! [`preset`], run it, and publish. Media work goes through libav ([`media`]).

pub mod cli;
pub mod dispatch;
pub mod exit;
pub mod media;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod probe;
pub mod rate;
pub mod serve;
