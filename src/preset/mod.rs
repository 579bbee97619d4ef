//! Presets: TOML ladders read into validated types.
//!
//! A preset file is read in three steps, each reporting every problem it can, with its
//! line and a fix: TOML syntax and types (`serde`), unknown keys (with "did you mean"),
//! then the rules of `validate` — including opening the encoder with the preset's options,
//! since only libav knows which it accepts. The result, [`Preset`], is the only form the
//! rest of ladder uses.

pub(crate) mod diagnostic;
pub(crate) mod levels;
pub(crate) mod raw;
mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use diagnostic::Seg;
pub use diagnostic::{Diagnostic, KeyPath, Problem};
use raw::RawPreset;

use crate::exit::{ExitClass, Outcome};
use crate::media::encoder::{EncoderOption, OptionSource, VideoCodec, VideoEncoderSpec};
use crate::rate::FrameRate;

/// Presets shipped inside the binary, by name. `default` is the one used when none is given.
const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../presets/default.toml")),
    ("small", include_str!("../../presets/small.toml")),
    ("hevc", include_str!("../../presets/hevc.toml")),
    ("av1", include_str!("../../presets/av1.toml")),
];

/// The name of the preset used when none is given.
pub const DEFAULT: &str = "default";

/// A validated ladder. Only [`load_str`] makes one, so every rule of `presets check` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    pub name: String,
    pub description: String,
    /// SHA-256 of the preset's settings (not its formatting): equal settings, equal hash.
    pub hash: String,
    pub video: VideoSettings,
    pub segments: SegmentSettings,
    /// In the order the file lists them.
    pub rungs: Vec<Rung>,
    pub audio: AudioSettings,
    pub thumbnails: ThumbnailSettings,
    pub packaging: Packaging,
    pub resources: Resources,
    /// Dead air at least this long is cut from the recording's ends; `None`: kept.
    pub dead_air_seconds: Option<f64>,
    /// Names of the rungs also published as `download/<name>.mp4`, in the file's order.
    pub download: Vec<String>,
}

/// Video settings shared by every rung.
#[derive(Debug, Clone, Serialize)]
pub struct VideoSettings {
    pub codec: VideoCodec,
    pub encoder: String,
    pub profile: Option<String>,
    /// Normalised spelling (`4.2`, `4`, `1b`).
    pub level: Option<String>,
    pub speed: Option<String>,
    /// Fixed output rate; `None` follows the source's nominal rate up to `max_fps`.
    pub fps: Option<FrameRate>,
    pub max_fps: FrameRate,
    pub rate_control: RateControl,
    /// Extra encoder options, passed to libav as written.
    pub options: Vec<(String, String)>,
}

/// How bits are spent within each rung's cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RateControl {
    /// Target average bitrate with the VBV cap (maxrate, bufsize).
    Cvbr,
    /// Constant quality, never above the VBV cap.
    CappedCrf { crf: f64 },
}

/// The segment grid: `segment_seconds = gops_per_segment × gop_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SegmentSettings {
    pub gop_seconds: f64,
    pub segment_seconds: f64,
    pub gops_per_segment: u32,
    pub chunk_segments: u32,
}

/// One rendition box. Width and height are even and non-zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub maxrate_kbps: u32,
    pub bufsize_kbit: u32,
}

/// The AAC-LC rendition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioSettings {
    pub encoder: String,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    /// The most channels a rendition has: fewer in the source stay fewer.
    pub channels: u32,
    /// For a source track without a language tag.
    pub language: String,
    /// For a source track without a title.
    pub label: String,
    pub tracks: AudioTracks,
    /// Off when `None`.
    pub loudness: Option<Loudness>,
    /// Write `download/audio.m4a` of the default rendition.
    pub podcast: bool,
    /// Also a 5.1 rendition of each track with 5.1 or more channels.
    pub surround: bool,
    /// The default rendition's language, when the preset chooses it.
    pub default_language: Option<String>,
    /// Names and languages given to source tracks, by position among the audio tracks.
    pub labels: std::collections::BTreeMap<u32, TrackLabel>,
}

