//! Thin, safe helpers over libav (through `ffmpeg-next`) shared by probe, presets and the
//! pipeline. Every libav object created here is owned by its caller: nothing is shared
//! between threads.

mod alloc;
pub mod encoder;

pub use alloc::tune_allocator;

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
