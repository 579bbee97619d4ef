//! The preset file format exactly as written in TOML, before validation.
//!
//! These types are what `serde` reads and what `ladder presets schema` publishes for editors.
//! Nothing outside `preset` should use them: [`super::Preset`] is the validated form.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One ABR ladder: codec, rate control, rungs, segmenting, audio, thumbnails, packaging and
/// the resources a Kubernetes Job asks for.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawPreset {
    /// Short identifier (lowercase letters, digits, `-`, `.`, `_`), used in Job names and reports.
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Rungs (by `name`) to also publish as `download/<name>.mp4`: one progressive MP4
    /// (`moov` first) of the rung and the default audio, made from the stored segments
    /// without encoding again. A rung the recording is too small for is skipped, with a
    /// warning. Rung names used here may hold only letters, digits, `-`, `_` and `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Vec<String>>,
    /// Video codec, encoder and rate control shared by every rung.
    pub video: RawVideo,
    /// GOP, segment and chunk lengths shared by every rung and the audio.
    #[serde(default)]
    pub segments: RawSegments,
    /// The renditions, each a box the source is scaled to fit (never upscaled).
    pub rungs: Vec<RawRung>,
    /// The single AAC audio rendition.
    #[serde(default)]
    pub audio: RawAudio,
    /// Poster, periodic stills and sprite sheets.
    #[serde(default)]
    pub thumbnails: RawThumbnails,
    /// Which manifests to write.
    #[serde(default)]
    pub packaging: RawPackaging,
    /// What the transcode Job requests from Kubernetes.
    #[serde(default)]
    pub resources: RawResources,
    /// Cutting the recording's dead air; off when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<RawTrim>,
}

/// `[trim]`: the dead air (a black or frozen picture with silence: "we'll begin shortly",
/// the frozen last slide) cut from a recording's start and end.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawTrim {
    /// Cut dead air lasting at least this many seconds at the start or end (1 to 3600).
    #[serde(default)]
    pub dead_air_seconds: Option<f64>,
}

/// Video settings shared by every rung.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawVideo {
    /// `h264`, `hevc` or `av1`.
    pub codec: String,
    /// libav encoder name; defaults to `libx264`, `libx265` or `libsvtav1` by codec.
    #[serde(default)]
    pub encoder: Option<String>,
    /// Encoder profile, e.g. `high` (H.264) or `main` (HEVC, AV1).
    #[serde(default)]
    pub profile: Option<String>,
    /// Codec level, e.g. `"4.2"`; every rung is checked against its limits.
    #[serde(default)]
    pub level: Option<RawNumberOrText>,
    /// Encoder speed preset: `medium`, `fast`… for x264/x265, `0`–`13` for SVT-AV1.
    #[serde(default)]
    pub speed: Option<RawNumberOrText>,
    /// Fixed output frame rate (`30`, `"30000/1001"`); by default the source's nominal rate.
    #[serde(default)]
    pub fps: Option<RawNumberOrText>,
    /// Highest output frame rate when following the source (at most 60).
    #[serde(default)]
    pub max_fps: Option<RawNumberOrText>,
    /// `cvbr` (constrained VBR: target bitrate with a VBV cap) or `capped_crf`.
    #[serde(default)]
    pub rate_control: Option<String>,
    /// Constant rate factor for `capped_crf`.
    #[serde(default)]
    pub crf: Option<f64>,
    /// Default maxrate of each rung as a multiple of its bitrate (peak-to-average).
    #[serde(default)]
    pub maxrate_factor: Option<f64>,
    /// Default VBV buffer of each rung, in seconds of its maxrate.
    #[serde(default)]
    pub bufsize_seconds: Option<f64>,
    /// Extra encoder options passed as-is to libav (e.g. `tune = "film"`, `x264-params`).
    #[serde(default)]
    pub options: BTreeMap<String, RawNumberOrText>,
}

/// A value written either as a TOML number or a string (`level = 4.2` or `level = "4.2"`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawNumberOrText {
    Integer(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl std::fmt::Display for RawNumberOrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{}", u8::from(*b)),
        }
    }
}

/// GOP, segment and chunk lengths.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawSegments {
    /// Closed GOP length in seconds: an IDR frame every `gop_seconds` (default 2).
    #[serde(default)]
    pub gop_seconds: Option<f64>,
    /// Segment length in seconds, a whole multiple of `gop_seconds` (default 6).
    #[serde(default)]
    pub segment_seconds: Option<f64>,
    /// Segments per chunk, the unit of parallel work and of checkpoints (default 5).
    #[serde(default)]
    pub chunk_segments: Option<u32>,
}

