//! Plan: preset + probe → the exact work. Which rungs apply and at what size, the output
//! frame rate, the segment grid in whole frames, the chunks, and the thumbnail times.
//!
//! A plan is plain data: deterministic for the same probe and preset, printable with
//! `ladder plan`, and the unit that workers, checkpoints and shards refer to.

use serde::{Deserialize, Serialize};

use crate::exit::{ExitClass, Outcome};
use crate::preset::Preset;
use crate::probe::Probe;
use crate::rate::FrameRate;
use crate::trim::{PlannedTrim, Trim};

/// Bumped whenever the meaning of a plan's fields changes, so old checkpoints are not reused.
pub const PLAN_VERSION: u32 = 3;

/// Audio reaching further than this before the first picture or after the last one
/// extends the output (the first or last picture is shown meanwhile): a talk whose camera
/// started late or stopped early keeps all of its sound. Less is an encoder's padding.
const AUDIO_OVERHANG_SECONDS: f64 = 0.1;

/// No recording lasts longer: a plan for more would come from timestamps that lie, and
/// its grid alone would not fit in memory.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Below this a source's rate is not a video rate: a time base, or timestamps that lie (a
/// frame every 512 s). Such a source is encoded at the default rate, its pictures repeated;
/// at a rate this low the grid would have GOPs of one frame and stills on the same frame.
const MIN_SOURCE_FPS: f64 = 1.0;

/// The rate used when the source's is unknown or unusable.
const DEFAULT_FPS: (u32, u32) = (30, 1);

/// The poster is looked for from this time on, skipping fades from black at the start.
const POSTER_SEARCH_FROM_SECONDS: f64 = 2.0;

/// The frame rates players and devices expect; a variable-rate source snaps to the nearest.
const STANDARD_RATES: &[(u32, u32)] =
    &[(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001), (60, 1)];

/// The work for one recording with one preset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub version: u32,
    pub source: Source,
    pub preset: PresetRef,
    /// Constant output frame rate of every rung.
    pub fps: FrameRate,
    /// Why this rate: `preset`, `source`, `source (variable, snapped)`, `source halved`…
    pub fps_reason: String,
    pub gop_frames: u32,
    /// A whole number of GOPs.
    pub segment_frames: u32,
    pub total_frames: u64,
    /// `total_frames / fps`.
    pub duration_seconds: f64,
    pub deinterlace: bool,
    /// Video rungs in preset order; `index` names the output folder `v<index>`.
    pub rungs: Vec<PlannedRung>,
    /// Preset rungs that do not apply to this source, and why.
    pub skipped_rungs: Vec<SkippedRung>,
    /// One rendition per selected source audio track; `index` names the folder `a<index>`.
    pub audio: Vec<PlannedAudio>,
    /// Source audio tracks left out, and why.
    pub skipped_audio: Vec<SkippedAudio>,
    /// One WebVTT rendition per text subtitle stream, then per sidecar; `index` names the
    /// folder `s<index>`. Left out of a plan without subtitles (so its id stays the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<PlannedSubtitle>,
    /// Subtitle streams left out (bitmaps), and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_subtitles: Vec<SkippedSubtitle>,
    pub segments: Vec<Segment>,
    pub chunks: Vec<Chunk>,
    pub thumbnails: Option<PlannedThumbnails>,
    /// The part of the recording kept (`--start`/`--end`), when it is cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<PlannedTrim>,
}

/// What the plan needs to know about the source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub path: String,
    /// Index of the video stream transcoded; `None` for an audio-only recording.
    pub video_stream: Option<usize>,
    pub size_bytes: u64,
    /// Of the video stream.
    pub duration_seconds: f64,
    /// The output's time zero on the recording's clock: the first picture, or the first
    /// audio sample when the sound starts earlier.
    pub start_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub display_width: u32,
    pub display_height: u32,
    pub rotation: u32,
    pub variable_frame_rate: bool,
    pub interlaced: bool,
    pub bit_depth: u32,
    pub has_audio: bool,
    /// The recording's title tag: the podcast file's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The preset a plan was made with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PresetRef {
    pub name: String,
    pub hash: String,
}

/// A rung as it will be encoded for this source: even size, never above the source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedRung {
    pub index: usize,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub maxrate_kbps: u32,
    pub bufsize_kbit: u32,
}

/// A preset rung left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedRung {
    pub name: String,
    pub reason: String,
}

