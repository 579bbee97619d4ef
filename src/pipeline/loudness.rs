//! Loudness normalization of an audio rendition, in-process through libavfilter: the whole
//! track is measured first (`ebur128`: ITU-R BS.1770 integrated loudness, EBU R128
//! loudness range, true peak), then brought to the preset's target by a constant gain
//! (`volume`), with a look-ahead limiter (`alimiter`) only when the gain would lift the
//! true peak over the preset's ceiling. Dynamics are kept: no compression, unlike
//! `loudnorm`'s dynamic mode. The gained signal is measured again on its way to the
//! encoder, so the report gives input and output figures.
//!
//! The measuring pass decodes only this audio track (no video): for an hour of AAC, a few
//! seconds of one CPU.

use ffmpeg_next::{self as ff, ffi};
use serde::{Deserialize, Serialize};

use crate::preset::Loudness;

/// What `ebur128` measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Integrated loudness, LUFS (`None`: the track is silent, below the -70 LUFS gate).
    pub integrated_lufs: Option<f64>,
    /// Loudness range, LU.
    pub range_lu: f64,
    /// True peak, dBTP (`None`: digital silence).
    pub true_peak_dbtp: Option<f64>,
}

/// A rendition's figures for the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoudnessFigures {
    pub target_lufs: f64,
    pub true_peak_limit_db: f64,
    pub input: Measured,
    /// The constant gain applied, dB.
    pub gain_db: f64,
    /// Whether the limiter was put in (the gain would have lifted peaks over the limit).
    pub limited: bool,
    /// Measured on the signal handed to the encoder.
    pub output: Measured,
}

/// The meter: `ebur128` with true peaks, its running figures on the frames it passes on.
pub(super) const METER: &str = "ebur128=peak=true:metadata=true";

/// `chain` run on the rendition's own sound: resampled and down-mixed first (libswresample,
/// as the encoding path does), so the loudness measured, the gain and the limiter's
/// ceiling are those of what is encoded, not of the source's channels (5.1 limited
/// channel by channel can still clip once down-mixed).
pub(super) fn conformed(audio: &crate::plan::PlannedAudio, chain: &str) -> String {
    let layout = match audio.channels {
        1 => "mono",
        6 => "5.1",
        _ => "stereo",
    };
    format!("aresample={},aformat=sample_fmts=fltp:channel_layouts={layout},{chain}", audio.sample_rate)
}

/// Headroom the limiter keeps under the true-peak ceiling, in dB: it limits sample peaks,
/// and the peaks between samples and the AAC encoder's overshoot add up to about this.
const LIMITER_MARGIN_DB: f64 = 1.0;

/// The gain and filters that bring `input` to `target`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub(super) gain_db: f64,
    pub(super) limited: bool,
    /// The libavfilter chain: gain, limiter when needed, and the output meter.
    pub(super) chain: String,
}

/// Brings the measured loudness to the target. A silent track is left as it is.
pub(super) fn plan(input: &Measured, target: Loudness) -> Plan {
    let gain_db = input.integrated_lufs.map_or(0.0, |i| target.target_lufs - i);
    let limit_db = target.true_peak_db - LIMITER_MARGIN_DB;
    let limited = input.true_peak_dbtp.is_some_and(|peak| peak + gain_db > limit_db);
    let mut chain = format!("volume={gain_db:.3}dB:precision=double");
    if limited {
        let limit = 10f64.powf(limit_db / 20.0);
        chain.push_str(&format!(",alimiter=limit={limit:.5}:level=false:latency=true:attack=5:release=100"));
    }
    chain.push(',');
    chain.push_str(METER);
    Plan { gain_db, limited, chain }
}

/// Reads the running figures `ebur128` attaches to the frames it passes on
/// (`metadata=true`): the last integrated loudness and range, the highest true peak.
#[derive(Debug, Default)]
pub(super) struct Meter {
    integrated: Option<f64>,
    range: f64,
    peak: f64,
}

impl Meter {
    pub(super) fn read(&mut self, frame: &ff::frame::Audio) {
        let metadata = frame.metadata();
        let number = |key: &str| metadata.get(key).and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(i) = number("lavfi.r128.I") {
            self.integrated = Some(i);
        }
        if let Some(range) = number("lavfi.r128.LRA") {
            self.range = range;
        }
        for (key, value) in metadata.iter() {
            if key.starts_with("lavfi.r128.true_peaks_ch")
                && let Ok(peak) = value.trim().parse::<f64>()
            {
                self.peak = self.peak.max(peak);
            }
        }
    }

    pub(super) fn measured(&self) -> Measured {
        Measured {
            // ebur128 reports -70 (its gate) for a track with nothing above it.
            integrated_lufs: self.integrated.filter(|i| i.is_finite() && *i > -70.0),
            range_lu: self.range,
            true_peak_dbtp: (self.peak > 0.0).then(|| 20.0 * self.peak.log10()),
        }
    }
}

/// A libavfilter chain from decoded frames (`abuffer`, set up from the first frame) to
/// `abuffersink`.
pub(super) struct Filter {
    graph: ff::filter::Graph,
    /// Of the frames out of the sink.
    pub(super) time_base: ff::Rational,
}

