//! Probe: what a recording is (container, streams, timing, geometry), through libav, and
//! the gate that rejects bad input with one clear sentence before any real work starts.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::ptr;

use ffmpeg_next::{self as ff, codec, ffi, media};
use serde::{Deserialize, Serialize};

use crate::exit::{ExitClass, Outcome};
use crate::location::Source;
use crate::rate::FrameRate;

/// The largest pictures ladder accepts: checked on the container's header, and given to
/// the decoder as `max_pixels` before anything is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_side: u32,
    pub max_pixels: u64,
}

impl Default for Limits {
    /// 8K UHD (7680x4320) fits, with either orientation.
    fn default() -> Self {
        Self { max_side: 8192, max_pixels: 8192 * 4320 }
    }
}

/// What a recording is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    pub path: String,
    pub size_bytes: u64,
    /// libav's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    pub container_long_name: String,
    /// The container's `title` tag, if any.
    #[serde(default)]
    pub title: Option<String>,
    /// Of the video stream when known, else of the container.
    pub duration_seconds: f64,
    /// Container bitrate in bit/s, when known.
    pub bit_rate: Option<u64>,
    /// `None` for an audio-only recording.
    pub video: Option<VideoInfo>,
    /// The audio track libav picks as the main one: the output's span follows it.
    pub audio: Option<AudioInfo>,
    /// Every audio track, in file order (the main one too).
    #[serde(default)]
    pub audio_tracks: Vec<AudioInfo>,
    /// Every stream, in file order.
    pub streams: Vec<StreamInfo>,
    /// Every subtitle stream, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitle_tracks: Vec<SubtitleInfo>,
    /// Where the timestamps jump (an encoder restart, a splice): taken out, so the content
    /// after each jump follows what came before (see [`crate::remux`]).
    pub discontinuities: Vec<Discontinuity>,
    /// Why the transcode reads a re-based Matroska copy of the recording rather than the
    /// recording itself (its container has no key frame index, or its timestamps jump).
    pub remux: Option<String>,
}

/// A jump of a recording's timestamps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Discontinuity {
    /// Where the content after the jump is placed, in seconds from the recording's start.
    pub at_seconds: f64,
    /// How far the timestamps jumped there (negative: back).
    pub jump_seconds: f64,
}

/// The video stream ladder will transcode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VideoInfo {
    pub index: usize,
    pub codec: String,
    pub profile: Option<String>,
    /// Coded size, before rotation.
    pub width: u32,
    pub height: u32,
    /// Sample (pixel) aspect ratio as `num:den`, `1:1` when unknown.
    pub sample_aspect_ratio: (u32, u32),
    /// Clockwise rotation a player applies for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Size as displayed: rotation and sample aspect ratio applied.
    pub display_width: u32,
    pub display_height: u32,
    pub pixel_format: String,
    pub bit_depth: u32,
    /// The stream's nominal rate (libav's `r_frame_rate`), when it has one.
    pub nominal_fps: Option<FrameRate>,
    /// Frames over duration (libav's `avg_frame_rate`), when known.
    pub average_fps: Option<FrameRate>,
    /// Frame intervals vary (WebRTC recordings, dropped frames, gaps).
    pub variable_frame_rate: bool,
    pub interlaced: bool,
    /// CEA-608/708 closed captions in the video stream (A/53 side data of its first
    /// pictures).
    #[serde(default)]
    pub closed_captions: bool,
    /// `progressive`, `tff`, `bff` or `unknown`.
    pub field_order: String,
    pub frame_count: Option<u64>,
    /// The first picture's time and the end of the last, in seconds on the recording's
    /// clock (after any [`Discontinuity`] is taken out).
    pub start_seconds: f64,
    pub end_seconds: f64,
}

/// An audio stream of the recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudioInfo {
    pub index: usize,
    /// The stream's `language` tag as the container gives it (`eng`, `de`), if any.
    #[serde(default)]
    pub language: Option<String>,
    /// The stream's `title` tag, if any.
    #[serde(default)]
    pub title: Option<String>,
    /// Whether the container marks it the default track.
    #[serde(default)]
    pub default: bool,
    /// Whether the linked libav can decode it.
    #[serde(default)]
    pub decodable: bool,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// libav's description of the layout, e.g. `stereo`, `5.1(side)`.
    pub layout: String,
    pub sample_format: String,
    /// The first sample's time and the end of the last, in seconds on the recording's
    /// clock, when the container says.
    pub start_seconds: Option<f64>,
    pub end_seconds: Option<f64>,
}

/// A subtitle stream of the recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubtitleInfo {
    pub index: usize,
    pub codec: String,
    /// The stream's `language` tag as the container gives it, if any.
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Marked forced (shown when the viewer picked no subtitles: signs, foreign speech).
    #[serde(default)]
    pub forced: bool,
    /// Text the linked libav decodes (mov_text, SubRip, WebVTT, ASS), which can become
    /// WebVTT; bitmaps (PGS, DVB, VobSub) cannot.
    pub text: bool,
}

/// One stream of the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamInfo {
    pub index: usize,
    /// `video`, `audio`, `subtitle`, `data` or `attachment`.
    pub kind: String,
    pub codec: String,
}

