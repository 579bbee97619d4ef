//! moto's S3 server (Python, from PyPI): a second S3 implementation beside `s3s-fs`, with
//! AWS's checksum types, composite checksums and multipart ETags. `scripts/moto.sh`
//! installs it (`.ci/run` does); one server per test binary, on a loopback port, ended
//! with the test process.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The venv `scripts/moto.sh` installs into.
pub fn venv() -> PathBuf {
    match std::env::var_os("LADDER_MOTO_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ladder/moto-venv"),
    }
}

/// The venv's Python, which also has boto3 (a dependency of moto).
pub fn python() -> PathBuf {
    venv().join("bin/python")
}

/// A running moto server.
pub struct Moto {
    pub port: u16,
    /// Held open for as long as the process lives: the server exits when it closes.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The test binary's moto server, started on first use. `None` (with the reason printed)
/// when moto is not installed, except in CI (`CI=true`), where that fails the test.
pub fn server() -> Option<&'static Moto> {
    static SERVER: OnceLock<Option<Moto>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref()
}

#[expect(clippy::print_stderr, reason = "a skipped test says why, where cargo test shows it")]
fn start() -> Option<Moto> {
    let python = python();
    if !python.exists() {
        let why = format!("moto is not installed in {} (run scripts/moto.sh)", venv().display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping the moto half of this test: {why}");
        return None;
    }
    let mut child = Command::new(&python)
        .arg(super::repo("scripts/moto-server.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("moto prints its port");
    let port = line.trim().parse().unwrap_or_else(|_| panic!("moto printed {line:?}, not a port"));
    let stdin = child.stdin.take().expect("piped");
    Some(Moto { port, _stdin: Mutex::new(stdin), _child: Mutex::new(child) })
}
