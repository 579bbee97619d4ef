//! Thin, safe helpers over libav (through `ffmpeg-next`) shared by probe, presets and the
//! pipeline. Every libav object created here is owned by its caller: nothing is shared
//! between threads.

pub mod encoder;

use std::sync::Once;

/// Initialises libav once per process and quiets its own logging: ladder reports problems
/// itself, in sentences. Set `LADDER_LIBAV_LOG=info|warning|error|debug` to see libav's.
/// Also sets the allocator up ([`tune_allocator`]), which encoders' output depends on, for
/// whatever process encodes (the binary has done so already, tests have not).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tune_allocator();
        ffmpeg_next::init().expect("libav initialisation only registers codecs and cannot fail");
        let level = match std::env::var("LADDER_LIBAV_LOG").as_deref() {
            Ok("debug") => ffmpeg_next::util::log::Level::Debug,
            Ok("verbose") => ffmpeg_next::util::log::Level::Verbose,
            Ok("info") => ffmpeg_next::util::log::Level::Info,
            Ok("warning") => ffmpeg_next::util::log::Level::Warning,
            Ok("error") => ffmpeg_next::util::log::Level::Error,
            _ => ffmpeg_next::util::log::Level::Quiet,
        };
        ffmpeg_next::util::log::set_level(level);
    });
}

/// Sets glibc's allocator up for a run; the binary calls it first thing, before any other
/// thread exists, and [`init`] again (the same settings). Each yields to its `MALLOC_*`
/// environment variable.
///
/// - Two arenas instead of eight per CPU: a run has a dozen threads (decoder, rungs, audio,
///   storage, S3 requests), and what each freed into an arena of its own stayed mapped:
///   ~25-35 MB of peak RSS on the bench, at the same CPU time.
/// - The mmap threshold pinned at 128 KiB, glibc's starting value, which it would otherwise
///   raise (up to 32 MiB) each time a block that large is freed. libx264's AVX-512 code
///   reads bytes of its own buffers that it never wrote, so what the heap held before
///   changed its output: a chunk encoded after earlier chunks (their freed frames reused)
///   came out with other bytes than the same chunk in a fresh process, about one run in
///   three on an AVX-512 machine. Pinned, a block of 128 KiB or more is fresh pages the
///   kernel zeroed (unless freed smaller blocks side by side add up to one), and in every run
///   measured since a chunk's bytes were the same whichever process, shard or rerun encoded
///   it (`tests/x264_heap.rs`; zeroing every block, glibc's `M_PERTURB`, would be certain
///   but took peak RSS to ~377 MiB). Freed frames also go back to the system at once: peak
///   RSS ~35 MB lower on the bench, CPU time unchanged within the machine's noise.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: plain glibc tuning call; a failure (0) leaves the default in place.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        }
    }
}

/// Bytes from which glibc serves a block with fresh pages of its own (see [`tune_allocator`]).
pub const MMAP_THRESHOLD: i32 = 128 << 10;

/// The versions of the libav libraries this binary is linked with, e.g. `avcodec 59.37.100`.
pub fn library_versions() -> Vec<(&'static str, String)> {
    fn v(x: u32) -> String {
        format!("{}.{}.{}", x >> 16, (x >> 8) & 0xff, x & 0xff)
    }
    vec![
        ("avformat", v(ffmpeg_next::format::version())),
        ("avcodec", v(ffmpeg_next::codec::version())),
        ("avutil", v(ffmpeg_next::util::version())),
        ("swscale", v(ffmpeg_next::software::scaling::version())),
        ("swresample", v(ffmpeg_next::software::resampling::version())),
    ]
}
