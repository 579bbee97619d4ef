//! The temporary files behind atomic local writes: a file is written as `.tmp-XXXXXX`
//! beside its final name, then renamed into place. They are created with the umask's
//! modes (0644 with umask 022, like any file a program creates; `tempfile` alone makes
//! them 0600, which a web server running as another user cannot serve), and each is
//! `flock`ed while it is written, so that a later run can tell a temporary left by an
//! interrupted run (unlocked: its process is gone) from one being written right now by
//! another shard (locked), and remove only the former.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use tempfile::NamedTempFile;

/// How the names of temporaries start; nothing else in an output starts so.
const PREFIX: &str = ".tmp-";

/// A new temporary in `dir`, locked by this process until it is dropped (or persisted
/// and then dropped).
pub(super) fn temporary_in(dir: &Path) -> io::Result<NamedTempFile> {
    loop {
        // 0666 less the umask, as `File::create` does.
        let file =
            tempfile::Builder::new().prefix(PREFIX).permissions(Permissions::from_mode(0o666)).tempfile_in(dir)?;
        file.as_file().lock()?;
        // A run cleaning up may have taken it for a leftover between its creation and the
        // lock, and removed it: then it has no name any more, and another is made.
        if file.as_file().metadata()?.nlink() > 0 {
            return Ok(file);
        }
        // Its name may already be another file's: forget it rather than delete it.
        let _ = file.into_temp_path().keep();
    }
}

/// Removes the temporaries under `root` that no process is writing (left by an
/// interrupted run), and returns how many. Those being written are left alone, as is
/// anything that cannot be read: this is tidying, and the run reports real problems
/// where it meets them.
pub(super) fn remove_leftovers(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() {
            removed += remove_leftovers(&path);
        } else if kind.is_file() && entry.file_name().to_string_lossy().starts_with(PREFIX) {
            let Ok(file) = File::open(&path) else { continue };
            // Locked: a live writer. Unlocked: its writer is gone (a lock dies with its
            // process), and the lock now held keeps a new writer off it until it is gone.
            if file.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_being_written_are_kept_and_abandoned_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("v0");
        std::fs::create_dir(&sub).unwrap();
        let abandoned = sub.join(".tmp-abandoned");
        std::fs::write(&abandoned, b"half a segment").unwrap();
        let live = temporary_in(&sub).unwrap();
        let final_file = sub.join("seg_1.m4s");
        std::fs::write(&final_file, b"a segment").unwrap();

        assert_eq!(remove_leftovers(dir.path()), 1);
        assert!(!abandoned.exists());
        assert!(live.path().exists(), "a temporary being written is kept");
        assert!(final_file.exists(), "only temporaries are removed");
        drop(live);
        assert_eq!(remove_leftovers(dir.path()), 0);
    }

    #[test]
    fn temporaries_get_the_umask_modes() {
        let dir = tempfile::tempdir().unwrap();
        let file = temporary_in(dir.path()).unwrap();
        // Read, not set: other tests of this process create files meanwhile.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Linux reports the umask");
        let umask = u32::from_str_radix(umask.trim(), 8).unwrap();
        let mode = file.as_file().metadata().unwrap().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask);
    }
}
