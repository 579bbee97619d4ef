//! libav's SIMD flags: `ladder::media::init` takes AVX2 and AVX-512 out of them for the whole
//! process, because swscale's AVX2 horizontal filter (gathers) is slow on the machines ladder
//! runs on. That must not change a picture: scalers made with the flags as detected and as
//! masked give the same bytes for the rung sizes of the built-in ladders. Its own test binary:
//! it switches the process-wide flags back to "as detected" for a moment.

use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;

mod common;

/// The visible bytes of every plane, row by row.
fn planes(picture: &ff::frame::Video) -> Vec<u8> {
    (0..picture.planes())
        .flat_map(|p| {
            let (stride, width) = (picture.stride(p), picture.plane_width(p) as usize);
            picture.data(p).chunks(stride).take(picture.plane_height(p) as usize).flat_map(move |row| &row[..width])
        })
        .copied()
        .collect()
}

fn bicubic(from: &ff::frame::Video, w: u32, h: u32) -> scaling::Context {
    scaling::Context::get(from.format(), from.width(), from.height(), Pixel::YUV420P, w, h, scaling::Flags::BICUBIC)
        .expect("a scaler")
}

#[test]
fn scalers_without_avx2_make_the_same_pictures() {
    ladder::media::init();
    // SAFETY: reads of libav's process-wide flags; the writes below happen while this test,
    // alone in its binary, is the only thread using libav.
    let masked = unsafe { ff::ffi::av_get_cpu_flags() };
    let slow = ff::ffi::AV_CPU_FLAG_AVX2 | ff::ffi::AV_CPU_FLAG_AVX512 | ff::ffi::AV_CPU_FLAG_AVX512ICL;
    if cfg!(target_arch = "x86_64") {
        assert_eq!(masked & slow, 0, "media::init leaves AVX2/AVX-512 in libav's flags: {masked:#x}");
    }
    let pictures = common::decoded_sample(12);
    assert!(pictures.len() >= 12, "the sample decodes to {} pictures", pictures.len());
    for (w, h) in [(960, 540), (640, 360), (426, 240), (1920, 1080)] {
        let mut without = bicubic(&pictures[0], w, h);
        // SAFETY: as above; -1 means "detect again", and the mask is put back right after.
        let mut detected = unsafe {
            ff::ffi::av_force_cpu_flags(-1);
            let scaler = bicubic(&pictures[0], w, h);
            ff::ffi::av_force_cpu_flags(masked);
            scaler
        };
        for (n, picture) in pictures.iter().enumerate() {
            let (mut a, mut b) = (ff::frame::Video::empty(), ff::frame::Video::empty());
            without.run(picture, &mut a).expect("scales");
            detected.run(picture, &mut b).expect("scales");
            assert_eq!((a.width(), a.height()), (w, h));
            let (a, b) = (planes(&a), planes(&b));
            assert_eq!(a.len(), (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) as usize);
            assert!(a == b, "{w}x{h}, picture {n}: the scalers with and without AVX2 differ");
        }
    }
}
