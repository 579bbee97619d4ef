//! `report.json`: what was made from what, how well and at what cost. The input (probe,
//! size, SHA-256), the preset (name, hash), libav and encoder versions, per rung the
//! measured average and peak bitrates, segment count and (with `--quality`) PSNR/SSIM,
//! and per stage wall and CPU seconds.

use std::io::Read as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::assemble::Ladder;
use crate::location::Location;
use crate::package::captions::ClosedCaptions;
use crate::package::track::TrackSummary;
use crate::pipeline::loudness::LoudnessFigures;
use crate::plan::{Plan, PlannedAudio};
use crate::probe::Probe;

/// Wall and CPU seconds of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub wall_seconds: f64,
    /// Of the whole process (every thread) during the stage.
    pub cpu_seconds: f64,
}

impl Stage {
    /// A stage that began at `start` (wall instant, process CPU seconds) and ends now.
    pub fn since(name: &'static str, start: (Instant, f64)) -> Self {
        Self { name, wall_seconds: start.0.elapsed().as_secs_f64(), cpu_seconds: cpu_seconds() - start.1 }
    }
}

/// One video rung as measured.
#[derive(Debug, Clone, Serialize)]
pub struct RungReport {
    pub dir: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub codec: String,
    pub segments: usize,
    /// Bytes of the rung's media segments.
    pub bytes: u64,
    pub average_kbps: f64,
    pub peak_kbps: f64,
    /// The preset's target average and peak bitrates for the rung.
    pub target_kbps: u32,
    pub maxrate_kbps: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_y_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssim: Option<f64>,
}

/// The audio rendition as measured.
#[derive(Debug, Clone, Serialize)]
pub struct AudioReport {
    /// `a<k>`.
    pub dir: String,
    pub language: String,
    pub name: String,
    pub channels: u32,
    pub default: bool,
    /// The recording's stream it was made from.
    pub source_stream: usize,
    /// With loudness normalization: input and output integrated loudness, range and true
    /// peak, and the gain applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loudness: Option<LoudnessFigures>,
    pub codec: String,
    pub segments: usize,
    pub average_kbps: f64,
    pub peak_kbps: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ladder_version: &'static str,
    pub input: InputReport,
    pub preset: PresetReport,
    pub plan_id: String,
    pub libraries: Vec<(String, String)>,
    pub encoder: EncoderReport,
    pub output: OutputReport,
    pub rungs: Vec<RungReport>,
    /// One per audio rendition, in the order of the `a<k>` folders.
    pub audio: Vec<AudioReport>,
    /// One per subtitle rendition made, in the order of the `s<k>` folders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<SubtitleReport>,
    /// Planned subtitle renditions that could not be made (a broken stream), and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subtitles_left_out: Vec<crate::subtitles::LeftOut>,
    pub stages: Vec<Stage>,
    pub run: RunStats,
}

/// A subtitle rendition: where its cues came from and how many there are.
#[derive(Debug, Clone, Serialize)]
pub struct SubtitleReport {
    pub dir: String,
    pub language: String,
    pub name: String,
    pub forced: bool,
    pub source: Option<crate::plan::SubtitleSource>,
    pub cues: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub location: String,
    pub size_bytes: u64,
    /// A local file's SHA-256 (not computed for a file over 8 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// An S3 object read in place: its ETag, size and stored checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<crate::location::ObjectIdentity>,
    /// Bytes this process fetched of an object read in place (read-ahead included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    /// What an object read in place was checked against (its stored checksum), when this
    /// process checked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    pub probe: Probe,
}

