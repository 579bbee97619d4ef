//! `download = [...]` in a preset: a rung and the default audio as one progressive,
//! `moov`-first MP4, copied from the ladder's segments, checked with the ffmpeg CLI.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::Path;
use std::process::Command;

use common::media_check::{top_level_boxes, whole_track};
use common::playlist;
use sha2::{Digest, Sha256};

const FPS: f64 = 25.0;

/// `ffmpeg <args>`'s stdout, which must succeed.
fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg").args(["-v", "error"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// MD5 of the packets of stream `map` (`0:v:0`), copied without decoding.
fn packets_md5(file: &Path, map: &str) -> String {
    let out = ffmpeg(&["-i", file.to_str().unwrap(), "-map", map, "-c", "copy", "-f", "md5", "-"]);
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// MD5 of one decoded picture: `input_args` choose it.
fn picture_md5(input_args: &[&str], filter: &str) -> String {
    let tail = ["-map", "0:v:0", "-vf", filter, "-frames:v", "1", "-f", "md5", "-"];
    String::from_utf8_lossy(&ffmpeg(&[input_args, &tail[..]].concat())).trim().to_owned()
}

fn probe(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration:stream=codec_type,start_time", "-of", "json"])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_download_is_the_rung_and_its_audio_in_one_progressive_mp4_that_seeks() {
    let input = common::pattern("talk.mp4", "640x360", "25", "9", &[]);
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let preset = common::media_dir().join("download.toml");
    // 720p is above the 360p recording, so the plan drops it: skipped with a warning.
    let text = text.replacen("\n[video]\n", "download = [\"360p\", \"720p\"]\n\n[video]\n", 1);
    std::fs::write(&preset, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = common::run(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--preset",
        preset.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("too small for this rung") && stderr.contains("720p"), "{stderr}");
    assert!(!out.path().join("download/720p.mp4").exists());

    let mp4 = out.path().join("download/360p.mp4");
    let bytes = std::fs::read(&mp4).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        report["output"]["downloads"],
        serde_json::json!([{"rung": "360p", "key": "download/360p.mp4", "size_bytes": bytes.len(), "sha256": sha256}])
    );

    let boxes = top_level_boxes(&bytes);
    let (moov, mdat) = (boxes.iter().position(|b| b == "moov"), boxes.iter().position(|b| b == "mdat"));
    assert!(moov.is_some() && moov < mdat, "moov first (faststart): {boxes:?}");
    assert!(!boxes.iter().any(|b| b == "moof"), "progressive, not fragmented: {boxes:?}");

    // v0 is the 360p rung: the only one of the preset's at or below the recording's size
    // besides 240p.
    let rung = "v0";
    let ladder_seconds =
        playlist::parse_media(&std::fs::read_to_string(out.path().join(rung).join("index.m3u8")).unwrap())
            .unwrap()
            .duration();
    let probe = probe(&mp4);
    let kinds: Vec<&str> =
        probe["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio"]);
    for stream in probe["streams"].as_array().unwrap() {
        let start: f64 = stream["start_time"].as_str().unwrap().parse().unwrap();
        assert!(start.abs() < 1e-3, "every stream starts at zero, together: {probe}");
    }
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - ladder_seconds).abs() <= 1.0 / FPS, "{duration} s, the ladder {ladder_seconds} s");

    let track = whole_track(out.path(), rung);
    assert_eq!(packets_md5(&mp4, "0:v:0"), packets_md5(&track, "0:v:0"), "the rung's own packets: no re-encode");
    assert_eq!(
        packets_md5(&mp4, "0:a:0"),
        packets_md5(&whole_track(out.path(), "a0"), "0:a:0"),
        "the default audio's own packets"
    );

    // The middle, inside a GOP: a player seeking there shows the ladder's frame 112.
    let frame = 112;
    let at = format!("{:.3}", (f64::from(frame) - 0.25) / FPS);
    let seeked = picture_md5(&["-ss", &at, "-i", mp4.to_str().unwrap()], "null");
    let ladder = picture_md5(&["-i", track.to_str().unwrap()], &format!("select=eq(n\\,{frame})"));
    assert_eq!(seeked, ladder, "seeking to {at} s shows frame {frame}");
    let neighbour = picture_md5(&["-i", track.to_str().unwrap()], &format!("select=eq(n\\,{})", frame + 1));
    assert_ne!(seeked, neighbour, "the frames differ, so the check can tell them apart");
}
