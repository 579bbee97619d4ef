//! CEA-608 closed captions carried in the H.264 of a recording (as a broadcast encoder or a
//! captioner in OBS/vMix sends them) reach every rung at the same frames, and the manifests
//! declare them. The source is made here: libx264 (with B-frames) writes the captions given
//! to it as A/53 side data; the ladder's rungs are read back with libav, frame by frame.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};

use common::media_check::{short_chunks_preset, whole_track};
use common::playlist;
use ffmpeg_next::{self as ff, frame::side_data::Type as SideData};

const FPS: i32 = 25;

/// A 608 byte with its odd parity bit.
fn parity(b: u8) -> u8 {
    if b.count_ones().is_multiple_of(2) { b | 0x80 } else { b }
}

/// The `cc_data` of source picture `n`: a Resume Caption Loading on CC1 once a second,
/// else two characters telling the picture apart; and field 2's padding, as a captioner
/// sends it.
fn cc_of(n: u64) -> Vec<u8> {
    let field1 = match n % 25 {
        0 => [0xfc, 0x94, 0x20],
        _ => [0xfc, parity(0x20 + (n % 95) as u8), parity(0x20 + ((n / 95) % 95) as u8)],
    };
    [&field1[..], &[0xf9, 0x80, 0x80]].concat()
}

/// `frames` pictures of a test pattern with captions, H.264 with B-frames, in MP4 with the
/// pattern's tone.
fn captioned_source(frames: u64) -> PathBuf {
    // Made once for the tests of this file, which run at once: none may read it half written.
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(|| make_captioned_source(frames)).clone()
}

fn make_captioned_source(frames: u64) -> PathBuf {
    let path = common::media_dir().join("captioned.mp4");
    let seconds = format!("{}", frames as f64 / f64::from(FPS));
    let base = common::pattern("cc-base.mp4", "640x360", "25", &seconds, &[]);
    let video = common::media_dir().join("captioned-video.mp4");
    encode_with_captions(&base, &video, frames);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&video)
        .arg("-i")
        .arg(&base)
        .args(["-map", "0:v", "-map", "1:a", "-c", "copy", "-metadata:s:a:0", "language=eng"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// Decodes `base` and encodes its pictures again with libx264 (`veryfast`: B-frames), each
/// carrying [`cc_of`] as A/53 side data, into `out`.
fn encode_with_captions(base: &Path, out: &Path, frames: u64) {
    ff::init().unwrap();
    ff::util::log::set_level(ff::util::log::Level::Error);
    let mut input = ff::format::input(&base).unwrap();
    let stream = input.streams().best(ff::media::Type::Video).unwrap();
    let index = stream.index();
    let mut decoder = ff::codec::Context::from_parameters(stream.parameters()).unwrap().decoder().video().unwrap();
    let mut output = ff::format::output(&out).unwrap();
    let codec = ff::encoder::find_by_name("libx264").unwrap();
    let mut context = ff::codec::Context::new_with_codec(codec).encoder().video().unwrap();
    context.set_width(decoder.width());
    context.set_height(decoder.height());
    context.set_format(ff::format::Pixel::YUV420P);
    context.set_time_base(ff::Rational::new(1, FPS));
    context.set_frame_rate(Some(ff::Rational::new(FPS, 1)));
    context.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    let mut options = ff::Dictionary::new();
    options.set("preset", "veryfast");
    let mut encoder = context.open_with(options).unwrap();
    let mut stream = output.add_stream(codec).unwrap();
    stream.set_parameters(ff::codec::Parameters::from(&encoder));
    stream.set_time_base(ff::Rational::new(1, FPS));
    output.write_header().unwrap();
    let time_base = output.stream(0).unwrap().time_base();
    let mut sent = 0u64;
    let write = |encoder: &mut ff::encoder::Video, output: &mut ff::format::context::Output| {
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(ff::Rational::new(1, FPS), time_base);
            packet.write_interleaved(output).unwrap();
        }
    };
    let mut picture = ff::frame::Video::empty();
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder.send_packet(&packet).unwrap();
        while decoder.receive_frame(&mut picture).is_ok() && sent < frames {
            let mut frame = ff::frame::Video::new(ff::format::Pixel::YUV420P, decoder.width(), decoder.height());
            for plane in 0..3 {
                let (from, to) = (picture.stride(plane), frame.stride(plane));
                let rows = frame.plane_height(plane) as usize;
                let width = to.min(from);
                for y in 0..rows {
                    frame.data_mut(plane)[y * to..y * to + width]
                        .copy_from_slice(&picture.data(plane)[y * from..y * from + width]);
                }
            }
            frame.set_pts(Some(sent as i64));
            let cc = cc_of(sent);
            // SAFETY: the side data is allocated with `cc.len()` bytes.
            unsafe {
                let side = ff::ffi::av_frame_new_side_data(
                    frame.as_mut_ptr(),
                    ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC,
                    cc.len(),
                );
                std::ptr::copy_nonoverlapping(cc.as_ptr(), (*side).data, cc.len());
            }
            encoder.send_frame(&frame).unwrap();
            write(&mut encoder, &mut output);
            sent += 1;
        }
    }
    assert_eq!(sent, frames, "the base has enough pictures");
    encoder.send_eof().unwrap();
    write(&mut encoder, &mut output);
    output.write_trailer().unwrap();
}

