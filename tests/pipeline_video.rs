//! Chunked video encoding: chunks encoded separately fit together into one stream —
//! identical init segments, a continuous timeline, an IDR at every segment start — and
//! the frame count matches the plan. ffprobe is the independent judge.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ladder::pipeline::video::{self, RungChunk};

fn plan_with_chunk_segments(
    input: &std::path::Path,
    chunk_segments: u32,
) -> (ladder::plan::Plan, ladder::preset::Preset) {
    let text = ladder::preset::builtin_text("small")
        .unwrap()
        .replace("chunk_segments = 5", &format!("chunk_segments = {chunk_segments}"));
    let preset = ladder::preset::load_str(&text, "small").unwrap();
    let probe = ladder::probe::probe(input, &ladder::probe::Limits::default()).unwrap();
    (ladder::plan::plan(&probe, &preset, &ladder::trim::Trim::default()).unwrap(), preset)
}

fn encode_all(input: &std::path::Path, chunk_segments: u32) -> (ladder::plan::Plan, Vec<Vec<RungChunk>>) {
    let (plan, chunks) = encode_chunks(input, chunk_segments);
    (plan, chunks.into_iter().map(|c| c.rungs).collect())
}

fn encode_chunks(input: &std::path::Path, chunk_segments: u32) -> (ladder::plan::Plan, Vec<video::ChunkOutput>) {
    encode_chunks_holding(input, chunk_segments, video::REPLAY_BUDGET)
}

/// Every chunk, each holding up to `replay_budget` bytes of pictures for its warm-up.
fn encode_chunks_holding(
    input: &std::path::Path,
    chunk_segments: u32,
    replay_budget: usize,
) -> (ladder::plan::Plan, Vec<video::ChunkOutput>) {
    let (plan, preset) = plan_with_chunk_segments(input, chunk_segments);
    let scratch = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    let frames_done: Vec<AtomicU64> = plan.rungs.iter().map(|_| AtomicU64::new(0)).collect();
    let source = ladder::location::Source::Local(input.to_owned());
    let job = video::ChunkJob {
        input: &source,
        plan: &plan,
        preset: &preset,
        scratch: scratch.path(),
        // As `ladder run`: one thread per encoder makes a chunk's bytes reproducible.
        encoder_threads: 1,
        decoder_threads: 1,
        cancel: &cancel,
        frames_done: &frames_done,
        quality: false,
        delay_frames: video::reorder_delay(&plan, &preset).unwrap(),
        replay_budget,
        max_pixels: ladder::probe::Limits::default().max_pixels,
    };
    let chunks = plan.chunks.iter().map(|c| video::encode_chunk(&job, c).unwrap()).collect();
    for done in &frames_done {
        assert_eq!(done.load(Ordering::Relaxed), plan.total_frames, "every rung counts every frame it encoded");
    }
    (plan, chunks)
}

/// ffprobe's (key flag, pts seconds) of every video packet of a file.
fn packets(file: &std::path::Path) -> Vec<(bool, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (pts, flags) = l.split_once(',').unwrap();
            (flags.starts_with('K'), pts.parse().unwrap())
        })
        .collect()
}

