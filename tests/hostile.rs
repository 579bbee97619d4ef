//! Broken and hostile files: whatever the bytes, `ladder run` ends within its deadline,
//! without a panic or a crash, either with exit 3 and one clear sentence, or with exit 0
//! and a ladder that plays (saying what it concealed). Each case prints its exit code and
//! time.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]
#![allow(clippy::print_stderr, reason = "each case prints its exit code and time (shown with --nocapture)")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::media_check::{self, Ended, H264_AAC, flashes_and_beeps};

/// Longest an error line may be: a sentence, not a dump.
const SENTENCE: usize = 600;

/// Runs `ladder run` on `input` and judges how it ended; returns the exit code.
fn judge(case: &str, input: &Path) -> Ended {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off", "--preset"];
    let preset = media_check::short_chunks_preset();
    let ended = media_check::run_within(&[&args[..], &[preset.to_str().unwrap()]].concat(), Duration::from_secs(120));
    let said = ended.errors().first().map_or_else(
        || ended.stderr.lines().filter(|l| l.contains("concealed")).collect::<Vec<_>>().join(" "),
        |e| e.to_string(),
    );
    eprintln!("case {case:<40} exit {} in {:.2} s  {said}", ended.code, ended.seconds);
    match ended.code {
        3 => {
            let errors = ended.errors();
            assert_eq!(errors.len(), 1, "{case}: one sentence: {}", ended.stderr);
            let line = errors[0];
            assert!(line.len() < SENTENCE, "{case}: {} bytes: {line}", line.len());
            let causes: Vec<&str> = line.split(": ").collect();
            for (i, c) in causes.iter().enumerate() {
                assert!(!causes[i + 1..].contains(c), "{case}: {c:?} repeated in {line}");
            }
            assert!(!out.join("master.m3u8").exists(), "{case}: published after failing");
        }
        0 => {
            let has_audio = out.join("a0").exists();
            media_check::check_ladder(&out, has_audio);
        }
        code => panic!("{case}: exit {code}, not 0 or 3: {}", ended.stderr),
    }
    ended
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = common::media_dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A deterministic byte generator (xorshift), so every run tries the same bytes.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Offsets of the top-level boxes of an MP4: (type, start, size).
fn boxes(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        out.push((String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned(), pos, size));
        pos += size.max(8);
    }
    out
}

/// Where the box `tag` first occurs inside the `moov` of an MP4, pointing at its size
/// field (the `ftyp` before it names brands like `avc1` too).
fn find_box(bytes: &[u8], tag: &[u8; 4]) -> usize {
    let moov = bytes.windows(4).position(|w| w == b"moov").expect("a moov box");
    let at = bytes[moov..].windows(4).position(|w| w == tag);
    moov + at.unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(tag))) - 4
}

fn source(name: &str, flags: &str) -> Vec<u8> {
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-movflags", flags]);
    std::fs::read(flashes_and_beeps(name, "320x240", "25", "4", &codecs)).unwrap()
}

#[test]
fn nothing_text_and_noise_are_refused() {
    assert_eq!(judge("zero bytes", &write("zero.mp4", b"")).code, 3);
    let text = "Agenda: 1. budget 2. hiring\n".repeat(2000);
    for name in ["notes.mp4", "notes.txt", "notes"] {
        assert_eq!(judge(&format!("text named {name}"), &write(name, text.as_bytes())).code, 3);
    }
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    for (n, size) in [16, 4096, 200_000, 2_000_000].into_iter().enumerate() {
        let name = format!("noise-{n}.mp4");
        assert_eq!(judge(&format!("{size} random bytes"), &write(&name, &noise.bytes(size))).code, 3);
    }
    // Random bytes behind a real MP4 or MPEG-TS start.
    let mp4 = source("noise-head.mp4", "+faststart");
    let mut head = mp4[..64].to_vec();
    head.extend(noise.bytes(100_000));
    judge("an MP4 header, then noise", &write("noise-after-ftyp.mp4", &head));
    let ts = std::fs::read(flashes_and_beeps("noise-head.ts", "320x240", "25", "2", H264_AAC)).unwrap();
    let mut head = ts[..188 * 40].to_vec();
    head.extend(noise.bytes(100_000));
    judge("MPEG-TS packets, then noise", &write("noise-after-ts.ts", &head));
}