/// What the preset calls a source audio track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrackLabel {
    pub title: Option<String>,
    pub language: Option<String>,
}

/// Loudness normalization: measured per ITU-R BS.1770 over the whole track, then a
/// constant gain to `target_lufs`, with a limiter keeping peaks under `true_peak_db`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Loudness {
    pub target_lufs: f64,
    pub true_peak_db: f64,
}

/// Which of the source's audio tracks become renditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioTracks {
    All,
    First,
    /// Positions among the source's audio tracks (0 is the first audio track, as
    /// ffmpeg's `-map 0:a:0`).
    Some(Vec<u32>),
}

impl std::str::FromStr for AudioTracks {
    type Err = String;

    /// `all`, `first`, or positions such as `0,2`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Self::All),
            "first" => Ok(Self::First),
            list => {
                let positions: Result<Vec<u32>, _> = list.split(',').map(|p| p.trim().parse::<u32>()).collect();
                match positions {
                    Ok(p) if !p.is_empty() => Ok(Self::Some(p)),
                    _ => Err(format!(
                        "{s:?} is not an audio track selection: use all, first, or positions among the audio tracks such as 0,2"
                    )),
                }
            }
        }
    }
}

impl AudioTracks {
    /// Whether the `position`-th audio track of the source is selected.
    pub fn selects(&self, position: u32) -> bool {
        match self {
            Self::All => true,
            Self::First => position == 0,
            Self::Some(p) => p.contains(&position),
        }
    }

    fn to_raw(&self) -> raw::RawAudioTracks {
        match self {
            Self::All => raw::RawAudioTracks::Text("all".into()),
            Self::First => raw::RawAudioTracks::Text("first".into()),
            Self::Some(p) => raw::RawAudioTracks::List(p.clone()),
        }
    }
}

/// Poster, stills and sprites. Widths are even.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThumbnailSettings {
    pub enabled: bool,
    pub interval_seconds: f64,
    pub width: u32,
    pub sprite_columns: u32,
    pub sprite_rows: u32,
    pub poster_width: Option<u32>,
}

/// Which manifests to write; at least one is on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Packaging {
    pub hls: bool,
    pub dash: bool,
}

/// Kubernetes quantities for the transcode Job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    pub cpu: String,
    pub memory: String,
    pub scratch: String,
}

impl Preset {
    /// The preset with another selection of audio tracks (`--audio`); its hash says so.
    pub fn with_audio_tracks(mut self, tracks: AudioTracks) -> Self {
        if tracks != self.audio.tracks {
            self.rehash(&format!("audio.tracks = {tracks:?}"));
            self.audio.tracks = tracks;
        }
        self
    }

    /// The preset with names and languages given to source audio tracks, and the default
    /// rendition's language (`--audio-title`, `--audio-language`, `--default-audio-language`);
    /// its hash says so.
    pub fn with_audio_labels(
        mut self,
        labels: std::collections::BTreeMap<u32, TrackLabel>,
        default_language: Option<String>,
    ) -> Self {
        self.rehash(&format!("audio labels = {labels:?}, default = {default_language:?}"));
        for (n, label) in labels {
            let entry = self.audio.labels.entry(n).or_default();
            entry.title = label.title.or(entry.title.take());
            entry.language = label.language.or(entry.language.take());
        }
        self.audio.default_language = default_language.or(self.audio.default_language.take());
        self
    }

    /// A new hash for settings changed after loading: the old one and what changed.
    fn rehash(&mut self, change: &str) {
        let digest = Sha256::digest(format!("{}\n{change}", self.hash));
        self.hash = digest.iter().map(|b| format!("{b:02x}")).collect();
    }

