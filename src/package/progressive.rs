//! Progressive files for downloads and podcast feeds, made from the stored CMAF track
//! without encoding again: the init segment and every segment joined into a fragmented
//! MP4, then copied by libavformat into a plain MP4 (`moov` first, `faststart`) whose
//! timeline starts at zero.

use std::path::Path;

use ffmpeg_next::{self as ff, ffi};

use crate::exit::{ExitClass, Outcome};

/// Why a progressive file could not be made from stored segments: ours (or the store's),
/// never the recording's, since they were written and checked by this plan.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProgressiveError {
    #[error("making {name}: {context}: {source}")]
    Libav { name: String, context: &'static str, source: ff::Error },
    #[error("making {name}: scratch file: {source}")]
    Scratch { name: String, source: std::io::Error },
}

impl ExitClass for ProgressiveError {
    fn outcome(&self) -> Outcome {
        Outcome::Transient
    }
}

/// A progressive file from `track` (a CMAF track's init segment and segments, joined), in
/// the container libavformat calls `format` (`ipod` for `.m4a`, `mp4`), titled `title`.
/// `scratch` holds the two files while they are made.
pub(crate) fn progressive(
    name: &str,
    track: &[u8],
    format: &str,
    title: &str,
    scratch: &Path,
) -> Result<Vec<u8>, ProgressiveError> {
    let scratch_error = |source| ProgressiveError::Scratch { name: name.to_owned(), source };
    let dir = tempfile::tempdir_in(scratch).map_err(scratch_error)?;
    let (fragmented, plain) = (dir.path().join("fragmented.mp4"), dir.path().join("plain"));
    std::fs::write(&fragmented, track).map_err(scratch_error)?;
    remux(&fragmented, &plain, format, title).map_err(|(context, source)| ProgressiveError::Libav {
        name: name.to_owned(),
        context,
        source,
    })?;
    std::fs::read(&plain).map_err(scratch_error)
}

/// Copies every stream of `input` into `output`, timestamps shifted so the first packet
/// is at zero.
fn remux(input: &Path, output: &Path, format: &str, title: &str) -> Result<(), (&'static str, ff::Error)> {
    crate::media::init();
    let mut ictx = ff::format::input(&input).map_err(|e| ("reading the segments", e))?;
    let mut octx = ff::format::output_as(&output, format).map_err(|e| ("creating the file", e))?;
    // SAFETY: a plain flag of an output context whose header is not written yet: no
    // library version or dates, so every run makes the same bytes.
    unsafe { (*octx.as_mut_ptr()).flags |= ffi::AVFMT_FLAG_BITEXACT };
    let mut time_bases = Vec::new();
    for ist in ictx.streams() {
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| ("adding a stream", e))?;
        ost.set_parameters(ist.parameters());
        // SAFETY: the stream was just added; its codecpar is allocated. A tag of 0 lets the
        // muxer choose the one its container uses.
        unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
        time_bases.push(ist.time_base());
    }
    let mut metadata = ff::Dictionary::new();
    metadata.set("title", title);
    octx.set_metadata(metadata);
    let mut options = ff::Dictionary::new();
    options.set("movflags", "+faststart");
    octx.write_header_with(options).map_err(|e| ("writing the header", e))?;
    let mut first: Vec<Option<i64>> = vec![None; time_bases.len()];
    for (stream, mut packet) in ictx.packets() {
        let index = stream.index();
        let start = *first[index].get_or_insert(packet.dts().or(packet.pts()).unwrap_or(0));
        packet.set_pts(packet.pts().map(|t| t - start));
        packet.set_dts(packet.dts().map(|t| t - start));
        let out_base = octx.stream(index).map(|s| s.time_base()).unwrap_or(time_bases[index]);
        packet.rescale_ts(time_bases[index], out_base);
        packet.set_position(-1);
        packet.set_stream(index);
        packet.write_interleaved(&mut octx).map_err(|e| ("writing a packet", e))?;
    }
    octx.write_trailer().map_err(|e| ("finishing the file", e))
}