/// Why a recording cannot be transcoded. Every variant but `Io` is permanent: retrying
/// the same input cannot help.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: the file is empty (0 bytes)")]
    Empty { path: PathBuf },
    #[error("{path}: the file is truncated: {detail} (was the recording finalised and fully uploaded?)")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path}: not a media file libav can read (no known container format)")]
    NotMedia { path: PathBuf },
    #[error(
        "{path}: libav reads it as {container}, not a recording (MP4/MOV, Matroska/WebM, MPEG-TS, HLS, FLV, MPEG-PS, Ogg, AVI, ASF, MXF; audio: M4A, MP3, AAC, WAV, FLAC)"
    )]
    NotARecording { path: PathBuf, container: String },
    #[error("{path}: a damaged {container} file: libav cannot read its header ({detail})")]
    Damaged { path: PathBuf, container: String, detail: String },
    #[error("{path}: the HLS playlist names {uri:?}, {problem}")]
    Playlist { path: PathBuf, uri: String, problem: &'static str },
    #[error(
        "{path}: has no video stream{}",
        if *has_audio { " and no audio stream the linked libav can decode" } else { " and no audio stream" }
    )]
    NoVideo { path: PathBuf, has_audio: bool },
    #[error("{path}: the video is {width}x{height}, above the limit of {max_side} per side and {max_pixels} pixels")]
    TooLarge { path: PathBuf, width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("{path}: video codec {codec} is not supported by the linked libav")]
    UnsupportedCodec { path: PathBuf, codec: String },
    #[error("{path}: the video stream cannot be decoded ({detail})")]
    Undecodable { path: PathBuf, detail: String },
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Reading an object in place failed (the store, not the recording).
    #[error(transparent)]
    Read(crate::location::StorageError),
}

impl ExitClass for ProbeError {
    /// An I/O failure may pass; everything else is the input's (do not retry).
    fn outcome(&self) -> Outcome {
        match self {
            Self::Io { .. } => Outcome::Transient,
            Self::Read(e) => e.outcome(),
            _ => Outcome::BadInput,
        }
    }
}

/// Probes a local recording, rejecting anything ladder cannot transcode.
pub fn probe(path: &Path, limits: &Limits) -> Result<Probe, ProbeError> {
    probe_source(&Source::Local(path.to_owned()), limits)
}

/// Probes a recording, local or read in place, rejecting anything ladder cannot
/// transcode. It reads the container's header and index and the first pictures; only a
/// container without an index to seek by is read through ([`crate::remux`]).
#[tracing::instrument(skip_all, fields(path = %source.name().display()))]
pub fn probe_source(source: &Source, limits: &Limits) -> Result<Probe, ProbeError> {
    probe_inner(source, limits).map_err(|e| read_failure(source, e))
}

/// What failed: a read of the object in place, when one did (libav saw only an I/O error
/// and may have called the file damaged), else `e`.
pub(crate) fn read_failure(source: &Source, e: ProbeError) -> ProbeError {
    source.failure().map_or(e, ProbeError::Read)
}

fn probe_inner(source: &Source, limits: &Limits) -> Result<Probe, ProbeError> {
    crate::media::init();
    let name = source.name();
    let path = name.as_path();
    let size_bytes = check_file(source)?;
    let input = open_input(source, limits)?;
    let streams: Vec<StreamInfo> = input
        .streams()
        .map(|s| StreamInfo {
            index: s.index(),
            kind: kind_name(s.parameters().medium()).to_owned(),
            codec: codec_name(s.parameters().id()),
        })
        .collect();
    let header = match Header::read(path, &input, limits) {
        Err(ProbeError::NoVideo { has_audio: true, .. }) => {
            let subtitle_tracks = subtitle_streams(&input);
            return audio_only(path, size_bytes, &input, streams).map(|p| Probe { subtitle_tracks, ..p });
        }
        header => header?,
    };
    let (params, video_index) = (header.params.clone(), header.video.index);
    let subtitle_tracks = subtitle_streams(&input);
    let scan = scan_video(path, input, video_index, params, limits)?;
    let mut span = header.span(source, limits)?;
    // Nothing said how long the video lasts: its last timestamp does.
    span.duration_seconds.get_or_insert(scan.last_pts_seconds.unwrap_or(0.0));
    let video = header.video_info(&scan, &span);
    Ok(Probe {
        path: path.display().to_string(),
        size_bytes,
        container: header.container.name,
        container_long_name: header.container.long_name,
        title: header.container.title,
        duration_seconds: span.duration_seconds.unwrap_or(0.0),
        bit_rate: header.container.bit_rate,
        video: Some(video),
        audio: header.audio.map(|a| AudioInfo { start_seconds: span.audio.0, end_seconds: span.audio.1, ..a }),
        audio_tracks: header.audio_tracks,
        streams,
        subtitle_tracks,
        discontinuities: span.discontinuities,
        remux: span.remux,
    })
}

/// The recording is a non-empty file of a kind libav is given (not a damaged MP4, not an
/// HLS playlist naming what it may not); its size.
fn check_file(source: &Source) -> Result<u64, ProbeError> {
    let path = match source {
        Source::Local(path) => path,
        Source::Remote(object) => {
            let (path, len) = (source.name(), object.size());
            if len == 0 {
                return Err(ProbeError::Empty { path });
            }
            let reader = source.reader().map_err(|source| ProbeError::Io { path: path.clone(), source })?;
            check_iso_boxes(&path, reader, len)?;
            return Ok(len);
        }
    };
    let p = || path.to_owned();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProbeError::NotFound { path: p() },
        _ => ProbeError::Io { path: p(), source: e },
    })?;
    if !meta.is_file() {
        return Err(ProbeError::NotAFile { path: p() });
    }
    if meta.len() == 0 {
        return Err(ProbeError::Empty { path: p() });
    }
    let file = File::open(path).map_err(|e| ProbeError::Io { path: p(), source: e })?;
    check_iso_boxes(path, file, meta.len())?;
    check_playlist(path)?;
    Ok(meta.len())
}