    /// The preset as a preset file with every default written out: `presets show` prints
    /// it, and it loads back to the same settings (the hash, over the file's own settings,
    /// is a comment).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        use raw::RawNumberOrText::Text;
        let v = &self.video;
        let (rate_control, crf) = match v.rate_control {
            RateControl::Cvbr => ("cvbr", None),
            RateControl::CappedCrf { crf } => ("capped_crf", Some(crf)),
        };
        let file = RawPreset {
            name: self.name.clone(),
            description: Some(self.description.clone()),
            download: (!self.download.is_empty()).then(|| self.download.clone()),
            video: raw::RawVideo {
                codec: v.codec.name().to_owned(),
                encoder: Some(v.encoder.clone()),
                profile: v.profile.clone(),
                level: v.level.clone().map(Text),
                speed: v.speed.clone().map(Text),
                fps: v.fps.map(|f| Text(f.to_string())),
                max_fps: Some(Text(v.max_fps.to_string())),
                rate_control: Some(rate_control.to_owned()),
                crf,
                // Every rung carries its own maxrate and buffer.
                maxrate_factor: None,
                bufsize_seconds: None,
                options: v.options.iter().map(|(k, value)| (k.clone(), Text(value.clone()))).collect(),
            },
            segments: raw::RawSegments {
                gop_seconds: Some(self.segments.gop_seconds),
                segment_seconds: Some(self.segments.segment_seconds),
                chunk_segments: Some(self.segments.chunk_segments),
            },
            rungs: self
                .rungs
                .iter()
                .map(|r| raw::RawRung {
                    name: r.name.clone(),
                    width: r.width,
                    height: r.height,
                    bitrate_kbps: r.bitrate_kbps,
                    maxrate_kbps: Some(r.maxrate_kbps),
                    bufsize_kbit: Some(r.bufsize_kbit),
                })
                .collect(),
            audio: raw::RawAudio {
                codec: Some("aac".to_owned()),
                bitrate_kbps: Some(self.audio.bitrate_kbps),
                sample_rate: Some(self.audio.sample_rate),
                channels: Some(self.audio.channels),
                language: Some(self.audio.language.clone()),
                label: Some(self.audio.label.clone()),
                tracks: Some(self.audio.tracks.to_raw()),
                podcast: Some(self.audio.podcast),
                surround: Some(self.audio.surround),
                default_language: self.audio.default_language.clone(),
                track: (self.audio.labels.iter())
                    .map(|(n, l)| {
                        (n.to_string(), raw::RawTrackLabel { title: l.title.clone(), language: l.language.clone() })
                    })
                    .collect(),
                loudness: self
                    .audio
                    .loudness
                    .map(|l| raw::RawLoudness { target_lufs: Some(l.target_lufs), true_peak_db: Some(l.true_peak_db) }),
            },
            thumbnails: raw::RawThumbnails {
                enabled: Some(self.thumbnails.enabled),
                interval_seconds: Some(self.thumbnails.interval_seconds),
                width: Some(self.thumbnails.width),
                sprite_columns: Some(self.thumbnails.sprite_columns),
                sprite_rows: Some(self.thumbnails.sprite_rows),
                poster_width: self.thumbnails.poster_width,
            },
            packaging: raw::RawPackaging { hls: Some(self.packaging.hls), dash: Some(self.packaging.dash) },
            resources: raw::RawResources {
                cpu: Some(self.resources.cpu.clone()),
                memory: Some(self.resources.memory.clone()),
                scratch: Some(self.resources.scratch.clone()),
            },
            trim: self.dead_air_seconds.map(|s| raw::RawTrim { dead_air_seconds: Some(s) }),
        };
        Ok(format!(
            "# preset {} with every default written out; settings hash {}\n{}",
            self.name,
            self.hash,
            toml::to_string_pretty(&file)?
        ))
    }

    /// The encoder settings of one rung at an output rate and GOP length.
    pub fn encoder_spec(&self, rung: &Rung, fps: FrameRate, gop_frames: u32, threads: usize) -> VideoEncoderSpec {
        encoder_spec(&self.video, rung, fps, gop_frames, threads)
    }
}

