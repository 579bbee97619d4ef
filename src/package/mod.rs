//! Packaging: CMAF fragmented MP4 (splitting a muxed chunk into `init.mp4` and
//! `seg_<n>.m4s`, placing it on the global timeline) and the codec strings manifests need;
//! the manifests themselves (`hls`, `dash`) from a `track::TrackSummary` per track.

pub(crate) mod captions;
pub mod cmaf;
pub(crate) mod dash;
pub(crate) mod hls;
pub(crate) mod progressive;
pub(crate) mod track;