#[test]
fn chunks_encoded_apart_make_one_continuous_stream() {
    // 14 s at 25 fps: segments of 6, 6 and 2 s; one chunk per segment.
    let input = common::pattern("source14.mp4", "640x360", "25", "14", &[]);
    let (plan, chunks) = encode_all(&input, 1);
    assert_eq!(chunks.len(), 3);
    let rungs = plan.rungs.len();
    assert_eq!(rungs, 2, "640x360 source: the 360p and 240p rungs");
    let (timescale, ticks) = video::timescale_for(&plan);
    for rung in 0..rungs {
        let init = &chunks[0][rung].init;
        let mut stream = init.clone();
        for (c, chunk) in chunks.iter().enumerate() {
            let r = &chunk[rung];
            assert_eq!(&r.init, init, "rung {rung}: chunk {c}'s init segment differs from chunk 0's");
            assert_eq!(r.timescale, timescale);
            for s in &r.segments {
                let planned = &plan.segments[s.index as usize];
                assert_eq!(s.decode_time, planned.start_frame * u64::from(ticks), "segment {} tfdt", s.index);
                assert_eq!(s.duration, u64::from(planned.frames) * u64::from(ticks), "segment {} duration", s.index);
                assert_eq!(s.key_frames.len() as u64, u64::from(planned.frames).div_ceil(50));
                stream.extend_from_slice(&s.bytes);
            }
        }
        let file = common::media_dir().join(format!("joined-v{rung}.mp4"));
        std::fs::write(&file, &stream).unwrap();
        let packets = packets(&file);
        assert_eq!(packets.len() as u64, plan.total_frames, "rung {rung}: every planned frame, once");
        let mut pts: Vec<f64> = packets.iter().map(|p| p.1).collect();
        pts.sort_by(f64::total_cmp);
        let first = pts[0];
        for (i, t) in pts.iter().enumerate() {
            assert!(
                (t - first - i as f64 / 25.0).abs() < 1e-3,
                "rung {rung}: frame {i} at {t}, expected constant rate"
            );
        }
        // Key frames exactly at GOP starts (every 2 s), so every segment starts with one.
        let keys: Vec<f64> = packets.iter().filter(|p| p.0).map(|p| p.1 - first).collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
        for (i, k) in keys.iter().enumerate() {
            assert!((k - 2.0 * i as f64).abs() < 1e-3, "key frame {i} at {k}");
        }
    }
}

#[test]
fn a_chunk_decodes_from_the_key_frame_before_it_once() {
    // Key frames 10 s apart and chunks of 6 s: the second chunk starts 6 s after the key
    // frame before it, the third 2 s after. Its warm-up (its own first second, sampled)
    // must not cost a second decode of those seconds.
    let input = common::pattern("gop10.mp4", "640x360", "25", "14", &["-g", "250", "-keyint_min", "250"]);
    let keys: Vec<f64> = packets(&input).iter().filter(|p| p.0).map(|p| p.1).collect();
    assert_eq!(keys, [0.0, 10.0], "the source's key frames");
    let (plan, chunks) = encode_chunks(&input, 1);
    let starts: Vec<u64> = plan.chunks.iter().map(|c| c.start_frame).collect();
    assert_eq!(starts, [0, 150, 300]);
    for (chunk, out) in plan.chunks.iter().zip(&chunks) {
        let key_frame = if chunk.start_frame >= 250 { 250 } else { 0 };
        // The decoder may hand over a picture past the chunk's end before it stops.
        let needed = chunk.end_frame - key_frame;
        assert!(
            (needed..=needed + 2).contains(&out.pictures),
            "chunk {}: {} pictures decoded, {needed} from its key frame to its end",
            chunk.index,
            out.pictures
        );
    }
    // Pictures too large to hold are decoded twice instead, into the very same bytes.
    let (_, twice) = encode_chunks_holding(&input, 1, 0);
    assert!(twice[1].pictures > chunks[1].pictures + 150, "{} pictures", twice[1].pictures);
    for (c, (a, b)) in chunks.iter().zip(&twice).enumerate() {
        for (x, y) in a.rungs.iter().zip(&b.rungs) {
            let bytes = |r: &RungChunk| r.segments.iter().map(|s| s.bytes.clone()).collect::<Vec<_>>();
            assert!(bytes(x) == bytes(y), "chunk {c}, rung {}: held and decoded twice differ", x.rung);
        }
    }
}

