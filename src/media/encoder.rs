//! Opening video and audio encoders from validated settings, and the "does this encoder
//! accept these options" check that `presets check` runs by really opening them.

use ffmpeg_next::{self as ff, Dictionary, codec, encoder, format::Pixel};

use crate::exit::{ExitClass, Outcome};
use crate::rate::FrameRate;

/// The video codecs a preset can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Hevc,
    Av1,
}

impl VideoCodec {
    /// The libav encoder used when a preset names none.
    pub fn default_encoder(self) -> &'static str {
        match self {
            Self::H264 => "libx264",
            Self::Hevc => "libx265",
            Self::Av1 => "libsvtav1",
        }
    }

    pub fn codec_id(self) -> codec::Id {
        match self {
            Self::H264 => codec::Id::H264,
            Self::Hevc => codec::Id::HEVC,
            Self::Av1 => codec::Id::AV1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Hevc => "hevc",
            Self::Av1 => "av1",
        }
    }
}

/// Where an encoder option came from, so a rejection can point at the preset key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionSource {
    /// `video.options.<key>`
    Options(String),
    Profile,
    Level,
    Speed,
    Crf,
    /// Set by ladder itself to hold the segment grid (GOP, scene cuts).
    Ladder,
}

/// One libav option to set on an encoder.
#[derive(Debug, Clone)]
pub struct EncoderOption {
    pub key: String,
    pub value: String,
    pub source: OptionSource,
}

/// Everything needed to open one rung's video encoder.
#[derive(Debug, Clone)]
pub struct VideoEncoderSpec {
    pub codec: VideoCodec,
    pub encoder: String,
    pub width: u32,
    pub height: u32,
    pub fps: FrameRate,
    pub gop_frames: u32,
    /// Target average bitrate; `None` for capped CRF.
    pub bitrate_kbps: Option<u32>,
    pub maxrate_kbps: u32,
    pub bufsize_kbit: u32,
    pub options: Vec<EncoderOption>,
    /// Encoder threads; 0 lets the encoder decide.
    pub threads: usize,
}

/// Why an encoder could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("encoder {0:?} is not in the linked libav (see `ffmpeg -encoders`)")]
    NotFound(String),
    #[error("encoder {encoder:?} produces {actual}, not {expected}")]
    WrongCodec { encoder: String, expected: &'static str, actual: String },
    #[error("encoder {encoder} rejected its settings: {source}")]
    Open { encoder: String, source: ff::Error },
    #[error("encoder {encoder} failed: {source}")]
    Failed { encoder: String, source: ff::Error },
    #[error("encoder {encoder} does not know option {key:?}")]
    UnknownOption { encoder: String, key: String, source_key: OptionSource },
}

impl ExitClass for EncoderError {
    /// Settings the encoder refuses are the preset's to fix; an encoder failing mid-stream
    /// may pass (out of memory, a bug).
    fn outcome(&self) -> Outcome {
        match self {
            Self::Open { source: ff::Error::Other { errno: libc::ENOMEM }, .. } | Self::Failed { .. } => {
                Outcome::Transient
            }
            Self::NotFound(_) | Self::WrongCodec { .. } | Self::Open { .. } | Self::UnknownOption { .. } => {
                Outcome::Usage
            }
        }
    }
}

/// One problem `check_video` found, with the option responsible when it is known.
#[derive(Debug)]
pub struct EncoderProblem {
    pub source: Option<OptionSource>,
    pub error: EncoderError,
}

/// The option holding the encoder-specific parameter string (`x264-params`…), where ladder
/// adds the settings that keep the segment grid: no scene-cut keyframes, closed GOPs.
fn grid_params(codec: VideoCodec, encoder: &str, gop: u32) -> Option<(&'static str, String)> {
    match (codec, encoder) {
        (VideoCodec::H264, "libx264") => Some(("x264-params", "scenecut=0:open-gop=0".to_owned())),
        (VideoCodec::Hevc, "libx265") => {
            Some(("x265-params", format!("keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=error")))
        }
        (VideoCodec::Av1, "libsvtav1") => Some(("svtav1-params", format!("keyint={gop}:irefresh-type=2:scd=0"))),
        _ => None,
    }
}

/// The full option list for a spec: the user's options plus ladder's grid settings merged
/// into the encoder's parameter string (ladder's last, so they win).
fn effective_options(spec: &VideoEncoderSpec) -> Vec<EncoderOption> {
    let mut out = spec.options.clone();
    if let Some((key, ours)) = grid_params(spec.codec, &spec.encoder, spec.gop_frames) {
        match out.iter_mut().find(|o| o.key == key) {
            Some(user) => user.value = format!("{}:{ours}", user.value),
            None => out.push(EncoderOption { key: key.to_owned(), value: ours, source: OptionSource::Ladder }),
        }
    }
    out
}

