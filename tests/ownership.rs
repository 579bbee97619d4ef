//! An output holds the ladder of one (recording, preset) at a time: another recording's
//! run refuses with exit 2 and leaves it as it was, `--overwrite` replaces it whole, and a
//! run that is writing it right now is never overwritten.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};

fn recording_a() -> PathBuf {
    common::pattern("a.mp4", "1280x720", "25", "2", &[])
}

fn recording_b() -> PathBuf {
    common::pattern("b.mp4", "320x240", "25", "3", &[])
}

fn run(input: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["run", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend(["--preset", "small", "--progress", "off"]);
    args.extend_from_slice(extra);
    let (code, _, stderr) = common::run(&args);
    (code, stderr)
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn another_recordings_output_is_refused_and_left_as_it_was() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&recording_a(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let before = files(out.path());
    let master = std::fs::read(out.path().join("master.m3u8")).unwrap();

    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 2, "another recording's output is a usage error: {stderr}");
    assert!(stderr.contains("a.mp4") && stderr.contains("--overwrite"), "says what is there and what to do: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    assert_eq!(files(out.path()), before, "nothing was added or removed");
    assert_eq!(std::fs::read(out.path().join("master.m3u8")).unwrap(), master);

    // The same recording with another preset is another ladder too.
    let a = recording_a();
    let args = ["run", a.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--preset", "default"];
    let (code, _, stderr) = common::run(&args);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn overwrite_replaces_another_recordings_ladder_whole() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&recording_a(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.path().join("v1").is_dir(), "720p makes several rungs");

    let (code, stderr) = run(&recording_b(), out.path(), &["--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.path().join("v1").exists(), "the earlier run's second rung is gone: {:?}", files(out.path()));
    let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    assert!(master.contains("RESOLUTION=320x240"), "{master}");
    let plan = std::fs::read_to_string(out.path().join(".ladder/plan.json")).unwrap();
    assert!(plan.contains("b.mp4") && !plan.contains("a.mp4"));
    // Every still belongs to the 3 s recording (one every 2 s of the small preset: 0 and 1).
    let stills: Vec<String> = files(out.path()).into_iter().filter(|f| f.starts_with("thumbs/t_")).collect();
    assert!(stills.len() <= 2, "{stills:?}");
}

#[test]
fn a_run_writing_the_output_right_now_is_never_overwritten() {
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(out.path().join(".ladder")).unwrap();
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
    let lease = serde_json::json!({
        "owner": {"input": "/recordings/keynote.mp4", "preset": "default", "preset_hash": "abc"},
        "holder": "pod-7:42",
        "renewed_at": expires - 600,
        "expires_at": expires,
    });
    std::fs::write(out.path().join(".ladder/lease.json"), lease.to_string()).unwrap();
    for extra in [&[][..], &["--overwrite"][..]] {
        let (code, stderr) = run(&recording_b(), out.path(), extra);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(stderr.contains("being written right now by pod-7:42"), "{stderr}");
    }
    assert_eq!(files(out.path()), [".ladder/lease.json"], "nothing written beside the live run's lease");
}

#[test]
fn two_runs_of_different_recordings_at_once_one_wins_the_other_refuses() {
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (recording_a(), recording_b());
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| run(&a, out.path(), &[]));
        let second = s.spawn(|| run(&b, out.path(), &[]));
        (first.join().unwrap(), second.join().unwrap())
    });
    let mut codes = [first.0, second.0];
    codes.sort_unstable();
    assert_eq!(codes, [0, 2], "exactly one owns the output: {} / {}", first.1, second.1);
    let winner = if first.0 == 0 { "a.mp4" } else { "b.mp4" };
    let plan = std::fs::read_to_string(out.path().join(".ladder/plan.json")).unwrap();
    assert!(plan.contains(winner), "the published ladder is the winner's");
}

#[test]
fn a_rerun_of_the_same_recording_and_preset_keeps_its_claim() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
}
