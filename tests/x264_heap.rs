//! Regression: libx264's output must not depend on what the heap held before it.
//!
//! libx264 0.164's AVX-512 code reads bytes of its own buffers that it never wrote. With
//! glibc's moving mmap threshold those buffers were often blocks freed earlier in the
//! process, so a chunk encoded after others came out with other bytes than the same chunk
//! encoded in a fresh process (a resumed or sharded run then published other bytes than one
//! uninterrupted run). The crate's `memalign` zeroes x264's buffers (`media::alloc`); here
//! the heap is left full of freed blocks of zeros, then of ones, before two encodes of the
//! same pictures, which must give the same bytes.
//!
//! On a CPU without AVX-512 the two agree either way. On the development machines (AMD EPYC
//! with AVX-512) this failed without the zeroing `memalign`. Its own test binary: the
//! garbage it leaves must not reach other tests' encoders.

use ff::format::Pixel;
use ffmpeg_next as ff;
use ladder::{media, preset, rate::FrameRate};

mod common;

/// The bundled sample, decoded and scaled to `w`×`h` (bicubic, as the rungs are).
fn sample_pictures(w: u32, h: u32) -> Vec<ff::frame::Video> {
    let decoded = common::decoded_sample(usize::MAX);
    let first = &decoded[0];
    let (format, dw, dh) = (first.format(), first.width(), first.height());
    let mut scaler = ff::software::scaling::Context::get(
        format,
        dw,
        dh,
        Pixel::YUV420P,
        w,
        h,
        ff::software::scaling::Flags::BICUBIC,
    )
    .expect("a scaler");
    decoded
        .iter()
        .map(|picture| {
            let mut scaled = ff::frame::Video::empty();
            scaler.run(picture, &mut scaled).expect("scales");
            scaled
        })
        .collect()
}

/// Every byte x264 makes of `pictures` at `kbps` (the `small` preset's settings otherwise).
fn x264_bytes(pictures: &mut [ff::frame::Video], kbps: u32) -> Vec<u8> {
    let preset = preset::load_str(preset::builtin_text("small").expect("built in"), "small").expect("it loads");
    let mut spec = preset.encoder_spec(&preset.rungs[0], FrameRate::new(25, 1).expect("a rate"), 50, 1);
    (spec.width, spec.height) = (pictures[0].width(), pictures[0].height());
    (spec.bitrate_kbps, spec.maxrate_kbps, spec.bufsize_kbit) = (Some(kbps), kbps * 3 / 2, kbps * 3);
    let mut encoder = media::encoder::open_video(&spec).expect("libx264 opens");
    let mut bytes = Vec::new();
    let mut drain = |encoder: &mut ff::encoder::video::Encoder| {
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            bytes.extend_from_slice(packet.data().unwrap_or_default());
        }
    };
    for (n, picture) in pictures.iter_mut().enumerate() {
        picture.set_pts(Some(n as i64));
        picture.set_kind(if n % 50 == 0 { ff::picture::Type::I } else { ff::picture::Type::None });
        encoder.send_frame(picture).expect("encodes");
        drain(&mut encoder);
    }
    encoder.send_eof().expect("flushes");
    drain(&mut encoder);
    bytes
}

/// Leaves the heap full of free blocks filled with `byte`, where the allocator hands memory
/// out next: single blocks of the sizes an encoder's buffers have, and runs of 48 KiB blocks
/// that merge into free blocks of up to 1.5 MiB, kept apart from the heap's end by the small
/// blocks returned (hold them until the encode is done).
fn leave_in_the_heap(byte: u8) -> Vec<Vec<u8>> {
    let sizes = (1..=32).map(|k| k << 12).chain([256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20]);
    let blocks: Vec<Vec<u8>> = sizes.cycle().take(38 * 8).map(|n| vec![byte; n]).collect();
    drop(blocks);
    let mut pins = Vec::new();
    for run in [3, 6, 12, 32] {
        for _ in 0..8 {
            let blocks: Vec<Vec<u8>> = (0..run).map(|_| vec![byte; 48 << 10]).collect();
            pins.push(vec![byte; 64]);
            drop(blocks);
        }
    }
    pins
}

#[test]
fn x264_encodes_the_same_bytes_whatever_the_heap_held() {
    media::init();
    // Large blocks from the heap too, as with glibc's default moving threshold (the binary
    // pins it low, which makes garbage in x264's buffers rarer, not impossible).
    // SAFETY: plain glibc tuning call.
    assert_eq!(unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) }, 1, "mallopt takes the threshold");
    for (w, h, kbps) in [(960, 540, 1500), (426, 240, 400)] {
        let mut pictures = sample_pictures(w, h);
        assert!(pictures.len() > 100, "the sample decodes to {} pictures", pictures.len());
        let pins = leave_in_the_heap(0x00);
        let zeros = x264_bytes(&mut pictures, kbps);
        drop(pins);
        let pins = leave_in_the_heap(0xff);
        let ones = x264_bytes(&mut pictures, kbps);
        drop(pins);
        assert!(zeros == ones, "{w}x{h}: {} bytes after zeros in the heap, {} after ones", zeros.len(), ones.len());
    }
}
