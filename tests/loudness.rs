//! Loudness normalization (`[audio.loudness]`): a quiet talk brought to the target,
//! judged by ffmpeg's own `ebur128` on the AAC ladder ladder made; peaks kept under the
//! ceiling; sound and picture still in sync with the limiter in the chain.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::media_check::{self, H264_AAC, flashes_and_beeps, whole_track};

/// The `small` preset normalizing to `target` LUFS, -1 dBTP.
fn normalizing_preset(target: i32) -> PathBuf {
    let path = common::media_dir().join(format!("loud{target}.toml"));
    if !path.exists() {
        let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
        let text = text.replace("name = \"small\"", "name = \"loud\"");
        let loudness = format!("[audio.loudness]\ntarget_lufs = {target}\ntrue_peak_db = -1\n");
        std::fs::write(&path, format!("{text}\n{loudness}")).unwrap();
    }
    path
}

/// Runs `source` with the preset normalizing to `target` LUFS; the output and its report.
fn normalize(source: &Path, target: i32) -> (tempfile::TempDir, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let preset = normalizing_preset(target);
    let args = ["run", source.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--preset"];
    let (code, _, stderr) = common::run(&[&args[..], &[preset.to_str().unwrap(), "--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let report = serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    (out, report)
}

/// ffmpeg's `ebur128` summary of `file`'s audio: integrated loudness (LUFS) and true peak
/// (dBFS).
fn ebur128(file: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let summary = &text[text.rfind("Summary:").expect("ebur128 prints a summary")..];
    let value = |label: &str| -> f64 {
        let line = summary.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{summary}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (value("I:"), value("Peak:"))
}

#[test]
fn a_quiet_talk_is_brought_to_the_target_loudness() {
    // A 1 kHz tone at about -35 LUFS, 8 s.
    let quiet = common::with_tone("quiet.mp4", "testsrc2=size=320x240:rate=25", "8", &["-af", "volume=-13dB"]);
    let (source_lufs, _) = ebur128(&quiet);
    assert!((source_lufs + 35.0).abs() < 1.5, "the source is at {source_lufs} LUFS");

    let (out, report) = normalize(&quiet, -16);

    let (lufs, peak) = ebur128(&whole_track(out.path(), "a0"));
    assert!((lufs + 16.0).abs() <= 1.0, "the ladder's audio is at {lufs} LUFS");
    assert!(peak <= -1.0, "true peak {peak} dBTP");
    let figures = &report["audio"][0]["loudness"];
    let input = figures["input"]["integrated_lufs"].as_f64().unwrap();
    assert!((input - source_lufs).abs() < 0.5, "measured {input}, ffmpeg says {source_lufs}: {figures}");
    let output = figures["output"]["integrated_lufs"].as_f64().unwrap();
    assert!((output + 16.0).abs() < 0.5, "{figures}");
    assert!(figures["output"]["true_peak_dbtp"].as_f64().unwrap() <= -1.0, "{figures}");
    assert_eq!(figures["limited"], false, "a gain of 19 dB leaves a tone's peaks under -2 dBFS: {figures}");
}

#[test]
fn beeps_stay_on_their_flashes_with_the_limiter_at_work() {
    let source = flashes_and_beeps("sync-loud.mp4", "320x240", "25", "6", H264_AAC);
    // The beeps measure about -15 LUFS with peaks at -6 dBFS: lifted to -10 LUFS, their
    // peaks would pass the ceiling.
    let (out, report) = normalize(&source, -10);
    let figures = &report["audio"][0]["loudness"];
    assert_eq!(figures["limited"], true, "{figures}");
    let (_, peak) = ebur128(&whole_track(out.path(), "a0"));
    assert!(peak <= -1.0, "true peak {peak} dBTP");
    media_check::check_ladder(out.path(), true).assert_in_sync(6, 6);
}

/// Loudness is measured and gained on the sound that is encoded: a 5.1 track's stereo
/// downmix, not its six channels (whose loudness differs, and which, limited one by one,
/// would still clip once summed).
#[test]
fn a_surround_track_is_measured_and_gained_after_its_downmix() {
    let source = common::surround("loud-surround.mp4", "FL=c0|FR=c0|FC=0.5*c0", "4");
    // The stereo ffmpeg -ac 2 makes of it (the same libswresample matrix, unnormalised).
    let downmix =
        common::synth("loud-surround.wav", &["-i", source.to_str().unwrap(), "-ac", "2", "-c:a", "pcm_f32le"]);
    let (downmix_lufs, _) = ebur128(&downmix);
    let (out, report) = normalize(&source, -10);
    let figures = &report["audio"][0]["loudness"];
    let input = figures["input"]["integrated_lufs"].as_f64().unwrap();
    assert!(
        (input - downmix_lufs).abs() < 0.5,
        "measured {input} LUFS, the stereo downmix is {downmix_lufs}: {figures}"
    );
    let (lufs, peak) = ebur128(&whole_track(out.path(), "a0"));
    assert!((lufs + 10.0).abs() <= 1.0 && peak <= -1.0, "{lufs} LUFS, true peak {peak} dBTP: {figures}");
}
