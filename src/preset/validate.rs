//! The rules a preset must follow, turning [`RawPreset`] into [`Preset`] or into every
//! [`Problem`] found. Each rule names the key, the value, the limit and a fix.

use std::collections::{BTreeMap, HashMap};

use super::diagnostic::{KeyPath, Problem};
use super::raw::{RawAudioTracks, RawLoudness, RawNumberOrText, RawPreset, RawRung, RawTrackLabel, RawVideo};
use super::{
    AudioSettings, AudioTracks, Loudness, Packaging, Preset, RateControl, Resources, Rung, SegmentSettings,
    ThumbnailSettings, TrackLabel, VideoSettings, levels,
};
use crate::media::encoder::{self, EncoderError, OptionSource, VideoCodec};
use crate::rate::FrameRate;

/// No rung may be larger than 8K UHD in either direction.
const MAX_SIDE: u32 = 8192;
/// Peak-to-average above this is rejected (Apple HLS Authoring Specification, 200 %).
const MAX_PEAK_TO_AVERAGE: f64 = 2.0;
/// A VBV buffer outside this many seconds of maxrate starves or bloats players.
const BUFSIZE_SECONDS: (f64, f64) = (0.5, 4.0);
/// AAC-LC per channel, kbit/s.
const AAC_KBPS_PER_CHANNEL: (u32, u32) = (16, 160);

struct Rules {
    problems: Vec<Problem>,
}

impl Rules {
    fn fail(&mut self, path: KeyPath, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem::new(path, message, fix));
    }
}

fn path(p: &str) -> KeyPath {
    KeyPath::parse(p)
}

fn rung_path(i: usize, key: &str) -> KeyPath {
    path("rungs").index(i).key(key)
}

pub(super) fn validate(raw: &RawPreset) -> Result<Preset, Vec<Problem>> {
    let mut r = Rules { problems: Vec::new() };
    check_name(&mut r, &raw.name);
    let segments = check_segments(&mut r, raw);
    let video = check_video(&mut r, raw, segments);
    let rungs = check_rungs(&mut r, raw, video.as_ref());
    if let (Some(video), Some(segments)) = (&video, segments) {
        check_levels(&mut r, video, &rungs);
        check_encoder(&mut r, video, segments, &rungs);
    }
    let audio = check_audio(&mut r, raw);
    let thumbnails = check_thumbnails(&mut r, raw);
    let packaging = Packaging { hls: raw.packaging.hls.unwrap_or(true), dash: raw.packaging.dash.unwrap_or(true) };
    if !packaging.hls && !packaging.dash {
        r.fail(
            path("packaging"),
            "both hls and dash are off, so nothing would be published",
            "set hls = true or dash = true",
        );
    }
    let resources = check_resources(&mut r, raw);
    let dead_air_seconds = raw.trim.as_ref().and_then(|t| check_dead_air(&mut r, t.dead_air_seconds));
    let download = check_download(&mut r, raw);
    match (video, segments) {
        (Some(video), Some(segments)) if r.problems.is_empty() => Ok(Preset {
            name: raw.name.clone(),
            description: raw.description.clone().unwrap_or_default(),
            hash: super::settings_hash(raw),
            video,
            segments,
            rungs: rungs.into_iter().map(|(_, rung)| rung).collect(),
            audio,
            thumbnails,
            packaging,
            resources,
            dead_air_seconds,
            download,
        }),
        _ => Err(r.problems),
    }
}

/// `download`: each entry names a rung of this preset, once, usable as a file name.
fn check_download(r: &mut Rules, raw: &RawPreset) -> Vec<String> {
    let names: Vec<&str> = raw.rungs.iter().map(|rung| rung.name.as_str()).collect();
    let mut download: Vec<String> = Vec::new();
    for (i, name) in raw.download.iter().flatten().enumerate() {
        let at = path("download").index(i);
        if !names.contains(&name.as_str()) {
            r.fail(
                at,
                format!("download names {name:?}, which is not a rung of this preset"),
                format!("use one of the rung names: {}", names.join(", ")),
            );
        } else if !is_file_name(name) {
            r.fail(
                at,
                format!("rung name {name:?} cannot be a file name (download/{name}.mp4)"),
                "use only letters, digits, '-', '_' and '.' in the rung's name, not starting with '.'",
            );
        } else if download.contains(name) {
            r.fail(at, format!("download names {name:?} twice"), "name each rung once");
        } else {
            download.push(name.clone());
        }
    }
    download
}

