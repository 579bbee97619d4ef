//! `ladder probe` on recordings the tests synthesise: what it reports for real-world
//! shapes of video, and the one clear sentence (exit 3) for each kind of bad input.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use common::{media_dir, pattern, probe_json, run, synth};

#[test]
fn reports_the_bundled_sample_as_ffprobe_would() {
    let p = probe_json(&common::repo("media/bbb-720p25-5s.mp4"));
    assert_eq!(p["container"], "mov,mp4,m4a,3gp,3g2,mj2");
    assert_eq!((p["video"]["width"].as_u64(), p["video"]["height"].as_u64()), (Some(1280), Some(720)));
    assert_eq!(p["video"]["codec"], "h264");
    assert_eq!(p["video"]["nominal_fps"], "25");
    assert_eq!(p["video"]["variable_frame_rate"], false);
    assert_eq!(p["video"]["interlaced"], false);
    assert_eq!(p["video"]["rotation"], 0);
    assert_eq!(p["audio"]["channels"], 6);
    assert_eq!(p["audio"]["sample_rate"], 48000);
    let duration = p["duration_seconds"].as_f64().unwrap();
    assert!((duration - 5.28).abs() < 0.05, "{duration}");
}

#[test]
fn variable_frame_rate_is_detected() {
    // Every 7th frame dropped, timestamps kept: the gaps a WebRTC recording has.
    let f = common::vfr_source("vfr.mp4", "6");
    let p = probe_json(&f);
    assert_eq!(p["video"]["variable_frame_rate"], true, "{p:#}");
    let cfr = probe_json(&pattern("cfr.mp4", "320x240", "30", "2", &[]));
    assert_eq!(cfr["video"]["variable_frame_rate"], false);
    assert_eq!(cfr["video"]["nominal_fps"], "30");
}

#[test]
fn rotation_swaps_the_displayed_size() {
    let f = common::rotate_mp4(&pattern("landscape.mp4", "640x360", "25", "1", &[]), "rotated.mp4", 90);
    let p = probe_json(&f);
    assert_eq!(p["video"]["rotation"], 90, "{p:#}");
    assert_eq!((p["video"]["width"].as_u64(), p["video"]["height"].as_u64()), (Some(640), Some(360)));
    assert_eq!((p["video"]["display_width"].as_u64(), p["video"]["display_height"].as_u64()), (Some(360), Some(640)));
}

#[test]
fn a_file_without_audio_has_no_audio_stream() {
    let f = pattern("silent.mp4", "320x240", "25", "1", &["-an"]);
    let p = probe_json(&f);
    assert!(p["audio"].is_null(), "{p:#}");
    assert_eq!(p["streams"].as_array().unwrap().len(), 1);
}

#[test]
fn odd_sizes_are_reported_as_they_are() {
    let f = synth(
        "odd.mkv",
        &["-f", "lavfi", "-i", "testsrc=size=1279x719:rate=25", "-t", "1", "-c:v", "ffv1", "-pix_fmt", "yuv444p"],
    );
    let p = probe_json(&f);
    assert_eq!((p["video"]["width"].as_u64(), p["video"]["height"].as_u64()), (Some(1279), Some(719)));
    assert_eq!(p["container"], "matroska,webm");
}

#[test]
fn interlacing_and_field_order_are_detected() {
    let f = synth(
        "interlaced.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x576:rate=25",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-vf",
            "setfield=tff",
            "-flags",
            "+ildct+ilme",
        ],
    );
    let p = probe_json(&f);
    assert_eq!(p["video"]["interlaced"], true, "{p:#}");
    assert_eq!(p["video"]["field_order"], "tff");
    let progressive = probe_json(&pattern("progressive.mp4", "320x240", "25", "1", &[]));
    assert_eq!(progressive["video"]["interlaced"], false);
}

#[test]
fn ten_bit_sources_report_their_depth() {
    let f = synth(
        "tenbit.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "1",
            "-c:v",
            "libx265",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            "log-level=error",
        ],
    );
    let p = probe_json(&f);
    assert_eq!(p["video"]["bit_depth"], 10, "{p:#}");
    assert_eq!(p["video"]["pixel_format"], "yuv420p10le");
}