/// Each decoded picture's `cc_data` (empty when it has none), in presentation order.
fn captions_per_picture(file: &Path) -> Vec<Vec<u8>> {
    ff::init().unwrap();
    let mut input = ff::format::input(&file).unwrap();
    let stream = input.streams().best(ff::media::Type::Video).unwrap();
    let index = stream.index();
    let mut decoder = ff::codec::Context::from_parameters(stream.parameters()).unwrap().decoder().video().unwrap();
    let mut found = Vec::new();
    let mut picture = ff::frame::Video::empty();
    let mut take = |decoder: &mut ff::decoder::Video, found: &mut Vec<Vec<u8>>| {
        while decoder.receive_frame(&mut picture).is_ok() {
            found.push(picture.side_data(SideData::A53CC).map(|d| d.data().to_vec()).unwrap_or_default());
        }
    };
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder.send_packet(&packet).unwrap();
            take(&mut decoder, &mut found);
        }
    }
    decoder.send_eof().unwrap();
    take(&mut decoder, &mut found);
    found
}

/// `ladder run` of `source` into `out` with the short-chunks preset (several chunks) and
/// `extra`, which must succeed.
fn run_ladder(source: &Path, out: &Path, extra: &[&str]) {
    let preset = short_chunks_preset();
    let args = ["run", source.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", preset.to_str().unwrap()];
    let (code, _, stderr) = common::run(&[&args[..], extra, &["--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn captions_reach_every_rung_at_their_frames_across_chunks_and_are_declared() {
    let frames = 175; // 7 s: four chunks of 2 s with the short-chunks preset
    let source = captioned_source(frames);
    let expected: Vec<Vec<u8>> = (0..frames).map(cc_of).collect();
    assert_eq!(captions_per_picture(&source), expected, "the source carries its captions");

    let probe = common::probe_json(&source);
    assert_eq!(probe["video"]["closed_captions"], true, "probe reports the captions");
    let plain = common::pattern("no-captions.mp4", "320x180", "25", "1", &[]);
    assert_eq!(common::probe_json(&plain)["video"]["closed_captions"], false);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ladder(&source, &out, &[]);

    let master = playlist::parse_master(&std::fs::read_to_string(out.join("master.m3u8")).unwrap()).unwrap();
    let cc: Vec<_> = master.media.iter().filter(|m| m.req("TYPE") == "CLOSED-CAPTIONS").collect();
    assert_eq!(cc.len(), 1, "one closed-caption rendition: {:?}", master.media);
    assert_eq!(cc[0].req("INSTREAM-ID"), "CC1");
    assert_eq!(cc[0].req("GROUP-ID"), "cc");
    assert_eq!(cc[0].req("LANGUAGE"), "en", "declared in the default audio's language");
    assert!(!master.variants.is_empty());
    for variant in &master.variants {
        assert_eq!(variant.attributes.req("CLOSED-CAPTIONS"), "cc");
        assert!(variant.attributes.is_quoted("CLOSED-CAPTIONS"));
    }

    let mpd = std::fs::read_to_string(out.join("manifest.mpd")).unwrap();
    let doc = roxmltree::Document::parse(&mpd).unwrap();
    let accessibility: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("Accessibility")).collect();
    assert_eq!(accessibility.len(), 1, "{mpd}");
    assert_eq!(accessibility[0].attribute("schemeIdUri"), Some("urn:scte:dash:cc:cea-608:2015"));
    assert_eq!(accessibility[0].attribute("value"), Some("CC1=en"));
    let set = accessibility[0].parent().unwrap();
    assert_eq!(set.attribute("contentType"), Some("video"));

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["output"]["closed_captions"]["channels"], serde_json::json!(["CC1"]));

    let rungs: Vec<String> = master.variants.iter().map(|v| v.uri.split('/').next().unwrap().to_owned()).collect();
    assert!(rungs.len() >= 2, "several rungs: {rungs:?}");
    for rung in rungs {
        let found = captions_per_picture(&whole_track(&out, &rung));
        assert_eq!(found.len(), expected.len(), "{rung}: every frame");
        for (n, (got, want)) in found.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{rung}: frame {n} carries the source's frame {n} captions");
        }
    }
}

#[test]
fn a_trimmed_ladder_carries_the_captions_of_the_frames_it_keeps() {
    let frames = 175;
    let source = captioned_source(frames);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ladder(&source, &out, &["--start", "2.04", "--end", "5"]);
    // Frames 51 to 124 of the source are kept.
    let expected: Vec<Vec<u8>> = (51..125).map(cc_of).collect();
    let found = captions_per_picture(&whole_track(&out, "v0"));
    assert_eq!(found.len(), expected.len());
    for (n, (got, want)) in found.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "output frame {n} carries the source's frame {} captions", n + 51);
    }
}
