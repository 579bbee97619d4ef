//! Subtitles: the recording's text subtitle streams (mov_text in MP4, SubRip and ASS in
//! Matroska) and sidecar files (`--subtitles LANG=PATH`) become WebVTT renditions: an HLS
//! `SUBTITLES` group of segmented WebVTT on the video's grid, and a DASH text
//! AdaptationSet per language. Judged on the outputs: the playlists parsed back, the cues
//! of the segments put back together and compared with the source's, the whole files read
//! by ffmpeg, and the timestamp map checked against the video's first frame as ffprobe
//! reads it.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::playlist;

/// A cue as the test reads it back: times in ms, text lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cue {
    start: i64,
    end: i64,
    text: String,
}

fn cue(start: i64, end: i64, text: &str) -> Cue {
    Cue { start, end, text: text.into() }
}

/// The English cues: one across the 6 s segment edge, one on two lines.
fn english() -> Vec<Cue> {
    vec![
        cue(1000, 2500, "Hello, and <i>welcome</i>."),
        cue(5200, 7400, "Across the edge"),
        cue(9000, 10_500, "Line one\nLine two"),
    ]
}

fn german() -> Vec<Cue> {
    vec![cue(1500, 3000, "Hallo und willkommen."), cue(11_000, 12_000, "Tschüss")]
}

