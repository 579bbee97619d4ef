//! Memory: what one chunk at work holds, estimated from the plan, and the cgroup memory
//! limit of the pod, so that `--jobs` auto never starts more chunks than the limit holds
//! (a pod over its limit is killed, exit 137, and retried into the same death).
//!
//! The estimate is kept here, in one place, and calibrated by measurement
//! (docs/performance.md, "Memory per chunk"): peak RSS of `ladder run --jobs 1` minus the
//! process's own, against this model.

use std::path::Path;

use serde::Serialize;

use crate::plan::Plan;
use crate::preset::Preset;

/// The process without chunks: libraries, the audio renditions' threads, the storing
/// queue, allocator slack (measured: peak RSS of a run with a one-rung 240p ladder), and
/// the blocks of an S3 input read in place that every reader shares (8 of 4 MiB).
pub const PROCESS_BYTES: u64 = (160 << 20) + (32 << 20);

/// A chunk's reader of an S3 input read in place: its current block and the one read
/// ahead (4 MiB each).
const READER_BYTES: u64 = 8 << 20;

/// Pictures the decoder holds, as pictures of the source: its reference frames (H.264 up
/// to 16), the frames its threads have in flight, and the few queued to the filter.
const DECODER_PICTURES: u64 = 20;

/// Pictures a rung holds beyond its encoder's look-ahead, as pictures of the rung: its
/// queue and recycled frames, x264's references and the frames it is coding.
const RUNG_PICTURES: u64 = 20;

/// Pictures of the rung per frame of look-ahead: x264 keeps each frame with its half-pel
/// planes, low-resolution copy and macroblock-tree costs. Fitted to the measured peak of
/// the default preset on 1080p30 (look-ahead 40: 112 pictures a rung); it then overstates
/// the small preset (look-ahead 10) by about a quarter, the safe side.
const LOOKAHEAD_PICTURES_PER_FRAME: f64 = 2.3;

/// What one chunk at work holds, and what the process holds besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// One chunk at work: its decoder, held warm-up, and every rung's pictures, encoder and
    /// muxed output.
    pub chunk_bytes: u64,
    pub process_bytes: u64,
}

impl Estimate {
    /// The estimate for `plan` encoded with `preset`.
    pub fn of(plan: &Plan, preset: &Preset) -> Self {
        let frames = plan.chunks.iter().map(|c| c.end_frame - c.start_frame).max().unwrap_or(0);
        let shape = Shape {
            source: (plan.source.display_width.max(plan.source.width), plan.source.display_height),
            fps: plan.fps.as_f64(),
            chunk_seconds: frames as f64 / plan.fps.as_f64(),
            rungs: plan.rungs.iter().map(|r| (r.width, r.height, r.maxrate_kbps)).collect(),
        };
        shape.estimate(lookahead_frames(preset))
    }

    /// The estimate for `preset` before the recording is known (`ladder dispatch`): a source
    /// the size of its largest rung at its highest rate, every rung kept.
    pub fn of_preset(preset: &Preset) -> Self {
        let largest = preset.rungs.iter().map(|r| (r.width, r.height)).max_by_key(|(w, h)| w * h).unwrap_or((0, 0));
        let fps = preset.video.fps.unwrap_or(preset.video.max_fps).as_f64();
        let shape = Shape {
            source: largest,
            fps,
            chunk_seconds: preset.segments.segment_seconds * f64::from(preset.segments.chunk_segments),
            rungs: preset.rungs.iter().map(|r| (r.width, r.height, r.maxrate_kbps)).collect(),
        };
        shape.estimate(lookahead_frames(preset))
    }

    /// Chunks at once that fit in `limit` bytes: at least one (the run is tried; the log
    /// says it may not fit).
    pub fn chunks_within(&self, limit: u64) -> usize {
        let room = limit.saturating_sub(self.process_bytes);
        usize::try_from(room / self.chunk_bytes.max(1)).unwrap_or(usize::MAX).max(1)
    }