#[test]
fn mp4_truncated_anywhere_is_refused_as_truncated() {
    for (flags, label) in [("+faststart", "moov-first"), ("+default_base_moof", "moov-last")] {
        let whole = source(&format!("whole-{label}.mp4"), flags);
        let b = boxes(&whole);
        let moov = b.iter().find(|x| x.0 == "moov").unwrap();
        let mut cuts: Vec<usize> = vec![7, 20, moov.1 + 4, moov.1 + 12, moov.1 + moov.2 / 2, moov.1 + moov.2 - 1];
        cuts.extend((1..8).map(|k| whole.len() * k / 8));
        cuts.push(whole.len() - 1);
        for cut in cuts {
            let name = format!("cut-{label}-{cut}.mp4");
            let ended = judge(&format!("{label} MP4 cut at {cut} of {}", whole.len()), &write(&name, &whole[..cut]));
            assert_eq!(ended.code, 3, "{name}");
            assert!(ended.stderr.contains("truncated"), "{name}: {}", ended.stderr);
        }
    }
}

#[test]
fn mpegts_and_matroska_truncated_anywhere_keep_what_is_there() {
    // Stream containers have no index to lose: what was written before the cut plays.
    let ts = std::fs::read(flashes_and_beeps("whole.ts", "320x240", "25", "4", H264_AAC)).unwrap();
    let mkv = std::fs::read(flashes_and_beeps("whole.mkv", "320x240", "25", "4", H264_AAC)).unwrap();
    for (label, whole) in [("ts", &ts), ("mkv", &mkv)] {
        for k in [1, 3, 5, 7] {
            let cut = whole.len() * k / 8 + 3;
            let name = format!("cut-{k}.{label}");
            judge(&format!("{label} cut at {cut} of {}", whole.len()), &write(&name, &whole[..cut]));
        }
        judge(&format!("{label} cut inside its header"), &write(&format!("cut-head.{label}"), &whole[..100]));
    }
}

#[test]
fn bit_flips_in_the_middle_are_concealed_or_refused() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let files = [
        ("mp4", source("flip-src.mp4", "+faststart")),
        ("ts", std::fs::read(flashes_and_beeps("flip-src.ts", "320x240", "25", "4", H264_AAC)).unwrap()),
        (
            "webm",
            std::fs::read(flashes_and_beeps(
                "flip-src.webm",
                "320x240",
                "25",
                "4",
                &["-c:v", "libvpx", "-b:v", "300k", "-c:a", "libopus"],
            ))
            .unwrap(),
        ),
    ];
    for (ext, whole) in &files {
        for (round, flips) in [(0, 1), (1, 10), (2, 300)] {
            let mut bytes = whole.clone();
            let (from, span) = (bytes.len() / 3, bytes.len() / 3);
            for _ in 0..flips {
                let at = from + (noise.next() as usize) % span;
                bytes[at] ^= 1 << (noise.next() % 8);
            }
            let name = format!("flipped-{round}.{ext}");
            judge(&format!("{ext} with {flips} bits flipped mid-file"), &write(&name, &bytes));
        }
    }
}

#[test]
fn a_single_frame_makes_a_one_frame_ladder() {
    for (name, extra) in [("one-frame.mp4", "mp4"), ("one-frame.ts", "mpegts")] {
        let input = common::synth(
            name,
            &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "1", "-c:v", "libx264", "-f", extra],
        );
        let ended = judge(&format!("a single frame ({extra})"), &input);
        assert_eq!(ended.code, 0, "{}", ended.stderr);
    }
}