/// What the container says about itself.
struct Container {
    name: String,
    long_name: String,
    bit_rate: Option<u64>,
    /// The end of the longest stream, for streams that do not say where they end.
    end_seconds: Option<f64>,
    duration_seconds: Option<f64>,
    /// Whether chunks can seek it where it lies ([`in_place`]).
    in_place: bool,
    title: Option<String>,
}

/// What the headers say about the video and the audio, before any packet is read.
struct Header {
    container: Container,
    params: codec::Parameters,
    /// The fields the scan does not decide.
    video: VideoInfo,
    /// The stream's duration in its time base (0 or less when unknown).
    stream_duration: i64,
    time_base: ff::Rational,
    field_order_hint: ffi::AVFieldOrder,
    /// Seconds of the video's first timestamp.
    video_start: Option<f64>,
    audio: Option<AudioInfo>,
    audio_tracks: Vec<AudioInfo>,
    /// (start, end) of the audio in seconds, as the headers give them.
    audio_span: (Option<f64>, Option<f64>),
}

/// What the headers say about a recording's audio.
struct AudioStreams {
    /// The track libav picks as the main one.
    main: Option<AudioInfo>,
    /// Every audio track, in file order.
    tracks: Vec<AudioInfo>,
    /// (start, end) of the main track in seconds.
    span: (Option<f64>, Option<f64>),
}

fn audio_streams(input: &ff::format::context::Input, container: &Container) -> AudioStreams {
    let audio = input
        .streams()
        .best(media::Type::Audio)
        .filter(|s| s.parameters().medium() == media::Type::Audio)
        .map(|s| audio_info(&s));
    let tracks =
        input.streams().filter(|s| s.parameters().medium() == media::Type::Audio).map(|s| audio_info(&s)).collect();
    let span = audio.as_ref().and_then(|a| input.stream(a.index)).map_or((None, None), |s| {
        let start = seconds(s.start_time(), s.time_base());
        let duration = seconds(s.duration(), s.time_base()).filter(|d| *d > 0.0);
        (start, start.zip(duration).map(|(s, d)| s + d).or(container.end_seconds))
    });
    AudioStreams { main: audio, tracks, span }
}

/// An audio-only recording (a room without a camera, a dial-in, a podcast): its audio
/// tracks and where the main one lies. Nothing to decode: no audio track libav can decode.
fn audio_only(
    path: &Path,
    size_bytes: u64,
    input: &ff::format::context::Input,
    streams: Vec<StreamInfo>,
) -> Result<Probe, ProbeError> {
    let container = container(input);
    let AudioStreams { main, tracks: audio_tracks, span: (start, end) } = audio_streams(input, &container);
    let Some(main) = main.filter(|a| a.decodable) else {
        return Err(ProbeError::NoVideo { path: path.to_owned(), has_audio: true });
    };
    let start = start.unwrap_or(0.0);
    let end = end.or(container.duration_seconds.map(|d| start + d)).unwrap_or(start);
    Ok(Probe {
        path: path.display().to_string(),
        size_bytes,
        container: container.name,
        container_long_name: container.long_name,
        title: container.title,
        duration_seconds: end - start,
        bit_rate: container.bit_rate,
        video: None,
        audio: Some(AudioInfo { start_seconds: Some(start), end_seconds: Some(end), ..main }),
        audio_tracks,
        streams,
        subtitle_tracks: Vec::new(),
        discontinuities: Vec::new(),
        remux: None,
    })
}

/// Seconds of a timestamp in `base`, unless it is unknown.
fn seconds(t: i64, base: ff::Rational) -> Option<f64> {
    (t != ffi::AV_NOPTS_VALUE).then(|| t as f64 * f64::from(base))
}

impl Header {
    fn read(path: &Path, input: &ff::format::context::Input, limits: &Limits) -> Result<Self, ProbeError> {
        let stream = video_stream(path, input)?;
        let params = stream.parameters();
        // SAFETY: codecpar of a stream of an open context is valid.
        let par = unsafe { &*params.as_ptr() };
        let (width, height) = (par.width.max(0) as u32, par.height.max(0) as u32);
        check_size(path, width, height, limits)?;
        check_decoder(path, params.id(), par.codec_tag)?;
        let container = container(input);
        let AudioStreams { main: audio, tracks: audio_tracks, span: audio_span } = audio_streams(input, &container);
        let sar = match (par.sample_aspect_ratio.num, par.sample_aspect_ratio.den) {
            (n, d) if n > 0 && d > 0 => (n as u32, d as u32),
            _ => (1, 1),
        };
        let video = VideoInfo {
            index: stream.index(),
            codec: codec_name(params.id()),
            profile: profile_name(params.id(), par.profile),
            width,
            height,
            sample_aspect_ratio: sar,
            rotation: display_rotation(&stream),
            nominal_fps: FrameRate::from_av(stream.rate()).filter(|r| r.as_f64() <= 1000.0),
            average_fps: FrameRate::from_av(stream.avg_frame_rate()),
            frame_count: u64::try_from(stream.frames()).ok().filter(|f| *f > 0),
            ..VideoInfo::default()
        };
        Ok(Self {
            video,
            stream_duration: stream.duration(),
            time_base: stream.time_base(),
            field_order_hint: par.field_order,
            video_start: seconds(stream.start_time(), stream.time_base()),
            params: params.clone(),
            container,
            audio,
            audio_tracks,
            audio_span,
        })
    }