/// Runs probe on a bad input and returns its stderr after checking exit code 3.
fn rejected(path: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["probe", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 3, "{} should be bad input; stdout {stdout}; stderr {stderr}", path.display());
    assert!(stdout.is_empty(), "nothing on stdout for bad input: {stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "one sentence: {stderr}");
    lines[0].to_owned()
}

#[test]
fn an_empty_file_is_rejected() {
    let f = media_dir().join("empty.mp4");
    std::fs::write(&f, b"").unwrap();
    assert!(rejected(&f, &[]).contains("the file is empty (0 bytes)"));
}

#[test]
fn a_missing_file_is_rejected() {
    let f = media_dir().join("never-written.mp4");
    assert!(rejected(&f, &[]).ends_with("never-written.mp4: no such file"));
}

/// Offsets of the top-level MP4 boxes: (type, start, size).
fn boxes(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        out.push((String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned(), pos, size));
        pos += size.max(8);
    }
    out
}

#[test]
fn a_recording_cut_before_its_moov_is_rejected_as_truncated() {
    // Without +faststart the moov comes last: a recorder that died leaves only ftyp+mdat.
    let whole = std::fs::read(pattern("whole.mp4", "320x240", "25", "2", &[])).unwrap();
    let b = boxes(&whole);
    let moov = b.iter().find(|(t, _, _)| t == "moov").expect("a moov box");
    assert!(b.iter().position(|x| x.0 == "moov") > b.iter().position(|x| x.0 == "mdat"));
    let cut = media_dir().join("no-moov.mp4");
    std::fs::write(&cut, &whole[..moov.1]).unwrap();
    let msg = rejected(&cut, &[]);
    assert!(msg.contains("the file is truncated: it is an MP4 with no 'moov' box"), "{msg}");

    let half = media_dir().join("half.mp4");
    std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
    let msg = rejected(&half, &[]);
    assert!(msg.contains("the file is truncated: box 'mdat'"), "{msg}");
}

#[test]
fn text_is_not_a_media_file() {
    let f = media_dir().join("notes.mp4");
    std::fs::write(&f, "these are meeting notes, not a video\n".repeat(200)).unwrap();
    assert!(rejected(&f, &[]).contains("not a media file libav can read"));
}

#[test]
fn audio_only_input_is_probed_as_such() {
    let f = synth("audio-only.m4a", &["-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac"]);
    let p = common::probe_json(&f);
    assert!(p["video"].is_null(), "{p:#}");
    assert_eq!(p["audio"]["codec"], "aac");
    assert!((p["duration_seconds"].as_f64().unwrap() - 1.0).abs() < 0.05, "{p:#}");
}

#[test]
fn a_file_with_neither_video_nor_audio_is_rejected() {
    let srt = common::media_dir().join("captions-only.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nHello\n").unwrap();
    let f = synth("captions-only.mkv", &["-i", srt.to_str().unwrap(), "-c:s", "srt"]);
    let msg = rejected(&f, &[]);
    assert!(msg.contains("has no video stream and no audio stream"), "{msg}");
}

#[test]
fn pictures_above_the_limit_are_refused_before_decoding() {
    let f = synth(
        "wide.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=8208x64:rate=1",
            "-frames:v",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let msg = rejected(&f, &[]);
    assert!(msg.contains("the video is 8208x64, above the limit of 8192 per side"), "{msg}");
    // The limit is configurable; a small one refuses an ordinary file.
    let small = pattern("limit.mp4", "640x360", "25", "1", &[]);
    let msg = rejected(&small, &["--max-pixels", "100000"]);
    assert!(msg.contains("640x360, above the limit"), "{msg}");
}

#[test]
fn an_unknown_codec_is_rejected_by_name() {
    // Rename the sample entry 'avc1' to 'zzz1': a codec libav has never heard of.
    let mut bytes = std::fs::read(pattern("to-patch.mp4", "320x240", "25", "1", &["-an"])).unwrap();
    let stsd = bytes.windows(4).position(|w| w == b"stsd").expect("a sample description");
    let at = stsd + bytes[stsd..].windows(4).position(|w| w == b"avc1").expect("an avc1 sample entry");
    bytes[at..at + 4].copy_from_slice(b"zzz1");
    let f = media_dir().join("unknown-codec.mp4");
    std::fs::write(&f, bytes).unwrap();
    let msg = rejected(&f, &[]);
    assert!(msg.contains("video codec 'zzz1' (unknown to libav) is not supported"), "{msg}");
}
