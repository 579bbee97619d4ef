//! Progressive files for downloads and podcast feeds, made from stored CMAF tracks
//! without encoding again: each track's init segment and segments joined into a
//! fragmented MP4 in scratch, then copied by libavformat into one plain MP4 (`moov` first,
//! `faststart`) whose tracks start together at zero.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ffmpeg_next::{self as ff, Rescale, ffi};

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

/// A progressive file being made. Each track, a CMAF track's init segment then its
/// segments, is written to scratch piece by piece ([`Progressive::append`]), so a long
/// rung never sits in memory whole; [`Progressive::finish`] copies them into one file.
pub(crate) struct Progressive {
    name: String,
    dir: tempfile::TempDir,
    tracks: Vec<PathBuf>,
}

impl Progressive {
    /// `name` is the file's, for errors; `scratch` holds the pieces while they are made.
    pub(crate) fn new(name: &str, scratch: &Path) -> Result<Self, ProgressiveError> {
        let dir = tempfile::tempdir_in(scratch).map_err(|source| Self::scratch_error(name, source))?;
        Ok(Self { name: name.to_owned(), dir, tracks: Vec::new() })
    }

    fn scratch_error(name: &str, source: std::io::Error) -> ProgressiveError {
        ProgressiveError::Scratch { name: name.to_owned(), source }
    }

    /// Starts the next track: what [`Progressive::append`] writes goes to it.
    pub(crate) fn start_track(&mut self) -> Result<(), ProgressiveError> {
        let path = self.dir.path().join(format!("fragmented_{}.mp4", self.tracks.len()));
        std::fs::File::create(&path).map_err(|source| Self::scratch_error(&self.name, source))?;
        self.tracks.push(path);
        Ok(())
    }

    /// Appends `bytes` (the init segment, then each segment in order) to the current track.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), ProgressiveError> {
        let path = self.tracks.last().expect("start_track comes before append");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| Self::scratch_error(&self.name, source))?;
        file.write_all(bytes).map_err(|source| Self::scratch_error(&self.name, source))
    }

    /// The tracks as one progressive file, in the container libavformat calls `format`
    /// (`ipod` for `.m4a`, `mp4`), titled `title`.
    pub(crate) fn finish(self, format: &str, title: &str) -> Result<Vec<u8>, ProgressiveError> {
        let plain = self.dir.path().join("plain");
        remux(&self.tracks, &plain, format, title).map_err(|(context, source)| ProgressiveError::Libav {
            name: self.name.clone(),
            context,
            source,
        })?;
        std::fs::read(&plain).map_err(|source| Self::scratch_error(&self.name, source))
    }
}

type LibavResult<T> = Result<T, (&'static str, ff::Error)>;

/// One input track being copied: its demuxer, the packet it holds next, and where its
/// presentation starts (subtracted from every time stamp).
struct Source {
    input: ff::format::context::Input,
    time_base: ff::Rational,
    next: Option<ff::Packet>,
    start: Option<i64>,
}

impl Source {
    fn open(path: &Path) -> LibavResult<Self> {
        let input = ff::format::input(&path).map_err(|e| ("reading the segments", e))?;
        let time_base =
            input.stream(0).map(|s| s.time_base()).ok_or(("reading the segments", ff::Error::StreamNotFound))?;
        let mut source = Self { input, time_base, next: None, start: None };
        source.advance()?;
        Ok(source)
    }

    /// Reads the next packet of the track's (single) stream.
    fn advance(&mut self) -> LibavResult<()> {
        let mut packet = ff::Packet::empty();
        self.next = match packet.read(&mut self.input) {
            Ok(()) => Some(packet),
            Err(ff::Error::Eof) => None,
            Err(e) => return Err(("reading a packet", e)),
        };
        Ok(())
    }

    /// The next packet's decode time in microseconds, to interleave the tracks by.
    fn next_micros(&self) -> Option<i64> {
        let p = self.next.as_ref()?;
        Some(p.dts().or(p.pts()).unwrap_or(0).rescale(self.time_base, ff::Rational::new(1, 1_000_000)))
    }
}

/// Copies the (single) stream of each of `inputs` into `output`, interleaved by decode
/// time. Each track is shifted so that its first packet is presented at zero: the first
/// packet of a CMAF track is its earliest presented sample (a closed GOP's key frame, or
/// audio), and every track of a ladder starts presentation at the same time, so the tracks
/// stay in sync (a video's decode times start below zero; the muxer's edit list keeps them).
fn remux(inputs: &[PathBuf], output: &Path, format: &str, title: &str) -> LibavResult<()> {
    crate::media::init();
    let mut sources = inputs.iter().map(|path| Source::open(path)).collect::<LibavResult<Vec<_>>>()?;
    let mut octx = ff::format::output_as(&output, format).map_err(|e| ("creating the file", e))?;
    // SAFETY: a plain flag of an output context whose header is not written yet: no
    // library version or dates, so every run makes the same bytes.
    unsafe { (*octx.as_mut_ptr()).flags |= ffi::AVFMT_FLAG_BITEXACT };
    for source in &sources {
        let ist = source.input.stream(0).expect("opened with a stream");
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| ("adding a stream", e))?;
        ost.set_parameters(ist.parameters());
        // SAFETY: the stream was just added; its codecpar is allocated. A tag of 0 lets the
        // muxer choose the one its container uses.
        unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
    }
    let mut metadata = ff::Dictionary::new();
    metadata.set("title", title);
    octx.set_metadata(metadata);
    let mut options = ff::Dictionary::new();
    options.set("movflags", "+faststart");
    octx.write_header_with(options).map_err(|e| ("writing the header", e))?;
    while let Some(index) = earliest(&sources) {
        let source = &mut sources[index];
        let mut packet = source.next.take().expect("earliest names a source with a packet");
        let start = *source.start.get_or_insert(packet.pts().or(packet.dts()).unwrap_or(0));
        packet.set_pts(packet.pts().map(|t| t - start));
        packet.set_dts(packet.dts().map(|t| t - start));
        let out_base = octx.stream(index).map_or(source.time_base, |s| s.time_base());
        packet.rescale_ts(source.time_base, out_base);
        packet.set_position(-1);
        packet.set_stream(index);
        packet.write_interleaved(&mut octx).map_err(|e| ("writing a packet", e))?;
        source.advance()?;
    }
    octx.write_trailer().map_err(|e| ("finishing the file", e))
}

/// The source whose next packet decodes first (the first such on a tie).
fn earliest(sources: &[Source]) -> Option<usize> {
    (0..sources.len()).filter_map(|k| Some((sources[k].next_micros()?, k))).min().map(|(_, k)| k)
}
