//! The transcode: per chunk, demux and decode once, make every rung's frames, encode and
//! package them as CMAF segments on the plan's global grid.

pub mod video;
