//! Thin, safe helpers over libav (through `ffmpeg-next`) shared by probe, presets and the
//! pipeline. Every libav object created here is owned by its caller: nothing is shared
//! between threads.

mod alloc;
pub mod encoder;

pub use alloc::tune_allocator;

use std::sync::{Mutex, Once, PoisonError};

use ffmpeg_next::software::scaling;
use ffmpeg_next::util::format::Pixel;

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

/// Held while libav's SIMD flags are masked for a scaler ([`scaler`]), and around whatever
/// else reads them at its opening and makes float output (the audio's decoder, resampler and
/// encoder: [`with_stable_cpu_flags`]), so those bytes never depend on a scaler being made at
/// the same moment. Video decoders and swscale are bit-exact whatever the flags.
static CPU_FLAGS: Mutex<()> = Mutex::new(());

/// Runs `open` with libav's SIMD flags as detected (see [`CPU_FLAGS`]).
pub fn with_stable_cpu_flags<T>(open: impl FnOnce() -> T) -> T {
    let _held = CPU_FLAGS.lock().unwrap_or_else(PoisonError::into_inner);
    open()
}

/// A scaler from `from` to `to` (format, width, height) that does not use swscale's AVX2 and
/// AVX-512 code. swscale 6's AVX2 horizontal filter loads its taps with `vpgatherdd`, slow
/// on the AMD EPYC machines ladder runs on; the SSSE3 filter it falls back to gives the same
/// bytes (`a_scaler_without_avx2_makes_the_same_pictures`) for ~15 % less CPU time
/// (`ffmpeg -cpuflags -avx2` scaling 720p to the `small` ladder's three sizes, 0.65 → 0.55 s
/// for 300 frames, reading included). The flags are libav's, process-wide: masked only while
/// the scaler is made, under [`CPU_FLAGS`].
pub fn scaler(
    from: (Pixel, u32, u32),
    to: (Pixel, u32, u32),
    flags: scaling::Flags,
) -> Result<scaling::Context, ffmpeg_next::Error> {
    let make = || scaling::Context::get(from.0, from.1, from.2, to.0, to.1, to.2, flags);
    #[cfg(target_arch = "x86_64")]
    {
        use ffmpeg_next::ffi;
        with_stable_cpu_flags(|| {
            // SAFETY: plain reads and writes of libav's process-wide flags, restored (to
            // "detect again") before the lock is released.
            unsafe {
                let slow = ffi::AV_CPU_FLAG_AVX2 | ffi::AV_CPU_FLAG_AVX512 | ffi::AV_CPU_FLAG_AVX512ICL;
                ffi::av_force_cpu_flags(ffi::av_get_cpu_flags() & !slow);
                let made = make();
                ffi::av_force_cpu_flags(-1);
                made
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    make()
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

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg_next as ff;

    /// The first pictures of the bundled sample (720p25 H.264).
    fn sample_pictures(n: usize) -> Vec<ff::frame::Video> {
        init();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-720p25-5s.mp4");
        let mut input = ff::format::input(&path).expect("the bundled sample opens");
        let stream = input.streams().best(ff::media::Type::Video).expect("the sample has video");
        let index = stream.index();
        let context = ff::codec::Context::from_parameters(stream.parameters()).expect("its parameters");
        let mut decoder = context.decoder().video().expect("an H.264 decoder");
        let mut pictures = Vec::new();
        for (stream, packet) in input.packets() {
            if stream.index() != index {
                continue;
            }
            decoder.send_packet(&packet).expect("decodes");
            let mut picture = ff::frame::Video::empty();
            while decoder.receive_frame(&mut picture).is_ok() {
                pictures.push(std::mem::replace(&mut picture, ff::frame::Video::empty()));
            }
            if pictures.len() >= n {
                break;
            }
        }
        pictures
    }

    fn planes(picture: &ff::frame::Video) -> Vec<u8> {
        (0..picture.planes())
            .flat_map(|p| {
                let (stride, width) = (picture.stride(p), picture.plane_width(p) as usize);
                picture.data(p).chunks(stride).take(picture.plane_height(p) as usize).flat_map(move |row| &row[..width])
            })
            .copied()
            .collect()
    }

    #[test]
    fn a_scaler_without_avx2_makes_the_same_pictures() {
        let pictures = sample_pictures(12);
        assert!(pictures.len() >= 12);
        let from = (pictures[0].format(), pictures[0].width(), pictures[0].height());
        for (w, h) in [(960, 540), (640, 360), (426, 240), (1920, 1080)] {
            let to = (Pixel::YUV420P, w, h);
            let mut masked = scaler(from, to, scaling::Flags::BICUBIC).expect("a scaler");
            let mut detected = scaling::Context::get(from.0, from.1, from.2, to.0, to.1, to.2, scaling::Flags::BICUBIC)
                .expect("a scaler");
            for (n, picture) in pictures.iter().enumerate() {
                let (mut a, mut b) = (ff::frame::Video::empty(), ff::frame::Video::empty());
                masked.run(picture, &mut a).expect("scales");
                detected.run(picture, &mut b).expect("scales");
                assert_eq!((a.width(), a.height()), (w, h));
                let (a, b) = (planes(&a), planes(&b));
                assert_eq!(a.len(), (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) as usize);
                assert!(a == b, "{w}x{h}, picture {n}: the two scalers differ");
            }
        }
    }
}