fn is_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_name(r: &mut Rules, name: &str) {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c));
    let ok_ends =
        name.starts_with(|c: char| c.is_ascii_alphanumeric()) && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 63 || !ok_chars || !ok_ends {
        r.fail(
            path("name"),
            format!("preset name {name:?} is not usable in Job names and labels"),
            "use 1-63 lowercase letters, digits, '-', '.' or '_', starting and ending with a letter or digit",
        );
    }
}

fn check_segments(r: &mut Rules, raw: &RawPreset) -> Option<SegmentSettings> {
    let s = &raw.segments;
    let gop = s.gop_seconds.unwrap_or(2.0);
    let segment = s.segment_seconds.unwrap_or(6.0);
    let chunk_segments = s.chunk_segments.unwrap_or(5);
    let mut ok = true;
    if !(gop > 0.0 && gop <= 10.0) {
        r.fail(
            path("segments.gop_seconds"),
            format!("gop_seconds = {gop} is outside (0, 10]"),
            "use 1 or 2 seconds, as HLS and DASH players expect",
        );
        ok = false;
    }
    if !(segment > 0.0 && segment <= 30.0) {
        r.fail(
            path("segments.segment_seconds"),
            format!("segment_seconds = {segment} is outside (0, 30]"),
            "use 6 seconds (Apple's recommendation) or 2-10",
        );
        ok = false;
    }
    let ratio = segment / gop;
    let gops = ratio.round();
    if ok && ((ratio - gops).abs() > 1e-9 || gops < 1.0) {
        let lower = (ratio.floor().max(1.0)) * gop;
        r.fail(
            path("segments.segment_seconds"),
            format!("segment_seconds = {segment} is not a whole multiple of gop_seconds = {gop}, so segments would not start on an IDR frame"),
            format!("use segment_seconds = {lower} or {}", (ratio.floor() + 1.0) * gop),
        );
        ok = false;
    }
    if !(1..=100).contains(&chunk_segments) {
        r.fail(
            path("segments.chunk_segments"),
            format!("chunk_segments = {chunk_segments} is outside 1-100"),
            "use 5 (30 s chunks with 6 s segments)",
        );
        ok = false;
    }
    ok.then_some(SegmentSettings {
        gop_seconds: gop,
        segment_seconds: segment,
        gops_per_segment: gops as u32,
        chunk_segments,
    })
}

fn frame_rate(r: &mut Rules, key: &str, value: &RawNumberOrText) -> Option<FrameRate> {
    let parsed = match value {
        RawNumberOrText::Integer(i) if *i > 0 => u32::try_from(*i).ok().and_then(|i| FrameRate::new(i, 1)),
        RawNumberOrText::Float(x) => FrameRate::from_f64(*x),
        RawNumberOrText::Text(t) => t.parse().ok(),
        _ => None,
    };
    if parsed.is_none() {
        r.fail(
            path(key),
            format!("{key} = {value} is not a frame rate"),
            "write a positive rate such as 25, 30 or \"30000/1001\"",
        );
    }
    parsed
}

fn check_video(r: &mut Rules, raw: &RawPreset, segments: Option<SegmentSettings>) -> Option<VideoSettings> {
    let v = &raw.video;
    let codec = check_codec(r, &v.codec);
    let (fps, max_fps) = check_frame_rates(r, v, segments);
    let rate_control = check_rate_control(r, v, codec);
    let level = check_level_and_profile(r, v, codec);
    check_options(r, v);
    let (Some(codec), Some(max_fps), Some(rate_control)) = (codec, max_fps, rate_control) else {
        return None;
    };
    Some(VideoSettings {
        codec,
        encoder: v.encoder.clone().unwrap_or_else(|| codec.default_encoder().to_owned()),
        profile: v.profile.clone(),
        level,
        speed: v.speed.as_ref().map(ToString::to_string),
        fps,
        max_fps,
        rate_control,
        options: v.options.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
    })
}

fn check_codec(r: &mut Rules, codec: &str) -> Option<VideoCodec> {
    match codec {
        "h264" | "avc" => Some(VideoCodec::H264),
        "hevc" | "h265" => Some(VideoCodec::Hevc),
        "av1" => Some(VideoCodec::Av1),
        other => {
            r.fail(path("video.codec"), format!("unknown video codec {other:?}"), "use \"h264\", \"hevc\" or \"av1\"");
            None
        }
    }
}