    /// Where the video and the audio lie: from the headers, or, for a container without an
    /// index to trust (and perhaps with jumps), from every packet's time ([`scan_timeline`]).
    fn span(&self, source: &Source, limits: &Limits) -> Result<Span, ProbeError> {
        let start = self.video_start.unwrap_or(0.0);
        let duration_seconds = if self.stream_duration > 0 {
            Some(self.stream_duration as f64 * f64::from(self.time_base))
        } else if let (Some(start), Some(end)) = (self.video_start, self.container.end_seconds) {
            Some(end - start)
        } else {
            self.container.duration_seconds
        };
        let mut span = Span {
            start_seconds: start,
            duration_seconds,
            frame_count: self.video.frame_count,
            audio: self.audio_span,
            discontinuities: Vec::new(),
            remux: None,
        };
        if !self.container.in_place {
            self.scan_span(source, limits, &mut span)?;
        }
        Ok(span)
    }

    fn scan_span(&self, source: &Source, limits: &Limits, span: &mut Span) -> Result<(), ProbeError> {
        let v = &self.video;
        let default_frame = v.nominal_fps.or(v.average_fps).map_or(0.04, |r| 1.0 / r.as_f64());
        let timeline = scan_timeline(source, limits, v.index, self.audio.as_ref().map(|a| a.index), default_frame)?;
        let path = source.name();
        let Some((start, end)) = timeline.video else {
            let detail = "its video stream has no timestamps".to_owned();
            return Err(ProbeError::Undecodable { path: path.to_owned(), detail });
        };
        (span.start_seconds, span.duration_seconds) = (start, Some(end - start));
        span.audio = (timeline.audio.map(|s| s.0), timeline.audio.map(|s| s.1));
        span.frame_count = Some(timeline.video_packets).filter(|n| *n > 0);
        let mut why = match self.container.name.as_str() {
            "matroska,webm" => "it is Matroska written live (no duration or cues)".to_owned(),
            name => format!("{name} has no key frame index to seek by"),
        };
        if !timeline.discontinuities.is_empty() {
            why = format!("{why}, and its timestamps jump {} time(s)", timeline.discontinuities.len());
        }
        (span.discontinuities, span.remux) = (timeline.discontinuities, Some(why));
        Ok(())
    }

    /// The video as probed: the header's fields with what the scan and the span decided.
    fn video_info(&self, scan: &Scan, span: &Span) -> VideoInfo {
        let v = &self.video;
        let field_order = field_order(scan, self.field_order_hint);
        let duration = span.duration_seconds.unwrap_or(0.0);
        let (display_width, display_height) = display_size(v.width, v.height, v.sample_aspect_ratio, v.rotation);
        VideoInfo {
            display_width,
            display_height,
            pixel_format: scan.pixel_format.descriptor().map_or_else(|| "unknown".to_owned(), |d| d.name().to_owned()),
            bit_depth: pixel_bit_depth(scan.pixel_format),
            variable_frame_rate: is_variable(&scan.pts, v.nominal_fps, v.average_fps),
            interlaced: scan.interlaced || matches!(field_order, "tff" | "bff"),
            closed_captions: scan.closed_captions,
            field_order: field_order.to_owned(),
            frame_count: span.frame_count,
            start_seconds: span.start_seconds,
            end_seconds: span.start_seconds + duration,
            ..v.clone()
        }
    }
}

/// Where the streams lie on the recording's clock.
struct Span {
    start_seconds: f64,
    /// The video's, when something says (else the scan's last timestamp stands in).
    duration_seconds: Option<f64>,
    frame_count: Option<u64>,
    /// (start, end) of the audio in seconds.
    audio: (Option<f64>, Option<f64>),
    discontinuities: Vec<Discontinuity>,
    /// Why the recording is transcoded from a re-based copy ([`crate::remux`]).
    remux: Option<String>,
}

/// The largest video stream that is not an attached picture (a cover).
fn video_stream<'a>(
    path: &Path,
    input: &'a ff::format::context::Input,
) -> Result<ff::format::stream::Stream<'a>, ProbeError> {
    let video = input
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Video && !is_attached_picture(s))
        .max_by_key(|s| {
            // SAFETY: codecpar of a stream of an open context is valid.
            let par = unsafe { &*s.parameters().as_ptr() };
            i64::from(par.width) * i64::from(par.height)
        });
    video.ok_or_else(|| {
        let has_audio = input.streams().any(|s| s.parameters().medium() == media::Type::Audio);
        ProbeError::NoVideo { path: path.to_owned(), has_audio }
    })
}

/// libav has a decoder for the video's codec.
fn check_decoder(path: &Path, id: codec::Id, tag: u32) -> Result<(), ProbeError> {
    if ff::decoder::find(id).is_some() {
        return Ok(());
    }
    let codec = if id == codec::Id::None {
        format!("'{}' (unknown to libav)", String::from_utf8_lossy(&tag.to_le_bytes()))
    } else {
        codec_name(id)
    };
    Err(ProbeError::UnsupportedCodec { path: path.to_owned(), codec })
}

fn container(input: &ff::format::context::Input) -> Container {
    let micros = ff::Rational::new(1, ffi::AV_TIME_BASE);
    // SAFETY: a plain field of an open context.
    let start = unsafe { (*input.as_ptr()).start_time };
    let duration_seconds = seconds(input.duration(), micros).filter(|d| *d > 0.0);
    let end_seconds = seconds(start, micros).zip(duration_seconds).map(|(start, duration)| start + duration);
    Container {
        name: input.format().name().to_owned(),
        long_name: input.format().description().to_owned(),
        bit_rate: u64::try_from(input.bit_rate()).ok().filter(|b| *b > 0),
        end_seconds,
        duration_seconds,
        in_place: in_place(input),
        title: tag(&input.metadata(), "title"),
    }
}

