//! `--start`/`--end` keep part of a recording, frame accurately, with the sound in sync:
//! judged on the ladder (its duration, its first frame against ffmpeg's `-ss` frame, and
//! flashes against beeps).

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::Path;
use std::process::Command;

use common::media_check::{H264_AAC, check_ladder, flashes_and_beeps, short_chunks_preset, whole_track};

/// The first frame of `file` (from `seek` seconds, when given) as 8-bit luma.
fn first_luma(file: &Path, seek: Option<&str>) -> Vec<u8> {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error"]);
    if let Some(s) = seek {
        command.args(["-ss", s]);
    }
    let out = command
        .arg("-i")
        .arg(file)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

#[test]
fn start_and_end_keep_six_seconds_from_the_frame_at_three_with_the_sound_in_sync() {
    let source = flashes_and_beeps("trim-source.mp4", "640x360", "25", "12", H264_AAC);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let preset = short_chunks_preset();
    let args = ["run", source.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", preset.to_str().unwrap()];
    let (code, _, stderr) =
        common::run(&[&args[..], &["--start", "3", "--end", "00:00:09.000", "--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");

    let ladder = check_ladder(&out, true);
    assert!((ladder.seconds - 6.0).abs() <= 1.0 / 25.0 + 1e-6, "{} s of output", ladder.seconds);
    // The source flashes and beeps from 0.5 s into each second: 3.5 … 8.5 s are kept.
    ladder.assert_in_sync(6, 6);
    for pair in ladder.flashes.windows(2) {
        assert!((pair[1] - pair[0] - 1.0).abs() < 0.05, "flashes a second apart: {:?}", ladder.flashes);
    }

    // The first frame is the source's frame at 3 s (the pattern moves every frame: the next
    // frame scores far lower).
    let first = first_luma(&whole_track(&out, "v0"), None);
    let at_three = first_luma(&source, Some("3"));
    let after = first_luma(&source, Some("3.04"));
    let (right, next) = (psnr(&first, &at_three), psnr(&first, &after));
    assert!(right > 30.0 && right > next + 3.0, "PSNR against 3.00 s: {right:.1} dB, against 3.04 s: {next:.1} dB");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let trim = &report["output"]["trim"];
    assert_eq!(trim["start_seconds"], 3.0);
    assert_eq!(trim["end_seconds"], 9.0);
    assert!((trim["cut_after_seconds"].as_f64().unwrap() - 3.0).abs() < 0.05, "{trim}");
}

#[test]
fn a_start_past_the_end_or_an_end_before_the_start_is_a_usage_error() {
    let source = flashes_and_beeps("trim-short.mp4", "320x180", "25", "2", H264_AAC);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let args = ["run", source.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off"];
        common::run(&[&args[..], extra].concat())
    };
    let (code, _, stderr) = run(&["--start", "5"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--start 5.000 is not before the recording's end"), "{stderr}");
    let (code, _, stderr) = run(&["--start", "1", "--end", "0.5"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not after --start"), "{stderr}");
    let (code, _, stderr) = run(&["--start", "1:75"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a time"), "{stderr}");
    assert!(!out.join("master.m3u8").exists());
}

/// 14 s: 4 s of black and silence, 6 s of a moving pattern with a tone, 4 s of black and
/// silence again.
fn dead_air_source() -> std::path::PathBuf {
    let video = "testsrc2=s=320x180:r=25:d=14,\
                 drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t\\,4)+gte(t\\,10)'";
    let audio = "aevalsrc='if(between(t\\,4\\,10)\\,0.5*sin(2*PI*440*t)\\,0)':s=48000:d=14";
    common::synth("dead-air.mp4", &[&["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio][..], H264_AAC].concat())
}

#[test]
fn dead_air_at_both_ends_is_cut_and_reported() {
    let source = dead_air_source();
    let preset = common::media_dir().join("dead-air.toml");
    let text = std::fs::read_to_string(short_chunks_preset()).unwrap().replace("short-chunks", "dead-air");
    std::fs::write(&preset, format!("{text}\n[trim]\ndead_air_seconds = 2\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["run", source.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", preset.to_str().unwrap()];
    let (code, _, stderr) = common::run(&[&args[..], &["--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let trim = &report["output"]["trim"];
    let near = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() <= 0.04 + 1e-6;
    assert!(near(&trim["cut_before_seconds"], 4.0) && near(&trim["cut_after_seconds"], 4.0), "{trim}");
    assert_eq!(trim["dead_air"]["min_seconds"], 2.0, "{trim}");
    let ladder = check_ladder(&out, true);
    assert!((ladder.seconds - 6.0).abs() <= 0.04 + 1e-6, "{} s of output", ladder.seconds);
    // The output starts at the content: its first frame is the pattern at 4 s, not black.
    let first = first_luma(&whole_track(&out, "v0"), None);
    let content = first_luma(&source, Some("4"));
    assert!(psnr(&first, &content) > 30.0, "PSNR against the content's first frame: {:.1}", psnr(&first, &content));

    // Without the preset's [trim], nothing is cut.
    let (code, plan, _) = common::run(&["plan", source.to_str().unwrap(), "--preset", "small", "--json"]);
    assert_eq!(code, 0);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert!(plan.get("trim").is_none() && near(&plan["duration_seconds"], 14.0), "{}", plan["duration_seconds"]);
}

#[test]
fn a_sidecar_timed_on_the_whole_recording_moves_with_a_cut_start() {
    let source = flashes_and_beeps("trim-subs.mp4", "320x180", "25", "8", H264_AAC);
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("talk.en.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:02,000\nbefore the cut\n\n2\n00:00:04,000 --> 00:00:05,500\nkept\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let subtitles = format!("en={}", srt.display());
    let args = ["run", source.to_str().unwrap(), "--out", out.to_str().unwrap(), "--subtitles", &subtitles];
    let (code, _, stderr) = common::run(&[&args[..], &["--start", "3", "--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let vtt = std::fs::read_to_string(out.join("s0/subtitles.vtt")).unwrap();
    assert!(vtt.contains("00:00:01.000 --> 00:00:02.500\nkept"), "{vtt}");
    assert!(!vtt.contains("before the cut"), "{vtt}");
}
