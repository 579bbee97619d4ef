//! A local output as a web server (another user) and a rerun find it: files and folders
//! with the umask's modes, and no temporary files of an interrupted run left behind.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin;

fn recording() -> PathBuf {
    common::pattern("local-output.mp4", "320x240", "25", "2", &[])
}

/// `ladder run` of the short recording into `out` under `umask`; asserts success.
fn run_with_umask(out: &Path, umask: &str) {
    let input = recording();
    let status = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(cargo_bin("ladder"))
        .args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"])
        .args(["--progress", "off"])
        .status()
        .unwrap();
    assert!(status.success(), "ladder run under umask {umask}");
}

/// Every file and folder under `root` (itself excluded) with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        found.push((entry.path(), meta.is_dir(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            found.extend(modes(&entry.path()));
        }
    }
    found
}

#[test]
fn outputs_get_the_umasks_modes() {
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ladder");
        run_with_umask(&out, umask);
        let found = modes(&out);
        assert!(found.iter().any(|(p, _, _)| p.ends_with("master.m3u8")), "a whole ladder: {found:?}");
        for (path, is_dir, mode) in found {
            let expected = if is_dir { dir_mode } else { file_mode };
            assert_eq!(mode, expected, "{} under umask {umask}: {mode:o}, not {expected:o}", path.display());
        }
    }
}

#[test]
fn a_rerun_removes_the_temporaries_of_an_interrupted_run_but_not_of_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ladder");
    run_with_umask(&out, "022");
    // What a run killed while writing leaves: half-written files under temporary names.
    let leftovers = [out.join("v0/.tmp-Ab3dEf"), out.join(".ladder/chunks/.tmp-Gh5iJk"), out.join(".tmp-Lm7nOp")];
    for path in &leftovers {
        std::fs::write(path, b"half a file").unwrap();
    }
    // And one that another process (a shard) is writing now: it holds the lock.
    let live = out.join("v0/.tmp-Qr9sTu");
    let writer = std::fs::File::create(&live).unwrap();
    writer.lock().unwrap();

    run_with_umask(&out, "022");
    for path in &leftovers {
        assert!(!path.exists(), "{} is removed by the rerun", path.display());
    }
    assert!(live.exists(), "a temporary being written is left to its writer");
    assert!(out.join("master.m3u8").exists());
    drop(writer);
}