fn encoder_spec(
    video: &VideoSettings,
    rung: &Rung,
    fps: FrameRate,
    gop_frames: u32,
    threads: usize,
) -> VideoEncoderSpec {
    let mut options: Vec<EncoderOption> = video
        .options
        .iter()
        .map(|(k, v)| EncoderOption { key: k.clone(), value: v.clone(), source: OptionSource::Options(k.clone()) })
        .collect();
    let mut push =
        |key: &str, value: String, source| options.push(EncoderOption { key: key.to_owned(), value, source });
    if let Some(speed) = &video.speed {
        push("preset", speed.clone(), OptionSource::Speed);
    }
    if let Some(profile) = &video.profile
        && video.codec != VideoCodec::Av1
    {
        push("profile", profile.clone(), OptionSource::Profile);
    }
    if let (Some(level), VideoCodec::H264) = (&video.level, video.codec) {
        push("level", level.clone(), OptionSource::Level);
    }
    if let RateControl::CappedCrf { crf } = video.rate_control {
        push("crf", format!("{crf}"), OptionSource::Crf);
    }
    let mut spec = VideoEncoderSpec {
        codec: video.codec,
        encoder: video.encoder.clone(),
        width: rung.width,
        height: rung.height,
        fps,
        gop_frames,
        bitrate_kbps: match video.rate_control {
            RateControl::Cvbr => Some(rung.bitrate_kbps),
            RateControl::CappedCrf { .. } => None,
        },
        maxrate_kbps: rung.maxrate_kbps,
        bufsize_kbit: rung.bufsize_kbit,
        options,
        threads,
    };
    if let (Some(level), VideoCodec::Hevc) = (&video.level, video.codec) {
        // libx265 has no `level` option: the level goes in its parameter string.
        let idc = format!("level-idc={level}");
        match spec.options.iter_mut().find(|o| o.key == "x265-params") {
            Some(o) => o.value = format!("{}:{idc}", o.value),
            None => {
                spec.options.push(EncoderOption { key: "x265-params".into(), value: idc, source: OptionSource::Level })
            }
        }
    }
    spec
}

/// Why a preset could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("cannot read preset {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("no preset named {name:?} (built in: {builtin}; or give a path to a .toml file)")]
    NotFound { name: String, builtin: String },
    #[error("preset {origin} is invalid:\n{}", render(.diagnostics))]
    Invalid { origin: String, diagnostics: Vec<Diagnostic> },
}

