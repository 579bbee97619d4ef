//! `--jobs` auto under a real memory limit: `ladder` runs inside a cgroup (v1 memory
//! controller) of its own, made below this process's, whose limit holds the process and
//! one and a half chunks of the plan's estimate. It must read that limit (its own cgroup's,
//! not the mount's top) and finish without ever being killed for memory.
//!
//! Needs a writable cgroup v1 memory hierarchy (root in a container without a cgroup
//! namespace, as on the development and CI machines); elsewhere the test says why it is
//! skipped. The unit tests of `memory::limit_under` cover v2 and the path rules.

#![allow(clippy::print_stderr, reason = "the test says why it is skipped, and what it measured")]
#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A cgroup of its own below this process's, removed when dropped.
struct Cgroup(PathBuf);

impl Cgroup {
    fn make(limit: u64) -> Result<Self, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let path = own
            .lines()
            .find_map(|l| {
                let (controllers, path) = l.split_once(':')?.1.split_once(':')?;
                controllers.split(',').any(|c| c == "memory").then(|| path.to_owned())
            })
            .ok_or("no cgroup v1 memory controller")?;
        let dir = Path::new("/sys/fs/cgroup/memory")
            .join(path.trim_start_matches('/'))
            .join(format!("ladder-test-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("making {}: {e}", dir.display()))?;
        let cgroup = Self(dir);
        std::fs::write(cgroup.0.join("memory.limit_in_bytes"), limit.to_string())
            .map_err(|e| format!("setting the limit: {e}"))?;
        Ok(cgroup)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap()
    }

    /// `ladder ARGS` as a process of this cgroup: its exit status, stdout, stderr, and its
    /// peak resident set (bytes).
    fn ladder(&self, args: &[&str]) -> (std::process::ExitStatus, String, String, u64) {
        let procs = self.0.join("cgroup.procs");
        let logs = tempfile::tempdir().unwrap();
        let (out, err) = (logs.path().join("out"), logs.path().join("err"));
        #[allow(clippy::zombie_processes, reason = "reaped by wait4 below, which also gives its rusage")]
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > '{}' && exec \"$0\" \"$@\"", procs.display()))
            .arg(env!("CARGO_BIN_EXE_ladder"))
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut status = 0;
        // SAFETY: rusage is plain integers: all zeros is a value of it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, with valid pointers to locals.
        let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        assert_eq!(pid, child.id() as libc::pid_t);
        let status = std::os::unix::process::ExitStatusExt::from_raw(status);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        (status, read(&out), read(&err), usage.ru_maxrss as u64 * 1024)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `(chunk MiB, process MiB)` from `ladder plan`'s memory line.
fn estimate(plan: &str) -> (u64, u64) {
    let line = plan.lines().find(|l| l.trim_start().starts_with("memory")).unwrap();
    let numbers: Vec<u64> =
        line.split('~').skip(1).map(|part| part.split(' ').next().unwrap().parse().unwrap()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn jobs_auto_reads_its_own_cgroups_limit_and_stays_under_it() {
    let source = common::pattern("memory-limit.mp4", "1280x720", "25", "8", &[]);
    let src = source.to_str().unwrap();
    let plan = common::ladder().args(["plan", src, "--preset", "small"]).output().unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    let (chunk, process) = estimate(&plan);
    let limit_mib = process + chunk * 3 / 2;
    let cgroup = match Cgroup::make(limit_mib << 20) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: no cgroup to run under ({why})");
            return;
        }
    };

    let (_, text, _, _) = cgroup.ladder(&["plan", src, "--preset", "small"]);
    assert!(text.contains(&format!("; 1 at once fit in this cgroup's {limit_mib} MiB")), "{text}");

    let out = tempfile::tempdir().unwrap();
    let args = ["run", src, "--out", out.path().to_str().unwrap(), "--preset", "small", "--progress", "off"];
    let (status, _, stderr, peak) = cgroup.ladder(&args);
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(out.path().join("master.m3u8").exists());
    let oom = cgroup.read("memory.oom_control");
    assert!(!oom.lines().any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"), "{oom}");
    // The estimate is on the safe side: one chunk at work and the process fit in it.
    eprintln!("peak RSS {} MiB under a limit of {limit_mib} MiB (estimate: {process} + {chunk})", peak >> 20);
    assert!(peak <= (process + chunk) << 20, "peak RSS {} MiB over the estimate", peak >> 20);
}