/// An audio rendition: one source track, decoded and encoded once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedAudio {
    pub index: usize,
    pub source_stream: usize,
    /// The source's channel layout, e.g. `mono`, `5.1(side)`.
    pub source_layout: String,
    pub sample_rate: u32,
    /// The source's, up to the preset's: mono stays mono, more is downmixed.
    pub channels: u32,
    pub bitrate_kbps: u32,
    /// BCP 47.
    pub language: String,
    /// The name players show; unique among the renditions.
    pub label: String,
    /// The rendition players pick when the viewer's language is not offered.
    pub default: bool,
    /// Loudness normalization, when the preset asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<crate::preset::Loudness>,
}

/// A source audio track left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedAudio {
    pub source_stream: usize,
    pub reason: String,
}

/// A WebVTT subtitle rendition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedSubtitle {
    pub index: usize,
    pub source: SubtitleSource,
    /// BCP 47.
    pub language: String,
    /// The name players show; unique among the subtitle renditions.
    pub label: String,
    /// Shown when the viewer asked for no subtitles (signs, foreign speech).
    #[serde(default)]
    pub forced: bool,
}

/// Where a subtitle rendition's cues come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SubtitleSource {
    /// A text subtitle stream of the recording, by its stream number.
    Embedded { stream: usize, codec: String },
    /// A file given at run time (`--subtitles LANG=PATH`): a local path or `s3://…`;
    /// `position` among the sidecars.
    Sidecar { location: String, position: usize },
}

/// A subtitle stream left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedSubtitle {
    pub source_stream: usize,
    pub reason: String,
}

/// One segment of the grid, shared by every rung and the audio. Numbers are global.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    pub index: u32,
    pub start_frame: u64,
    /// The last segment may be shorter than `segment_frames`, or longer by less than a GOP
    /// (a tail shorter than a GOP joins it).
    pub frames: u32,
    pub start_seconds: f64,
    pub duration_seconds: f64,
}

/// A contiguous run of segments: the unit of parallel work and of checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    pub index: u32,
    pub first_segment: u32,
    /// Exclusive.
    pub end_segment: u32,
    pub start_frame: u64,
    /// Exclusive.
    pub end_frame: u64,
}

/// Thumbnails to take from the same decode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedThumbnails {
    pub interval_seconds: f64,
    pub width: u32,
    pub height: u32,
    /// Output frame number of each still `t_<n>.jpg`, in order.
    pub still_frames: Vec<u64>,
    pub sprite_columns: u32,
    pub sprite_rows: u32,
    pub sprite_count: u32,
    pub poster_width: u32,
    pub poster_height: u32,
    /// The poster is the first frame from here that is not near-black or flat.
    pub poster_search_from_frame: u64,
}

/// Why a source cannot be planned (permanent: bad input).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: the video lasts {seconds:.3} s, less than one frame")]
    TooShort { path: String, seconds: f64 },
    #[error("{path}: the video has no usable size ({width}x{height})")]
    NoPicture { path: String, width: u32, height: u32 },
    #[error("{path}: its timestamps span {seconds:.0} s, more than the {max:.0} s a recording may last")]
    TooLong { path: String, seconds: f64, max: f64 },
    #[error(
        "{path}: audio track {position} was asked for, but the recording has {count} audio track(s); \
         choose among 0-{last} with --audio or the preset's [audio] tracks",
        last = count.saturating_sub(1)
    )]
    NoSuchAudioTrack { path: String, position: u32, count: usize },
    #[error(
        "{path}: --start {start:.3} is not before the recording's end ({duration:.3} s): give a start within the recording"
    )]
    StartPastEnd { path: String, start: f64, duration: f64 },
}

impl ExitClass for PlanError {
    /// The recording is at fault, except for a selection of tracks it does not have.
    fn outcome(&self) -> Outcome {
        match self {
            Self::NoSuchAudioTrack { .. } | Self::StartPastEnd { .. } => Outcome::Usage,
            Self::TooShort { .. } | Self::NoPicture { .. } | Self::TooLong { .. } => Outcome::BadInput,
        }
    }
}