/// Opens `spec`'s encoder (pixel format yuv420p, time base 1/fps), returning it ready to
/// take frames.
pub fn open_video(spec: &VideoEncoderSpec) -> Result<encoder::video::Encoder, EncoderError> {
    open_video_with(spec, &effective_options(spec)).map_err(|mut problems| problems.remove(0).error)
}

fn open_video_with(
    spec: &VideoEncoderSpec,
    options: &[EncoderOption],
) -> Result<encoder::video::Encoder, Vec<EncoderProblem>> {
    super::init();
    let one = |source, error| vec![EncoderProblem { source, error }];
    let Some(codec) = encoder::find_by_name(&spec.encoder) else {
        return Err(one(None, EncoderError::NotFound(spec.encoder.clone())));
    };
    if codec.id() != spec.codec.codec_id() {
        return Err(one(
            None,
            EncoderError::WrongCodec {
                encoder: spec.encoder.clone(),
                expected: spec.codec.name(),
                actual: format!("{:?}", codec.id()).to_lowercase(),
            },
        ));
    }
    let context = codec::Context::new_with_codec(codec);
    let mut video = context
        .encoder()
        .video()
        .map_err(|e| one(None, EncoderError::Open { encoder: spec.encoder.clone(), source: e }))?;
    configure_video(&mut video, spec);
    let mut dict = Dictionary::new();
    for o in options {
        dict.set(&o.key, &o.value);
    }
    // SAFETY: avcodec_open2 takes ownership of the dictionary pointer and leaves in it the
    // entries it did not consume, which we take back with `own`.
    let (result, leftover) = unsafe {
        let mut raw = dict.disown();
        let r = ff::ffi::avcodec_open2(video.as_mut_ptr(), codec.as_ptr(), &mut raw);
        (r, Dictionary::own(raw))
    };
    if result < 0 {
        return Err(one(None, EncoderError::Open { encoder: spec.encoder.clone(), source: ff::Error::from(result) }));
    }
    let unknown = unknown_options(spec, options, &leftover);
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(encoder::video::Encoder(video))
}

/// Size, rate, GOP, rate control and threads from the spec, before the encoder is opened.
fn configure_video(video: &mut encoder::video::Video, spec: &VideoEncoderSpec) {
    video.set_width(spec.width);
    video.set_height(spec.height);
    video.set_format(Pixel::YUV420P);
    video.set_time_base(spec.fps.to_av().invert());
    video.set_frame_rate(Some(spec.fps.to_av()));
    video.set_gop(spec.gop_frames);
    video.set_max_b_frames(3);
    if let Some(kbps) = spec.bitrate_kbps {
        video.set_bit_rate(kbps as usize * 1000);
    }
    video.set_max_bit_rate(spec.maxrate_kbps as usize * 1000);
    video.set_flags(codec::Flags::GLOBAL_HEADER);
    // SVT-AV1 1.4 deadlocks on its first frame when limited to one logical processor.
    let threads = if spec.encoder == "libsvtav1" && spec.threads == 1 { 0 } else { spec.threads };
    video.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    // SAFETY: the context is valid and not yet opened; these plain fields have no setter.
    unsafe {
        let ctx = video.as_mut_ptr();
        (*ctx).rc_buffer_size = (spec.bufsize_kbit as i32).saturating_mul(1000);
        (*ctx).keyint_min = spec.gop_frames as i32;
    }
}

/// The options the encoder left unconsumed: it does not know them.
fn unknown_options(
    spec: &VideoEncoderSpec,
    options: &[EncoderOption],
    leftover: &Dictionary<'_>,
) -> Vec<EncoderProblem> {
    leftover
        .iter()
        .map(|(key, _)| {
            let source = options.iter().find(|o| o.key == key).map_or(OptionSource::Ladder, |o| o.source.clone());
            EncoderProblem {
                source: Some(source.clone()),
                error: EncoderError::UnknownOption {
                    encoder: spec.encoder.clone(),
                    key: key.to_owned(),
                    source_key: source,
                },
            }
        })
        .collect()
}

