//! Running `ladder run` under a deadline, and judging what it made with independent tools:
//! every segment of every rung and of the audio decoded by ffprobe on its own (after its
//! init segment), and flashes in the picture matched with beeps in the sound.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::playlist;

/// How a `ladder` process ended.
#[derive(Debug)]
pub struct Ended {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Ended {
    /// The `error: ` lines of stderr.
    pub fn errors(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("error: ")).collect()
    }
}

/// Runs `ladder <args>`; a process still running after `limit` is killed and fails the
/// test (a hang), as does one ended by a signal (a crash) or a panic.
pub fn run_within(args: &[&str], limit: Duration) -> Ended {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ladder"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ladder starts");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        let mut r = r.expect("piped");
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = r.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!("ladder {args:?} hung: still running after {limit:?}; stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ended = Ended {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        seconds: started.elapsed().as_secs_f64(),
    };
    assert!(status.code().is_some(), "ladder {args:?} crashed ({status}); stderr: {}", ended.stderr);
    assert!(!ended.stderr.contains("panicked"), "ladder {args:?} panicked: {}", ended.stderr);
    ended
}

/// A recording of `seconds` whose picture's lower half flashes white and whose sound beeps
/// (1 kHz) at the same moments, from 0.5 s into each second for 0.1 s: black and silent
/// otherwise. The upper half is a moving test pattern.
/// `codecs` are the ffmpeg options after the inputs (codecs, container, timing).
pub fn flashes_and_beeps(name: &str, size: &str, rate: &str, seconds: &str, codecs: &[&str]) -> PathBuf {
    // A moving test pattern on top (so frames differ and can be compared with the source's),
    // and below it the flash.
    let (w, h) = size.split_once('x').expect("WxH");
    let h: u32 = h.parse().expect("a height");
    let video = format!(
        "testsrc2=s={w}x{top}:r={rate}:d={seconds},pad={w}:{h}:0:0:black,\
         drawbox=x=0:y={top}:w=iw:h=ih-{top}:color=white:t=fill:enable='between(mod(t\\,1)\\,0.5\\,0.599)'",
        top = h / 2 / 2 * 2
    );
    let audio =
        format!("aevalsrc='if(between(mod(t\\,1)\\,0.5\\,0.6)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000:d={seconds}");
    let mut args = vec!["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio];
    args.extend_from_slice(codecs);
    super::synth(name, &args)
}

/// H.264 (ultrafast, 2 s GOPs) and AAC: what most recorders write.
pub const H264_AAC: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-b:a", "64k"];

/// What a finished ladder holds, measured.
#[derive(Debug)]
pub struct Ladder {
    /// Each rung's `WxH`, largest first.
    pub rungs: Vec<String>,
    pub fps: f64,
    /// Of the smallest rung's playlist.
    pub seconds: f64,
    /// Seconds of each flash's first frame (in the smallest rung) and of each beep's first
    /// sample, on the presentation timeline.
    pub flashes: Vec<f64>,
    pub beeps: Vec<f64>,
}

fn ffprobe(args: &[&str], file: &Path) -> (String, String) {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().expect("ffprobe runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffprobe {args:?} {}: {stderr}", file.display());
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// `init.mp4` and `segments` of a track folder, joined into one file.
fn joined(dir: &Path, segments: &[&str], name: &str) -> PathBuf {
    let mut bytes = std::fs::read(dir.join("init.mp4")).expect("an init segment");
    for s in segments {
        bytes.extend(std::fs::read(dir.join(s)).unwrap_or_else(|e| panic!("{}/{s}: {e}", dir.display())));
    }
    let path = dir.join(format!("{name}.joined.mp4"));
    std::fs::write(&path, bytes).expect("writable");
    path
}

/// Decodes every frame of the file's first stream of `kind` (`v` or `a`): their count,
/// and libav's complaints (none expected).
fn decode_count(file: &Path, kind: &str) -> u64 {
    let (out, complaints) = ffprobe(
        &["-count_frames", "-select_streams", &format!("{kind}:0"), "-show_entries", "stream=nb_read_frames"],
        file,
    );
    assert!(complaints.trim().is_empty(), "{} does not decode cleanly: {complaints}", file.display());
    let n = out.lines().find_map(|l| l.strip_prefix("nb_read_frames=")).expect("a frame count");
    n.trim().parse().unwrap_or_else(|_| panic!("{}: frame count {n:?}", file.display()))
}

fn first_pts(file: &Path) -> f64 {
    let (text, _) = ffprobe(&["-show_entries", "packet=pts_time", "-read_intervals", "%+#1", "-of", "csv=p=0"], file);
    text.lines().next().and_then(|l| l.trim().trim_end_matches(',').parse().ok()).expect("a first packet")
}

fn decode_raw(file: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(file).args(args).arg("-").output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Checks a finished output: a master naming rungs whose every segment decodes on its own,
/// with the frames its playlist says, and an audio rendition (when `audio`) whose every
/// segment decodes; measures flashes and beeps on the smallest rung and the audio.
pub fn check_ladder(out: &Path, audio: bool) -> Ladder {
    let read = |key: &str| std::fs::read_to_string(out.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    let master = playlist::parse_master(&read("master.m3u8")).expect("a master playlist");
    assert!(!master.variants.is_empty());
    let mut rungs = Vec::new();
    let (mut fps, mut seconds) = (0.0, 0.0);
    for variant in &master.variants {
        let dir_name = variant.uri.trim_end_matches("/index.m3u8");
        let dir = out.join(dir_name);
        fps = variant.attributes.req("FRAME-RATE").parse().expect("a frame rate");
        let list = playlist::parse_media(&read(&variant.uri)).expect("a media playlist");
        assert!(list.end_list && !list.segments.is_empty(), "{dir_name}");
        for (n, s) in list.segments.iter().enumerate() {
            let file = joined(&dir, &[&s.uri], &format!("{n}"));
            let frames = decode_count(&file, "v");
            assert_eq!(frames, (s.duration * fps).round() as u64, "{dir_name}/{}: frames for {} s", s.uri, s.duration);
        }
        rungs.push(variant.attributes.req("RESOLUTION").to_owned());
        seconds = list.duration();
    }
    let smallest = master.variants.last().expect("a variant").uri.trim_end_matches("/index.m3u8").to_owned();
    let video_list = playlist::parse_media(&read(&format!("{smallest}/index.m3u8"))).expect("a media playlist");
    let uris: Vec<&str> = video_list.segments.iter().map(|s| s.uri.as_str()).collect();
    let video = joined(&out.join(&smallest), &uris, "whole");
    let pixels =
        decode_raw(&video, &["-fps_mode", "passthrough", "-vf", "scale=16:16", "-f", "rawvideo", "-pix_fmt", "gray"]);
    let start = first_pts(&video);
    // The flash fills the lower half.
    let bright: Vec<bool> =
        pixels.chunks_exact(256).map(|p| p[128..].iter().map(|&x| u32::from(x)).sum::<u32>() / 128 > 128).collect();
    let flashes = (0..bright.len())
        .filter(|&n| bright[n] && (n == 0 || !bright[n - 1]))
        .map(|n| start + n as f64 / fps)
        .collect();
    let mut beeps = Vec::new();
    if audio {
        assert_eq!(master.media.len(), 1, "one audio rendition");
        let list = playlist::parse_media(&read("a0/index.m3u8")).expect("the audio playlist");
        for (n, s) in list.segments.iter().enumerate() {
            let file = joined(&out.join("a0"), &[&s.uri], &format!("{n}"));
            assert!(decode_count(&file, "a") > 0, "a0/{}", s.uri);
        }
        assert!((list.duration() - seconds).abs() < 1.0 / fps, "audio {} s, video {seconds} s", list.duration());
        let uris: Vec<&str> = list.segments.iter().map(|s| s.uri.as_str()).collect();
        let whole = joined(&out.join("a0"), &uris, "whole");
        let start = first_pts(&whole);
        let samples: Vec<f32> = decode_raw(&whole, &["-ac", "1", "-ar", "48000", "-f", "f32le"])
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut quiet_since = 0usize;
        for (i, s) in samples.iter().enumerate() {
            if s.abs() > 0.05 {
                if i - quiet_since >= 48000 / 4 || i == 0 {
                    beeps.push(start + i as f64 / 48000.0);
                }
                quiet_since = i;
            }
        }
    } else {
        assert!(master.media.is_empty() && !out.join("a0").exists());
    }
    Ladder { rungs, fps, seconds, flashes, beeps }
}

impl Ladder {
    /// Every flash has its beep within a frame, and there are as many of each as expected.
    pub fn assert_in_sync(&self, flashes: usize, beeps: usize) {
        assert_eq!(self.flashes.len(), flashes, "flashes at {:?} (beeps at {:?})", self.flashes, self.beeps);
        assert_eq!(self.beeps.len(), beeps, "beeps at {:?} (flashes at {:?})", self.beeps, self.flashes);
        for f in &self.flashes {
            let nearest = self.beeps.iter().map(|b| (b - f).abs()).fold(f64::INFINITY, f64::min);
            assert!(nearest <= 1.0 / self.fps + 1e-3, "flash at {f:.3} s has no beep within a frame: {:?}", self.beeps);
        }
    }
}

/// The worst PSNR (dB) of any frame of the top rung against the source's picture at that
/// time (the source made constant-rate at the rung's rate, each slot taking the nearest
/// frame, as ladder does), scaled to the rung's size: a frame from the wrong place (a seek
/// that landed late, a frozen picture) scores far below an encoded copy of the right one
/// (over 30 dB). For sources whose first picture is the output's time zero.
pub fn worst_psnr(out: &Path, source: &Path) -> f64 {
    let rung = whole_track(out, "v0");
    let (stream, _) = ffprobe(
        &["-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate", "-of", "csv=p=0"],
        &rung,
    );
    let fields: Vec<&str> = stream.trim().split(',').collect();
    let (w, h, rate) = (fields[0], fields[1], fields[2]);
    let stats = out.join("psnr.log");
    let graph = format!(
        "[0:v]settb=1,setpts=N[a];\
         [1:v]setpts=PTS-STARTPTS,fps=fps={rate}:round=near,scale={w}:{h}:flags=bicubic,format=yuv420p,settb=1,setpts=N[b];\
         [a][b]psnr=stats_file={}",
        stats.display()
    );
    let done = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&rung)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let text = std::fs::read_to_string(&stats).expect("psnr stats");
    text.lines()
        .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("psnr_avg:")))
        .map(|v| if v == "inf" { f64::INFINITY } else { v.parse().expect("a PSNR") })
        .fold(f64::INFINITY, f64::min)
}

/// A preset file: `small`'s ladder with GOPs of 1 s, segments of 2 s and one segment per
/// chunk, so a few seconds of recording make several chunks, each seeking on its own.
pub fn short_chunks_preset() -> PathBuf {
    let path = super::media_dir().join("short-chunks.toml");
    let _making = super::making();
    if !path.exists() {
        let text = std::fs::read_to_string(super::repo("presets/small.toml")).expect("the small preset");
        let text = text
            .replace("name = \"small\"", "name = \"short-chunks\"")
            .replace("gop_seconds = 2", "gop_seconds = 1")
            .replace("segment_seconds = 6", "segment_seconds = 2")
            .replace("chunk_segments = 5", "chunk_segments = 1");
        std::fs::write(&path, text).expect("writable");
    }
    path
}

/// `init.mp4` and every segment of a track folder (`v0`, `a0`), joined into one file.
pub fn whole_track(out: &Path, dir: &str) -> PathBuf {
    let text = std::fs::read_to_string(out.join(dir).join("index.m3u8")).expect("a media playlist");
    let list = playlist::parse_media(&text).expect("a media playlist");
    let uris: Vec<&str> = list.segments.iter().map(|s| s.uri.as_str()).collect();
    joined(&out.join(dir), &uris, "whole")
}

/// The four-letter types of a file's top-level ISO boxes, in order.
pub fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as usize;
        boxes.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        assert!(size >= 8, "a box of {size} bytes at {at}");
        at += size;
    }
    boxes
}
