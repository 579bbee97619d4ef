//! Regression: libx264's output must not depend on what the heap held before it.
//!
//! libx264 0.164's AVX-512 code reads bytes of its own buffers that it never wrote. With
//! glibc's moving mmap threshold those buffers were often blocks freed earlier in the
//! process, so a chunk encoded after others came out with other bytes than the same chunk
//! encoded in a fresh process (a resumed or sharded run then published other bytes than one
//! uninterrupted run). `ladder::media::init` sets the allocator up as the binary does
//! (`media::tune_allocator`); here the heap is left full of freed blocks of zeros, then of
//! ones, before two encodes of the same pictures, which must give the same bytes.
//!
//! On a CPU without AVX-512 the two agree either way. On the development machines (AMD EPYC
//! with AVX-512) this failed without `tune_allocator`, at both sizes. Its own test binary:
//! the garbage it leaves must not reach other tests' encoders.

use ff::format::Pixel;
use ffmpeg_next as ff;
use ladder::{media, preset, rate::FrameRate};

/// The bundled sample, decoded and scaled to `w`×`h` (bicubic, as the rungs are).
fn sample_pictures(w: u32, h: u32) -> Vec<ff::frame::Video> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-720p25-5s.mp4");
    let mut input = ff::format::input(&path).expect("the bundled sample opens");
    let stream = input.streams().best(ff::media::Type::Video).expect("the sample has video");
    let index = stream.index();
    let context = ff::codec::Context::from_parameters(stream.parameters()).expect("its parameters");
    let mut decoder = context.decoder().video().expect("an H.264 decoder");
    let mut scaler = None;
    let (mut decoded, mut pictures) = (ff::frame::Video::empty(), Vec::new());
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        decoder.send_packet(&packet).expect("decodes");
        while decoder.receive_frame(&mut decoded).is_ok() {
            let scaler = scaler.get_or_insert_with(|| {
                let (format, dw, dh) = (decoded.format(), decoded.width(), decoded.height());
                ff::software::scaling::Context::get(
                    format,
                    dw,
                    dh,
                    Pixel::YUV420P,
                    w,
                    h,
                    ff::software::scaling::Flags::BICUBIC,
                )
                .expect("a scaler")
            });
            let mut picture = ff::frame::Video::empty();
            scaler.run(&decoded, &mut picture).expect("scales");
            pictures.push(picture);
        }
    }
    pictures
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

/// Leaves blocks of the sizes an encoder's buffers have freed, filled with `byte`, where
/// the allocator hands memory out next.
fn leave_in_the_heap(byte: u8) {
    let sizes = (1..=32).map(|k| k << 12).chain([256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20]);
    let blocks: Vec<Vec<u8>> = sizes.cycle().take(38 * 8).map(|n| vec![byte; n]).collect();
    drop(blocks);
}

#[test]
fn x264_encodes_the_same_bytes_whatever_the_heap_held() {
    media::init();
    for (w, h, kbps) in [(960, 540, 1500), (426, 240, 400)] {
        let mut pictures = sample_pictures(w, h);
        assert!(pictures.len() > 100, "the sample decodes to {} pictures", pictures.len());
        leave_in_the_heap(0x00);
        let zeros = x264_bytes(&mut pictures, kbps);
        leave_in_the_heap(0xff);
        let ones = x264_bytes(&mut pictures, kbps);
        assert!(zeros == ones, "{w}x{h}: {} bytes after zeros in the heap, {} after ones", zeros.len(), ones.len());
    }
}