/// Opens the encoder as `spec` says and reports every problem: a missing encoder, options it
/// does not know, and values it rejects (found by opening with each option alone when
/// opening with all of them fails).
pub fn check_video(spec: &VideoEncoderSpec) -> Vec<EncoderProblem> {
    let options = effective_options(spec);
    let try_open = |options: &[EncoderOption]| open_video_with(spec, options).map(close_unused);
    let mut problems = match try_open(&options) {
        Ok(()) => return Vec::new(),
        Err(p) => p,
    };
    let opened_without_options = try_open(&[]).is_ok();
    let is_open_failure = matches!(problems.first(), Some(EncoderProblem { error: EncoderError::Open { .. }, .. }));
    if is_open_failure && opened_without_options {
        let culprits: Vec<EncoderProblem> = options
            .iter()
            .filter_map(|o| match try_open(std::slice::from_ref(o)) {
                Ok(()) => None,
                Err(mut p) => {
                    let mut first = p.remove(0);
                    first.source = Some(o.source.clone());
                    if let EncoderError::Open { source, .. } = first.error {
                        first.error = EncoderError::Open {
                            encoder: format!("{} ({} = {:?})", spec.encoder, o.key, o.value),
                            source,
                        };
                    }
                    Some(first)
                }
            })
            .collect();
        if !culprits.is_empty() {
            problems = culprits;
        }
    }
    problems
}

/// Closes an encoder opened only to check it. SVT-AV1 1.4 hangs when closed, or flushed,
/// before it has seen a frame, so it gets one black frame, the end of stream, and a drain.
fn close_unused(mut encoder: encoder::video::Encoder) {
    let mut frame = ff::frame::Video::new(Pixel::YUV420P, encoder.width(), encoder.height());
    for plane in 0..3 {
        let fill = if plane == 0 { 16 } else { 128 };
        frame.data_mut(plane).fill(fill);
    }
    frame.set_pts(Some(0));
    if encoder.send_frame(&frame).is_ok() && encoder.send_eof().is_ok() {
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {}
    }
}

/// Whether the linked libav has an encoder of this name.
pub fn is_available(name: &str) -> bool {
    super::init();
    encoder::find_by_name(name).is_some()
}

/// Whether the encoder of this name writes the A/53 closed captions its pictures carry as
/// side data: it has libav's `a53cc` option (libx264 does; libav 5.1's x265 and SVT-AV1
/// wrappers do not).
pub fn writes_captions(name: &str) -> bool {
    super::init();
    let Some(codec) = encoder::find_by_name(name) else { return false };
    let option = c"a53cc";
    // SAFETY: `codec` is a registered encoder; its `priv_class` is null or a static class,
    // which `av_opt_find` reads through a fake object (`AV_OPT_SEARCH_FAKE_OBJ`).
    unsafe {
        let class = (*codec.as_ptr()).priv_class;
        if class.is_null() {
            return false;
        }
        let object = std::ptr::addr_of!(class) as *mut std::ffi::c_void;
        let flags = ff::ffi::AV_OPT_SEARCH_FAKE_OBJ;
        !ff::ffi::av_opt_find(object, option.as_ptr(), std::ptr::null(), 0, flags).is_null()
    }
}

/// Settings of the AAC encoder.
#[derive(Debug, Clone)]
pub struct AudioEncoderSpec {
    pub encoder: String,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u32,
}

/// The layout of an encoded rendition of `channels`: mono, stereo or 5.1.
pub fn audio_layout(channels: u32) -> ff::ChannelLayout {
    match channels {
        1 => ff::ChannelLayout::MONO,
        6 => ff::ChannelLayout::_5POINT1,
        _ => ff::ChannelLayout::STEREO,
    }
}

/// Opens the audio encoder (planar float, as libav's AAC encoder takes).
pub fn open_audio(spec: &AudioEncoderSpec) -> Result<encoder::audio::Encoder, EncoderError> {
    super::init();
    let codec = encoder::find_by_name(&spec.encoder).ok_or_else(|| EncoderError::NotFound(spec.encoder.clone()))?;
    let open_err = |e| EncoderError::Open { encoder: spec.encoder.clone(), source: e };
    let mut audio = codec::Context::new_with_codec(codec).encoder().audio().map_err(open_err)?;
    let layout = audio_layout(spec.channels);
    audio.set_rate(spec.sample_rate as i32);
    audio.set_channel_layout(layout);
    audio.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
    audio.set_bit_rate(spec.bitrate_kbps as usize * 1000);
    audio.set_time_base(ff::Rational::new(1, spec.sample_rate as i32));
    audio.set_flags(codec::Flags::GLOBAL_HEADER);
    audio.open_as_with(codec, Dictionary::new()).map_err(open_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_encoder_with_a53cc_writes_captions() {
        assert!(writes_captions("libx264"));
        assert!(!writes_captions("libx265"));
        assert!(!writes_captions("no-such-encoder"));
    }
}