/// `video.fps` and `video.max_fps` (default 60), and whether a GOP is whole frames.
fn check_frame_rates(
    r: &mut Rules,
    v: &RawVideo,
    segments: Option<SegmentSettings>,
) -> (Option<FrameRate>, Option<FrameRate>) {
    let max_fps = match &v.max_fps {
        None => FrameRate::new(60, 1),
        Some(x) => frame_rate(r, "video.max_fps", x),
    };
    if let Some(m) = max_fps
        && m.as_f64() > 60.0
    {
        r.fail(
            path("video.max_fps"),
            format!("max_fps = {m} is above 60"),
            "use at most 60: players and devices do not take more",
        );
    }
    let fps = v.fps.as_ref().and_then(|x| frame_rate(r, "video.fps", x));
    if let (Some(f), Some(m)) = (fps, max_fps)
        && f.as_f64() > m.as_f64()
    {
        r.fail(path("video.fps"), format!("fps = {f} is above max_fps = {m}"), format!("use fps <= {m}"));
    }
    if let (Some(f), Some(s)) = (fps, segments)
        && f.whole_frames_in(s.gop_seconds).is_none()
    {
        let frames = s.gop_seconds * f.as_f64();
        let whole = frames.round().max(1.0);
        r.fail(
            path("segments.gop_seconds"),
            format!("a GOP of {} s at {f} fps is {frames:.3} frames, not a whole number", s.gop_seconds),
            format!("use gop_seconds = {} ({whole} frames) or a frame rate that fits", trim_float(whole / f.as_f64())),
        );
    }
    (fps, max_fps)
}

fn check_rate_control(r: &mut Rules, v: &RawVideo, codec: Option<VideoCodec>) -> Option<RateControl> {
    match (v.rate_control.as_deref().unwrap_or("cvbr"), v.crf) {
        ("cvbr", None) => Some(RateControl::Cvbr),
        ("cvbr", Some(_)) => {
            r.fail(
                path("video.crf"),
                "crf is set but rate_control is \"cvbr\", which ignores it",
                "remove crf, or set rate_control = \"capped_crf\"",
            );
            None
        }
        ("capped_crf", crf) => {
            let max = if codec == Some(VideoCodec::Av1) { 63.0 } else { 51.0 };
            let crf = crf.unwrap_or(match codec {
                Some(VideoCodec::Hevc) => 28.0,
                Some(VideoCodec::Av1) => 35.0,
                _ => 23.0,
            });
            if !(0.0..=max).contains(&crf) {
                r.fail(
                    path("video.crf"),
                    format!("crf = {crf} is outside 0-{max}"),
                    "use 18-28 for H.264/HEVC or 25-40 for AV1",
                );
            }
            Some(RateControl::CappedCrf { crf })
        }
        (other, _) => {
            r.fail(
                path("video.rate_control"),
                format!("unknown rate_control {other:?}"),
                "use \"cvbr\" (constrained VBR) or \"capped_crf\"",
            );
            None
        }
    }
}

/// The level, normalised; the level and profile must fit the codec.
fn check_level_and_profile(r: &mut Rules, v: &RawVideo, codec: Option<VideoCodec>) -> Option<String> {
    let level = v.level.as_ref().map(|l| levels::normalise(&l.to_string()));
    if let (Some(level), Some(codec)) = (&level, codec) {
        match codec {
            VideoCodec::Av1 => {
                r.fail(path("video.level"), "level is not supported for av1 (SVT-AV1 picks it)", "remove level")
            }
            c if !levels::is_known(level, c == VideoCodec::Hevc) => r.fail(
                path("video.level"),
                format!("unknown {} level {level:?}", c.name()),
                format!("use one of {}", levels::names(c == VideoCodec::Hevc).join(", ")),
            ),
            _ => {}
        }
    }
    if let (Some(profile), Some(VideoCodec::Av1)) = (&v.profile, codec)
        && profile != "main"
    {
        r.fail(
            path("video.profile"),
            format!("av1 profile {profile:?} is not supported"),
            "use \"main\" (8/10-bit 4:2:0) or remove profile",
        );
    }
    level
}

