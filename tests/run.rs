//! `ladder run` end to end on synthesised recordings. The outputs are judged by independent
//! tools and parsers: ffprobe/ffmpeg decode the segments, playlists are parsed back, the
//! MPD is parsed as XML, thumbnails are decoded.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::playlist::{self, MasterPlaylist, MediaPlaylist};

/// The `small` preset with `replacements` applied, written to a file.
fn preset(name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "the small preset has {from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = common::media_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text.replace("name = \"small\"", &format!("name = \"{name}\""))).unwrap();
    path
}

/// Runs `ladder run INPUT --out OUT --preset P <extra>` and asserts it succeeded.
fn run_ok(input: &Path, out: &Path, preset: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend(["--preset", preset.to_str().unwrap(), "--progress", "off"]);
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = common::run(&args);
    assert_eq!(code, 0, "ladder run failed: {stderr}");
    stdout
}

fn read(out: &Path, key: &str) -> String {
    std::fs::read_to_string(out.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn master(out: &Path) -> MasterPlaylist {
    playlist::parse_master(&read(out, "master.m3u8")).unwrap()
}

fn media(out: &Path, key: &str) -> MediaPlaylist {
    playlist::parse_media(&read(out, key)).unwrap()
}

/// `init.mp4` followed by the given segments of a track, as one file ffprobe can read.
fn joined(out: &Path, dir: &str, segments: &[String], name: &str) -> PathBuf {
    let mut bytes = std::fs::read(out.join(dir).join("init.mp4")).unwrap();
    for s in segments {
        bytes.extend(std::fs::read(out.join(dir).join(s)).unwrap());
    }
    let path = out.join(format!("{name}.mp4"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every segment of a track, joined.
fn whole_track(out: &Path, dir: &str) -> PathBuf {
    let list = media(out, &format!("{dir}/index.m3u8"));
    let uris: Vec<String> = list.segments.iter().map(|s| s.uri.clone()).collect();
    joined(out, dir, &uris, &format!("whole-{dir}"))
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().unwrap();
    assert!(out.status.success(), "ffprobe {args:?} {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (pts seconds, key frame, picture type) of every decoded video frame.
fn frames(file: &Path) -> Vec<(f64, bool, String)> {
    ffprobe(&["-select_streams", "v", "-show_entries", "frame=pts_time,key_frame,pict_type", "-of", "csv=p=0"], file)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[0] == "1", f[2].to_owned())
        })
        .collect()
}

/// Width and height of the first video stream.
fn size(file: &Path) -> (u32, u32) {
    let text = ffprobe(&["-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"], file);
    let (w, h) = text.trim().split_once(',').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&read(out, "report.json")).unwrap()
}

#[test]
fn a_recording_becomes_a_complete_playable_ladder() {
    // 14 s at 25 fps, 640x360 with a tone: segments of 6, 6 and 2 s, one chunk each.
    let input = common::pattern("source14.mp4", "640x360", "25", "14", &[]);
    let preset = preset("ladder-3-chunks", &[("chunk_segments = 5", "chunk_segments = 1")]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&input, &out, &preset, &[]);

    // The master: one variant per rung that fits the source (720p and 540p would upscale).
    let m = master(&out);
    assert!(m.independent_segments);
    let resolutions: Vec<&str> = m.variants.iter().map(|v| v.attributes.req("RESOLUTION")).collect();
    assert_eq!(resolutions, ["640x360", "426x240"]);
    let audio = &m.media[0];
    assert_eq!((audio.req("TYPE"), audio.req("URI"), audio.req("DEFAULT")), ("AUDIO", "a0/index.m3u8", "YES"));
    assert!(audio.get("NAME").is_some() && audio.get("LANGUAGE").is_some());
    assert_eq!(m.iframe_streams.len(), 2);

    let fps = 25.0;
    let duration = 14.0;
    let audio_list = media(&out, "a0/index.m3u8");
    let audio_bytes: Vec<u64> =
        audio_list.segments.iter().map(|s| std::fs::metadata(out.join("a0").join(&s.uri)).unwrap().len()).collect();
    let mut first_frames = Vec::new();
    for variant in &m.variants {
        let dir = variant.uri.trim_end_matches("/index.m3u8");
        let list = media(&out, &variant.uri);
        assert!(list.end_list && list.playlist_type.as_deref() == Some("VOD"));
        assert_eq!(list.map_uri.as_deref(), Some("init.mp4"));
        // Apple's rules: EXTINF sums to the duration within a frame; none over target + 0.5 s.
        assert!((list.duration() - duration).abs() < 1.0 / fps, "{dir}: {} s", list.duration());
        let target = list.target_duration.unwrap() as f64;
        assert!(list.segments.iter().all(|s| s.duration <= target + 0.5), "{dir}: a segment over the target");
        assert_eq!(list.segments.len(), 3);

        // Every segment decodes on its own after the init segment, starts with an IDR and
        // lasts what the playlist says; BANDWIDTH bounds every segment's bitrate.
        let bandwidth = variant.attributes.int("BANDWIDTH") as f64;
        let average = variant.attributes.int("AVERAGE-BANDWIDTH") as f64;
        let (mut bits, mut seconds) = (0.0, 0.0);
        for (n, s) in list.segments.iter().enumerate() {
            let file = joined(&out, dir, std::slice::from_ref(&s.uri), &format!("{dir}-{n}"));
            let f = frames(&file);
            assert_eq!(f.len(), (s.duration * fps).round() as usize, "{dir}/{}: frame count", s.uri);
            assert!(f[0].1 && f[0].2 == "I", "{dir}/{} starts with {:?}", s.uri, f[0]);
            first_frames.push((n, f[0].0));
            let size = std::fs::metadata(out.join(dir).join(&s.uri)).unwrap().len() as f64;
            let segment_bits = size * 8.0 + audio_bytes[n] as f64 * 8.0;
            assert!(bandwidth >= segment_bits / s.duration, "{dir}/{}: {} bit/s > BANDWIDTH", s.uri, segment_bits);
            bits += segment_bits;
            seconds += s.duration;
        }
        let measured = bits / seconds;
        assert!((measured - average).abs() / average < 0.10, "{dir}: measured {measured} vs AVERAGE {average}");
        let codecs = variant.attributes.req("CODECS");
        assert!(codecs.starts_with("avc1.64") && codecs.ends_with(",mp4a.40.2"), "{codecs}");
        assert!((variant.attributes.req("FRAME-RATE").parse::<f64>().unwrap() - fps).abs() < 1e-3);

        // The whole rung has the size the master says.
        let whole = whole_track(&out, dir);
        let (w, h) = size(&whole);
        assert_eq!(format!("{w}x{h}"), variant.attributes.req("RESOLUTION"));

        // The I-frame playlist points at whole key frames: each range starts with a moof
        // and decodes on its own to one I picture.
        let iframes = media(&out, &format!("{dir}/iframes.m3u8"));
        assert!(iframes.iframes_only);
        assert_eq!(iframes.segments.len(), 7, "one per 2 s GOP of 14 s");
        assert!((iframes.duration() - duration).abs() < 1.0 / fps);
        for (n, entry) in iframes.segments.iter().enumerate() {
            let range = entry.byte_range.as_ref().unwrap();
            let bytes = std::fs::read(out.join(dir).join(&entry.uri)).unwrap();
            let piece = &bytes[range.offset as usize..(range.offset + range.length) as usize];
            assert_eq!(&piece[4..8], b"moof", "{dir} I-frame {n}");
            let mut file = std::fs::read(out.join(dir).join("init.mp4")).unwrap();
            file.extend_from_slice(piece);
            let path = out.join(format!("iframe-{dir}-{n}.mp4"));
            std::fs::write(&path, file).unwrap();
            let f = frames(&path);
            assert!(!f.is_empty() && f[0].2 == "I", "{dir} I-frame {n}: {f:?}");
        }
    }
    // IDRs line up: segment n starts at the same time in every rung.
    for n in 0..3 {
        let starts: Vec<f64> = first_frames.iter().filter(|(i, _)| *i == n).map(|(_, t)| *t).collect();
        assert!(starts.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6), "segment {n} starts at {starts:?}");
    }

    // The audio rendition covers the same duration and decodes.
    assert!((audio_list.duration() - duration).abs() < 1.0 / fps, "audio lasts {}", audio_list.duration());
    let a = whole_track(&out, "a0");
    let stream = ffprobe(&["-show_entries", "stream=codec_name,sample_rate,channels", "-of", "csv=p=0"], &a);
    assert_eq!(stream.trim(), "aac,48000,1", "the source's tone is mono, and stays so");

    // The MPD parses and names segments that exist.
    let mpd_text = read(&out, "manifest.mpd");
    let mpd = roxmltree::Document::parse(&mpd_text).unwrap();
    let reps: Vec<roxmltree::Node> = mpd.descendants().filter(|n| n.has_tag_name("Representation")).collect();
    assert_eq!(reps.len(), 3, "two video rungs and the audio");
    for rep in &reps {
        let id = rep.attribute("id").unwrap();
        let template = rep
            .ancestors()
            .find_map(|a| a.children().find(|c| c.has_tag_name("SegmentTemplate")))
            .or_else(|| rep.children().find(|c| c.has_tag_name("SegmentTemplate")))
            .unwrap();
        let count: usize = template
            .descendants()
            .filter(|n| n.has_tag_name("S"))
            .map(|s| 1 + s.attribute("r").map_or(0, |r| r.parse::<usize>().unwrap()))
            .sum();
        assert_eq!(count, 3, "{id}");
        let start: usize = template.attribute("startNumber").unwrap().parse().unwrap();
        for number in start..start + count {
            let media = template.attribute("media").unwrap();
            let key = media.replace("$RepresentationID$", id).replace("$Number$", &number.to_string());
            assert!(out.join(&key).is_file(), "{key} from the MPD");
        }
        let init = template.attribute("initialization").unwrap().replace("$RepresentationID$", id);
        assert!(out.join(init).is_file());
    }

    // Thumbnails: a poster at the largest rung's size, a still every 5 s, a sprite index
    // whose cues cover the whole duration and point inside their sprite.
    assert_eq!(size(&out.join("thumbs/poster.jpg")), (640, 360));
    for n in 0..3 {
        assert_eq!(size(&out.join(format!("thumbs/t_{n}.jpg"))), (160, 90), "t_{n}");
    }
    assert!(!out.join("thumbs/t_3.jpg").exists());
    let vtt = read(&out, "thumbs/thumbs.vtt");
    assert!(vtt.starts_with("WEBVTT"));
    let mut covered = 0.0;
    for cue in vtt.split("\n\n").skip(1).filter(|c| !c.trim().is_empty()) {
        let mut lines = cue.lines();
        let times = lines.next().unwrap();
        let (from, to) = times.split_once(" --> ").unwrap();
        assert!((vtt_seconds(from) - covered).abs() < 1e-3, "cue {times} leaves a gap after {covered}");
        covered = vtt_seconds(to);
        let target = lines.next().unwrap();
        let (image, xywh) = target.split_once("#xywh=").unwrap();
        let v: Vec<u32> = xywh.split(',').map(|x| x.parse().unwrap()).collect();
        let (w, h) = size(&out.join("thumbs").join(image));
        assert!(v[0] + v[2] <= w && v[1] + v[3] <= h, "{target} outside {w}x{h}");
    }
    assert!((covered - duration).abs() < 1e-3, "cues end at {covered}");

    // The report: input checksum, measured bitrates, stages.
    let r = report(&out);
    let sha = ladder::report::file_sha256(&input).unwrap();
    assert_eq!(r["input"]["sha256"], sha.as_str());
    assert_eq!(r["rungs"].as_array().unwrap().len(), 2);
    assert!(r["rungs"][0]["peak_kbps"].as_f64().unwrap() >= r["rungs"][0]["average_kbps"].as_f64().unwrap());
    assert!(r["encoder"]["version"].as_str().unwrap().starts_with("x264 core"));
    let stages: Vec<&str> = r["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(stages.contains(&"encode") && stages.contains(&"assemble"), "{stages:?}");
    assert_eq!(r["run"]["chunks_encoded"], serde_json::json!([0, 1, 2]));
}

fn vtt_seconds(text: &str) -> f64 {
    let parts: Vec<f64> = text.trim().split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// Everything but the measured bitrates (x264's rate control sees a different history in
/// each chunk, so bytes may differ).
fn without_bitrates(text: &str) -> String {
    let mut s = text.to_owned();
    for attr in ["AVERAGE-BANDWIDTH=", "BANDWIDTH=", "bandwidth=\"", "#EXT-X-BYTERANGE:"] {
        while let Some(at) = s.find(attr) {
            let end = s[at..].find([',', '\n', ' ']).map_or(s.len(), |e| at + e);
            s.replace_range(at..end, "");
        }
    }
    s
}

#[test]
fn one_chunk_and_many_chunks_give_the_same_playlists() {
    let input = common::pattern("source14.mp4", "640x360", "25", "14", &[]);
    let many = preset("ladder-3-chunks", &[("chunk_segments = 5", "chunk_segments = 1")]);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("one"), dir.path().join("many"));
    run_ok(&input, &a, &common::repo("presets/small.toml"), &[]);
    run_ok(&input, &b, &many, &[]);
    for key in ["v0/index.m3u8", "v1/index.m3u8", "a0/index.m3u8"] {
        assert_eq!(read(&a, key), read(&b, key), "{key}");
    }
    for key in ["master.m3u8", "v0/iframes.m3u8", "manifest.mpd"] {
        assert_eq!(without_bitrates(&read(&a, key)), without_bitrates(&read(&b, key)), "{key}");
    }
    for out in [&a, &b] {
        let f = frames(&whole_track(out, "v0"));
        assert_eq!(f.len(), 14 * 25);
        let keys: Vec<f64> = f.iter().filter(|x| x.1).map(|x| x.0 - f[0].0).collect();
        assert_eq!(keys.len(), 7);
        assert!(keys.iter().enumerate().all(|(i, t)| (t - 2.0 * i as f64).abs() < 1e-6), "{keys:?}");
    }
}

/// Decodes a track to raw samples with the ffmpeg CLI.
fn decode_raw(file: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(file).args(args).arg("-").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Presentation time of the first packet of a file's only stream.
fn first_pts(file: &Path) -> f64 {
    let text = ffprobe(&["-show_entries", "packet=pts_time", "-read_intervals", "%+#1", "-of", "csv=p=0"], file);
    text.lines().next().unwrap().trim().parse().unwrap()
}

#[test]
fn variable_frame_rate_input_keeps_audio_in_sync_after_a_minute() {
    // A flash and a beep together every 10 s. The video runs at a variable rate (every 7th
    // frame dropped) and loses a whole second at 30 s, as WebRTC recordings do.
    let input = common::synth(
        "sync60.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=320x240:r=30,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\\,10)\\,0.1)'",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc='if(lt(mod(t\\,10)\\,0.1)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000",
            "-t",
            "60",
            "-vf",
            "select='not(eq(mod(n\\,7)\\,3))*not(between(t\\,30\\,31))'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    );
    assert_eq!(common::probe_json(&input)["video"]["variable_frame_rate"], true);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&input, &out, &common::repo("presets/small.toml"), &[]);

    let video = whole_track(&out, "v0");
    let audio = whole_track(&out, "a0");
    let (w, h) = size(&video);
    let fps = 30.0;
    let pixels =
        decode_raw(&video, &["-fps_mode", "passthrough", "-vf", "scale=16:16", "-f", "rawvideo", "-pix_fmt", "gray"]);
    let samples: Vec<f32> = decode_raw(&audio, &["-ac", "1", "-f", "f32le"])
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!((w, h), (320, 240));
    assert_eq!(pixels.len() / 256, 60 * 30, "constant 30 fps for 60 s");
    let (video_start, audio_start) = (first_pts(&video), first_pts(&audio));
    for flash_at in [10.0, 30.0 + 10.0, 50.0] {
        let from = ((flash_at - 1.0) * fps) as usize;
        let frame = (from..pixels.len() / 256)
            .find(|&n| pixels[n * 256..(n + 1) * 256].iter().map(|&p| u32::from(p)).sum::<u32>() / 256 > 128)
            .unwrap();
        let from = ((flash_at - 1.0) * 48000.0) as usize;
        let sample = (from..samples.len()).find(|&i| samples[i].abs() > 0.05).unwrap();
        let (v, a) = (video_start + frame as f64 / fps, audio_start + sample as f64 / 48000.0);
        assert!((v - a).abs() < 1.0 / fps, "flash at {v:.3} s, beep at {a:.3} s (source: both at {flash_at} s)");
    }
}

#[test]
fn a_portrait_phone_recording_gives_a_portrait_ladder() {
    let landscape = common::pattern("phone.mp4", "640x360", "30", "3", &[]);
    let portrait = common::rotate_mp4(&landscape, "phone-rotated.mp4", 90);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&portrait, &out, &common::repo("presets/small.toml"), &[]);
    let m = master(&out);
    for v in &m.variants {
        let (w, h) = v.attributes.req("RESOLUTION").split_once('x').unwrap();
        assert!(w.parse::<u32>().unwrap() < h.parse::<u32>().unwrap(), "{}", v.attributes.req("RESOLUTION"));
    }
    assert_eq!(size(&whole_track(&out, "v0")), (360, 640));
    assert_eq!(size(&out.join("thumbs/poster.jpg")), (360, 640));
}

#[test]
fn a_recording_without_audio_gives_a_video_only_ladder() {
    let input = common::synth("silent.mp4", &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&input, &out, &common::repo("presets/small.toml"), &[]);
    let m = master(&out);
    assert!(m.media.is_empty());
    assert!(
        m.variants.iter().all(|v| v.attributes.get("AUDIO").is_none() && !v.attributes.req("CODECS").contains("mp4a"))
    );
    assert!(!out.join("a0").exists());
}

#[test]
fn sigterm_stops_the_run_without_a_master_and_a_rerun_finishes_it() {
    let input = common::pattern("source60.mp4", "640x360", "25", "60", &[]);
    let preset = preset("ladder-10-chunks", &[("chunk_segments = 5", "chunk_segments = 1")]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "1", "--progress", "off"])
        .args(["--preset", preset.to_str().unwrap()])
        .spawn()
        .unwrap();
    let first = out.join(".ladder/chunks/0.json");
    let waited = std::time::Instant::now();
    // Chunks start in order, so chunk 0 finishes first.
    while !first.exists() {
        assert!(waited.elapsed().as_secs() < 120, "no chunk finished in 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let signalled = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(signalled.elapsed().as_secs_f64() < 5.0, "took {:?} to stop", signalled.elapsed());
    assert_eq!(status.code(), Some(5));
    assert!(!out.join("master.m3u8").exists() && !out.join("manifest.mpd").exists());
    let recorded: Vec<u64> = (0..10).filter(|c| out.join(format!(".ladder/chunks/{c}.json")).exists()).collect();
    assert!(!recorded.is_empty() && recorded.len() < 10, "recorded {recorded:?}");

    run_ok(&input, &out, &preset, &[]);
    let r = report(&out);
    let reused: Vec<u64> = r["run"]["chunks_reused"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    let encoded: Vec<u64> =
        r["run"]["chunks_encoded"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert_eq!(reused, recorded, "the rerun reuses exactly what was recorded");
    assert_eq!(reused.len() + encoded.len(), 10);
    let list = media(&out, "v0/index.m3u8");
    assert_eq!(list.segments.len(), 10);
    assert_eq!(frames(&whole_track(&out, "v0")).len(), 60 * 25);
}

#[test]
fn quality_is_measured_in_the_same_pass_and_agrees_with_ffmpeg() {
    let input = common::pattern("source4.mp4", "640x360", "25", "4", &["-crf", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&input, &out, &common::repo("presets/small.toml"), &["--quality"]);
    let r = report(&out);
    let rung = &r["rungs"][1];
    assert_eq!((rung["width"].as_u64(), rung["height"].as_u64()), (Some(426), Some(240)));
    let (psnr, ssim) = (rung["psnr_db"].as_f64().unwrap(), rung["ssim"].as_f64().unwrap());
    // The ffmpeg CLI's own measure: the source scaled (bicubic, as ladder does) against the
    // decoded rung.
    let rung_file = whole_track(&out, "v1");
    let text = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(&rung_file)
        .arg("-i")
        .arg(&input)
        .args(["-lavfi", "[1:v]scale=426:240:flags=bicubic[ref];[0:v][ref]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&text.stderr);
    let average = stderr.split("average:").nth(1).unwrap().split_whitespace().next().unwrap();
    let theirs: f64 = average.parse().unwrap();
    assert!((psnr - theirs).abs() < 0.5, "ladder {psnr:.2} dB, ffmpeg {theirs:.2} dB");
    assert!(ssim > 0.8 && ssim <= 1.0, "{ssim}");
}

#[test]
fn ten_bit_and_odd_sized_sources_give_even_8_bit_rungs() {
    let ten_bit = common::synth(
        "tenbit.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p10le",
        ],
    );
    let odd = common::synth(
        "odd.mkv",
        &["-f", "lavfi", "-i", "testsrc2=size=639x359:rate=25", "-t", "2", "-c:v", "ffv1", "-pix_fmt", "yuv444p"],
    );
    for input in [ten_bit, odd] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        run_ok(&input, &out, &common::repo("presets/small.toml"), &[]);
        for v in master(&out).variants {
            let dir = v.uri.trim_end_matches("/index.m3u8");
            let whole = whole_track(&out, dir);
            let text = ffprobe(
                &["-select_streams", "v:0", "-show_entries", "stream=pix_fmt,profile", "-of", "csv=p=0"],
                &whole,
            );
            assert_eq!(text.trim(), "High,yuv420p", "{} {dir}", input.display());
            let (w, h) = size(&whole);
            assert!(w % 2 == 0 && h % 2 == 0 && w <= 640 && h <= 360, "{w}x{h}");
            assert_eq!(frames(&whole).len(), 50);
        }
    }
}

#[test]
fn hevc_and_av1_presets_make_ladders_players_can_name() {
    let input = common::pattern("small4.mp4", "320x240", "25", "2", &[]);
    for (preset, codec, sample_entry) in [("hevc", "hvc1.", "hevc"), ("av1", "av01.", "av1")] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut args = vec!["run", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(["--preset", preset, "--progress", "off", "--json"]);
        let (code, stdout, stderr) = common::run(&args);
        assert_eq!(code, 0, "{preset}: {stderr}");
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(summary["published"].as_str().unwrap().ends_with("master.m3u8"));
        let v = &master(&out).variants[0];
        assert!(v.attributes.req("CODECS").starts_with(codec), "{preset}: {}", v.attributes.req("CODECS"));
        let whole = whole_track(&out, v.uri.trim_end_matches("/index.m3u8"));
        let name = ffprobe(&["-select_streams", "v:0", "-show_entries", "stream=codec_name", "-of", "csv=p=0"], &whole);
        assert_eq!(name.trim(), sample_entry);
        let f = frames(&whole);
        assert_eq!(f.len(), 50, "{preset}");
        assert!(f[0].1, "{preset}: starts with a key frame");
    }
}

/// Every playlist and manifest of an output, by key.
fn manifests(out: &Path) -> Vec<(String, String)> {
    let mut keys = vec!["master.m3u8".to_owned(), "manifest.mpd".to_owned(), "a0/index.m3u8".to_owned()];
    for v in 0..2 {
        keys.push(format!("v{v}/index.m3u8"));
        keys.push(format!("v{v}/iframes.m3u8"));
    }
    keys.into_iter().map(|k| (read(out, &k), k)).map(|(text, key)| (key, text)).collect()
}

/// 20 s, four segments, one chunk each, and its ladder made in one uninterrupted run.
fn reference_run() -> &'static (PathBuf, PathBuf, PathBuf) {
    static REFERENCE: std::sync::OnceLock<(PathBuf, PathBuf, PathBuf)> = std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| {
        let input = common::pattern("source20.mp4", "640x360", "25", "20", &[]);
        let preset = preset("ladder-4-chunks", &[("chunk_segments = 5", "chunk_segments = 1")]);
        let out = common::media_dir().join("reference-out");
        run_ok(&input, &out, &preset, &[]);
        (input, preset, out)
    })
}

fn chunk_list(report: &serde_json::Value, key: &str) -> Vec<u64> {
    report["run"][key].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect()
}

#[test]
fn a_run_killed_mid_way_is_finished_by_a_rerun_with_the_same_result() {
    let (input, preset, reference) = reference_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "1", "--progress", "off"])
        .args(["--preset", preset.to_str().unwrap()])
        .spawn()
        .unwrap();
    let second = out.join(".ladder/chunks/1.json");
    while !second.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();
    assert!(!out.join("master.m3u8").exists());
    let recorded: Vec<u64> = (0..4).filter(|c| out.join(format!(".ladder/chunks/{c}.json")).exists()).collect();
    assert!(recorded.len() < 4, "killed before the end: {recorded:?}");

    run_ok(input, &out, preset, &[]);
    let r = report(&out);
    assert_eq!(chunk_list(&r, "chunks_reused"), recorded, "only the missing chunks are encoded again");
    let mut all = [chunk_list(&r, "chunks_encoded"), recorded].concat();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3]);
    assert_eq!(manifests(&out), manifests(reference), "the same ladder as an uninterrupted run");
    for s in 0..4 {
        let key = format!("v0/seg_{s}.m4s");
        assert_eq!(std::fs::read(out.join(&key)).unwrap(), std::fs::read(reference.join(&key)).unwrap(), "{key}");
    }
}

#[test]
fn two_shards_at_once_publish_the_same_ladder_as_one_run() {
    let (input, preset, reference) = reference_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let shards: Vec<std::process::Child> = ["0/2", "1/2"]
        .iter()
        .map(|shard| {
            Command::new(env!("CARGO_BIN_EXE_ladder"))
                .args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off"])
                .args(["--preset", preset.to_str().unwrap(), "--jobs", "1", "--json"])
                .env("LADDER_SHARD", shard)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let summaries: Vec<serde_json::Value> = shards
        .into_iter()
        .map(|c| {
            let done = c.wait_with_output().unwrap();
            assert!(done.status.success());
            serde_json::from_slice(&done.stdout).unwrap()
        })
        .collect();
    // Each shard encoded its own chunks; at least one of them published.
    assert_eq!(summaries[0]["chunks_encoded"], serde_json::json!([0, 2]));
    assert_eq!(summaries[1]["chunks_encoded"], serde_json::json!([1, 3]));
    assert!(summaries.iter().any(|s| s["published"].is_string()), "{summaries:?}");
    assert_eq!(manifests(&out), manifests(reference));
}

#[test]
fn the_shard_comes_from_the_indexed_job_environment() {
    let (input, preset, _) = reference_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let done = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off", "--json"])
        .args(["--preset", preset.to_str().unwrap()])
        .env("JOB_COMPLETION_INDEX", "3")
        .env("LADDER_SHARDS", "4")
        .output()
        .unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(summary["chunks_encoded"], serde_json::json!([3]));
    assert_eq!(summary["waiting_for"], serde_json::json!([0, 1, 2]));
    assert!(summary["published"].is_null() && !out.join("master.m3u8").exists());
    let (code, _, stderr) = common::run(&["run", "x.mp4", "--out", "o", "--shard", "2/2"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("below the count"), "{stderr}");
}

#[test]
fn a_few_trailing_frames_do_not_inflate_the_peak_bitrate() {
    // 302 frames: the two after 12 s join the last segment instead of forming a segment
    // whose IDR would make it look like 5× the rung's bitrate.
    let input = common::pattern("tail302.mp4", "640x360", "25", "12.08", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&input, &out, &common::repo("presets/small.toml"), &[]);
    let list = media(&out, "v0/index.m3u8");
    let durations: Vec<f64> = list.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [6.0, 6.08]);
    // No EXTINF exceeds the target duration: 6.08 s makes it 7.
    assert_eq!(list.target_duration, Some(7));
    let iframes = media(&out, "v0/iframes.m3u8");
    let gops: Vec<f64> = iframes.segments.iter().map(|s| s.duration).collect();
    assert_eq!(gops, [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.08], "exact GOP durations, the short one last");
    assert_eq!(frames(&whole_track(&out, "v0")).len(), 302);
    for v in master(&out).variants {
        let (peak, average) = (v.attributes.int("BANDWIDTH") as f64, v.attributes.int("AVERAGE-BANDWIDTH") as f64);
        assert!(peak < 1.5 * average, "{}: peak {peak} vs average {average}", v.uri);
    }
}