/// What names the input: a local file's SHA-256, an S3 object's identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputIdentity {
    pub sha256: Option<String>,
    pub object: Option<crate::location::ObjectIdentity>,
    pub bytes_read: Option<u64>,
    pub verified: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresetReport {
    pub name: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EncoderReport {
    pub name: String,
    /// As the encoder wrote it into the stream, when it does (x264, x265).
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub duration_seconds: f64,
    pub fps: crate::rate::FrameRate,
    pub segments: usize,
    pub segment_seconds: f64,
    pub hls: bool,
    pub dash: bool,
    /// Where the poster and the thumbnails' WebVTT index are, from the output's root
    /// (`thumbs/…`, or `g<n>/thumbs/…` for a ladder that took its output over).
    pub poster: Option<String>,
    pub thumbnails_vtt: Option<String>,
    /// `download/audio.m4a` (from the output's root), its size and SHA-256, when the
    /// preset asks for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub podcast: Option<DownloadReport>,
    /// The closed-caption channels carried in the video (`CC1`, `SERVICE1`) and the
    /// language they are declared in; absent when the recording has none.
    #[serde(skip_serializing_if = "ClosedCaptions::is_empty")]
    pub closed_captions: ClosedCaptions,
    /// The part of the recording kept, and what was cut, when it was trimmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim: Option<crate::trim::PlannedTrim>,
    /// `download/<rung>.mp4` of each rung the preset's `download` names (and the recording
    /// is large enough for), in the preset's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<RungDownloadReport>,
}

/// A progressive file for downloads.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadReport {
    pub key: String,
    pub size_bytes: u64,
    pub sha256: String,
}

impl DownloadReport {
    fn of(file: &crate::record::FileRecord) -> Self {
        Self { key: file.key.clone(), size_bytes: file.size, sha256: file.sha256.clone() }
    }
}

/// A rung's progressive MP4 (with the default audio).
#[derive(Debug, Clone, Serialize)]
pub struct RungDownloadReport {
    /// The preset's rung name.
    pub rung: String,
    #[serde(flatten)]
    pub file: DownloadReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// Media seconds per wall second.
    pub speed: f64,
    pub cpus: usize,
    pub jobs: usize,
    pub encoder_threads: usize,
    pub chunks_encoded: Vec<u32>,
    pub chunks_reused: Vec<u32>,
}

/// What a report is made from.
pub struct ReportInputs<'a> {
    pub input: &'a Location,
    pub probe: &'a Probe,
    pub input_identity: InputIdentity,
    pub plan: &'a Plan,
    pub plan_id: &'a str,
    /// The libav encoder name, e.g. `libx264`.
    pub encoder: &'a str,
    pub ladder: &'a Ladder,
    pub stages: Vec<Stage>,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub cpus: usize,
    pub jobs: usize,
    pub encoder_threads: usize,
    pub encoded: &'a [u32],
    pub reused: &'a [u32],
    /// The poster's and the thumbnails' index's keys, when the plan has thumbnails.
    pub thumbnails: Option<(String, String)>,
    /// Planned subtitle renditions that could not be made.
    pub subtitles_left_out: &'a [crate::subtitles::LeftOut],
}