/// The field order: what the decoded pictures say, else the header's hint.
fn field_order(scan: &Scan, hint: ffi::AVFieldOrder) -> &'static str {
    match (scan.interlaced, scan.top_field_first, hint) {
        (true, true, _) => "tff",
        (true, false, _) => "bff",
        (false, _, ffi::AVFieldOrder::AV_FIELD_TT | ffi::AVFieldOrder::AV_FIELD_TB) => "tff",
        (false, _, ffi::AVFieldOrder::AV_FIELD_BB | ffi::AVFieldOrder::AV_FIELD_BT) => "bff",
        (false, _, ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE) => "progressive",
        _ => "unknown",
    }
}

/// The picture's size as displayed: stretched by its sample aspect ratio, turned by its
/// rotation.
fn display_size(width: u32, height: u32, sar: (u32, u32), rotation: u32) -> (u32, u32) {
    let (w, h) = if sar.0 > sar.1 {
        ((u64::from(width) * u64::from(sar.0) / u64::from(sar.1)) as u32, height)
    } else {
        (width, (u64::from(height) * u64::from(sar.1) / u64::from(sar.0)) as u32)
    };
    if rotation % 180 == 90 { (h, w) } else { (w, h) }
}

fn check_size(path: &Path, width: u32, height: u32, limits: &Limits) -> Result<(), ProbeError> {
    if width > limits.max_side || height > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ProbeError::TooLarge {
            path: path.to_owned(),
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// ISO BMFF (MP4/MOV) recordings are checked box by box: a recorder that died leaves no
/// `moov`, and an interrupted upload leaves a box running past the end of the file. libav
/// would only say "invalid data".
fn check_iso_boxes(path: &Path, mut file: impl Read + Seek, len: u64) -> Result<(), ProbeError> {
    let io = |e| ProbeError::Io { path: path.to_owned(), source: e };
    let mut header = [0u8; 16];
    let mut pos = 0u64;
    let mut seen = Vec::new();
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        let n = file.read(&mut header).map_err(io)?;
        if n < 8 {
            break;
        }
        // Printable: a damaged file's box types are any bytes.
        let kind: String = header[4..8].iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect();
        if pos == 0 && kind != "ftyp" {
            return Ok(()); // not ISO BMFF: libav decides
        }
        let mut size = u64::from(u32::from_be_bytes([header[0], header[1], header[2], header[3]]));
        if size == 1 && n >= 16 {
            size = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        } else if size == 0 {
            size = len - pos; // box extends to the end of the file
        }
        if size < 8 {
            return Err(ProbeError::Truncated {
                path: path.to_owned(),
                detail: format!("box '{kind}' at byte {pos} is corrupt"),
            });
        }
        if pos + size > len {
            return Err(ProbeError::Truncated {
                path: path.to_owned(),
                detail: format!(
                    "box '{kind}' at byte {pos} needs {size} bytes but the file ends {} bytes later",
                    len - pos
                ),
            });
        }
        seen.push(kind);
        pos += size;
    }
    if !seen.iter().any(|k| k == "moov") {
        return Err(ProbeError::Truncated {
            path: path.to_owned(),
            detail: "it is an MP4 with no 'moov' box".to_owned(),
        });
    }
    Ok(())
}

/// The containers recordings come in, by libav demuxer name. Anything else libav can
/// read (a text file read as ANSI art, a single image, a playlist of other files, a
/// device) is not a recording.
const RECORDING_CONTAINERS: &[&str] = &[
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "mpegts",
    "hls",
    "flv",
    "live_flv",
    "mpeg",
    "ogg",
    "avi",
    "asf",
    "mxf",
    "nut",
    "dv",
    "h264",
    "hevc",
    // Audio-only recordings: a dial-in, a room without a camera, a podcast.
    "mp3",
    "aac",
    "wav",
    "flac",
];

/// Only local files (and what an HLS playlist may use for its encrypted local segments):
/// a playlist inside a hostile upload must not make ladder fetch URLs.
pub(crate) const PROTOCOLS: &std::ffi::CStr = c"file,crypto,data";

/// An HLS recording is its playlist and the files it names, read from beside it: each must
/// be there, and none may be a URL (ladder fetches nothing a recording points at).
fn check_playlist(path: &Path) -> Result<(), ProbeError> {
    let mut head = [0u8; 7];
    let is_playlist = File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"#EXTM3U";
    if !is_playlist {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|source| ProbeError::Io { path: path.to_owned(), source })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for uri in crate::location::hls::uris(&text) {
        let problem = if let Some(why) = crate::location::hls::not_beside(uri) {
            why
        } else if uri.starts_with("data:") {
            continue; // inline (a key), nothing to fetch
        } else if !dir.join(uri).is_file() {
            "not there: the playlist's segments must be beside it"
        } else {
            continue;
        };
        return Err(ProbeError::Playlist {
            path: path.to_owned(),
            uri: crate::message::clip(uri, 120).into_owned(),
            problem,
        });
    }
    Ok(())
}

/// Opens the container and reads stream information without letting any decoder touch a
/// picture above the limits (`max_pixels` for every stream's probe decoder). Refuses what
/// is not a recording container ([`RECORDING_CONTAINERS`]) and any protocol but local files.
pub(crate) fn open_input(source: &Source, limits: &Limits) -> Result<crate::media::input::Opened, ProbeError> {
    let path = source.name();
    let not_media = || ProbeError::NotMedia { path: path.clone() };
    let mut input = match crate::media::input::open(source, PROTOCOLS) {
        Ok(input) => input,
        Err(ff::Error::Other { errno: ff::util::error::ENOENT }) => return Err(ProbeError::NotFound { path }),
        Err(error) => {
            return Err(match recognised_format(source) {
                Some(container) => ProbeError::Damaged { path, container, detail: error.to_string() },
                None => not_media(),
            });
        }
    };
    let format = input.format().name().to_owned();
    if !RECORDING_CONTAINERS.contains(&format.as_str()) {
        // SAFETY: an open context's demuxer is static; its long name may be null.
        let long_name = unsafe { (*(*input.as_ptr()).iformat).long_name };
        let container = if long_name.is_null() {
            format
        } else {
            // SAFETY: a registered demuxer's names are static strings.
            unsafe { std::ffi::CStr::from_ptr(long_name) }.to_string_lossy().into_owned()
        };
        return Err(ProbeError::NotARecording { path, container });
    }
    // SAFETY: the context is open; its streams and their parameters are valid, and
    // find_stream_info is the standard call on an open context.
    unsafe {
        let ctx = input.as_mut_ptr();
        // The header alone often gives the coded size: refuse before any decoding.
        for i in 0..(*ctx).nb_streams as usize {
            let par = &*(*(*(*ctx).streams.add(i))).codecpar;
            if par.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO {
                check_size(&path, par.width.max(0) as u32, par.height.max(0) as u32, limits)?;
            }
        }
        let n = (*ctx).nb_streams as usize;
        let mut options: Vec<*mut ffi::AVDictionary> = vec![ptr::null_mut(); n];
        let key = c"max_pixels";
        let value = std::ffi::CString::new(limits.max_pixels.to_string()).expect("digits have no NUL");
        for o in options.iter_mut() {
            ffi::av_dict_set(o, key.as_ptr(), value.as_ptr(), 0);
        }
        let r = ffi::avformat_find_stream_info(ctx, if n == 0 { ptr::null_mut() } else { options.as_mut_ptr() });
        for o in options.iter_mut() {
            ffi::av_dict_free(o);
        }
        if r < 0 || (*ctx).nb_streams == 0 {
            return Err(not_media());
        }
    }
    Ok(input)
}

/// Whether chunks can seek in the recording as it is: its container indexes key frames
/// (MP4/MOV; Matroska with cues, which a file with a duration has: both are written at the
/// end, by a muxer that could seek back). See [`crate::remux`] for the rest.
fn in_place(input: &ff::format::context::Input) -> bool {
    match input.format().name() {
        "mov,mp4,m4a,3gp,3g2,mj2" => true,
        "matroska,webm" => input.duration() > 0,
        _ => false,
    }
}

/// Where the video and audio lie, from every packet's timestamps, jumps taken out.
struct Timeline {
    /// (start, end) in seconds.
    video: Option<(f64, f64)>,
    audio: Option<(f64, f64)>,
    video_packets: u64,
    discontinuities: Vec<Discontinuity>,
}

fn scan_timeline(
    source: &Source,
    limits: &Limits,
    video: usize,
    audio: Option<usize>,
    frame_seconds: f64,
) -> Result<Timeline, ProbeError> {
    let mut input = open_input(source, limits)?;
    let path = source.name();
    let streams: Vec<usize> = std::iter::once(video).chain(audio).collect();
    let mut spans: [Option<(f64, f64)>; 2] = [None, None];
    let mut video_packets = 0;
    let mut visit = |w: crate::remux::Walked<'_>| {
        let slot = usize::from(w.stream != video);
        if slot == 0 {
            video_packets += 1;
        }
        if let Some(t) = w.packet.pts().or(w.packet.dts()) {
            let base = f64::from(w.time_base);
            let start = t as f64 * base;
            let duration = match w.packet.duration() as f64 * base {
                d if d > 0.0 && d.is_finite() => d,
                _ if slot == 0 => frame_seconds,
                _ => 0.0,
            };
            let span = spans[slot].get_or_insert((start, start + duration));
            *span = (span.0.min(start), span.1.max(start + duration));
        }
        Ok(())
    };
    let rebase = crate::remux::walk(&mut input, &streams, &mut visit)
        .map_err(|e| ProbeError::Undecodable { path: path.to_owned(), detail: format!("reading its packets: {e}") })?;
    Ok(Timeline { video: spans[0], audio: spans[1], video_packets, discontinuities: rebase.discontinuities })
}