    /// Bytes `jobs` chunks at once need.
    pub fn for_jobs(&self, jobs: usize) -> u64 {
        self.process_bytes + self.chunk_bytes * jobs as u64
    }
}

/// What the estimate is made from.
struct Shape {
    /// The decoded picture's size.
    source: (u32, u32),
    fps: f64,
    chunk_seconds: f64,
    /// Each rung's size and peak bitrate (kbit/s).
    rungs: Vec<(u32, u32, u32)>,
}

impl Shape {
    fn estimate(&self, lookahead: f64) -> Estimate {
        let source = picture_bytes(self.source.0, self.source.1);
        let warmup = (self.fps.ceil() as u64 * source).min(crate::pipeline::video::REPLAY_BUDGET as u64);
        let rungs: u64 = (self.rungs.iter())
            .map(|&(width, height, maxrate_kbps)| {
                let picture = picture_bytes(width, height) as f64;
                let pictures = RUNG_PICTURES as f64 + lookahead * LOOKAHEAD_PICTURES_PER_FRAME;
                // The chunk's muxed rung is read back whole to be cut into segments.
                let muxed = f64::from(maxrate_kbps) * 1000.0 / 8.0 * self.chunk_seconds;
                (picture * pictures + muxed) as u64
            })
            .sum();
        let chunk_bytes = READER_BYTES + DECODER_PICTURES * source + warmup + rungs;
        Estimate { chunk_bytes, process_bytes: PROCESS_BYTES }
    }
}

/// A Kubernetes memory quantity (`4Gi`, `512Mi`, `1G`, `1500000000`) in bytes.
pub fn quantity_bytes(text: &str) -> Option<u64> {
    let units = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("k", 1000)];
    let more = [("M", 1_000_000u64), ("G", 1_000_000_000), ("T", 1_000_000_000_000)];
    let (number, factor) = units
        .iter()
        .chain(&more)
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1));
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then(|| (value * factor as f64).ceil() as u64)
}

/// A Kubernetes CPU quantity (`4`, `2500m`) in CPUs.
pub fn quantity_cpus(text: &str) -> Option<f64> {
    let value: f64 = match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => text.parse().ok()?,
    };
    (value.is_finite() && value > 0.0).then_some(value)
}

/// Bytes of a 4:2:0 8-bit picture (10-bit sources decode to twice that; rare in events).
fn picture_bytes(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height) * 3 / 2
}

/// The encoder's look-ahead in frames: x264's `rc-lookahead` of its speed preset (or the
/// preset's own option), else a conservative 40.
fn lookahead_frames(preset: &Preset) -> f64 {
    let video = &preset.video;
    if let Some((_, v)) = video.options.iter().find(|(k, _)| k == "rc-lookahead" || k == "rc_lookahead") {
        return v.parse().unwrap_or(40.0);
    }
    if video.encoder != "libx264" {
        return 40.0;
    }
    match video.speed.as_deref().unwrap_or("medium") {
        "ultrafast" | "superfast" => 0.0,
        "veryfast" => 10.0,
        "faster" => 20.0,
        "fast" => 30.0,
        "medium" => 40.0,
        "slow" => 50.0,
        _ => 60.0,
    }
}

/// The memory this process may use: the smallest limit of its cgroup and the cgroups above
/// it (v2 `memory.max`, else v1 `memory.limit_in_bytes`), `None` when unlimited.
pub fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    limit_under(Path::new("/sys/fs/cgroup"), &own)
}