/// Plans the work of `preset` on the probed source.
///
/// An audio-only recording gets a plan without rungs, chunks or thumbnails: its audio
/// renditions are cut on a grid at the preset's (or the default) frame rate.
///
/// `trim` keeps part of the recording: the output's zero is its start.
pub fn plan(probe: &Probe, preset: &Preset, trim: &Trim) -> Result<Plan, PlanError> {
    let video = probe.video.as_ref();
    let (dw, dh) = video.map_or((0, 0), |v| (v.display_width, v.display_height));
    if video.is_some() && (dw < 2 || dh < 2) {
        return Err(PlanError::NoPicture { path: probe.path.clone(), width: dw, height: dh });
    }
    let (fps, fps_reason) = output_fps(probe, preset);
    let (start_seconds, end_seconds, trim) = trimmed_span(probe, output_span(probe), trim)?;
    let seconds = end_seconds - start_seconds;
    if seconds > MAX_SECONDS {
        return Err(PlanError::TooLong { path: probe.path.clone(), seconds, max: MAX_SECONDS });
    }
    let total_frames = (seconds * fps.as_f64()).round() as u64;
    if total_frames == 0 || !seconds.is_finite() {
        return Err(PlanError::TooShort { path: probe.path.clone(), seconds: probe.duration_seconds });
    }
    let gop_frames = (preset.segments.gop_seconds * fps.as_f64()).round().max(1.0) as u32;
    let segment_frames = gop_frames * preset.segments.gops_per_segment;
    let segments = plan_segments(fps, total_frames, gop_frames, segment_frames);
    let (rungs, skipped_rungs, chunks) = match video {
        Some(_) => {
            let (rungs, skipped) = plan_rungs(preset, dw, dh);
            (rungs, skipped, plan_chunks(&segments, preset.segments.chunk_segments as usize))
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let (audio, skipped_audio) = plan_audio(probe, preset)?;
    let (subtitles, skipped_subtitles) = plan_subtitles(probe);
    let thumbnails = (preset.thumbnails.enabled && video.is_some())
        .then(|| plan_thumbnails(preset, &rungs, (dw, dh), fps, total_frames));
    Ok(Plan {
        version: PLAN_VERSION,
        source: source(probe, start_seconds),
        preset: PresetRef { name: preset.name.clone(), hash: preset.hash.clone() },
        fps,
        fps_reason,
        gop_frames,
        segment_frames,
        total_frames,
        duration_seconds: seconds_of(fps, total_frames),
        deinterlace: video.is_some_and(|v| v.interlaced),
        trim,
        rungs,
        skipped_rungs,
        audio,
        skipped_audio,
        subtitles,
        skipped_subtitles,
        segments,
        chunks,
        thumbnails,
    })
}

/// What the plan needs to know about the recording; `start_seconds` is the output's zero.
fn source(probe: &Probe, start_seconds: f64) -> Source {
    let v = probe.video.clone().unwrap_or_default();
    Source {
        path: probe.path.clone(),
        video_stream: probe.video.as_ref().map(|v| v.index),
        size_bytes: probe.size_bytes,
        duration_seconds: probe.duration_seconds,
        start_seconds,
        width: v.width,
        height: v.height,
        display_width: v.display_width,
        display_height: v.display_height,
        rotation: v.rotation,
        variable_frame_rate: v.variable_frame_rate,
        interlaced: v.interlaced,
        bit_depth: v.bit_depth,
        has_audio: probe.audio.is_some(),
        title: probe.title.clone(),
    }
}

/// The audio renditions: each selected source track that can be decoded, in file order.
fn plan_audio(probe: &Probe, preset: &Preset) -> Result<(Vec<PlannedAudio>, Vec<SkippedAudio>), PlanError> {
    let selection = &preset.audio.tracks;
    if let crate::preset::AudioTracks::Some(positions) = selection
        && let Some(&position) = positions.iter().find(|p| **p as usize >= probe.audio_tracks.len())
    {
        let count = probe.audio_tracks.len();
        return Err(PlanError::NoSuchAudioTrack { path: probe.path.clone(), position, count });
    }
    let (mut planned, mut skipped) = (Vec::new(), Vec::new());
    for (position, track) in probe.audio_tracks.iter().enumerate() {
        let source_stream = track.index;
        if !selection.selects(position as u32) {
            let reason = format!("audio track {position} is not selected (tracks = {selection:?})");
            skipped.push(SkippedAudio { source_stream, reason });
        } else if !track.decodable {
            let reason = format!("the linked libav cannot decode its {} audio", track.codec);
            skipped.push(SkippedAudio { source_stream, reason });
        } else {
            let label = preset.audio.labels.get(&(position as u32)).cloned().unwrap_or_default();
            planned.push(planned_audio(planned.len(), track, &label, preset));
            if preset.audio.surround && track.channels >= 6 {
                planned.push(surround(planned.last().expect("pushed just above"), planned.len()));
            }
        }
    }
    let default = default_rendition(&planned, probe, preset);
    let default_stream = planned.get(default).map(|a| a.source_stream);
    // The default track's stereo rendition, and its 5.1 one in the 5.1 group.
    for a in planned.iter_mut().filter(|a| Some(a.source_stream) == default_stream) {
        a.default = true;
    }
    unique_labels(&mut planned);
    Ok((planned, skipped))
}

/// The rendition players play when the viewer's language is not offered: the first in the
/// preset's `default_language`, else the first the container marks default, else the first.
fn default_rendition(planned: &[PlannedAudio], probe: &Probe, preset: &Preset) -> usize {
    let primary = |tag: &str| tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
    let preferred = preset.audio.default_language.as_deref().map(primary);
    let in_preferred = preferred.and_then(|p| planned.iter().position(|a| primary(&a.language) == p));
    let marked =
        || planned.iter().position(|a| probe.audio_tracks.iter().any(|t| t.index == a.source_stream && t.default));
    in_preferred.or_else(marked).unwrap_or(0)
}

/// Rendition `index` of source `track`: its language and title as the preset's `label` for
/// it says, else as the track's tags say, else the preset's defaults; its channels up to
/// the preset's, at the preset's bitrate per channel.
fn planned_audio(
    index: usize,
    track: &crate::probe::AudioInfo,
    label: &crate::preset::TrackLabel,
    preset: &Preset,
) -> PlannedAudio {
    let a = &preset.audio;
    let channels = track.channels.clamp(1, a.channels);
    let tag = label.language.as_deref().or(track.language.as_deref());
    let language = tag.and_then(crate::language::bcp47).unwrap_or_else(|| a.language.clone());
    let label = label
        .title
        .clone()
        .or_else(|| track.title.clone())
        .or_else(|| crate::language::name(&language).map(str::to_owned))
        .unwrap_or_else(|| a.label.clone());
    PlannedAudio {
        index,
        source_stream: track.index,
        source_layout: track.layout.clone(),
        sample_rate: a.sample_rate,
        channels,
        bitrate_kbps: a.bitrate_kbps * channels / a.channels,
        language,
        label,
        default: false,
        loudness: a.loudness,
    }
}

/// The 5.1 rendition beside `stereo` (of the same track), numbered `index`: the same
/// language, the bitrate per channel of the preset.
fn surround(stereo: &PlannedAudio, index: usize) -> PlannedAudio {
    PlannedAudio {
        index,
        channels: 6,
        bitrate_kbps: stereo.bitrate_kbps / stereo.channels * 6,
        label: format!("{} (5.1)", stereo.label),
        ..stereo.clone()
    }
}

/// Players list renditions by name (HLS requires `NAME` unique in its group): a name
/// given twice gets the rendition's number.
fn unique_labels(audio: &mut [PlannedAudio]) {
    number_repeated(audio.iter_mut().map(|a| &mut a.label));
}

/// Every label given more than once gets its position's number, `English (1)`,
/// `English (2)`: counted before any is renamed, so the first of two is not the only one
/// numbered.
fn number_repeated<'a>(labels: impl Iterator<Item = &'a mut String>) {
    let mut labels: Vec<&mut String> = labels.collect();
    let given: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    for (i, label) in labels.iter_mut().enumerate() {
        if given.iter().filter(|g| **g == given[i]).count() > 1 {
            **label = format!("{} ({})", given[i], i + 1);
        }
    }
}

impl Plan {
    /// The plan with a subtitle rendition per sidecar (after the recording's own), in the
    /// order given.
    #[must_use]
    pub fn with_sidecars(mut self, sidecars: &[crate::subtitles::Sidecar]) -> Self {
        for (position, sidecar) in sidecars.iter().enumerate() {
            let label = crate::language::name(&sidecar.language).unwrap_or(&sidecar.language).to_owned();
            self.subtitles.push(PlannedSubtitle {
                index: self.subtitles.len(),
                source: SubtitleSource::Sidecar { location: sidecar.location.to_string(), position },
                language: sidecar.language.clone(),
                label,
                forced: false,
            });
        }
        unique_subtitle_labels(&mut self.subtitles);
        self
    }
}

/// A rendition per text subtitle stream (language from its tag, else `und`: a guess
/// would mislead players' automatic choice); bitmap streams left out, with the reason.
fn plan_subtitles(probe: &Probe) -> (Vec<PlannedSubtitle>, Vec<SkippedSubtitle>) {
    let (mut planned, mut skipped) = (Vec::new(), Vec::new());
    for track in &probe.subtitle_tracks {
        if !track.text {
            let reason =
                format!("{} subtitles are pictures or not decodable, not text: no WebVTT from them", track.codec);
            skipped.push(SkippedSubtitle { source_stream: track.index, reason });
            continue;
        }
        let language = track.language.as_deref().and_then(crate::language::bcp47).unwrap_or_else(|| "und".to_owned());
        let label = track
            .title
            .clone()
            .or_else(|| crate::language::name(&language).map(str::to_owned))
            .unwrap_or_else(|| "Subtitles".to_owned());
        planned.push(PlannedSubtitle {
            index: planned.len(),
            source: SubtitleSource::Embedded { stream: track.index, codec: track.codec.clone() },
            language,
            label: if track.forced { format!("{label} (forced)") } else { label },
            forced: track.forced,
        });
    }
    unique_subtitle_labels(&mut planned);
    (planned, skipped)
}

/// HLS requires `NAME` unique in a group: a name given twice gets the rendition's number.
fn unique_subtitle_labels(subtitles: &mut [PlannedSubtitle]) {
    number_repeated(subtitles.iter_mut().map(|s| &mut s.label));
}

/// The segment grid: `segment_frames` each, the last one shorter.
fn plan_segments(fps: FrameRate, total_frames: u64, gop_frames: u32, segment_frames: u32) -> Vec<Segment> {
    // A last segment shorter than a GOP joins the one before it (MediaConvert's "minimum
    // final segment length"): a few frames led by an IDR would otherwise claim a peak
    // bitrate many times the rung's and mislead players' rate selection.
    let mut count = total_frames.div_ceil(u64::from(segment_frames));
    if count > 1 && total_frames - (count - 1) * u64::from(segment_frames) < u64::from(gop_frames) {
        count -= 1;
    }
    (0..count)
        .map(|i| {
            let start = i * u64::from(segment_frames);
            let frames = if i + 1 == count { total_frames - start } else { u64::from(segment_frames) } as u32;
            Segment {
                index: i as u32,
                start_frame: start,
                frames,
                start_seconds: seconds_of(fps, start),
                duration_seconds: seconds_of(fps, u64::from(frames)),
            }
        })
        .collect()
}

/// Runs of `per_chunk` segments.
fn plan_chunks(segments: &[Segment], per_chunk: usize) -> Vec<Chunk> {
    segments
        .chunks(per_chunk)
        .enumerate()
        .map(|(i, run)| {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            Chunk {
                index: i as u32,
                first_segment: first.index,
                end_segment: last.index + 1,
                start_frame: first.start_frame,
                end_frame: last.start_frame + u64::from(last.frames),
            }
        })
        .collect()
}

/// Stills every `interval_seconds`, the sprite grid and the poster's size and search start.
fn plan_thumbnails(
    preset: &Preset,
    rungs: &[PlannedRung],
    (dw, dh): (u32, u32),
    fps: FrameRate,
    total_frames: u64,
) -> PlannedThumbnails {
    let t = &preset.thumbnails;
    let width = even(f64::from(t.width.min(dw)));
    let height = even(f64::from(width) * f64::from(dh) / f64::from(dw));
    let largest = rungs.iter().map(|r| r.width).max().unwrap_or(dw);
    let poster_width = even(f64::from(t.poster_width.unwrap_or(largest).min(dw)));
    let poster_height = even(f64::from(poster_width) * f64::from(dh) / f64::from(dw));
    let step = t.interval_seconds * fps.as_f64();
    let still_frames: Vec<u64> =
        (0..).map(|n| (f64::from(n) * step).round() as u64).take_while(|&f| f < total_frames).collect();
    let per_sprite = (t.sprite_columns * t.sprite_rows) as usize;
    let search_from = (POSTER_SEARCH_FROM_SECONDS * fps.as_f64()).round() as u64;
    PlannedThumbnails {
        interval_seconds: t.interval_seconds,
        width,
        height,
        sprite_count: still_frames.len().div_ceil(per_sprite) as u32,
        still_frames,
        sprite_columns: t.sprite_columns,
        sprite_rows: t.sprite_rows,
        poster_width,
        poster_height,
        poster_search_from_frame: if search_from < total_frames { search_from } else { 0 },
    }
}

/// Seconds of `frames` output frames at `fps`.
fn seconds_of(fps: FrameRate, frames: u64) -> f64 {
    frames as f64 * f64::from(fps.den()) / f64::from(fps.num())
}

/// The part of `span` (on the recording's clock) that `trim` keeps, and what it cut. An end
/// past the recording's is the recording's (as ffmpeg's `-to`), said in the log.
fn trimmed_span(probe: &Probe, span: (f64, f64), trim: &Trim) -> Result<(f64, f64, Option<PlannedTrim>), PlanError> {
    let (first, last) = span;
    if trim.is_none() {
        return Ok((first, last, None));
    }
    let duration = last - first;
    let start = trim.start.unwrap_or(0.0);
    if start >= duration {
        return Err(PlanError::StartPastEnd { path: probe.path.clone(), start, duration });
    }
    let end = match trim.end {
        Some(end) if end > duration => {
            tracing::warn!(end, duration, "--end is past the recording's end: the output ends with the recording");
            duration
        }
        Some(end) => end,
        None => duration,
    };
    let planned = PlannedTrim {
        requested: *trim,
        start_seconds: start,
        end_seconds: end,
        cut_before_seconds: start,
        cut_after_seconds: duration - end,
        dead_air: None,
    };
    Ok((first + start, first + end, Some(planned)))
}

/// Where the output starts and ends on the recording's clock: the video's span, widened to
/// the audio's where the sound starts or ends beyond [`AUDIO_OVERHANG_SECONDS`] of it.
pub(crate) fn output_span(probe: &Probe) -> (f64, f64) {
    let first = match &probe.video {
        Some(v) => v.start_seconds,
        None => probe.audio.as_ref().and_then(|a| a.start_seconds).unwrap_or(0.0),
    };
    let (mut start, mut end) = (first, first + probe.duration_seconds);
    if let Some(a) = &probe.audio {
        if let Some(s) = a.start_seconds.filter(|s| *s < start - AUDIO_OVERHANG_SECONDS) {
            start = s;
        }
        if let Some(e) = a.end_seconds.filter(|e| *e > end + AUDIO_OVERHANG_SECONDS) {
            end = e;
        }
    }
    (start, end)
}

/// The nearest even number, at least 2.
fn even(x: f64) -> u32 {
    (((x / 2.0).round() * 2.0) as u32).max(2)
}

/// The preset's rate; else the source's nominal rate (a variable source's average, snapped
/// to a standard rate), divided down to stay within `max_fps` (50 → 25, 59.94 → 29.97).
fn output_fps(probe: &Probe, preset: &Preset) -> (FrameRate, String) {
    if let Some(fps) = preset.video.fps {
        return (fps, "preset".to_owned());
    }
    let Some(v) = &probe.video else {
        let rate = FrameRate::new(DEFAULT_FPS.0, DEFAULT_FPS.1).expect("a valid rate");
        return (rate, "default (audio-only: the segment grid's rate)".to_owned());
    };
    let standard_nominal =
        v.nominal_fps.filter(|n| STANDARD_RATES.iter().any(|&(a, b)| FrameRate::new(a, b) == Some(*n)));
    let (source, reason) = if v.variable_frame_rate {
        // A recorder's nominal rate (30, 25…) is what the stream is meant to be; jitter
        // and gaps only lower the average. Odd nominal rates (1000, 90000) are time bases.
        if let Some(n) = standard_nominal {
            (n, "source (variable rate, nominal)".to_owned())
        } else {
            match v.average_fps.or(v.nominal_fps) {
                Some(avg) => (snap(avg), "source (variable rate, average snapped to a standard rate)".to_owned()),
                None => (
                    FrameRate::new(DEFAULT_FPS.0, DEFAULT_FPS.1).expect("a valid rate"),
                    "default (source rate unknown)".to_owned(),
                ),
            }
        }
    } else {
        match v.nominal_fps.or(v.average_fps) {
            Some(r) => (r, "source".to_owned()),
            None => (
                FrameRate::new(DEFAULT_FPS.0, DEFAULT_FPS.1).expect("a valid rate"),
                "default (source rate unknown)".to_owned(),
            ),
        }
    };
    let (source, mut reason) = if source.as_f64() < MIN_SOURCE_FPS {
        let default = FrameRate::new(DEFAULT_FPS.0, DEFAULT_FPS.1).expect("a valid rate");
        (default, format!("default (the source's {source} fps is not a video rate)"))
    } else {
        (source, reason)
    };
    let max = preset.video.max_fps.as_f64();
    let mut divisor = 1;
    while source.as_f64() / f64::from(divisor) > max + 1e-9 {
        divisor += 1;
    }
    if divisor > 1 {
        reason = format!("{reason}, divided by {divisor} to stay within max_fps {}", preset.video.max_fps);
    }
    (source.divided_by(divisor), reason)
}

fn snap(rate: FrameRate) -> FrameRate {
    let x = rate.as_f64();
    STANDARD_RATES
        .iter()
        .filter_map(|&(n, d)| FrameRate::new(n, d))
        .min_by(|a, b| (a.as_f64() - x).abs().total_cmp(&(b.as_f64() - x).abs()))
        .filter(|s| (s.as_f64() - x).abs() / x <= 0.1)
        .unwrap_or_else(|| FrameRate::new(x.round().max(1.0) as u32, 1).expect("rounded positive rate"))
}

/// Fits each rung's box to the displayed picture (swapping the box for portrait sources),
/// keeping the aspect ratio and never upscaling. If every rung would upscale, the smallest
/// is kept at the source's own size, so a small source still gets one rendition.
fn plan_rungs(preset: &Preset, dw: u32, dh: u32) -> (Vec<PlannedRung>, Vec<SkippedRung>) {
    let portrait = dh > dw;
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for rung in &preset.rungs {
        let (bw, bh) = if portrait { (rung.height, rung.width) } else { (rung.width, rung.height) };
        let scale = (f64::from(bw) / f64::from(dw)).min(f64::from(bh) / f64::from(dh));
        if scale > 1.0 + 1e-9 {
            skipped.push(SkippedRung {
                name: rung.name.clone(),
                reason: format!("{}x{} would upscale the {dw}x{dh} source", rung.width, rung.height),
            });
            continue;
        }
        kept.push((rung, scale));
    }
    if kept.is_empty()
        && let Some(smallest) =
            preset.rungs.iter().min_by_key(|r| (u64::from(r.width) * u64::from(r.height), r.bitrate_kbps))
    {
        skipped.retain(|s| s.name != smallest.name);
        kept.push((smallest, 1.0));
    }
    let rungs = kept
        .into_iter()
        .enumerate()
        .map(|(index, (rung, scale))| PlannedRung {
            index,
            name: rung.name.clone(),
            width: even(f64::from(dw) * scale).min(dw - dw % 2),
            height: even(f64::from(dh) * scale).min(dh - dh % 2),
            bitrate_kbps: rung.bitrate_kbps,
            maxrate_kbps: rung.maxrate_kbps,
            bufsize_kbit: rung.bufsize_kbit,
        })
        .collect();
    (rungs, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioInfo, VideoInfo};

    /// A 320x240 recording: video from `video.0` to `video.1` s at `fps`, audio over `audio`.
    fn probe(video: (f64, f64), fps: FrameRate, audio: Option<(f64, f64)>) -> Probe {
        Probe {
            path: "in.mp4".into(),
            size_bytes: 1,
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            container_long_name: String::new(),
            title: None,
            duration_seconds: video.1 - video.0,
            bit_rate: None,
            video: Some(VideoInfo {
                index: 0,
                codec: "h264".into(),
                profile: None,
                width: 320,
                height: 240,
                sample_aspect_ratio: (1, 1),
                rotation: 0,
                display_width: 320,
                display_height: 240,
                pixel_format: "yuv420p".into(),
                bit_depth: 8,
                nominal_fps: Some(fps),
                average_fps: Some(fps),
                variable_frame_rate: false,
                interlaced: false,
                closed_captions: false,
                field_order: "progressive".into(),
                frame_count: None,
                start_seconds: video.0,
                end_seconds: video.1,
            }),
            audio: audio.map(|span| audio_info(1, span)),
            audio_tracks: audio.map(|span| audio_info(1, span)).into_iter().collect(),
            streams: Vec::new(),
            subtitle_tracks: Vec::new(),
            discontinuities: Vec::new(),
            remux: None,
        }
    }

    fn audio_info(index: usize, (start, end): (f64, f64)) -> AudioInfo {
        AudioInfo {
            index,
            language: None,
            title: None,
            default: false,
            decodable: true,
            codec: "aac".into(),
            sample_rate: 48000,
            channels: 2,
            layout: "stereo".into(),
            sample_format: "fltp".into(),
            start_seconds: Some(start),
            end_seconds: Some(end),
        }
    }

    fn small() -> Preset {
        crate::preset::load_str(crate::preset::builtin_text("small").expect("built in"), "small").expect("valid")
    }

    #[test]
    fn sound_beyond_the_picture_widens_the_output_and_an_encoder_pad_does_not() {
        let fps = FrameRate::new(25, 1).expect("a rate");
        let p = plan(&probe((1.0, 5.0), fps, Some((0.0, 7.0))), &small(), &Trim::default()).expect("plans");
        assert_eq!((p.source.start_seconds, p.total_frames), (0.0, 175));
        let p = plan(&probe((1.0, 5.0), fps, Some((0.98, 5.02))), &small(), &Trim::default()).expect("plans");
        assert_eq!((p.source.start_seconds, p.total_frames), (1.0, 100));
    }

    #[test]
    fn a_rate_below_a_frame_a_second_is_not_a_video_rate() {
        let p = plan(&probe((0.0, 60.0), FrameRate::new(1, 512).expect("a rate"), None), &small(), &Trim::default())
            .expect("plans");
        assert_eq!(p.fps.to_string(), "30");
        assert!(p.fps_reason.contains("not a video rate"), "{}", p.fps_reason);
        let stills = &p.thumbnails.as_ref().expect("thumbnails").still_frames;
        assert!(stills.windows(2).all(|w| w[0] < w[1]), "{stills:?}");
    }

    #[test]
    fn timestamps_spanning_years_are_refused() {
        let fps = FrameRate::new(25, 1).expect("a rate");
        let years = 4_294_967_295.0;
        assert!(matches!(
            plan(&probe((0.0, years), fps, None), &small(), &Trim::default()),
            Err(PlanError::TooLong { .. })
        ));
        let audio = Some((-years, 1.0));
        assert!(matches!(
            plan(&probe((0.0, 1.0), fps, audio), &small(), &Trim::default()),
            Err(PlanError::TooLong { .. })
        ));
    }

    #[test]
    fn text_subtitles_are_planned_and_pictures_left_out_with_a_reason() {
        use crate::probe::SubtitleInfo;
        let fps = FrameRate::new(25, 1).expect("a rate");
        let mut p = probe((0.0, 10.0), fps, None);
        let track = |index, codec: &str, language: Option<&str>, text| SubtitleInfo {
            index,
            codec: codec.into(),
            language: language.map(str::to_owned),
            title: None,
            forced: false,
            text,
        };
        p.subtitle_tracks = vec![
            track(2, "mov_text", Some("eng"), true),
            track(3, "hdmv_pgs_subtitle", Some("ger"), false),
            track(4, "subrip", None, true),
        ];
        let sidecar = crate::subtitles::Sidecar {
            language: "en".into(),
            location: crate::location::Location::parse("talk.en.vtt").expect("a path"),
        };
        let plan = plan(&p, &small(), &Trim::default()).expect("plans").with_sidecars(&[sidecar]);
        let planned: Vec<_> = plan.subtitles.iter().map(|s| (s.index, s.language.as_str(), s.label.as_str())).collect();
        assert_eq!(planned, [(0, "en", "English (1)"), (1, "und", "Subtitles"), (2, "en", "English (3)")]);
        assert_eq!(plan.subtitles[2].source, SubtitleSource::Sidecar { location: "talk.en.vtt".into(), position: 0 });
        assert_eq!(plan.skipped_subtitles.len(), 1);
        assert_eq!(plan.skipped_subtitles[0].source_stream, 3);
        assert!(plan.skipped_subtitles[0].reason.contains("hdmv_pgs_subtitle"), "{:?}", plan.skipped_subtitles);
    }

    #[test]
    fn every_audio_rendition_of_a_repeated_name_is_numbered() {
        let mut labels = vec!["English".to_owned(), "Deutsch".to_owned(), "English".to_owned()];
        number_repeated(labels.iter_mut());
        assert_eq!(labels, ["English (1)", "Deutsch", "English (3)"]);
    }

    #[test]
    fn variable_rates_snap_to_standard_ones() {
        assert_eq!(snap(FrameRate::new(2960, 100).unwrap()).to_string(), "30000/1001");
        assert_eq!(snap(FrameRate::new(2510, 100).unwrap()).to_string(), "25");
        assert_eq!(snap(FrameRate::new(15, 1).unwrap()).to_string(), "15");
    }

    #[test]
    fn even_rounds_to_nearest_even() {
        assert_eq!(even(719.0), 720);
        assert_eq!(even(533.33), 534);
        assert_eq!(even(0.4), 2);
    }
}