fn srt_time(ms: i64) -> String {
    format!("{:02}:{:02}:{:02},{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn srt(cues: &[Cue]) -> String {
    cues.iter()
        .enumerate()
        .map(|(i, c)| format!("{}\n{} --> {}\n{}\n", i + 1, srt_time(c.start), srt_time(c.end), c.text))
        .collect::<Vec<_>>()
        .join("\n")
}

fn vtt(cues: &[Cue]) -> String {
    let body: String = cues
        .iter()
        .map(|c| {
            format!("\n{} --> {}\n{}\n", srt_time(c.start).replace(',', "."), srt_time(c.end).replace(',', "."), c.text)
        })
        .collect();
    format!("WEBVTT\n{body}")
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = common::media_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A 13 s 320x240 test pattern with a tone.
fn video() -> PathBuf {
    common::pattern("talk.mp4", "320x240", "30", "13", &[])
}

/// `video()` with subtitle tracks from the SRT files, encoded with `codec` into `name`.
fn with_subtitles(name: &str, codec: &str, tracks: &[(&str, &[Cue], &str)]) -> PathBuf {
    let mut args: Vec<String> = vec!["-i".into(), video().display().to_string()];
    for (k, (language, cues, _)) in tracks.iter().enumerate() {
        args.extend(["-i".into(), write(&format!("{name}.{k}.{language}.srt"), &srt(cues)).display().to_string()]);
    }
    args.extend(["-map".into(), "0".into()]);
    for k in 0..tracks.len() {
        args.extend(["-map".into(), (k + 1).to_string()]);
    }
    args.extend(["-c:v".into(), "copy".into(), "-c:a".into(), "copy".into()]);
    for (k, (language, _, track_codec)) in tracks.iter().enumerate() {
        let c = if track_codec.is_empty() { codec } else { track_codec };
        args.extend([format!("-c:s:{k}"), c.into(), format!("-metadata:s:s:{k}"), format!("language={language}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::synth(name, &args)
}

fn run(input: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let args = ["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"];
    let (code, _, stderr) = common::run(&[&args[..], &["--progress", "off", "--log-format", "text"], extra].concat());
    (code, stderr)
}

/// `hh:mm:ss.mmm` or `mm:ss.mmm` in ms.
fn vtt_time(s: &str) -> i64 {
    let (clock, ms) = s.split_once('.').unwrap();
    let parts: Vec<i64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    let seconds = parts.iter().fold(0, |acc, p| acc * 60 + p);
    seconds * 1000 + ms.parse::<i64>().unwrap()
}

/// The cues of a WebVTT file and its `X-TIMESTAMP-MAP` MPEGTS value, if any.
fn read_vtt(text: &str) -> (Vec<Cue>, Option<u64>) {
    assert!(text.starts_with("WEBVTT"), "{text}");
    let map = text.lines().find_map(|l| l.strip_prefix("X-TIMESTAMP-MAP=")).map(|m| {
        let mpegts = m.split(',').find_map(|p| p.strip_prefix("MPEGTS:")).unwrap();
        assert!(m.contains("LOCAL:00:00:00.000"), "{m}");
        mpegts.parse().unwrap()
    });
    let mut cues = Vec::new();
    for block in text.split("\n\n").skip(1) {
        let mut lines = block.lines();
        let Some(timing) = lines.next() else { continue };
        let (start, end) = timing.split_once(" --> ").unwrap();
        let text = lines.collect::<Vec<_>>().join("\n");
        cues.push(Cue { start: vtt_time(start), end: vtt_time(end.split(' ').next().unwrap()), text });
    }
    (cues, map)
}

/// A subtitle rendition read back through its playlist: the segments' cues put back
/// together (a cue repeated across an edge counted once), each segment's MPEGTS, and the
/// playlist.
fn reassemble(out: &Path, dir: &str) -> (Vec<Cue>, Vec<u64>, playlist::MediaPlaylist) {
    let list = playlist::parse_media(&std::fs::read_to_string(out.join(dir).join("index.m3u8")).unwrap()).unwrap();
    let (mut cues, mut maps) = (Vec::new(), Vec::new());
    for s in &list.segments {
        assert!(s.uri.ends_with(".vtt"), "{}", s.uri);
        let (segment_cues, map) = read_vtt(&std::fs::read_to_string(out.join(dir).join(&s.uri)).unwrap());
        maps.push(map.expect("every HLS WebVTT segment has an X-TIMESTAMP-MAP"));
        for c in segment_cues {
            if !cues.contains(&c) {
                cues.push(c);
            }
        }
    }
    (cues, maps, list)
}

/// Each cue's text is the source's, and its times are the source's within a frame.
fn assert_cues_match(got: &[Cue], want: &[Cue]) {
    assert_eq!(got.len(), want.len(), "{got:#?}\nwanted {want:#?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.text, w.text);
        assert!((g.start - w.start).abs() <= 34 && (g.end - w.end).abs() <= 34, "{g:?} is not {w:?} within a frame");
    }
}

/// The first video frame's presentation time, as ffprobe reads the joined rung.
fn first_frame_seconds(out: &Path) -> f64 {
    let whole = common::media_check::whole_track(out, "v0");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-read_intervals", "%+#1"])
        .args(["-of", "csv=p=0"])
        .arg(&whole)
        .output()
        .unwrap();
    String::from_utf8_lossy(&probe.stdout).lines().next().unwrap().trim().trim_end_matches(',').parse().unwrap()
}

/// The cues of a whole WebVTT file as ffmpeg reads it (converted to SubRip).
fn ffmpeg_cues(path: &Path) -> Vec<Cue> {
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args(["-f", "srt", "-"]).output().unwrap();
    assert!(out.status.success(), "ffmpeg cannot read {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap().replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines = b.lines().skip(1);
            let (start, end) = lines.next().unwrap().split_once(" --> ").unwrap();
            let text = lines.collect::<Vec<_>>().join("\n");
            Cue { start: vtt_time(&start.replace(',', ".")), end: vtt_time(&end.replace(',', ".")), text }
        })
        .collect()
}

/// The subtitle renditions of the master, as hls.js reads them: `(NAME, LANGUAGE, URI)`,
/// every variant naming their group.
fn master_subtitles(out: &Path) -> Vec<(String, String, String)> {
    let master = playlist::parse_master(&std::fs::read_to_string(out.join("master.m3u8")).unwrap()).unwrap();
    assert!(master.other_tags.is_empty(), "{:?}", master.other_tags);
    let subs: Vec<_> = master.media.iter().filter(|m| m.req("TYPE") == "SUBTITLES").collect();
    for m in &subs {
        assert_eq!((m.req("GROUP-ID"), m.req("DEFAULT"), m.req("AUTOSELECT")), ("subs", "NO", "YES"));
    }
    assert!(!master.variants.is_empty());
    let group = (!subs.is_empty()).then_some("subs");
    for v in &master.variants {
        assert_eq!(v.attributes.get("SUBTITLES"), group, "{:?}", v.attributes);
    }
    subs.iter().map(|m| (m.req("NAME").to_owned(), m.req("LANGUAGE").to_owned(), m.req("URI").to_owned())).collect()
}

/// Every subtitle rendition on the video's grid: as many segments, the same durations and
/// target duration; and each segment mapping its cues to the video's first frame.
fn assert_on_the_grid(out: &Path, dir: &str) -> Vec<Cue> {
    let video = playlist::parse_media(&std::fs::read_to_string(out.join("v0/index.m3u8")).unwrap()).unwrap();
    let (cues, maps, list) = reassemble(out, dir);
    assert_eq!(list.target_duration, video.target_duration);
    assert_eq!(list.playlist_type.as_deref(), Some("VOD"));
    assert!(list.end_list && list.map_uri.is_none());
    let durations =
        |l: &playlist::MediaPlaylist| l.segments.iter().map(|s| s.duration_text.clone()).collect::<Vec<_>>();
    assert_eq!(durations(&list), durations(&video));
    let first = first_frame_seconds(out);
    for m in maps {
        assert!((m as f64 / 90_000.0 - first).abs() < 0.001, "MPEGTS {m} is not the first frame's time {first} s");
    }
    cues
}

#[test]
fn mov_text_tracks_become_webvtt_renditions_in_their_languages() {
    let input = with_subtitles("mov-text.mp4", "mov_text", &[("eng", &english(), ""), ("ger", &german(), "")]);
    let probe = common::probe_json(&input);
    let tracks = probe["subtitle_tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    assert!(tracks.iter().all(|t| t["codec"] == "mov_text" && t["text"] == true), "{tracks:?}");
    let (_, text, _) = common::run(&["probe", input.to_str().unwrap()]);
    assert!(text.contains("subtitles   #2 mov_text, language \"eng\""), "{text}");
    let (_, plan, _) = common::run(&["plan", input.to_str().unwrap(), "--preset", "small"]);
    assert!(plan.contains("WebVTT from stream #3 (mov_text)"), "{plan}");

    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&input, out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let subs = master_subtitles(out.path());
    let expected = [("English", "en", "s0/index.m3u8"), ("German", "de", "s1/index.m3u8")];
    assert_eq!(subs.iter().map(|(n, l, u)| (n.as_str(), l.as_str(), u.as_str())).collect::<Vec<_>>(), expected);

    assert_cues_match(&assert_on_the_grid(out.path(), "s0"), &english());
    assert_cues_match(&assert_on_the_grid(out.path(), "s1"), &german());
    // The cue across the 6 s edge is in both segments.
    let (first, _) = read_vtt(&std::fs::read_to_string(out.path().join("s0/seg_0.vtt")).unwrap());
    let (second, _) = read_vtt(&std::fs::read_to_string(out.path().join("s0/seg_1.vtt")).unwrap());
    assert!(first.iter().chain(&second).filter(|c| c.text == "Across the edge").count() == 2);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let reported = report["subtitles"].as_array().unwrap();
    assert_eq!(reported.len(), 2);
    assert_eq!((reported[0]["cues"].as_u64(), reported[0]["source"]["kind"].as_str()), (Some(3), Some("embedded")));
}

#[test]
fn subrip_and_ass_in_matroska_become_webvtt_without_markup() {
    let french = vec![cue(2000, 4000, "Bonjour"), cue(8000, 9000, "Au revoir")];
    let input = with_subtitles("subrip.mkv", "srt", &[("eng", &english(), ""), ("fre", &french, "ass")]);
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&input, out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let subs = master_subtitles(out.path());
    assert_eq!(subs.iter().map(|(_, l, _)| l.as_str()).collect::<Vec<_>>(), ["en", "fr"]);
    assert_cues_match(&assert_on_the_grid(out.path(), "s0"), &english());
    assert_cues_match(&assert_on_the_grid(out.path(), "s1"), &french);
}

#[test]
fn sidecars_become_renditions_in_hls_and_dash() {
    // A cue after the recording's end (13 s) is left out, with a warning.
    let en = write("talk.en.vtt", &vtt(&[english(), vec![cue(20_000, 21_000, "After the end")]].concat()));
    let de = write("talk.de.srt", &srt(&german()));
    let out = tempfile::tempdir().unwrap();
    let en_flag = format!("en={}", en.display());
    let de_flag = format!("de={}", de.display());
    let (code, stderr) = run(&video(), out.path(), &["--subtitles", &en_flag, "--subtitles", &de_flag]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("subtitle cues outside the recording are left out"), "{stderr}");
    let subs = master_subtitles(out.path());
    assert_eq!(
        subs.iter().map(|(n, l, _)| (n.as_str(), l.as_str())).collect::<Vec<_>>(),
        [("English", "en"), ("German", "de")]
    );
    assert_cues_match(&assert_on_the_grid(out.path(), "s0"), &english());
    assert_cues_match(&assert_on_the_grid(out.path(), "s1"), &german());

    let mpd = std::fs::read_to_string(out.path().join("manifest.mpd")).unwrap();
    let doc = roxmltree::Document::parse(&mpd).unwrap();
    let text_sets: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("AdaptationSet") && n.attribute("contentType") == Some("text"))
        .collect();
    let langs: Vec<_> = text_sets.iter().map(|n| n.attribute("lang").unwrap()).collect();
    assert_eq!(langs, ["en", "de"]);
    for (set, want) in text_sets.iter().zip([english(), german()]) {
        assert_eq!(set.attribute("mimeType"), Some("text/vtt"));
        let role = set.children().find(|n| n.has_tag_name("Role")).unwrap();
        assert_eq!(role.attribute("value"), Some("subtitle"));
        let base = set.descendants().find(|n| n.has_tag_name("BaseURL")).unwrap().text().unwrap();
        assert_cues_match(&ffmpeg_cues(&out.path().join(base)), &want);
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let sources: Vec<_> = report["subtitles"].as_array().unwrap().iter().map(|s| s["source"]["kind"].clone()).collect();
    assert_eq!(sources, ["sidecar", "sidecar"]);
}

#[test]
fn a_broken_sidecar_line_stops_the_run_with_exit_2_naming_the_line() {
    let broken =
        write("broken.srt", "1\n00:00:01,000 --> 00:00:02,000\nFine\n\n2\n00:00:03,000 => 00:00:04,000\nBroken\n");
    let out = tempfile::tempdir().unwrap();
    let flag = format!("en={}", broken.display());
    let (code, stderr) = run(&video(), out.path(), &["--subtitles", &flag]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("broken.srt:6:"), "{stderr}");
    assert!(stderr.contains("00:00:03,000 => 00:00:04,000"), "{stderr}");
    assert!(!out.path().join("v0").exists(), "nothing is encoded");

    let (code, _, stderr) = common::run(&["plan", video().to_str().unwrap(), "--subtitles", &flag]);
    assert_eq!((code, stderr.contains("broken.srt:6:")), (2, true), "{stderr}");
}

#[test]
fn a_bad_subtitle_flag_is_a_usage_error() {
    let good = write("good.vtt", &vtt(&english()));
    for flag in [format!("english={}", good.display()), "en=/no/such/file.srt".to_owned(), "en".to_owned()] {
        let (code, _, stderr) = common::run(&["plan", video().to_str().unwrap(), "--subtitles", &flag]);
        assert_eq!(code, 2, "{flag}: {stderr}");
    }
    let (code, stdout, stderr) =
        common::run(&["plan", video().to_str().unwrap(), "--subtitles", &format!("pt-BR={}", good.display())]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("s0") && stdout.contains("pt-BR"), "{stdout}");
}

#[test]
fn adding_a_sidecar_to_a_finished_ladder_reassembles_it_without_encoding_again() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&video(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(master_subtitles(out.path()).is_empty());

    let en = write("later.en.srt", &srt(&english()));
    let input = video();
    let args = ["run", input.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--preset", "small"];
    let flag = format!("en={}", en.display());
    let (code, stdout, stderr) =
        common::run(&[&args[..], &["--progress", "off", "--json", "--subtitles", &flag]].concat());
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["chunks_encoded"].as_array().unwrap().len(), 0, "{summary}");
    assert!(!summary["chunks_reused"].as_array().unwrap().is_empty(), "{summary}");
    assert_eq!(master_subtitles(out.path()).len(), 1);
    assert_cues_match(&assert_on_the_grid(out.path(), "s0"), &english());
}

#[test]
fn a_stream_that_cannot_be_decoded_is_left_out_with_a_warning_and_the_rest_published() {
    // A SubRip file saved in Latin-1, copied into Matroska as it is: libav refuses its text.
    let latin1 = common::media_dir().join("latin1.de.srt");
    std::fs::write(&latin1, b"1\n00:00:01,000 --> 00:00:02,000\nGr\xfc\xdfe aus K\xf6ln\n").unwrap();
    let en = write("good.en.srt", &srt(&english()));
    let input = common::synth(
        "latin1.mkv",
        &[
            "-i",
            video().to_str().unwrap(),
            "-i",
            en.to_str().unwrap(),
            "-i",
            latin1.to_str().unwrap(),
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c",
            "copy",
            "-metadata:s:s:0",
            "language=eng",
            "-metadata:s:s:1",
            "language=ger",
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&input, out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("a subtitle stream is left out") && stderr.contains("UTF-8"), "{stderr}");
    let subs = master_subtitles(out.path());
    assert_eq!(subs.iter().map(|(_, l, _)| l.as_str()).collect::<Vec<_>>(), ["en"]);
    assert_cues_match(&assert_on_the_grid(out.path(), "s0"), &english());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let left_out = report["subtitles_left_out"].as_array().unwrap();
    assert_eq!((left_out.len(), left_out[0]["language"].as_str()), (1, Some("de")), "{left_out:?}");
}