/// Encoder options must not override what ladder sets from the preset.
fn check_options(r: &mut Rules, v: &RawVideo) {
    for (key, value) in &v.options {
        if matches!(
            key.as_str(),
            "g" | "keyint_min"
                | "sc_threshold"
                | "forced-idr"
                | "b"
                | "maxrate"
                | "bufsize"
                | "crf"
                | "preset"
                | "profile"
                | "level"
        ) {
            r.fail(
                path("video.options").key(key),
                format!("option {key} = {value} is set by ladder from the preset"),
                "remove it; use segments.gop_seconds, the rung bitrates, video.crf, video.speed, video.profile or video.level",
            );
        }
    }
}

/// Rungs that passed their own checks, with their index in the file.
fn check_rungs(r: &mut Rules, raw: &RawPreset, video: Option<&VideoSettings>) -> Vec<(usize, Rung)> {
    if raw.rungs.is_empty() {
        r.fail(path("rungs"), "the preset has no rungs", "add at least one [[rungs]] table");
    }
    let shape = check_rate_shape(r, raw);
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut good = Vec::new();
    for (i, rung) in raw.rungs.iter().enumerate() {
        if rung.name.trim().is_empty() {
            r.fail(
                rung_path(i, "name"),
                format!("rung {i} has an empty name"),
                "name it after its height, e.g. \"720p\"",
            );
        } else if let Some(first) = names.insert(rung.name.as_str(), i) {
            r.fail(
                rung_path(i, "name"),
                format!("rung name {:?} is used by rungs {first} and {i}", rung.name),
                "give every rung its own name",
            );
        }
        if let Some(checked) = check_rung(r, i, rung, shape)
            && video.is_some()
        {
            good.push((i, checked));
        }
    }
    check_bitrate_order(r, &raw.rungs);
    good
}

/// `video.maxrate_factor` and `video.bufsize_seconds`: how a rung's peak and buffer follow
/// from its bitrate when it does not set them.
#[derive(Debug, Clone, Copy)]
struct RateShape {
    maxrate_factor: f64,
    bufsize_seconds: f64,
}

fn check_rate_shape(r: &mut Rules, raw: &RawPreset) -> RateShape {
    let maxrate_factor = raw.video.maxrate_factor.unwrap_or(1.5);
    if !(1.0..=MAX_PEAK_TO_AVERAGE).contains(&maxrate_factor) {
        r.fail(
            path("video.maxrate_factor"),
            format!("maxrate_factor = {maxrate_factor} is outside 1.0-{MAX_PEAK_TO_AVERAGE}"),
            "use 1.1-2.0 (peak at most twice the average, per Apple's HLS Authoring Specification)",
        );
    }
    let bufsize_seconds = raw.video.bufsize_seconds.unwrap_or(2.0);
    if !(BUFSIZE_SECONDS.0..=BUFSIZE_SECONDS.1).contains(&bufsize_seconds) {
        r.fail(
            path("video.bufsize_seconds"),
            format!("bufsize_seconds = {bufsize_seconds} is outside {}-{}", BUFSIZE_SECONDS.0, BUFSIZE_SECONDS.1),
            "use 1-2 seconds of maxrate",
        );
    }
    RateShape { maxrate_factor, bufsize_seconds }
}

