//! Test media, synthesised with the ffmpeg CLI (an independent tool; the product itself
//! only uses libav) from lavfi sources, cached per test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;

/// The `ladder` binary under test.
pub fn ladder() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("ladder").expect("the ladder binary is built for integration tests")
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A folder for this test binary's media, removed when the process ends.
pub fn media_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir")).path()
}

/// Held while a shared test file is made.
pub fn making() -> std::sync::MutexGuard<'static, ()> {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `ffmpeg -y <args> <dir>/<name>` once and returns the output path.
pub fn synth(name: &str, args: &[&str]) -> PathBuf {
    let out = media_dir().join(name);
    // A binary's tests run at once: one makes a file while the others wait, so none reads
    // it half written.
    let _making = making();
    if !out.exists() {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&out)
            .status()
            .expect("ffmpeg is installed (tests use it to make media)");
        assert!(status.success(), "ffmpeg failed to make {name} with {args:?}");
    }
    out
}

/// A test pattern of `size` at `rate` for `seconds`, H.264 (ultrafast) with a tone, in MP4.
pub fn pattern(name: &str, size: &str, rate: &str, seconds: &str, extra: &[&str]) -> PathBuf {
    with_tone(name, &format!("testsrc2=size={size}:rate={rate}"), seconds, extra)
}

/// The lavfi `video` source for `seconds`, H.264 (ultrafast) with a 48 kHz AAC tone, in MP4.
pub fn with_tone(name: &str, video: &str, seconds: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"];
    args.extend_from_slice(&["-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
    args.extend_from_slice(&["-c:a", "aac", "-b:a", "96k"]);
    args.extend_from_slice(extra);
    synth(name, &args)
}

/// 30 fps with every 7th frame dropped and the timestamps kept: the gaps of a WebRTC
/// recording. Its average rate is 25.7 while its nominal rate stays 30.
pub fn vfr_source(name: &str, seconds: &str) -> PathBuf {
    synth(
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            seconds,
            "-vf",
            "select='not(eq(mod(n\\,7)\\,3))'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    )
}

/// Runs `ladder <args>` and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::cargo_bin("ladder").expect("built").args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ladder probe --json` of a file, parsed.
pub fn probe_json(path: &Path) -> serde_json::Value {
    let (code, stdout, stderr) = run(&["probe", "--json", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "probe of {} failed: {stderr}", path.display());
    serde_json::from_str(&stdout).expect("probe prints JSON")
}

/// Writes a QuickTime display matrix into the first track header (`tkhd`) of an MP4: what
/// a phone does for a portrait recording. (FFmpeg 5.1's CLI cannot set one itself.)
/// `degrees` is the clockwise rotation a player applies: 90, 180 or 270.
pub fn rotate_mp4(src: &Path, name: &str, degrees: u32) -> PathBuf {
    let mut bytes = std::fs::read(src).expect("readable");
    let at = bytes.windows(4).position(|w| w == b"tkhd").expect("a tkhd box") - 4;
    assert_eq!(bytes[at + 8], 0, "version 0 tkhd");
    let one: i32 = 0x0001_0000;
    let (a, b, c, d) = match degrees {
        90 => (0, one, -one, 0),
        180 => (-one, 0, 0, -one),
        270 => (0, -one, one, 0),
        _ => (one, 0, 0, one),
    };
    let matrix: [i32; 9] = [a, b, 0, c, d, 0, 0, 0, 0x4000_0000];
    for (i, v) in matrix.iter().enumerate() {
        let o = at + 48 + i * 4;
        bytes[o..o + 4].copy_from_slice(&v.to_be_bytes());
    }
    let out = media_dir().join(name);
    std::fs::write(&out, bytes).expect("writable");
    out
}

/// The first `n` pictures (or all, if fewer) of the bundled sample, 720p25 H.264, decoded
/// in process through libav.
pub fn decoded_sample(n: usize) -> Vec<ffmpeg_next::frame::Video> {
    use ffmpeg_next as ff;
    let path = repo("media/bbb-720p25-5s.mp4");
    let mut input = ff::format::input(&path).expect("the bundled sample opens");
    let stream = input.streams().best(ff::media::Type::Video).expect("the sample has video");
    let index = stream.index();
    let context = ff::codec::Context::from_parameters(stream.parameters()).expect("its parameters");
    let mut decoder = context.decoder().video().expect("an H.264 decoder");
    let mut pictures = Vec::new();
    let mut picture = ff::frame::Video::empty();
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        decoder.send_packet(&packet).expect("decodes");
        while decoder.receive_frame(&mut picture).is_ok() {
            pictures.push(std::mem::replace(&mut picture, ff::frame::Video::empty()));
        }
        if pictures.len() >= n {
            pictures.truncate(n);
            return pictures;
        }
    }
    decoder.send_eof().expect("flushes");
    while decoder.receive_frame(&mut picture).is_ok() {
        pictures.push(std::mem::replace(&mut picture, ff::frame::Video::empty()));
    }
    pictures.truncate(n);
    pictures
}

pub mod media_check;
pub mod moto;
pub mod playlist;
pub mod s3;
pub mod vm;

/// `seconds` of a test pattern of `size` with two audio tracks, a 440 Hz tone then an
/// 880 Hz one (a floor and an interpreter), H.264 (ultrafast); `extra` follows (the audio
/// codec, the tracks' tags).
pub fn two_tones(name: &str, size: &str, seconds: &str, extra: &[&str]) -> PathBuf {
    let video = format!("testsrc2=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &video];
    for tone in ["sine=frequency=440:sample_rate=48000", "sine=frequency=880:sample_rate=48000"] {
        args.extend_from_slice(&["-f", "lavfi", "-i", tone]);
    }
    args.extend_from_slice(&["-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", seconds]);
    args.extend_from_slice(&["-c:v", "libx264", "-preset", "ultrafast"]);
    args.extend_from_slice(extra);
    synth(name, &args)
}

/// `seconds` of a 320x240 test pattern with a 440 Hz tone spread over 5.1 by `pan` (the
/// `pan` filter's channel definitions), H.264 and AAC in MP4.
pub fn surround(name: &str, pan: &str, seconds: &str) -> PathBuf {
    let graph = format!("[1:a]pan=5.1|{pan}[a]");
    let mut args = vec!["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"];
    args.extend_from_slice(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    args.extend_from_slice(&["-filter_complex", &graph, "-map", "0:v", "-map", "[a]", "-t", seconds]);
    args.extend_from_slice(&["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]);
    synth(name, &args)
}