#[test]
fn pictures_above_the_limits_are_refused_whatever_the_header_says() {
    let wide = common::synth(
        "too-wide.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=8208x64:rate=1",
            "-frames:v",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let ended = judge("8208x64, above 8192 per side", &wide);
    assert_eq!(ended.code, 3);
    assert!(ended.stderr.contains("above the limit"), "{}", ended.stderr);
    // The container says 320x240; the stream inside is 8208x64.
    let mut bytes = std::fs::read(&wide).unwrap();
    for tag in [b"avc1", b"tkhd"] {
        let at = find_box(&bytes, tag);
        let (w, h) = match tag {
            b"avc1" => (at + 32, at + 34),
            _ => (at + 84, at + 88),
        };
        if tag == b"avc1" {
            bytes[w..w + 2].copy_from_slice(&320u16.to_be_bytes());
            bytes[h..h + 2].copy_from_slice(&240u16.to_be_bytes());
        } else {
            bytes[w..w + 4].copy_from_slice(&(320u32 << 16).to_be_bytes());
            bytes[h..h + 4].copy_from_slice(&(240u32 << 16).to_be_bytes());
        }
    }
    let ended = judge("8208x64 declared 320x240", &write("lying-small.mp4", &bytes));
    assert_eq!(ended.code, 3);
}

#[test]
fn sizes_and_durations_the_header_lies_about() {
    let whole = source("lies-src.mp4", "+faststart");
    let patch = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = whole.clone();
        edit(&mut bytes);
        judge(name, &write(&format!("{}.mp4", name.replace(' ', "-")), &bytes))
    };
    let be32 = |bytes: &mut Vec<u8>, at: usize, v: u32| bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
    // A movie and tracks that claim to last 2^32 - 1 ticks (3.9 days of the video's clock):
    // the sample tables say 4 s.
    let ended = patch("declared durations of days", &|b| {
        for (tag, at_duration) in [(b"mvhd", 24), (b"mdhd", 24), (b"tkhd", 28)] {
            let mut from = 0;
            while let Some(p) = b[from..].windows(4).position(|w| w == tag) {
                let at = from + p - 4;
                be32(b, at + at_duration, u32::MAX);
                from = at + 8;
            }
        }
    });
    assert_eq!(ended.code, 0, "{}", ended.stderr);
    // Every sample claims to be 1 GiB (the sample size table lies).
    patch("samples of 1 GiB", &|b| {
        let at = find_box(b, b"stsz");
        be32(b, at + 12, 1 << 30);
    });
    // A sample table with 2^31 entries in a box of a few bytes.
    patch("two billion samples", &|b| {
        let at = find_box(b, b"stsz");
        be32(b, at + 16, 1 << 31);
    });
    // One frame lasts a day: the time-to-sample table lies.
    patch("a frame lasting a day", &|b| {
        let at = find_box(b, b"stts");
        be32(b, at + 20, 86_400 * 12_800);
    });
    // 255 audio channels at 0 Hz.
    patch("255 channels at 0 Hz", &|b| {
        let at = find_box(b, b"mp4a");
        b[at + 24..at + 26].copy_from_slice(&255u16.to_be_bytes());
        be32(b, at + 32, 0);
    });
    // A box that claims to run past the end of the file.
    patch("a box larger than the file", &|b| {
        let at = find_box(b, b"trak");
        be32(b, at, 0x7fff_fff0);
    });
}

#[test]
fn a_preset_with_a_two_megabyte_value_is_not_echoed() {
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let huge = "x".repeat(2 << 20);
    let path = write("huge.toml", text.replace("name = \"small\"", &format!("name = \"{huge}\"")).as_bytes());
    let input = flashes_and_beeps("for-huge-preset.mp4", "320x240", "25", "1", H264_AAC);
    let ended = media_check::run_within(
        &["run", input.to_str().unwrap(), "--out", "unused", "--preset", path.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(ended.code, 2, "{}", &ended.stderr[..ended.stderr.len().min(500)]);
    assert!(ended.stderr.len() < 4096, "{} bytes of error", ended.stderr.len());
    assert!(ended.stderr.contains("characters left out"), "{}", ended.stderr);
}