impl Filter {
    pub(super) fn open(chain: &str, first: &ff::frame::Audio, time_base: ff::Rational) -> Result<Self, ff::Error> {
        let layout = match first.channel_layout().bits() {
            0 => ff::ChannelLayout::default(i32::from(first.channels())).bits(),
            bits => bits,
        };
        let args = format!(
            "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{layout:x}",
            time_base.numerator(),
            time_base.denominator(),
            first.rate(),
            first.format().name(),
        );
        let mut graph = ff::filter::Graph::new();
        let abuffer = ff::filter::find("abuffer").ok_or(ff::Error::FilterNotFound)?;
        let sink = ff::filter::find("abuffersink").ok_or(ff::Error::FilterNotFound)?;
        graph.add(&abuffer, "in", &args)?;
        graph.add(&sink, "out", "")?;
        graph.output("in", 0)?.input("out", 0)?.parse(chain)?;
        graph.validate()?;
        let mut out = graph.get("out").ok_or(ff::Error::FilterNotFound)?;
        // SAFETY: the sink of a configured graph; the call only reads its input link.
        let time_base = ff::Rational::from(unsafe { ffi::av_buffersink_get_time_base(out.as_mut_ptr()) });
        Ok(Self { graph, time_base })
    }

    /// Feeds a decoded frame, or the end of the track (`None`).
    pub(super) fn push(&mut self, frame: Option<&ff::frame::Audio>) -> Result<(), ff::Error> {
        let mut source = self.graph.get("in").ok_or(ff::Error::FilterNotFound)?;
        match frame {
            Some(frame) => source.source().add(frame),
            None => source.source().flush(),
        }
    }

    /// Takes the next filtered frame; `false` when the chain needs more input or is done.
    pub(super) fn pull(&mut self, frame: &mut ff::frame::Audio) -> Result<bool, ff::Error> {
        let mut sink = self.graph.get("out").ok_or(ff::Error::FilterNotFound)?;
        match sink.sink().frame(frame) {
            Ok(()) => Ok(true),
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Where a filtered frame goes, with its time in seconds from the output's zero.
pub(super) type Placer<'a, E> = dyn FnMut(&ff::frame::Audio, Option<f64>) -> Result<(), E> + 'a;

/// A chain on the way from the decoder to the resampler: opened on the first frame (whose
/// format it takes), metered at its end.
pub(super) struct Stage {
    chain: String,
    filter: Option<Filter>,
    pub(super) meter: Meter,
    filtered: ff::frame::Audio,
    /// The output's time zero on the recording's clock, in seconds.
    zero: f64,
    /// Of the decoded frames.
    time_base: ff::Rational,
}

impl Stage {
    pub(super) fn new(chain: String, time_base: ff::Rational, zero: f64) -> Self {
        Self { chain, filter: None, meter: Meter::default(), filtered: ff::frame::Audio::empty(), zero, time_base }
    }

    /// Feeds a decoded frame (`None`: the end of the track) and hands each frame out of
    /// the chain to `each`, with its time in seconds from the output's zero.
    pub(super) fn feed<E: From<ff::Error>>(
        &mut self,
        frame: Option<&ff::frame::Audio>,
        each: &mut Placer<'_, E>,
    ) -> Result<(), E> {
        if self.filter.is_none() {
            let Some(first) = frame else { return Ok(()) };
            self.filter = Some(Filter::open(&self.chain, first, self.time_base)?);
        }
        let filter = self.filter.as_mut().expect("opened just above");
        filter.push(frame)?;
        while filter.pull(&mut self.filtered)? {
            self.meter.read(&self.filtered);
            let at = self.filtered.pts().map(|pts| pts as f64 * f64::from(filter.time_base) - self.zero);
            each(&self.filtered, at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(integrated: f64, peak: f64) -> Measured {
        Measured { integrated_lufs: Some(integrated), range_lu: 3.0, true_peak_dbtp: Some(peak) }
    }

    #[test]
    fn a_quiet_talk_is_raised_by_a_constant_gain() {
        let p = plan(&measured(-35.0, -25.0), Loudness { target_lufs: -16.0, true_peak_db: -1.0 });
        assert!((p.gain_db - 19.0).abs() < 1e-9);
        assert!(!p.limited, "peaks land at -6 dBTP: {p:?}");
        assert!(p.chain.starts_with("volume=19.000dB") && !p.chain.contains("alimiter"), "{}", p.chain);
    }

    #[test]
    fn a_gain_that_would_clip_gets_the_limiter() {
        let p = plan(&measured(-30.0, -3.0), Loudness { target_lufs: -16.0, true_peak_db: -1.0 });
        assert!(p.limited && p.chain.contains("alimiter=limit=0.79433"), "{}", p.chain);
    }

    #[test]
    fn silence_is_left_alone() {
        let silent = Measured { integrated_lufs: None, range_lu: 0.0, true_peak_dbtp: None };
        let p = plan(&silent, Loudness { target_lufs: -16.0, true_peak_db: -1.0 });
        assert_eq!((p.gain_db, p.limited), (0.0, false));
    }
}