/// The container libav recognises from the file's first bytes, when it is sure of it (a
/// file whose header libav then fails to read is a damaged one, not an unknown one).
fn recognised_format(source: &Source) -> Option<String> {
    let format = sniff(source)?;
    // SAFETY: a registered demuxer's names are static strings.
    unsafe {
        let name = if (*format).long_name.is_null() { (*format).name } else { (*format).long_name };
        Some(std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// Whether a recording read in place is worth reading so: not one of the containers
/// without a key frame index ([`crate::remux`]), which are read through twice (the probe's
/// scan, the copy), as libav tells from the first bytes.
pub(crate) fn seekable_in_place(source: &Source) -> bool {
    let Some(format) = sniff(source) else { return true };
    // SAFETY: a registered demuxer's name is a static string.
    let name = unsafe { std::ffi::CStr::from_ptr((*format).name) }.to_string_lossy();
    !matches!(name.as_ref(), "mpegts" | "flv" | "live_flv" | "mpeg" | "ogg" | "h264" | "hevc" | "nut" | "dv")
}

/// libav's demuxer for the first 4 KiB, when it is sure of it.
fn sniff(source: &Source) -> Option<*const ffi::AVInputFormat> {
    let mut head = vec![0u8; 4096];
    let n = source.reader().and_then(|mut f| f.read(&mut head)).ok()?;
    // libav reads up to AVPROBE_PADDING_SIZE bytes past the end: zeros.
    head.truncate(n);
    head.resize(n + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let data =
        ffi::AVProbeData { filename: c"".as_ptr(), buf: head.as_mut_ptr(), buf_size: n as i32, mime_type: ptr::null() };
    let mut score = 0;
    // SAFETY: the buffer holds `buf_size` bytes and the zeroed padding libav may read.
    let format = unsafe { ffi::av_probe_input_format3(&data, 1, &mut score) };
    (!format.is_null() && score >= ffi::AVPROBE_SCORE_MAX / 4).then_some(format)
}

/// What reading the start of the video stream tells: the decoded pixel format and field
/// structure of the first frame, and packet timestamps for frame-rate analysis.
struct Scan {
    /// CEA-608/708 captions in the first pictures.
    closed_captions: bool,
    pixel_format: ff::format::Pixel,
    interlaced: bool,
    top_field_first: bool,
    /// Presentation times of up to `SCAN_PACKETS` video packets, in stream time base.
    pts: Vec<i64>,
    last_pts_seconds: Option<f64>,
}

const SCAN_PACKETS: usize = 600;

/// The decode times of the first [`SCAN_PACKETS`] samples of `stream` from an MP4's index
/// (`stts`, every sample), in the stream's time base; `None` for other containers, whose
/// index (Matroska's cues) lists key frames only.
fn index_times(input: &ff::format::context::Input, stream: usize) -> Option<Vec<i64>> {
    if input.format().name() != "mov,mp4,m4a,3gp,3g2,mj2" {
        return None;
    }
    let stream = input.stream(stream)?;
    // SAFETY: the stream belongs to an open context; entries are read by index below the
    // count libav gives, and the returned pointers are used before anything else is read.
    unsafe {
        let st = stream.as_ptr() as *mut ffi::AVStream;
        let count = ffi::avformat_index_get_entries_count(st).max(0) as usize;
        if count < 2 {
            return None;
        }
        let times = (0..count.min(SCAN_PACKETS))
            .filter_map(|i| ffi::avformat_index_get_entry(st, i as i32).as_ref())
            .map(|e| e.timestamp)
            .collect();
        Some(times)
    }
}

/// Whether the first pictures carry closed captions (A/53 `cc_data`, which a captioner
/// sends with every picture, padding when nobody speaks): decoded up to `FRAMES` pictures.
#[derive(Default)]
struct CaptionScan {
    pictures: usize,
    found: bool,
}

impl CaptionScan {
    const FRAMES: usize = 60;

    fn wants_more(&self) -> bool {
        !self.found && self.pictures < Self::FRAMES
    }

    fn look(&mut self, frame: &ff::frame::Video) {
        self.pictures += 1;
        self.found |= frame.side_data(ff::frame::side_data::Type::A53CC).is_some();
    }
}

fn scan_video(
    path: &Path,
    mut input: crate::media::input::Opened,
    index: usize,
    params: codec::Parameters,
    limits: &Limits,
) -> Result<Scan, ProbeError> {
    let undecodable = |detail: String| ProbeError::Undecodable { path: path.to_owned(), detail };
    let mut context = codec::Context::from_parameters(params).map_err(|e| undecodable(e.to_string()))?;
    // SAFETY: the context is not opened yet; max_pixels is a plain field read at open.
    unsafe { (*context.as_mut_ptr()).max_pixels = limits.max_pixels as i64 };
    let mut decoder = context.decoder().video().map_err(|e| undecodable(e.to_string()))?;
    let time_base = input.stream(index).map(|s| s.time_base()).unwrap_or(ff::Rational::new(1, 1));
    let mut first: Option<ff::frame::Video> = None;
    let mut captions = CaptionScan::default();
    // An MP4's index holds every sample's time: the frame-rate check reads it there, and
    // the scan stops once the first pictures are decoded (a few seconds of a recording
    // read in place, not the first 600 frames).
    let indexed = index_times(&input, index);
    let mut pts = indexed.clone().unwrap_or_default();
    let mut last_error = None;
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        if indexed.is_none()
            && let Some(t) = packet.pts().or(packet.dts())
        {
            pts.push(t);
        }
        if first.is_none() || captions.wants_more() {
            if let Err(e) = decoder.send_packet(&packet) {
                last_error = Some(e);
            }
            let mut frame = ff::frame::Video::empty();
            match decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    captions.look(&frame);
                    first.get_or_insert(frame);
                }
                Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) => {}
                Err(e) => last_error = last_error.or(Some(e)),
            }
        }
        if first.is_some() && !captions.wants_more() && (indexed.is_some() || pts.len() >= SCAN_PACKETS) {
            break;
        }
    }
    if first.is_none() {
        let _ = decoder.send_eof();
        let mut frame = ff::frame::Video::empty();
        if decoder.receive_frame(&mut frame).is_ok() {
            first = Some(frame);
        }
    }
    let Some(frame) = first else {
        let detail = last_error
            .map_or_else(|| "no frame could be decoded".to_owned(), |e| format!("no frame could be decoded: {e}"));
        return Err(undecodable(detail));
    };
    let last_pts_seconds = pts.iter().max().map(|&t| t as f64 * f64::from(time_base));
    Ok(Scan {
        closed_captions: captions.found,
        pixel_format: frame.format(),
        interlaced: frame.is_interlaced(),
        top_field_first: frame.is_top_first(),
        pts,
        last_pts_seconds,
    })
}

