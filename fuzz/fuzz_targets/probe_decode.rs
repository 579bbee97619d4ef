//! What `ladder run` does with a recording, on whatever bytes libFuzzer makes: probe, the
//! re-based copy of a container without an index, plan, then the first second of the first
//! and the last chunk and of the audio. None of it may panic, hang or crash; errors are
//! fine (they are what a hostile file should get).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64};

use ladder::pipeline::{audio, video};
use ladder::plan::Plan;
use ladder::preset::Preset;
use libfuzzer_sys::fuzz_target;

/// One tiny rung, 1 s GOPs and segments, one segment a chunk: a chunk is one second.
const PRESET: &str = r#"
name = "fuzz"
[video]
codec = "h264"
speed = "ultrafast"
[segments]
gop_seconds = 1
segment_seconds = 1
chunk_segments = 1
[[rungs]]
name = "tiny"
width = 96
height = 64
bitrate_kbps = 100
[audio]
bitrate_kbps = 64
[thumbnails]
enabled = false
"#;

struct Setup {
    preset: Preset,
    dir: tempfile::TempDir,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        ladder::media::init();
        let preset = ladder::preset::load_str(PRESET, "<fuzz>").expect("the fuzz preset is valid");
        // Memory-backed when there is one: every input is written to a file.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        Setup { preset, dir: dir.expect("a scratch folder") }
    })
}

/// The plan cut to its first `segments` segments, as a chunk's worth of work.
fn head(mut plan: Plan, segments: usize) -> Plan {
    plan.segments.truncate(segments);
    let end = plan.segments.last().map_or(0, |s| s.start_frame + u64::from(s.frames));
    plan.total_frames = end;
    plan.duration_seconds = end as f64 / plan.fps.as_f64();
    plan.chunks.retain(|c| (c.end_segment as usize) <= segments);
    if let Some(t) = plan.thumbnails.as_mut() {
        t.still_frames.retain(|&f| f < end);
    }
    plan
}

fuzz_target!(|data: &[u8]| {
    let Setup { preset, dir } = setup();
    let input: PathBuf = dir.path().join("input");
    std::fs::write(&input, data).expect("the scratch folder is writable");
    let limits = ladder::probe::Limits { max_side: 2048, max_pixels: 1920 * 1080, ..Default::default() };
    let Ok(probe) = ladder::probe::probe(&input, &limits) else { return };
    // As `ladder run`: containers without a key frame index are copied first.
    let recording = ladder::location::Source::Local(input);
    let Ok(remuxed) = ladder::remux::prepare(&recording, probe, dir.path(), &limits) else { return };
    let input = remuxed.source;
    let Ok(plan) = ladder::plan::plan(&remuxed.probe, preset, &ladder::trim::Trim::default()) else { return };
    let full = plan;
    let plan = head(full.clone(), 1);
    let cancel = AtomicBool::new(false);
    let frames_done: Vec<AtomicU64> = plan.rungs.iter().map(|_| AtomicU64::new(0)).collect();
    let Ok(delay) = video::reorder_delay(&plan, preset) else { return };
    let job = video::ChunkJob {
        input: &input,
        plan: &plan,
        preset,
        scratch: dir.path(),
        encoder_threads: 1,
        decoder_threads: 1,
        cancel: &cancel,
        frames_done: &frames_done,
        quality: false,
        delay_frames: delay,
        replay_budget: video::REPLAY_BUDGET,
        max_pixels: limits.max_pixels,
    };
    // An audio-only recording has no chunks.
    if let Some(first) = plan.chunks.first() {
        let _ = video::encode_chunk(&job, first);
    }
    // The last chunk: a seek into the file, to wherever its header says the end is.
    if let Some(last) = full.chunks.last().filter(|c| c.index > 0) {
        let _ = video::encode_chunk(&video::ChunkJob { plan: &full, ..job }, last);
    }
    if let Some(track) = plan.audio.first() {
        let delay_seconds = f64::from(delay) / plan.fps.as_f64();
        let _ = audio::encode_audio(&job, track, delay_seconds, &mut |_| Ok(()));
    }
});