impl Report {
    pub fn new(r: ReportInputs<'_>) -> Self {
        let (plan, ladder) = (r.plan, r.ladder);
        let rungs = plan
            .rungs
            .iter()
            .zip(&ladder.video)
            .zip(&ladder.quality)
            .map(|((rung, track), quality)| RungReport {
                dir: track.dir.clone(),
                name: rung.name.clone(),
                width: rung.width,
                height: rung.height,
                codec: track.codec.clone(),
                segments: track.segments.len(),
                bytes: track.segments.iter().map(|s| s.size).sum(),
                average_kbps: track.average_bitrate() as f64 / 1000.0,
                peak_kbps: track.peak_bitrate() as f64 / 1000.0,
                target_kbps: rung.bitrate_kbps,
                maxrate_kbps: rung.maxrate_kbps,
                psnr_db: quality.as_ref().and_then(|q| q.psnr_db()),
                psnr_y_db: quality.as_ref().and_then(|q| q.psnr_y_db()),
                ssim: quality.as_ref().and_then(|q| q.ssim()),
            })
            .collect();
        let audio = (ladder.audio.iter().zip(&plan.audio).zip(&ladder.loudness))
            .map(|((track, planned), loudness)| audio_report(track, planned, *loudness))
            .collect();
        Self {
            ladder_version: env!("CARGO_PKG_VERSION"),
            input: InputReport {
                location: r.input.to_string(),
                size_bytes: r.probe.size_bytes,
                sha256: r.input_identity.sha256,
                object: r.input_identity.object,
                bytes_read: r.input_identity.bytes_read,
                verified: r.input_identity.verified,
                probe: r.probe.clone(),
            },
            preset: PresetReport { name: plan.preset.name.clone(), hash: plan.preset.hash.clone() },
            plan_id: r.plan_id.to_owned(),
            libraries: crate::media::library_versions().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            encoder: EncoderReport { name: r.encoder.to_owned(), version: ladder.encoder_version.clone() },
            output: OutputReport {
                duration_seconds: plan.duration_seconds,
                fps: plan.fps,
                segments: plan.segments.len(),
                segment_seconds: f64::from(plan.segment_frames) / plan.fps.as_f64(),
                hls: ladder.hls,
                dash: ladder.dash,
                poster: r.thumbnails.as_ref().map(|t| t.0.clone()),
                thumbnails_vtt: r.thumbnails.as_ref().map(|t| t.1.clone()),
                podcast: ladder.podcast.as_ref().map(DownloadReport::of),
                downloads: (ladder.downloads.iter())
                    .map(|d| RungDownloadReport { rung: d.rung.clone(), file: DownloadReport::of(&d.file) })
                    .collect(),
                closed_captions: ladder.captions.clone(),
                trim: plan.trim.clone(),
            },
            rungs,
            audio,
            subtitles: ladder
                .subtitles
                .iter()
                .map(|s| SubtitleReport {
                    dir: s.dir.clone(),
                    language: s.language.clone(),
                    name: s.name.clone(),
                    forced: s.forced,
                    source: plan.subtitles.iter().find(|p| p.index == s.index).map(|p| p.source.clone()),
                    cues: s.cues,
                })
                .collect(),
            subtitles_left_out: r.subtitles_left_out.to_vec(),
            stages: r.stages,
            run: RunStats {
                wall_seconds: r.wall_seconds,
                cpu_seconds: r.cpu_seconds,
                speed: plan.duration_seconds / r.wall_seconds.max(1e-9),
                cpus: r.cpus,
                jobs: r.jobs,
                encoder_threads: r.encoder_threads,
                chunks_encoded: r.encoded.to_vec(),
                chunks_reused: r.reused.to_vec(),
            },
        }
    }
}

/// CPU seconds (user + system) this process has used so far, every thread included.
/// What a rendition is and what it came to.
fn audio_report(track: &TrackSummary, planned: &PlannedAudio, loudness: Option<LoudnessFigures>) -> AudioReport {
    AudioReport {
        dir: track.dir.clone(),
        language: planned.language.clone(),
        name: planned.label.clone(),
        channels: planned.channels,
        default: planned.default,
        source_stream: planned.source_stream,
        loudness,
        codec: track.codec.clone(),
        segments: track.segments.len(),
        average_kbps: track.average_bitrate() as f64 / 1000.0,
        peak_kbps: track.peak_bitrate() as f64 / 1000.0,
    }
}

pub fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The CPUs this process may use: the affinity mask and the cgroup CPU quota (a pod's
/// `limits.cpu`), rounded up.
pub fn available_cpus() -> usize {
    let affinity = std::thread::available_parallelism().map_or(1, |n| n.get());
    let quota = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok().and_then(|text| cgroup_quota(&text));
    quota.map_or(affinity, |q| q.min(affinity)).max(1)
}

/// Parses cgroup v2 `cpu.max` (`"200000 100000"` → 2, `"max 100000"` → none).
fn cgroup_quota(text: &str) -> Option<usize> {
    let mut parts = text.split_whitespace();
    let quota: u64 = parts.next()?.parse().ok()?;
    let period: u64 = parts.next()?.parse().ok()?;
    (period > 0).then(|| quota.div_ceil(period) as usize)
}

/// SHA-256 of a file, read in blocks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(crate::record::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_quotas_round_up_and_max_means_none() {
        assert_eq!(cgroup_quota("200000 100000\n"), Some(2));
        assert_eq!(cgroup_quota("150000 100000"), Some(2));
        assert_eq!(cgroup_quota("max 100000"), None);
    }
}