/// One rung's size, bitrate, peak and buffer.
fn check_rung(r: &mut Rules, i: usize, rung: &RawRung, shape: RateShape) -> Option<Rung> {
    let RateShape { maxrate_factor, bufsize_seconds } = shape;
    let mut ok = check_dimension(r, i, rung, "width", rung.width) & check_dimension(r, i, rung, "height", rung.height);
    if rung.bitrate_kbps == 0 {
        r.fail(
            rung_path(i, "bitrate_kbps"),
            format!("rung {:?} has bitrate 0", rung.name),
            "give it a bitrate in kbit/s",
        );
        ok = false;
    }
    let maxrate = rung.maxrate_kbps.unwrap_or((f64::from(rung.bitrate_kbps) * maxrate_factor).round() as u32);
    if maxrate < rung.bitrate_kbps {
        r.fail(
            rung_path(i, "maxrate_kbps"),
            format!("rung {:?}: maxrate {maxrate} kbit/s is below its bitrate {} kbit/s", rung.name, rung.bitrate_kbps),
            format!("set maxrate_kbps >= {}", rung.bitrate_kbps),
        );
        ok = false;
    } else if f64::from(maxrate) > MAX_PEAK_TO_AVERAGE * f64::from(rung.bitrate_kbps) {
        r.fail(
            rung_path(i, "maxrate_kbps"),
            format!(
                "rung {:?}: peak {maxrate} kbit/s is more than {MAX_PEAK_TO_AVERAGE} × its average {} kbit/s",
                rung.name, rung.bitrate_kbps
            ),
            format!("set maxrate_kbps <= {}", (MAX_PEAK_TO_AVERAGE * f64::from(rung.bitrate_kbps)) as u32),
        );
        ok = false;
    }
    let bufsize = rung.bufsize_kbit.unwrap_or((f64::from(maxrate) * bufsize_seconds).round() as u32);
    let seconds = f64::from(bufsize) / f64::from(maxrate.max(1));
    if !(BUFSIZE_SECONDS.0..=BUFSIZE_SECONDS.1).contains(&seconds) {
        r.fail(
            rung_path(i, "bufsize_kbit"),
            format!(
                "rung {:?}: bufsize {bufsize} kbit is {seconds:.2} s of its maxrate {maxrate} kbit/s (expected {}-{} s)",
                rung.name, BUFSIZE_SECONDS.0, BUFSIZE_SECONDS.1
            ),
            format!(
                "set bufsize_kbit between {} and {}",
                (f64::from(maxrate) * BUFSIZE_SECONDS.0).ceil(),
                (f64::from(maxrate) * BUFSIZE_SECONDS.1).floor()
            ),
        );
        ok = false;
    }
    ok.then(|| Rung {
        name: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        bitrate_kbps: rung.bitrate_kbps,
        maxrate_kbps: maxrate,
        bufsize_kbit: bufsize,
    })
}

fn check_dimension(r: &mut Rules, i: usize, rung: &RawRung, key: &str, value: u32) -> bool {
    let problem = if value == 0 {
        Some(format!("rung {:?}: {key} is 0", rung.name))
    } else if value % 2 == 1 {
        Some(format!("rung {:?}: {key} {value} is odd (4:2:0 video needs even sizes)", rung.name))
    } else if value > MAX_SIDE {
        Some(format!("rung {:?}: {key} {value} is above {MAX_SIDE}", rung.name))
    } else if value < 16 {
        Some(format!("rung {:?}: {key} {value} is below 16", rung.name))
    } else {
        None
    };
    let Some(message) = problem else {
        return true;
    };
    let suggestion = match value {
        0 => "use the rung's size, e.g. 1280x720".to_owned(),
        v if v > MAX_SIDE => format!("use at most {MAX_SIDE}"),
        v if v < 16 => "use at least 16".to_owned(),
        v => format!("use {} or {}", v - 1, v + 1),
    };
    r.fail(rung_path(i, key), message, suggestion);
    false
}

/// More pixels must cost more bits: a larger rung with no more bitrate than a smaller one
/// is wasted (or the smaller one is starved of quality it cannot show).
fn check_bitrate_order(r: &mut Rules, rungs: &[RawRung]) {
    for (i, rung) in rungs.iter().enumerate() {
        let pixels = u64::from(rung.width) * u64::from(rung.height);
        let offender = rungs
            .iter()
            .enumerate()
            .filter(|(j, other)| {
                let other_pixels = u64::from(other.width) * u64::from(other.height);
                *j != i
                    && (other_pixels < pixels && other.bitrate_kbps >= rung.bitrate_kbps
                        || other_pixels == pixels && other.bitrate_kbps == rung.bitrate_kbps && *j < i)
            })
            .max_by_key(|(_, other)| other.bitrate_kbps);
        if let Some((_, other)) = offender {
            let same = u64::from(other.width) * u64::from(other.height) == pixels;
            let message = if same {
                format!(
                    "rung {:?} ({}x{} at {} kbit/s) duplicates rung {:?}",
                    rung.name, rung.width, rung.height, rung.bitrate_kbps, other.name
                )
            } else {
                format!(
                    "rung {:?} ({}x{}) has {} kbit/s, no more than the smaller rung {:?} ({}x{}) at {} kbit/s: bitrate must increase with resolution",
                    rung.name,
                    rung.width,
                    rung.height,
                    rung.bitrate_kbps,
                    other.name,
                    other.width,
                    other.height,
                    other.bitrate_kbps
                )
            };
            r.fail(
                rung_path(i, "bitrate_kbps"),
                message,
                format!("raise it above {} kbit/s or remove a rung", other.bitrate_kbps),
            );
        }
    }
}