/// Variable when more than 1 % of the frame intervals stray over 10 % from the typical one,
/// or when the average rate disagrees with the nominal one by over 1 %.
fn is_variable(pts: &[i64], nominal: Option<FrameRate>, average: Option<FrameRate>) -> bool {
    if let (Some(n), Some(a)) = (nominal, average)
        && (n.as_f64() - a.as_f64()).abs() / n.as_f64() > 0.01
    {
        return true;
    }
    let mut sorted = pts.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let deltas: Vec<i64> = sorted.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    if deltas.len() < 2 {
        return false;
    }
    let mut by_size = deltas.clone();
    by_size.sort_unstable();
    let typical = by_size[by_size.len() / 2] as f64;
    // A time base coarser than a tenth of a frame cannot tell jitter from rounding.
    let tolerance = (typical * 0.1).max(1.0);
    let strays = deltas.iter().filter(|&&d| (d as f64 - typical).abs() > tolerance).count();
    strays * 100 > deltas.len()
}

/// Clockwise display rotation from the stream's display matrix, normalised to 0/90/180/270.
fn display_rotation(stream: &ff::format::stream::Stream<'_>) -> u32 {
    for side in stream.side_data() {
        if side.kind() == codec::packet::side_data::Type::DisplayMatrix && side.data().len() >= 36 {
            // SAFETY: a display matrix is nine int32 values; the length was checked.
            let ccw = unsafe { ffi::av_display_rotation_get(side.data().as_ptr() as *const i32) };
            if ccw.is_nan() {
                return 0;
            }
            let cw = (-ccw).round() as i64;
            return (((cw % 360) + 360) % 360 / 90 * 90) as u32;
        }
    }
    0
}