#[test]
fn one_chunk_or_many_gives_the_same_grid() {
    let input = common::pattern("source14b.mp4", "640x360", "25", "14", &[]);
    let (_, many) = encode_all(&input, 1);
    let (_, one) = encode_all(&input, 5);
    assert_eq!(one.len(), 1);
    for rung in 0..one[0].len() {
        assert_eq!(one[0][rung].init, many[0][rung].init);
        let grid = |chunks: &[Vec<RungChunk>]| -> Vec<(u32, u64, u64)> {
            chunks.iter().flat_map(|c| c[rung].segments.iter().map(|s| (s.index, s.decode_time, s.duration))).collect()
        };
        assert_eq!(grid(&one), grid(&many));
    }
}

#[test]
fn variable_frame_rate_input_becomes_constant_rate_with_the_planned_frame_count() {
    let input = common::vfr_source("vfr-source.mp4", "8");
    let (plan, chunks) = encode_all(&input, 1);
    assert!(plan.source.variable_frame_rate);
    let rate = plan.fps.as_f64();
    let mut stream = chunks[0][0].init.clone();
    for c in &chunks {
        for s in &c[0].segments {
            stream.extend_from_slice(&s.bytes);
        }
    }
    let file = common::media_dir().join("vfr-joined.mp4");
    std::fs::write(&file, &stream).unwrap();
    let mut pts: Vec<f64> = packets(&file).iter().map(|p| p.1).collect();
    pts.sort_by(f64::total_cmp);
    assert_eq!(pts.len() as u64, plan.total_frames);
    let span = pts[pts.len() - 1] - pts[0] + 1.0 / rate;
    assert!(
        (span - plan.duration_seconds).abs() < 1.0 / rate,
        "output lasts {span} s, planned {}",
        plan.duration_seconds
    );
    for w in pts.windows(2) {
        assert!((w[1] - w[0] - 1.0 / rate).abs() < 1e-3, "constant rate expected, got a step of {}", w[1] - w[0]);
    }
}

/// The mean luma of the top and bottom halves of the first frame of a file.
fn top_and_bottom_brightness(file: &std::path::Path, width: usize, height: usize) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), width * height, "{}", String::from_utf8_lossy(&out.stderr));
    let half = width * height / 2;
    let mean = |px: &[u8]| px.iter().map(|&p| f64::from(p)).sum::<f64>() / px.len() as f64;
    (mean(&out.stdout[..half]), mean(&out.stdout[half..]))
}

#[test]
fn a_rotated_phone_recording_is_encoded_upright() {
    // Left half white, right half black, stored landscape with a 90° clockwise display
    // matrix: upright, the white half is on top.
    let coded = common::synth(
        "halves.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=white:size=320x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:size=320x360:rate=25",
            "-filter_complex",
            "hstack",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let input = common::rotate_mp4(&coded, "halves-rotated.mp4", 90);
    let (plan, chunks) = encode_all(&input, 1);
    let rung = &plan.rungs[0];
    assert_eq!((rung.width, rung.height), (360, 640));
    let mut stream = chunks[0][0].init.clone();
    stream.extend_from_slice(&chunks[0][0].segments[0].bytes);
    let file = common::media_dir().join("upright.mp4");
    std::fs::write(&file, &stream).unwrap();
    let (top, bottom) = top_and_bottom_brightness(&file, 360, 640);
    assert!(top > 200.0 && bottom < 50.0, "top {top}, bottom {bottom}: the picture is not upright");
}

#[test]
fn interlaced_sources_are_deinterlaced_frame_for_frame() {
    let input = common::synth(
        "interlaced-source.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x576:rate=25",
            "-t",
            "3",
            "-vf",
            "setfield=tff",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-flags",
            "+ildct+ilme",
        ],
    );
    let (plan, chunks) = encode_all(&input, 1);
    assert!(plan.deinterlace);
    let mut stream = chunks[0][0].init.clone();
    stream.extend_from_slice(&chunks[0][0].segments[0].bytes);
    let file = common::media_dir().join("deinterlaced.mp4");
    std::fs::write(&file, &stream).unwrap();
    assert_eq!(packets(&file).len() as u64, plan.total_frames, "one output frame per source frame");
}