fn check_levels(r: &mut Rules, video: &VideoSettings, rungs: &[(usize, Rung)]) {
    let Some(level) = &video.level else { return };
    // When following the source the rate can be anything up to max_fps: check the worst.
    let fps = video.fps.unwrap_or(video.max_fps).as_f64();
    let high = video.profile.as_deref().is_none_or(|p| p.starts_with("high"));
    for (i, rung) in rungs {
        let load = levels::RungLoad {
            width: rung.width,
            height: rung.height,
            fps,
            maxrate_kbps: rung.maxrate_kbps,
            bufsize_kbit: rung.bufsize_kbit,
        };
        let violations = match video.codec {
            VideoCodec::H264 => levels::h264_violations(level, high, load),
            VideoCodec::Hevc => levels::hevc_violations(level, load),
            VideoCodec::Av1 => Vec::new(),
        };
        for v in violations {
            r.fail(
                path("rungs").index(*i).key("name"),
                format!(
                    "rung {:?} ({}x{}@{fps:.3}) breaks {} level {level}: {v}",
                    rung.name,
                    rung.width,
                    rung.height,
                    video.codec.name()
                ),
                "raise video.level, lower the rung's size or bitrate, or set video.fps lower",
            );
        }
    }
}

fn check_encoder(r: &mut Rules, video: &VideoSettings, segments: SegmentSettings, rungs: &[(usize, Rung)]) {
    let fps = video.fps.unwrap_or(video.max_fps);
    let gop_frames = (segments.gop_seconds * fps.as_f64()).round().max(1.0) as u32;
    let probe_rung = rungs.first().map(|(_, rung)| rung.clone()).unwrap_or(Rung {
        name: "check".into(),
        width: 640,
        height: 360,
        bitrate_kbps: 1000,
        maxrate_kbps: 1500,
        bufsize_kbit: 3000,
    });
    let spec = super::encoder_spec(video, &probe_rung, fps, gop_frames, 1);
    let encoder_key = if video.encoder == video.codec.default_encoder() { "video.codec" } else { "video.encoder" };
    for problem in encoder::check_video(&spec) {
        let key = match &problem.source {
            Some(OptionSource::Options(k)) => path("video.options").key(k),
            Some(OptionSource::Profile) => path("video.profile"),
            Some(OptionSource::Level) => path("video.level"),
            Some(OptionSource::Speed) => path("video.speed"),
            Some(OptionSource::Crf) => path("video.crf"),
            Some(OptionSource::Ladder) | None => path(encoder_key),
        };
        let fix = match &problem.error {
            EncoderError::NotFound(_) => "install a libav built with it, or choose another video.encoder".to_owned(),
            EncoderError::WrongCodec { .. } => {
                format!("use {} for {}", video.codec.default_encoder(), video.codec.name())
            }
            EncoderError::UnknownOption { .. } => {
                format!("remove it (`ffmpeg -h encoder={}` lists its options)", video.encoder)
            }
            EncoderError::Open { .. } | EncoderError::Failed { .. } => {
                format!("use a value {} accepts (`ffmpeg -h encoder={}`)", video.encoder, video.encoder)
            }
        };
        r.fail(key, problem.error.to_string(), fix);
    }
}