impl ExitClass for PresetError {
    /// A preset that cannot be read or used is the caller's to fix.
    fn outcome(&self) -> Outcome {
        Outcome::Usage
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
}

/// The names of the built-in presets.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

/// The TOML text of a built-in preset.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Loads a preset named by the user: a path to a TOML file, a built-in name, or
/// `<name>.toml` in `dir` (the presets folder).
pub fn resolve(spec: &str, dir: Option<&Path>) -> Result<Preset, PresetError> {
    let path = Path::new(spec);
    if path.is_file() {
        return load_file(path);
    }
    if let Some(text) = builtin_text(spec) {
        return load_str(text, &format!("<built-in {spec}>"));
    }
    if let Some(dir) = dir {
        let candidate = dir.join(format!("{spec}.toml"));
        if candidate.is_file() {
            return load_file(&candidate);
        }
    }
    if spec.ends_with(".toml") || spec.contains('/') {
        return Err(PresetError::Read {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    Err(PresetError::NotFound { name: spec.to_owned(), builtin: builtin_names().collect::<Vec<_>>().join(", ") })
}

/// Reads and validates a preset file.
pub fn load_file(path: &Path) -> Result<Preset, PresetError> {
    let text = std::fs::read_to_string(path).map_err(|source| PresetError::Read { path: path.to_owned(), source })?;
    load_str(&text, &path.display().to_string())
}

/// Validates preset text; `origin` names it in diagnostics (a path, usually).
pub fn load_str(text: &str, origin: &str) -> Result<Preset, PresetError> {
    let invalid = |diagnostics| PresetError::Invalid { origin: origin.to_owned(), diagnostics };
    let root = match toml::de::DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => return Err(invalid(vec![syntax_diagnostic(text, origin, &e)])),
    };
    let mut unknown = Vec::new();
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| invalid(vec![syntax_diagnostic(text, origin, &e)]))?;
    let parsed: Result<RawPreset, _> = serde_ignored::deserialize(deserializer, |p| unknown.push(ignored_path(&p)));
    let mut problems: Vec<Problem> = unknown.iter().map(unknown_key_problem).collect();
    let mut diagnostics = Vec::new();
    match parsed {
        Err(e) => diagnostics.push(syntax_diagnostic(text, origin, &e)),
        Ok(raw) => match validate::validate(&raw) {
            Ok(preset) if problems.is_empty() => return Ok(preset),
            Ok(_) => {}
            Err(mut more) => problems.append(&mut more),
        },
    }
    diagnostics.extend(problems.iter().map(|p| {
        let (line, column) = diagnostic::line_col(text, diagnostic::locate(root.get_ref(), &p.path, p.at_key));
        Diagnostic {
            file: origin.to_owned(),
            line,
            column,
            key: crate::message::clip(&p.path.to_string(), crate::message::MAX_LINE / 2).into_owned(),
            message: p.message.clone(),
            fix: p.fix.clone(),
        }
    }));
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Err(invalid(diagnostics))
}

fn syntax_diagnostic(text: &str, origin: &str, e: &toml::de::Error) -> Diagnostic {
    let (line, column) = diagnostic::line_col(text, e.span().map_or(0, |s| s.start));
    // serde quotes the offending value, which may be megabytes long.
    let message =
        crate::message::clip(&e.message().trim().replace('\n', " "), crate::message::MAX_LINE / 2).into_owned();
    let fix = if message.contains("missing field") {
        "add it (see `ladder presets schema`)"
    } else if message.contains("invalid type") || message.contains("did not match any variant") {
        "use the type the schema gives for this key (`ladder presets schema`)"
    } else {
        "fix the TOML syntax here"
    };
    Diagnostic { file: origin.to_owned(), line, column, key: String::new(), message, fix: fix.to_owned() }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> KeyPath {
    use serde_ignored::Path as P;
    match path {
        P::Root => KeyPath::default(),
        P::Seq { parent, index } => ignored_path(parent).index(*index),
        P::Map { parent, key } => ignored_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

fn unknown_key_problem(path: &KeyPath) -> Problem {
    let key = path.last_key().unwrap_or_default();
    let known = known_keys(&path.parent());
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let fix = match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => "remove it".to_owned(),
        None => format!("remove it; known keys here: {}", known.join(", ")),
    };
    let mut p = Problem::new(path.clone(), format!("unknown key `{path}`"), fix);
    p.at_key = true;
    p
}

/// The JSON Schema of the preset format, for editors (`ladder presets schema`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPreset)).expect("a generated schema is valid JSON")
}

/// The keys the schema allows in the table at `path`.
fn known_keys(path: &KeyPath) -> Vec<String> {
    let schema = schema();
    let mut node = &schema;
    for seg in &path.0 {
        node = object_schema(&schema, node);
        let next = match seg {
            Seg::Key(k) => node.get("properties").and_then(|p| p.get(k)),
            Seg::Index(_) => node.get("items"),
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    object_schema(&schema, node)
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref` and `anyOf` (used for optional tables) to the schema with the properties.
fn object_schema<'a>(root: &'a serde_json::Value, node: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
        let pointer = reference.trim_start_matches('#');
        if let Some(target) = root.pointer(pointer) {
            return object_schema(root, target);
        }
    }
    if let Some(options) = node.get("anyOf").and_then(|a| a.as_array()) {
        for option in options {
            let resolved = object_schema(root, option);
            if resolved.get("properties").is_some() || resolved.get("items").is_some() {
                return resolved;
            }
        }
    }
    node
}

/// SHA-256 (hex) of the raw settings in canonical JSON form.
fn settings_hash(raw: &RawPreset) -> String {
    let canonical = serde_json::to_vec(raw).expect("a preset always serialises");
    let digest = Sha256::digest(&canonical);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_preset_is_valid() {
        for name in builtin_names() {
            let text = builtin_text(name).unwrap();
            if let Err(e) = load_str(text, name) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn default_is_apples_h264_ladder() {
        let p = resolve(DEFAULT, None).unwrap();
        let rungs: Vec<(u32, u32, u32)> = p.rungs.iter().map(|r| (r.width, r.height, r.bitrate_kbps)).collect();
        assert_eq!(
            rungs,
            [
                (416, 234, 145),
                (640, 360, 365),
                (768, 432, 730),
                (768, 432, 1100),
                (960, 540, 2000),
                (1280, 720, 3000),
                (1280, 720, 4500),
                (1920, 1080, 6000),
                (1920, 1080, 7800)
            ]
        );
        assert_eq!(p.segments.gop_seconds, 2.0);
        assert_eq!(p.segments.segment_seconds, 6.0);
        assert_eq!(p.video.profile.as_deref(), Some("high"));
        assert_eq!(p.video.level.as_deref(), Some("4.2"));
        assert_eq!((p.audio.sample_rate, p.audio.channels, p.audio.bitrate_kbps), (48000, 2, 128));
    }

    #[test]
    fn known_keys_follow_refs_into_arrays() {
        let keys = known_keys(&KeyPath::parse("rungs").index(0));
        assert!(keys.contains(&"bitrate_kbps".to_owned()), "{keys:?}");
        let keys = known_keys(&KeyPath::parse("thumbnails"));
        assert!(keys.contains(&"interval_seconds".to_owned()), "{keys:?}");
    }

    #[test]
    fn a_shown_preset_loads_back_to_the_same_settings() {
        // The built-in presets, and one with what none of them uses: capped CRF, encoder
        // options, a fixed frame rate.
        let mut texts: Vec<(String, String)> =
            builtin_names().map(|n| (n.to_owned(), builtin_text(n).unwrap().to_owned())).collect();
        let crf = builtin_text("small").unwrap().replace(
            "[video]",
            "[video]\nrate_control = \"capped_crf\"\ncrf = 23\nfps = 30\noptions = { tune = \"film\" }",
        );
        texts.push(("crf".to_owned(), crf));
        for (name, text) in texts {
            let preset = load_str(&text, &name).unwrap();
            let shown = preset.to_toml().unwrap();
            let again = load_str(&shown, "shown").unwrap_or_else(|e| panic!("{name}: {e}\n{shown}"));
            let settings = |p: &Preset| {
                let mut v = serde_json::to_value(p).unwrap();
                v.as_object_mut().unwrap().remove("hash");
                v
            };
            assert_eq!(settings(&again), settings(&preset), "{name}");
            assert!(shown.contains("maxrate_kbps"), "{name}: defaults are written out\n{shown}");
        }
    }

    #[test]
    fn hash_ignores_formatting_but_not_settings() {
        let a = builtin_text("small").unwrap();
        let b = format!("# a comment\n{a}\n\n");
        let c = a.replace("bitrate_kbps = 400", "bitrate_kbps = 410");
        let ha = load_str(a, "a").unwrap().hash;
        assert_eq!(ha, load_str(&b, "b").unwrap().hash);
        assert_ne!(ha, load_str(&c, "c").unwrap().hash);
    }
}