fn is_attached_picture(stream: &ff::format::stream::Stream<'_>) -> bool {
    stream.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC)
}

/// A metadata tag's value, trimmed, unless it is absent or blank.
fn tag(metadata: &ff::DictionaryRef<'_>, key: &str) -> Option<String> {
    metadata.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// The subtitle streams, and whether each is text libav can decode.
fn subtitle_streams(input: &ff::format::context::Input) -> Vec<SubtitleInfo> {
    input
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Subtitle)
        .map(|stream| {
            let id = stream.parameters().id();
            let metadata = stream.metadata();
            // SAFETY: avcodec_descriptor_get accepts any id and returns NULL for unknown ones.
            let props = unsafe { ffi::avcodec_descriptor_get(id.into()).as_ref().map_or(0, |d| d.props) };
            SubtitleInfo {
                index: stream.index(),
                codec: codec_name(id),
                language: tag(&metadata, "language"),
                title: tag(&metadata, "title"),
                forced: stream.disposition().contains(ff::format::stream::Disposition::FORCED),
                text: props & ffi::AV_CODEC_PROP_TEXT_SUB != 0 && ff::decoder::find(id).is_some(),
            }
        })
        .collect()
}

fn audio_info(stream: &ff::format::stream::Stream<'_>) -> AudioInfo {
    // SAFETY: codecpar of a stream of an open context is valid.
    let par = unsafe { &*stream.parameters().as_ptr() };
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: the buffer is large enough and av_channel_layout_describe NUL-terminates.
    let layout = unsafe {
        ffi::av_channel_layout_describe(&par.ch_layout, buf.as_mut_ptr(), buf.len());
        std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    };
    // SAFETY: format holds an AVSampleFormat value for audio streams.
    let sample_format = unsafe {
        let name = ffi::av_get_sample_fmt_name(std::mem::transmute::<i32, ffi::AVSampleFormat>(par.format));
        if name.is_null() {
            "unknown".to_owned()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    };
    let metadata = stream.metadata();
    let tag = |key| tag(&metadata, key);
    let id = stream.parameters().id();
    AudioInfo {
        index: stream.index(),
        language: tag("language"),
        title: tag("title"),
        default: stream.disposition().contains(ff::format::stream::Disposition::DEFAULT),
        decodable: ff::decoder::find(id).is_some() && par.sample_rate > 0 && par.ch_layout.nb_channels > 0,
        codec: codec_name(id),
        sample_rate: par.sample_rate.max(0) as u32,
        channels: par.ch_layout.nb_channels.max(0) as u32,
        layout,
        sample_format,
        start_seconds: None,
        end_seconds: None,
    }
}

fn pixel_bit_depth(format: ff::format::Pixel) -> u32 {
    let raw: ffi::AVPixelFormat = format.into();
    // SAFETY: av_pix_fmt_desc_get accepts any value and returns NULL for unknown ones.
    unsafe {
        let desc = ffi::av_pix_fmt_desc_get(raw);
        if desc.is_null() { 8 } else { (*desc).comp[0].depth.max(1) as u32 }
    }
}

fn profile_name(id: codec::Id, profile: i32) -> Option<String> {
    // SAFETY: avcodec_profile_name returns a static string or NULL.
    unsafe {
        let name = ffi::avcodec_profile_name(id.into(), profile);
        (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

fn codec_name(id: codec::Id) -> String {
    // SAFETY: avcodec_get_name always returns a static string.
    unsafe { std::ffi::CStr::from_ptr(ffi::avcodec_get_name(id.into())).to_string_lossy().into_owned() }
}

fn kind_name(t: media::Type) -> &'static str {
    match t {
        media::Type::Video => "video",
        media::Type::Audio => "audio",
        media::Type::Subtitle => "subtitle",
        media::Type::Attachment => "attachment",
        _ => "data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_millisecond_timestamps_are_constant_rate() {
        // 30 fps in a 1/1000 time base alternates 33 and 34 ms.
        let pts: Vec<i64> = (0..300).map(|i| i * 1000 / 30).collect();
        assert!(!is_variable(&pts, FrameRate::new(30, 1), FrameRate::new(30, 1)));
    }

    #[test]
    fn jittery_timestamps_are_variable() {
        let pts: Vec<i64> = (0..300).map(|i| i * 33 + if i % 7 == 0 { 15 } else { 0 }).collect();
        assert!(is_variable(&pts, None, None));
    }

    #[test]
    fn average_far_from_nominal_is_variable() {
        let pts: Vec<i64> = (0..10).map(|i| i * 40).collect();
        assert!(is_variable(&pts, FrameRate::new(30, 1), FrameRate::new(24, 1)));
    }
}