fn check_audio(r: &mut Rules, raw: &RawPreset) -> AudioSettings {
    let a = &raw.audio;
    let codec = a.codec.as_deref().unwrap_or("aac");
    if codec != "aac" {
        r.fail(
            path("audio.codec"),
            format!("audio codec {codec:?} is not supported"),
            "use \"aac\" (AAC-LC, which every HLS and DASH player plays)",
        );
    } else if !encoder::is_available("aac") {
        r.fail(
            path("audio.codec"),
            "the linked libav has no aac encoder",
            "install a libav with its native aac encoder",
        );
    }
    let channels = a.channels.unwrap_or(2);
    if !(1..=2).contains(&channels) {
        r.fail(
            path("audio.channels"),
            format!("channels = {channels} is not supported"),
            "use 2 (stereo) or 1 (mono); sources are downmixed",
        );
    }
    let bitrate = a.bitrate_kbps.unwrap_or(128);
    let (lo, hi) = (AAC_KBPS_PER_CHANNEL.0 * channels.clamp(1, 2), AAC_KBPS_PER_CHANNEL.1 * channels.clamp(1, 2));
    if !(lo..=hi).contains(&bitrate) {
        r.fail(
            path("audio.bitrate_kbps"),
            format!(
                "audio bitrate {bitrate} kbit/s is outside AAC-LC's useful range for {channels} channel(s), {lo}-{hi}"
            ),
            "use 96-160 kbit/s for stereo (128 is typical)",
        );
    }
    let sample_rate = a.sample_rate.unwrap_or(48_000);
    if ![32_000, 44_100, 48_000].contains(&sample_rate) {
        r.fail(
            path("audio.sample_rate"),
            format!("sample_rate = {sample_rate} is not supported"),
            "use 48000 (or 44100)",
        );
    }
    let language = a.language.clone().unwrap_or_else(|| "und".into());
    check_language(r, "audio.language", &language);
    AudioSettings {
        encoder: "aac".into(),
        bitrate_kbps: bitrate,
        sample_rate,
        channels,
        language,
        label: a.label.clone().unwrap_or_else(|| "Main".into()),
        tracks: check_audio_tracks(r, a.tracks.as_ref()),
        loudness: a.loudness.as_ref().map(|l| check_loudness(r, l)),
        podcast: a.podcast.unwrap_or(false),
        surround: a.surround.unwrap_or(false),
        default_language: a.default_language.clone().inspect(|l| check_language(r, "audio.default_language", l)),
        labels: check_track_labels(r, &a.track),
    }
}

/// `[trim] dead_air_seconds`: required in the table, 1 s to an hour.
fn check_dead_air(r: &mut Rules, seconds: Option<f64>) -> Option<f64> {
    match seconds {
        Some(s) if (1.0..=3600.0).contains(&s) => Some(s),
        Some(s) => {
            r.fail(
                path("trim.dead_air_seconds"),
                format!("dead_air_seconds = {s} is outside 1 to 3600"),
                "use a few seconds, e.g. 4: shorter pauses are part of the event",
            );
            None
        }
        None => {
            r.fail(path("trim"), "[trim] has no dead_air_seconds", "set dead_air_seconds, e.g. 4, or remove [trim]");
            None
        }
    }
}

fn check_loudness(r: &mut Rules, raw: &RawLoudness) -> Loudness {
    let l = Loudness { target_lufs: raw.target_lufs.unwrap_or(-16.0), true_peak_db: raw.true_peak_db.unwrap_or(-1.0) };
    if !(-40.0..=-5.0).contains(&l.target_lufs) {
        r.fail(
            path("audio.loudness.target_lufs"),
            format!("target_lufs = {} is outside -40 to -5 LUFS", l.target_lufs),
            "use -16 (streaming and podcasts), -23 (EBU R128 broadcast) or -24 (ATSC A/85)",
        );
    }
    if !(-9.0..=0.0).contains(&l.true_peak_db) {
        r.fail(
            path("audio.loudness.true_peak_db"),
            format!("true_peak_db = {} is outside -9 to 0 dBTP", l.true_peak_db),
            "use -1 (or -2 for content encoded at low bitrates)",
        );
    }
    l
}

/// A BCP 47 tag (as `language::bcp47` reads one: the same rule for presets and flags).
fn check_language(r: &mut Rules, key: &str, language: &str) {
    let valid = crate::language::bcp47(language).is_some();
    if !valid {
        r.fail(
            path(key),
            format!("language {language:?} is not a BCP 47 tag"),
            "use a tag such as \"en\", \"pt-BR\" or \"und\"",
        );
    }
}

/// `[audio.track.<n>]` tables: `n` a position among the audio tracks.
fn check_track_labels(r: &mut Rules, raw: &BTreeMap<String, RawTrackLabel>) -> BTreeMap<u32, TrackLabel> {
    let mut labels = BTreeMap::new();
    for (key, label) in raw {
        let Ok(position) = key.parse::<u32>() else {
            r.fail(
                path(&format!("audio.track.{key}")),
                format!("[audio.track.{key}] does not name an audio track"),
                "name the track by its position among the audio tracks: [audio.track.0] for the first",
            );
            continue;
        };
        if let Some(language) = &label.language {
            check_language(r, &format!("audio.track.{key}.language"), language);
        }
        labels.insert(position, TrackLabel { title: label.title.clone(), language: label.language.clone() });
    }
    labels
}