/// The limit for the cgroup `/proc/self/cgroup` (`own`) names, under the cgroup mount `root`.
/// A container with its own cgroup namespace sees itself at `/`, and its limit at the mount's
/// top; a process in a cgroup below it (or a v1 host without namespaces) is found by its
/// path, each folder up to the top counting.
fn limit_under(root: &Path, own: &str) -> Option<u64> {
    let v2 = own.lines().find_map(|l| l.strip_prefix("0::")).map(|path| (root.to_owned(), path, "memory.max"));
    let v1 = own.lines().find_map(|l| {
        let (controllers, path) = l.split_once(':')?.1.split_once(':')?;
        controllers.split(',').any(|c| c == "memory").then(|| (root.join("memory"), path, "memory.limit_in_bytes"))
    });
    let top = [(root.to_owned(), "/", "memory.max"), (root.join("memory"), "/", "memory.limit_in_bytes")];
    for (mount, path, file) in v2.into_iter().chain(v1).chain(top) {
        let own = mount.join(path.trim_start_matches('/'));
        let limits: Vec<String> = (own.ancestors().take_while(|folder| folder.starts_with(&mount)))
            .filter_map(|folder| std::fs::read_to_string(folder.join(file)).ok())
            .collect();
        if !limits.is_empty() {
            return limits.iter().filter_map(|text| parse_limit(text)).min();
        }
    }
    None
}

/// A cgroup memory limit file's value: bytes, or `max` (v2) / a page-rounded 2⁶³ (v1,
/// unlimited) as `None`.
pub fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>().ok().filter(|&bytes| bytes < 1 << 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_limits_read_in_both_versions() {
        assert_eq!(parse_limit("4294967296\n"), Some(4 << 30));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712"), None, "v1's unlimited");
        assert_eq!(parse_limit("garbage"), None);
    }

    #[test]
    fn the_limit_is_the_smallest_from_the_own_cgroup_up() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let file = root.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        // v2 in a namespace: the top.
        write("memory.max", "max\n");
        assert_eq!(limit_under(root.path(), "0::/\n"), None);
        write("memory.max", "4294967296\n");
        assert_eq!(limit_under(root.path(), "0::/\n"), Some(4 << 30));
        // Below it, the smaller of its own and the one above.
        write("pod/job/memory.max", "max\n");
        assert_eq!(limit_under(root.path(), "0::/pod/job\n"), Some(4 << 30));
        write("pod/job/memory.max", "1073741824\n");
        assert_eq!(limit_under(root.path(), "0::/pod/job\n"), Some(1 << 30));
        // v1: the memory controller's line, its own folder under the memory mount.
        let v1 = tempfile::tempdir().unwrap();
        let v1_write = |path: &str, text: &str| {
            let file = v1.path().join("memory").join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        v1_write("memory.limit_in_bytes", "9223372036854771712\n");
        v1_write("ladder/memory.limit_in_bytes", "734003200\n");
        let own = "12:pids:/\n4:memory:/ladder\n0::/\n";
        assert_eq!(limit_under(v1.path(), own), Some(700 << 20));
        // A path that is not there (a v1 host's full path inside a container): the top.
        assert_eq!(limit_under(v1.path(), "4:memory:/docker/abc\n"), None);
        assert_eq!(limit_under(root.path(), "0::/elsewhere\n"), Some(4 << 30));
    }

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity_bytes("4Gi"), Some(4 << 30));
        assert_eq!(quantity_bytes("512Mi"), Some(512 << 20));
        assert_eq!(quantity_bytes("1G"), Some(1_000_000_000));
        assert_eq!(quantity_bytes("1500"), Some(1500));
        assert_eq!(quantity_bytes("lots"), None);
        assert_eq!(quantity_cpus("2500m"), Some(2.5));
        assert_eq!(quantity_cpus("4"), Some(4.0));
    }

    #[test]
    fn chunks_that_fit_are_at_least_one() {
        let e = Estimate { chunk_bytes: 1 << 30, process_bytes: 160 << 20 };
        assert_eq!(e.chunks_within(4 << 30), 3);
        assert_eq!(e.chunks_within(1 << 30), 1, "one is tried even when it may not fit");
        assert_eq!(e.for_jobs(2), (2 << 30) + (160 << 20));
    }
}
