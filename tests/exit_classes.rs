//! Every usage mistake and every limit ends in the exit class it belongs to: a permanent
//! failure must never read as transient (4), or Kubernetes retries it until its backoff
//! limit. Each test runs the real binary.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::PathBuf;

/// A small recording: 2 s of 320x240 at 25 fps with a tone.
fn small() -> PathBuf {
    common::pattern("small.mp4", "320x240", "25", "2", &[])
}

fn run(args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = common::run(args);
    (code, stderr)
}

/// A recording above the default pixel limit (8192 × 4320): 8192x4608, a few frames at
/// 5 fps of flat MJPEG (cheap to make and to decode).
fn above_default_limit() -> PathBuf {
    common::synth(
        "8k.mkv",
        &["-f", "lavfi", "-i", "color=c=0x406080:size=8192x4608:rate=5", "-t", "1", "-c:v", "mjpeg", "-q:v", "10"],
    )
}

/// Regression (issue 15): `run --max-pixels` was not passed to the chunk decoder, which
/// kept the default limit and failed with "opening the decoder: Invalid argument", exit 4.
#[test]
fn max_pixels_is_honoured_by_every_decoder_the_run_opens() {
    let input = above_default_limit();
    let input = input.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("ladder");
    let out = out.to_str().unwrap();
    let (code, stderr) = run(&["run", input, "--out", out, "--preset", "small", "--progress", "off"]);
    assert_eq!(code, 3, "above the default limit is bad input: {stderr}");
    assert!(stderr.contains("above the limit"), "{stderr}");
    let raised = ["run", input, "--out", out, "--preset", "small", "--progress", "off", "--max-pixels", "40000000"];
    let (code, stderr) = run(&raised);
    assert_eq!(code, 0, "a raised limit lets the run decode what the probe accepted: {stderr}");
    assert!(std::path::Path::new(out).join("master.m3u8").exists());
}

#[test]
fn an_output_that_is_a_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let input = small();
    let args = ["run", input.to_str().unwrap(), "--out", file.to_str().unwrap(), "--preset", "small"];
    let (code, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is left as it was");
}

#[test]
fn an_unwritable_output_is_a_usage_error() {
    if nix_is_root() {
        // root writes anywhere: make the folder's parent a file instead, which nobody can write under.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let input = small();
        let out = file.join("ladder");
        let (code, stderr) =
            run(&["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"]);
        assert_eq!(code, 2, "{stderr}");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let input = small();
    let out = dir.path().join("ladder");
    let (code, stderr) = run(&["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"]);
    assert_eq!(code, 2, "{stderr}");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_missing_preset_file_is_a_usage_error_that_says_preset() {
    let input = small();
    let (code, stderr) =
        run(&["run", input.to_str().unwrap(), "--out", "/tmp/unused-ladder", "--preset", "/nonexistent/talks.toml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("preset"), "{stderr}");
    assert!(!std::path::Path::new("/tmp/unused-ladder/master.m3u8").exists());
}

#[test]
fn an_unusable_scratch_folder_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let input = small();
    let out = dir.path().join("ladder");
    let args = [
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--preset",
        "small",
        "--scratch",
        file.to_str().unwrap(),
    ];
    let (code, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_missing_local_input_is_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let args = ["run", "/nonexistent/rec.mp4", "--out", out.path().to_str().unwrap(), "--preset", "small"];
    let (code, stderr) = run(&args);
    assert_eq!(code, 3, "{stderr}");
}
