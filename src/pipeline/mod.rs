//! The transcode: per chunk, demux and decode once, make every rung's frames, encode and
//! package them as CMAF segments on the plan's global grid ([`video`]); the audio once for
//! the whole recording, cut on the same grid ([`audio`]).

pub mod audio;
pub mod loudness;
pub mod video;

use std::path::Path;

use ffmpeg_next as ff;

/// Lowers the calling thread's scheduling priority (nice +10, Linux only): for work that
/// is not on a chunk's critical path, the smaller rungs and the audio. A fair scheduler
/// otherwise shares the CPUs equally between every runnable thread, so the largest rung
/// (half the encoding on a typical ladder, on one thread) waits while the others run
/// ahead, and at the end runs alone on one CPU. With it, the other threads fill the CPU
/// time the largest rung leaves; on the 60 s bench the wall time dropped from ~30.6 s to
/// ~28.2 s for the same CPU time. Output bytes do not depend on it.
pub fn give_way() {
    #[cfg(target_os = "linux")]
    // SAFETY: nice(2) only changes the calling thread's priority (Linux threads are tasks);
    // a failure (e.g. a seccomp filter) leaves it as it was, which is harmless.
    unsafe {
        libc::nice(10);
    }
}

/// What a damaged recording costs a decoder: packets it could not use. Each is dropped and
/// the picture (or silence) before it stands in, so one corrupt packet in an hour does not
/// fail the recording; what was concealed is counted and reported.
#[derive(Debug, Default)]
pub(crate) struct Damage {
    pub packets: u64,
    /// Errors in a row without a good packet between: a decoder that keeps failing.
    in_a_row: u32,
}

impl Damage {
    /// Failures in a row after which the decoder is considered stuck rather than fed damage.
    const IN_A_ROW: u32 = 1000;

    /// Absorbs a decoding error caused by the data (counted), or gives back one that is not
    /// (out of memory, or a decoder failing on everything).
    pub(crate) fn conceal(&mut self, error: ff::Error) -> Result<(), ff::Error> {
        match error {
            ff::Error::Other { errno: libc::ENOMEM } => Err(error),
            _ if self.in_a_row >= Self::IN_A_ROW => Err(error),
            _ => {
                self.packets += 1;
                self.in_a_row += 1;
                Ok(())
            }
        }
    }

    /// A packet decoded.
    pub(crate) fn healthy(&mut self) {
        self.in_a_row = 0;
    }
}

/// Whether a libav failure in reading the recording (demuxing, decoding, converting what was
/// decoded) is the input's doing: everything but running out of memory or an I/O failure
/// of the scratch disk. Retrying such an input fails the same way.
pub(crate) fn input_fault(error: &ff::Error) -> bool {
    !matches!(error, ff::Error::Other { errno: libc::ENOMEM | libc::EIO | libc::ENOSPC })
}

/// One segment of one track, ready to store as `<track>/seg_<index>.m4s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSegment {
    /// Global segment number.
    pub index: u32,
    pub bytes: Vec<u8>,
    /// `tfdt` of the segment's first fragment, in the track timescale.
    pub decode_time: u64,
    /// In the track timescale.
    pub duration: u64,
    /// Byte ranges (within `bytes`) of each GOP's key frame with its `moof`, for the
    /// I-frame playlist. Empty for audio.
    pub key_frames: Vec<std::ops::Range<usize>>,
    /// Ticks from the segment's start to each key frame, parallel to `key_frames`.
    pub key_frame_times: Vec<u64>,
}

/// Opens libavformat's `mp4` muxer writing fragmented MP4 the way CMAF wants it: an empty
/// `moov`, `tfdt` in every fragment, fragments cut only where we ask ([`close_fragment`]),
/// and no `mfra` index at the end (segments are served separately).
fn open_muxer(
    path: &Path,
    parameters: ff::codec::Parameters,
    timescale: u32,
) -> Result<ff::format::context::Output, ff::Error> {
    let mut output = ff::format::output_as(&path, "mp4")?;
    let mut stream = output.add_stream(ff::encoder::find(ff::codec::Id::None))?;
    let hevc = parameters.id() == ff::codec::Id::HEVC;
    stream.set_parameters(parameters);
    if hevc {
        // `hvc1`, not libavformat's default `hev1`: parameter sets in the sample entry only,
        // as Apple's HLS authoring spec requires for fMP4 HEVC.
        // SAFETY: the stream was just added and its codecpar is allocated; the header is not
        // written yet.
        unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = u32::from_le_bytes(*b"hvc1") };
    }
    stream.set_time_base(ff::Rational::new(1, timescale as i32));
    let mut options = ff::Dictionary::new();
    options.set("movflags", "empty_moov+default_base_moof+frag_custom+skip_trailer");
    options.set("video_track_timescale", &timescale.to_string());
    output.write_header_with(options)?;
    Ok(output)
}

/// Ends the current fragment: the next packet starts a new `moof`.
fn close_fragment(output: &mut ff::format::context::Output) -> Result<(), ff::Error> {
    // SAFETY: a NULL packet asks the muxer (frag_custom) to flush the fragment; the context
    // is open and owned by the caller.
    let ret = unsafe { ff::ffi::av_write_frame(output.as_mut_ptr(), std::ptr::null_mut()) };
    if ret < 0 { Err(ff::Error::from(ret)) } else { Ok(()) }
}
