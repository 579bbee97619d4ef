//! Thin, safe helpers over libav (through `ffmpeg-next`) shared by probe, presets and the
//! pipeline. Every libav object created here is owned by its caller: nothing is shared
//! between threads.

mod alloc;
pub mod encoder;
pub mod input;

use std::sync::Once;

/// Initialises libav once per process and quiets its own logging: ladder reports problems
/// itself, in sentences. Set `LADDER_LIBAV_LOG=info|warning|error|debug` to see libav's.
/// Also sets the allocator up (`alloc::tune_allocator`) and libav's SIMD flags
/// (`without_slow_simd`): the binary calls it first thing, before any other thread exists;
/// test binaries on their first use of libav.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        alloc::tune_allocator();
        ffmpeg_next::init().expect("libav initialisation only registers codecs and cannot fail");
        without_slow_simd();
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

/// libav's SIMD flags for the whole process, without AVX2 and AVX-512 (x86-64 only; x264,
/// x265 and SVT-AV1 detect their own and keep theirs). swscale 6's AVX2 horizontal filter loads
/// its taps with `vpgatherdd`, slow on the AMD EPYC machines ladder runs on: one loop of it held
/// 3.5 % of a bench run's samples. Its SSSE3 filter gives the same bytes
/// (`tests/scaler_flags.rs`) for ~25 % less scaling time, and the H.264 decoder lost nothing
/// (3.56-3.82 s for the bench input's decode either way, the same frames). Set once, before
/// anything reads them: masking them only while a scaler is made raced with other threads
/// making theirs (swscale reads the flags more than once while it sets a scaler up, and a
/// scaler set up half one way, half the other, scaled wrongly).
fn without_slow_simd() {
    #[cfg(target_arch = "x86_64")]
    {
        use ffmpeg_next::ffi;
        // SAFETY: plain read and write of libav's process-wide flags, inside `init`'s Once
        // and before this process has used libav.
        unsafe {
            let slow = ffi::AV_CPU_FLAG_AVX2 | ffi::AV_CPU_FLAG_AVX512 | ffi::AV_CPU_FLAG_AVX512ICL;
            ffi::av_force_cpu_flags(ffi::av_get_cpu_flags() & !slow);
        }
    }
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
