//! What `ladder` writes on stderr and stdout when they are not terminals (a pod's log, a
//! pipe): one format per stream, no colour codes, typed JSON values, dependencies quiet
//! unless named, and a reader that closes stdout early (`ladder … | head`) ends nothing
//! badly.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt as _;
use serde_json::Value;

/// A short recording: a test pattern with a tone, 320x240, 2 s.
fn recording() -> PathBuf {
    common::pattern("logs.mp4", "320x240", "25", "2", &[])
}

/// `ladder run` of the short recording into `out` with the `small` preset and `extra`
/// options; returns stderr after asserting success.
fn run(out: &Path, extra: &[&str]) -> String {
    let input = recording();
    let mut args = vec!["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"];
    args.extend_from_slice(extra);
    let (code, _, stderr) = common::run(&args);
    assert_eq!(code, 0, "ladder run failed: {stderr}");
    stderr
}

/// Every stderr line as JSON; fails on any line that is not.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stderr}")))
        .collect()
}

fn messages<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["fields"]["message"] == message).collect()
}

#[test]
fn a_json_log_carries_progress_as_json_events_with_typed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ladder");
    // stderr is a pipe here, so the defaults are a JSON log and progress in it.
    let stderr = run(&out, &["--log", "info"]);
    assert!(!stderr.contains('\u{1b}'), "no colour codes into a pipe: {stderr}");
    let lines = json_lines(&stderr);
    let progress = messages(&lines, "progress");
    let last = progress.last().unwrap_or_else(|| panic!("a progress event at the end of the run: {stderr}"));
    assert_eq!(last["target"], "ladder::progress");
    assert_eq!(last["level"], "INFO");
    let fields = &last["fields"];
    assert_eq!(fields["frames"], fields["total_frames"], "the last event is at the end: {fields}");
    assert_eq!(fields["total_frames"], 50, "2 s at 25 fps");
    assert_eq!(fields["percent"], 100.0);
    for name in ["fps", "speed"] {
        assert!(fields[name].is_f64(), "{name} is a number: {fields}");
    }
    assert!(fields["eta_seconds"].is_u64(), "{fields}");

    // A rerun reuses every chunk and says which, as a JSON array.
    let lines = json_lines(&run(&out, &["--log", "info", "--log-format", "json"]));
    let [reusing] = messages(&lines, "reusing chunks finished by an earlier run")[..] else {
        panic!("one reuse event: {lines:#?}")
    };
    assert_eq!(reusing["fields"]["chunks"], serde_json::json!([0]));
}

#[test]
fn a_text_log_into_a_pipe_has_no_colour_codes_and_progress_in_the_same_format() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(&dir.path().join("ladder"), &["--log-format", "text", "--log", "info", "--progress", "lines"]);
    assert!(!stderr.contains('\u{1b}'), "no colour codes into a pipe: {stderr:?}");
    assert!(!stderr.lines().any(|l| l.starts_with("progress:")), "no lines of another format: {stderr}");
    let progress: Vec<&str> = stderr.lines().filter(|l| l.contains(" ladder::progress: progress ")).collect();
    assert!(!progress.is_empty(), "progress goes through the log: {stderr}");
    assert!(progress.iter().all(|l| l.contains(" INFO ") && l.contains("frames=50 total_frames=50")), "{progress:?}");
    assert!(stderr.lines().all(|l| l.contains(" INFO ") || l.contains(" WARN ")), "log lines only: {stderr}");
}

#[test]
fn progress_off_and_the_default_level_leave_stderr_empty_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(&dir.path().join("ladder"), &["--progress", "off"]);
    assert_eq!(stderr, "");
}

/// `ladder run` of an S3 input through an AWS profile that names a role to assume with
/// credentials from an endpoint that refuses connections: the AWS SDK logs at length
/// about it; ladder fails with its own error. `log` is `LADDER_LOG`.
fn run_with_failing_aws_credentials(log: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aws-config");
    std::fs::write(
        &config,
        "[profile broken]\nrole_arn = arn:aws:iam::123456789012:role/x\ncredential_source = EcsContainer\n",
    )
    .unwrap();
    let out = dir.path().join("ladder");
    let output = Command::cargo_bin("ladder")
        .unwrap()
        .args(["run", "s3://recordings/rec.mp4", "--out", out.to_str().unwrap(), "--progress", "off"])
        .args(["--s3-endpoint", "http://127.0.0.1:9", "--s3-attempts", "1", "--log-format", "text"])
        .env("LADDER_LOG", log)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_PROFILE", "broken")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn dependencies_log_below_warn_unless_named() {
    let (code, stderr) = run_with_failing_aws_credentials("warn");
    assert_ne!(code, 0);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.last().is_some_and(|l| l.starts_with("error: ")), "ladder's error ends it: {stderr}");
    assert!(
        lines.iter().all(|l| l.starts_with("error: ") || !l.contains(" aws_")),
        "nothing of the AWS SDK's at the default level: {stderr}"
    );

    // Named, the SDK's warnings are there: the same run does make them.
    let (_, stderr) = run_with_failing_aws_credentials("warn,aws_config=warn");
    assert!(stderr.lines().any(|l| l.contains(" WARN aws_config")), "the SDK's warnings when named: {stderr}");
}

/// Runs `ladder args` with stdout a pipe whose reader is gone before ladder writes.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child =
        Command::cargo_bin("ladder").unwrap().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The only read end: closing it makes ladder's first write fail with EPIPE.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn a_reader_that_closes_stdout_early_ends_the_command_quietly() {
    let sample = common::repo("media/bbb-720p25-5s.mp4");
    let sample = sample.to_str().unwrap();
    for args in [
        &["presets", "schema"][..],
        &["presets", "show", "--preset", "default"],
        &["presets", "list"],
        &["probe", sample, "--json"],
        &["plan", sample],
        &["--help"],
    ] {
        let (code, stderr) = with_stdout_closed(args);
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "ladder {args:?}");
    }
}
