//! libav's SIMD flags: `ladder::media::init` takes AVX2 and AVX-512 out of them for the whole
//! process, because swscale's AVX2 horizontal filter (gathers) is slow on the machines ladder
//! runs on. That must not change a picture: scalers made with the flags as detected and as
//! masked give the same bytes for the rung sizes of the built-in ladders. Its own test binary:
//! it switches the process-wide flags back to "as detected" for a moment.

use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;

/// The first `n` pictures of the bundled sample (720p25 H.264).
fn sample_pictures(n: usize) -> Vec<ff::frame::Video> {
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
    let pictures = sample_pictures(12);
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