fn check_audio_tracks(r: &mut Rules, tracks: Option<&RawAudioTracks>) -> AudioTracks {
    let fix = "use \"all\", \"first\" or a list of positions among the audio tracks, such as [0, 2]";
    match tracks {
        None => AudioTracks::All,
        Some(RawAudioTracks::Text(t)) => match t.parse::<AudioTracks>() {
            Ok(AudioTracks::Some(_)) | Err(_) => {
                r.fail(path("audio.tracks"), format!("tracks = {t:?} is not a selection of audio tracks"), fix);
                AudioTracks::All
            }
            Ok(selection) => selection,
        },
        Some(RawAudioTracks::List(list)) => {
            let mut unique = list.clone();
            unique.sort_unstable();
            unique.dedup();
            if list.is_empty() || unique.len() != list.len() {
                r.fail(path("audio.tracks"), "tracks lists no track, or one twice", fix);
            }
            AudioTracks::Some(list.clone())
        }
    }
}

fn check_thumbnails(r: &mut Rules, raw: &RawPreset) -> ThumbnailSettings {
    let t = &raw.thumbnails;
    let s = ThumbnailSettings {
        enabled: t.enabled.unwrap_or(true),
        interval_seconds: t.interval_seconds.unwrap_or(10.0),
        width: t.width.unwrap_or(240),
        sprite_columns: t.sprite_columns.unwrap_or(5),
        sprite_rows: t.sprite_rows.unwrap_or(5),
        poster_width: t.poster_width,
    };
    if !(s.interval_seconds >= 1.0 && s.interval_seconds <= 3600.0) {
        r.fail(
            path("thumbnails.interval_seconds"),
            format!("interval_seconds = {} is outside 1-3600", s.interval_seconds),
            "use 2-10 seconds",
        );
    }
    for (key, value, max) in [("width", Some(s.width), 1920), ("poster_width", s.poster_width, 3840)] {
        if let Some(v) = value
            && (v % 2 == 1 || !(32..=max).contains(&v))
        {
            r.fail(
                path("thumbnails").key(key),
                format!("thumbnail {key} {v} must be even and within 32-{max}"),
                "use e.g. 160 or 240",
            );
        }
    }
    for (key, value) in [("sprite_columns", s.sprite_columns), ("sprite_rows", s.sprite_rows)] {
        if !(1..=20).contains(&value) {
            r.fail(path("thumbnails").key(key), format!("{key} = {value} is outside 1-20"), "use 5 to 10");
        }
    }
    s
}

fn check_resources(r: &mut Rules, raw: &RawPreset) -> Resources {
    let res = &raw.resources;
    let out = Resources {
        cpu: res.cpu.clone().unwrap_or_else(|| "2".into()),
        memory: res.memory.clone().unwrap_or_else(|| "2Gi".into()),
        scratch: res.scratch.clone().unwrap_or_else(|| "20Gi".into()),
    };
    if !is_quantity(&out.cpu, &["m", ""]) {
        r.fail(
            path("resources.cpu"),
            format!("cpu {:?} is not a Kubernetes CPU quantity", out.cpu),
            "write e.g. \"2\" or \"1500m\"",
        );
    }
    let bytes = ["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T", ""];
    for (key, value) in [("memory", &out.memory), ("scratch", &out.scratch)] {
        if !is_quantity(value, &bytes) {
            r.fail(
                path("resources").key(key),
                format!("{key} {value:?} is not a Kubernetes quantity"),
                "write e.g. \"2Gi\" or \"512Mi\"",
            );
        }
    }
    out
}

/// A float with at most 6 decimals and no trailing zeros (`2.002`, not `2.0020000000000002`).
fn trim_float(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `123`, `1.5`, `500m`, `2Gi`: a positive decimal with one of `suffixes`.
fn is_quantity(text: &str, suffixes: &[&str]) -> bool {
    let digits_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    suffixes.contains(&suffix) && number.parse::<f64>().is_ok_and(|n| n > 0.0) && !number.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities() {
        assert!(is_quantity("2", &["m", ""]));
        assert!(is_quantity("1500m", &["m", ""]));
        assert!(!is_quantity("2 cores", &["m", ""]));
        assert!(is_quantity("2Gi", &["Gi", ""]));
        assert!(!is_quantity("0", &[""]));
        assert!(!is_quantity("Gi", &["Gi"]));
    }
}
