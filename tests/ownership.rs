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

/// The media files (cached as immutable under their names) of a ladder.
fn media(dir: &Path) -> Vec<String> {
    let media = |f: &String| !f.starts_with(".ladder/") && [".m4s", ".mp4", ".jpg"].iter().any(|e| f.ends_with(e));
    files(dir).into_iter().filter(media).collect()
}

/// Every URI the master playlist and the media playlists it names point to exists.
fn assert_master_resolves(out: &Path) {
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    let uri_of = |line: &str| line.split("URI=\"").nth(1).map(|rest| rest.split('"').next().unwrap().to_owned());
    let playlists: Vec<String> = master
        .lines()
        .filter_map(|l| if l.starts_with('#') { uri_of(l) } else { Some(l.to_owned()).filter(|l| !l.is_empty()) })
        .collect();
    assert!(!playlists.is_empty(), "{master}");
    for playlist in playlists {
        let path = out.join(&playlist);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{playlist}: {e}"));
        let folder = path.parent().unwrap();
        for line in text.lines() {
            let uri =
                if line.starts_with('#') { uri_of(line) } else { Some(line.to_owned()).filter(|l| !l.is_empty()) };
            if let Some(uri) = uri {
                assert!(folder.join(&uri).is_file(), "{playlist} names {uri}, which is missing");
            }
        }
    }
}

#[test]
fn overwrite_replaces_another_recordings_ladder_whole() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&recording_a(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.path().join("v1").is_dir(), "720p makes several rungs");
    let first = media(out.path());

    let (code, stderr) = run(&recording_b(), out.path(), &["--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.path().join("v1").exists(), "the earlier run's rungs are gone: {:?}", files(out.path()));
    let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    assert!(master.contains("RESOLUTION=320x240"), "{master}");
    let plan = std::fs::read_to_string(out.path().join(".ladder/plan.json")).unwrap();
    assert!(plan.contains("b.mp4") && !plan.contains("a.mp4"));
    // Every still belongs to the 3 s recording (one every 2 s of the small preset: 0 and 1).
    let stills: Vec<String> = files(out.path()).into_iter().filter(|f| f.contains("thumbs/t_")).collect();
    assert!(stills.len() <= 2, "{stills:?}");
    // A CDN may hold the first ladder's media for a year under its names: none comes back.
    let second = media(out.path());
    assert!(second.iter().all(|f| f.starts_with("g1/")), "{second:?}");
    assert!(second.iter().all(|f| !first.contains(f)), "{second:?} reuses a name of {first:?}");
    assert!(master.contains("g1/v0/index.m3u8"), "{master}");
    assert_master_resolves(out.path());
    // The report says where the poster and the thumbnails' index went.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    for (field, expected) in [("poster", "g1/thumbs/poster.jpg"), ("thumbnails_vtt", "g1/thumbs/thumbs.vtt")] {
        assert_eq!(report["output"][field], expected, "{report}");
        assert!(out.path().join(expected).is_file(), "{expected}");
    }

    // A run of the same job again keeps its generation.
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(media(out.path()), second);
    let everything = files(out.path());

    // --overwrite with an input that turns out bad costs nothing: the ladder stays b's.
    let (code, stderr) = run(Path::new("/nonexistent/c.mp4"), out.path(), &["--overwrite"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(files(out.path()), everything, "nothing was removed");
    let (code, stderr) = run(&recording_a(), out.path(), &[]);
    assert_eq!(code, 2, "still b's ladder: {stderr}");
    assert!(stderr.contains("b.mp4"), "{stderr}");

    // Taken over again: another generation, still no name reused.
    let (code, stderr) = run(&recording_a(), out.path(), &["--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    let third = media(out.path());
    assert!(third.iter().all(|f| f.starts_with("g2/")), "{third:?}");
    assert!(third.iter().all(|f| !first.contains(f) && !second.contains(f)), "{third:?}");
    assert_master_resolves(out.path());
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

/// Shards of one `--overwrite` job: while one of them has claimed the output but not yet
/// removed the previous recording's files, the others store nothing (exit 4: a moment later
/// they can); a claim whose taker died expires like any other.
#[test]
fn shards_wait_while_one_of_them_takes_the_output_over() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let lease_path = out.path().join(".ladder/lease.json");
    let mut lease: serde_json::Value = serde_json::from_slice(&std::fs::read(&lease_path).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    lease["taking_over"] = true.into();
    lease["expires_at"] = (now + 300).into();
    std::fs::write(&lease_path, lease.to_string()).unwrap();
    let before = files(out.path());
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("taking the output over"), "{stderr}");
    assert_eq!(files(out.path()), before, "nothing stored or removed");

    lease["expires_at"] = (now - 1).into();
    std::fs::write(&lease_path, lease.to_string()).unwrap();
    let (code, stderr) = run(&recording_b(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
}
