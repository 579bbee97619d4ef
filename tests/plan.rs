//! `ladder plan`: which rungs apply to a source and the frame-exact grid, pinned as
//! snapshots for the three shapes of source that matter most.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use common::{rotate_mp4, run, synth};

/// `ladder plan --json` with the machine-specific parts (temp path, file size) masked.
fn plan_json(path: &std::path::Path, preset: &str) -> serde_json::Value {
    let (code, stdout, stderr) = run(&["plan", "--json", "--preset", preset, path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "plan failed: {stderr}");
    let mut plan: serde_json::Value = serde_json::from_str(&stdout).expect("plan prints JSON");
    plan["source"]["path"] = "<input>".into();
    plan["source"]["size_bytes"] = 0.into();
    plan
}

/// A flat-colour source (cheap to make at any size) with a tone.
fn source(name: &str, size: &str, rate: &str, seconds: &str) -> std::path::PathBuf {
    common::with_tone(name, &format!("color=c=0x3366aa:size={size}:rate={rate}"), seconds, &[])
}

#[test]
fn a_1080p_source_gets_the_whole_default_ladder() {
    let plan = plan_json(&source("1080p.mp4", "1920x1080", "30", "32"), "default");
    assert_eq!(plan["rungs"].as_array().unwrap().len(), 9);
    assert_eq!(plan["chunks"].as_array().unwrap().len(), 2, "6 segments, 5 per chunk");
    insta::assert_json_snapshot!("plan_1080p_default", plan);
}

#[test]
fn a_480p_source_is_never_upscaled() {
    let plan = plan_json(&source("480p.mp4", "854x480", "30", "14"), "default");
    for rung in plan["rungs"].as_array().unwrap() {
        assert!(rung["width"].as_u64().unwrap() <= 854 && rung["height"].as_u64().unwrap() <= 480, "{rung}");
    }
    insta::assert_json_snapshot!("plan_480p_default", plan);
}

#[test]
fn a_rotated_phone_recording_gets_a_portrait_ladder() {
    let landscape = source("phone-coded.mp4", "1280x720", "30", "14");
    let plan = plan_json(&rotate_mp4(&landscape, "phone.mp4", 90), "default");
    for rung in plan["rungs"].as_array().unwrap() {
        assert!(rung["height"].as_u64() > rung["width"].as_u64(), "portrait rung expected: {rung}");
    }
    insta::assert_json_snapshot!("plan_rotated_portrait_default", plan);
}

#[test]
fn odd_sources_give_even_rungs_and_a_fallback_rung_when_all_would_upscale() {
    let tiny = synth(
        "tiny-odd.mkv",
        &["-f", "lavfi", "-i", "testsrc=size=201x113:rate=25", "-t", "3", "-c:v", "ffv1", "-pix_fmt", "yuv444p"],
    );
    let plan = plan_json(&tiny, "small");
    let rungs = plan["rungs"].as_array().unwrap();
    assert_eq!(rungs.len(), 1, "only the smallest rung, at the source's size: {rungs:?}");
    assert_eq!((rungs[0]["width"].as_u64(), rungs[0]["height"].as_u64()), (Some(200), Some(112)));
    assert_eq!(plan["skipped_rungs"].as_array().unwrap().len(), 3);
    assert_eq!(plan["audio"], serde_json::json!([]));
}

#[test]
fn high_frame_rates_are_divided_down_to_max_fps() {
    let plan = plan_json(&source("100fps.mp4", "320x240", "100", "2"), "small");
    assert_eq!(plan["fps"], "50");
    assert_eq!(plan["gop_frames"], 100);
    assert_eq!(plan["segment_frames"], 300);
}

#[test]
fn the_text_plan_names_the_output_folders() {
    let (code, stdout, _) =
        run(&["plan", "--preset", "small", common::repo("media/bbb-720p25-5s.mp4").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("v0       720p       1280x720"), "{stdout}");
    assert!(
        stdout.contains("a0       Main       und  AAC-LC 48000 Hz 2 ch 128 kbit/s from stream #1 (5.1)"),
        "{stdout}"
    );
}

#[test]
fn a_variable_rate_recording_keeps_its_nominal_rate() {
    // 30 fps with every 7th frame dropped: the average falls to 25.7, the intent is 30.
    let vfr = common::vfr_source("vfr-plan.mp4", "8");
    let plan = plan_json(&vfr, "small");
    assert_eq!(plan["source"]["variable_frame_rate"], true);
    assert_eq!(plan["fps"], "30");
    assert_eq!(plan["total_frames"], 240);
}

#[test]
fn a_tail_shorter_than_a_gop_joins_the_last_segment() {
    // 302 frames at 25 fps: 6 s + 6 s + 2 frames. Two frames led by an IDR would be a
    // segment whose bitrate is many times the rung's.
    let plan = plan_json(&source("tail.mp4", "320x240", "25", "12.08"), "small");
    let frames: Vec<u64> = plan["segments"].as_array().unwrap().iter().map(|s| s["frames"].as_u64().unwrap()).collect();
    assert_eq!(frames, [150, 152]);
    // A whole GOP (2 s) stays a segment of its own.
    let plan = plan_json(&source("gop-tail.mp4", "320x240", "25", "14"), "small");
    let frames: Vec<u64> = plan["segments"].as_array().unwrap().iter().map(|s| s["frames"].as_u64().unwrap()).collect();
    assert_eq!(frames, [150, 150, 50]);
}