/// One rendition of the ladder.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawRung {
    /// Unique name, e.g. `"720p"`.
    pub name: String,
    /// Width of the box the picture is fitted into (landscape; swapped for portrait sources).
    pub width: u32,
    /// Height of the box the picture is fitted into.
    pub height: u32,
    /// Target average bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Peak bitrate cap (VBV maxrate) in kbit/s; default `bitrate × maxrate_factor`.
    #[serde(default)]
    pub maxrate_kbps: Option<u32>,
    /// VBV buffer in kbit; default `maxrate × bufsize_seconds`.
    #[serde(default)]
    pub bufsize_kbit: Option<u32>,
}

/// The audio rendition (AAC-LC).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawAudio {
    /// Only `aac` (AAC-LC) is supported.
    #[serde(default)]
    pub codec: Option<String>,
    /// Bitrate in kbit/s (default 128).
    #[serde(default)]
    pub bitrate_kbps: Option<u32>,
    /// Output sample rate in Hz (default 48000).
    #[serde(default)]
    pub sample_rate: Option<u32>,
    /// At most this many channels, 1 or 2 (default 2): a mono source stays mono, more
    /// channels are downmixed.
    #[serde(default)]
    pub channels: Option<u32>,
    /// BCP 47 language of a track whose source says none (default `und`).
    #[serde(default)]
    pub language: Option<String>,
    /// Name players show for a track whose source has no title (default `Main`).
    #[serde(default)]
    pub label: Option<String>,
    /// Which of the source's audio tracks become renditions: `"all"` (default), `"first"`,
    /// or a list of positions among the audio tracks (`[0, 2]`).
    /// (Left out of the settings hash when not given, so that presets written before it
    /// keep theirs.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<RawAudioTracks>,
    /// Players pick the first rendition in this language (BCP 47) when the viewer's is not
    /// offered; without it, the track the container marks default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    /// A source audio track's name and language instead of its tags, by its position among
    /// the audio tracks: `[audio.track.1]` `title = "Deutsch"`, `language = "de"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub track: BTreeMap<String, RawTrackLabel>,
    /// Also keep a 5.1 AAC rendition of each track with 5.1 or more channels, beside its
    /// stereo one (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surround: Option<bool>,
    /// Also write `download/audio.m4a`: the default rendition as one progressive file
    /// (AAC, `moov` first), for podcast feeds and downloads (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podcast: Option<bool>,
    /// Loudness normalization (ITU-R BS.1770 / EBU R128); off when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<RawLoudness>,
}

/// `[audio.track.<n>]`: what to call source audio track `n`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawTrackLabel {
    /// The name players show.
    #[serde(default)]
    pub title: Option<String>,
    /// BCP 47 language.
    #[serde(default)]
    pub language: Option<String>,
}

/// `[audio.loudness]`: the integrated loudness each rendition is brought to, and the true
/// peak it may reach.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawLoudness {
    /// Integrated loudness in LUFS (default -16, as podcast and streaming platforms use).
    #[serde(default)]
    pub target_lufs: Option<f64>,
    /// Highest true peak in dBTP (default -1).
    #[serde(default)]
    pub true_peak_db: Option<f64>,
}

/// `tracks = "all"`, `"first"` or `[0, 2]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawAudioTracks {
    Text(String),
    List(Vec<u32>),
}

/// Poster, stills and sprite sheets.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawThumbnails {
    /// Whether to produce thumbnails at all (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Seconds between stills (default 10).
    #[serde(default)]
    pub interval_seconds: Option<f64>,
    /// Width of each still in pixels; height follows the picture (default 240).
    #[serde(default)]
    pub width: Option<u32>,
    /// Stills per sprite row (default 5).
    #[serde(default)]
    pub sprite_columns: Option<u32>,
    /// Rows per sprite sheet (default 5).
    #[serde(default)]
    pub sprite_rows: Option<u32>,
    /// Width of `poster.jpg`; default the largest rung's width.
    #[serde(default)]
    pub poster_width: Option<u32>,
}

/// Which manifests to write.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawPackaging {
    /// HLS media, I-frame and master playlists (default true).
    #[serde(default)]
    pub hls: Option<bool>,
    /// DASH MPD over the same segments (default true).
    #[serde(default)]
    pub dash: Option<bool>,
}

/// Kubernetes resources of the transcode Job (quantities as Kubernetes writes them).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RawResources {
    /// CPU request and limit, e.g. `"4"` or `"3500m"` (default `"2"`).
    #[serde(default)]
    pub cpu: Option<String>,
    /// Memory request and limit, e.g. `"2Gi"` (default `"2Gi"`).
    #[serde(default)]
    pub memory: Option<String>,
    /// Size limit of the scratch `emptyDir`, e.g. `"20Gi"` (default `"20Gi"`).
    #[serde(default)]
    pub scratch: Option<String>,
}
