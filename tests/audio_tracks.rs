//! Every audio track of an event becomes a rendition: interpreters' channels in their
//! languages, mono kept mono, 5.1 downmixed. Judged on the outputs: the master and the MPD
//! parsed back, each rendition decoded by ffmpeg and its tone's frequency measured.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::media_check::{top_level_boxes, whole_track};
use common::playlist;

/// A 4 s Matroska recording (as OBS writes them) with a floor track in English (440 Hz)
/// and an interpreter's channel in German (880 Hz) with a title. (ffmpeg's MP4 muxer does
/// not keep track titles; Matroska does.)
fn two_languages() -> PathBuf {
    let tags = ["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=ger"];
    let title = ["-metadata:s:a:1", "title=Deutsch (Dolmetscher)"];
    common::two_tones("two-languages.mkv", "320x240", "4", &[&["-c:a", "aac"][..], &tags, &title].concat())
}

fn run(input: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let args = ["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--preset", "small"];
    let (code, _, stderr) = common::run(&[&args[..], &["--progress", "off", "--log-format", "text"], extra].concat());
    (code, stderr)
}

/// The rendition's samples, decoded by ffmpeg to 48 kHz float, and its channel count.
fn decode(out: &Path, dir: &str) -> (Vec<f32>, u32) {
    let whole = whole_track(out, dir);
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels", "-of", "csv=p=0"])
        .arg(&whole)
        .output()
        .unwrap();
    let channels = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&whole)
        .args(["-ac", "1", "-f", "f32le", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let samples = decoded.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (samples, channels)
}

/// The tone's frequency: rising zero crossings a second, over the middle of the sound
/// (away from the encoder's priming and the end).
fn frequency(samples: &[f32]) -> f64 {
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let rising = middle.windows(2).filter(|w| w[0] <= 0.0 && w[1] > 0.0).count();
    rising as f64 * 48_000.0 / middle.len() as f64
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[test]
fn every_audio_track_becomes_a_rendition_in_its_language() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&two_languages(), out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");

    let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    let master = playlist::parse_master(&master).unwrap();
    let media: Vec<_> = master.media.iter().map(|m| (m.req("LANGUAGE"), m.req("NAME"), m.req("DEFAULT"))).collect();
    assert_eq!(media, [("en", "English", "YES"), ("de", "Deutsch (Dolmetscher)", "NO")]);
    for m in &master.media {
        assert_eq!(
            (m.req("TYPE"), m.req("GROUP-ID"), m.req("AUTOSELECT"), m.req("CHANNELS")),
            ("AUDIO", "audio", "YES", "1")
        );
    }
    assert!(master.variants.iter().all(|v| v.attributes.req("AUDIO") == "audio"));

    for (dir, hz) in [("a0", 440.0), ("a1", 880.0)] {
        let (samples, channels) = decode(out.path(), dir);
        assert_eq!(channels, 1, "{dir}: lavfi's sine is mono, and stays so");
        let measured = frequency(&samples);
        assert!((measured - hz).abs() < 5.0, "{dir} carries {measured:.1} Hz, not {hz} Hz");
        let seconds = samples.len() as f64 / 48_000.0;
        assert!((seconds - 4.0).abs() < 0.05, "{dir} lasts {seconds} s");
    }

    let mpd_text = std::fs::read_to_string(out.path().join("manifest.mpd")).unwrap();
    let mpd = roxmltree::Document::parse(&mpd_text).unwrap();
    let sets: Vec<(Option<&str>, Option<&str>)> = mpd
        .descendants()
        .filter(|n| n.has_tag_name("AdaptationSet") && n.attribute("contentType") == Some("audio"))
        .map(|set| {
            let role = set.children().find(|c| c.has_tag_name("Role")).and_then(|r| r.attribute("value"));
            (set.attribute("lang"), role)
        })
        .collect();
    assert_eq!(sets, [(Some("en"), Some("main")), (Some("de"), Some("alternate"))]);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let audio = report["audio"].as_array().unwrap();
    assert_eq!(audio.len(), 2);
    assert_eq!((audio[1]["dir"].as_str(), audio[1]["language"].as_str()), (Some("a1"), Some("de")));
}

#[test]
fn probe_and_plan_show_every_track() {
    let input = two_languages();
    let (code, stdout, stderr) = common::run(&["probe", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("language \"ger\"") && stdout.contains("title \"Deutsch (Dolmetscher)\""), "{stdout}");
    let (code, stdout, stderr) = common::run(&["plan", input.to_str().unwrap(), "--preset", "small"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("a0") && stdout.contains("English") && stdout.contains("default"), "{stdout}");
    assert!(stdout.contains("a1") && stdout.contains("Deutsch (Dolmetscher)"), "{stdout}");
}

#[test]
fn a_selection_keeps_its_tracks_and_names_the_others() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&two_languages(), out.path(), &["--audio", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("an audio track is left out") && stderr.contains("not selected"), "{stderr}");
    let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    let master = playlist::parse_master(&master).unwrap();
    assert_eq!(master.media.len(), 1);
    assert_eq!((master.media[0].req("LANGUAGE"), master.media[0].req("DEFAULT")), ("de", "YES"));
    let measured = frequency(&decode(out.path(), "a0").0);
    assert!((measured - 880.0).abs() < 5.0, "a0 is the German track: {measured:.1} Hz");
    assert!(!out.path().join("a1").exists());
}

#[test]
fn a_track_the_recording_lacks_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&two_languages(), out.path(), &["--audio", "0,2"]);
    assert_eq!(code, 2, "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("audio track 2") && errors[0].contains("0-1"), "{stderr}");
    assert!(!out.path().join("master.m3u8").exists());
    let (code, _, stderr) = common::run(&["plan", two_languages().to_str().unwrap(), "--audio", "nope"]);
    assert_eq!(code, 2, "{stderr}");
}

/// The first channel of `file`'s first audio stream, decoded by ffmpeg at 48 kHz.
fn first_channel(file: &Path) -> Vec<f32> {
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-af", "pan=mono|c0=c0", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    decoded.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn level_db(samples: &[f32]) -> f64 {
    20.0 * rms(samples).log10()
}

#[test]
fn mono_stays_mono_and_surround_is_downmixed() {
    let picture = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"];
    let encode = ["-t", "3", "-c:v", "libx264", "-preset", "ultrafast"];
    let mono = common::synth(
        "mono.mkv",
        &[
            &picture[..],
            &["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-ac", "1"],
            &encode,
            &["-c:a", "libopus"],
        ]
        .concat(),
    );
    // 5.1 with the tone in the front pair and, quieter, in the centre.
    let surround = common::surround("surround.mp4", "FL=c0|FR=c0|FC=0.5*c0", "3");
    // What the ffmpeg CLI makes of it with -ac 2 into a float format, as for AAC (the same
    // libswresample matrix, unnormalised): the level to match.
    let reference = common::synth(
        "surround-downmix.wav",
        &["-i", surround.to_str().unwrap(), "-map", "0:a", "-ac", "2", "-c:a", "pcm_f32le"],
    );
    for (input, channels, expected) in [(&mono, "1", &mono), (&surround, "2", &reference)] {
        let out = tempfile::tempdir().unwrap();
        let (code, stderr) = run(input, out.path(), &[]);
        assert_eq!(code, 0, "{channels} ch: {stderr}");
        let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
        let master = playlist::parse_master(&master).unwrap();
        assert_eq!(master.media[0].req("CHANNELS"), channels);
        let (samples, decoded_channels) = decode(out.path(), "a0");
        assert_eq!(decoded_channels.to_string(), channels);
        assert!((frequency(&samples) - 440.0).abs() < 5.0, "{channels} ch: {:.1} Hz", frequency(&samples));
        let (level, wanted) =
            (level_db(&first_channel(&whole_track(out.path(), "a0"))), level_db(&first_channel(expected)));
        assert!((level - wanted).abs() < 1.5, "{channels} ch: {level:.1} dBFS, ffmpeg's is {wanted:.1} dBFS");
    }
}

/// MPEG-TS (Restreamer, SRT gateways) is read through a re-based Matroska copy: every
/// track goes through it, in its language.
#[test]
fn a_transport_stream_keeps_every_track_through_its_copy() {
    let ts = common::synth("two-languages.ts", &["-i", two_languages().to_str().unwrap(), "-map", "0", "-c", "copy"]);
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&ts, out.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let master = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    let master = playlist::parse_master(&master).unwrap();
    let languages: Vec<&str> = master.media.iter().map(|m| m.req("LANGUAGE")).collect();
    assert_eq!(languages, ["en", "de"]);
    for (dir, hz) in [("a0", 440.0), ("a1", 880.0)] {
        let measured = frequency(&decode(out.path(), dir).0);
        assert!((measured - hz).abs() < 5.0, "{dir} carries {measured:.1} Hz, not {hz} Hz");
    }
}

/// The MD5 of every audio packet's bytes, as ffmpeg copies them.
fn packets_md5(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-c", "copy", "-f", "md5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_podcast_file_is_the_encoded_audio_in_one_progressive_file() {
    let input =
        common::with_tone("keynote.mp4", "testsrc2=size=320x240:rate=25", "5", &["-metadata", "title=Keynote 2026"]);
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let preset = common::media_dir().join("podcast.toml");
    std::fs::write(&preset, text.replacen("[audio]\n", "[audio]\npodcast = true\n", 1)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = ["run", input.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--preset"];
    let (code, _, stderr) = common::run(&[&args[..], &[preset.to_str().unwrap(), "--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");

    let m4a = out.path().join("download/audio.m4a");
    let bytes = std::fs::read(&m4a).unwrap();
    let boxes = top_level_boxes(&bytes);
    let (moov, mdat) = (boxes.iter().position(|b| b == "moov"), boxes.iter().position(|b| b == "mdat"));
    assert!(moov.is_some() && moov < mdat, "moov first (faststart): {boxes:?}");
    assert!(!boxes.iter().any(|b| b == "moof"), "progressive, not fragmented: {boxes:?}");

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration:format_tags=title:stream=codec_name", "-of", "json"])
        .arg(&m4a)
        .output()
        .unwrap();
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(probe["format"]["tags"]["title"], "Keynote 2026");
    assert_eq!(probe["streams"][0]["codec_name"], "aac");
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 5.0).abs() <= 0.05, "the podcast lasts {duration} s, the recording 5 s");
    assert_eq!(
        packets_md5(&m4a),
        packets_md5(&whole_track(out.path(), "a0")),
        "the same AAC packets: no second encode"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let podcast = &report["output"]["podcast"];
    assert_eq!(podcast["key"], "download/audio.m4a");
    assert_eq!(podcast["size_bytes"].as_u64(), Some(bytes.len() as u64));
}

/// A room without a camera, a phone dial-in, a podcast: an audio-only ladder, exit 0.
#[test]
fn an_audio_only_recording_becomes_an_audio_only_ladder() {
    let tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "7"];
    let m4a = common::synth("dial-in.m4a", &[&tone[..], &["-c:a", "aac", "-metadata:s:a:0", "language=eng"]].concat());
    let mp3 = common::synth("dial-in.mp3", &[&tone[..], &["-c:a", "libmp3lame", "-b:a", "96k"]].concat());
    for input in [&m4a, &mp3] {
        let out = tempfile::tempdir().unwrap();
        let (code, stderr) = run(input, out.path(), &[]);
        assert_eq!(code, 0, "{}: {stderr}", input.display());
        let text = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
        let master = playlist::parse_master(&text).unwrap();
        assert_eq!(master.variants.len(), 1, "{text}");
        let variant = &master.variants[0];
        assert_eq!(variant.uri, "a0/index.m3u8", "{text}");
        assert_eq!(variant.attributes.req("CODECS"), "mp4a.40.2");
        assert_eq!(variant.attributes.req("AUDIO"), "audio");
        assert!(variant.attributes.get("RESOLUTION").is_none() && master.iframe_streams.is_empty(), "{text}");
        assert_eq!(master.media.len(), 1);
        let media = playlist::parse_media(&std::fs::read_to_string(out.path().join("a0/index.m3u8")).unwrap()).unwrap();
        assert!((media.duration() - 7.0).abs() < 0.05, "{} s", media.duration());
        let (samples, _) = decode(out.path(), "a0");
        assert!((frequency(&samples) - 440.0).abs() < 5.0);
        let mpd = std::fs::read_to_string(out.path().join("manifest.mpd")).unwrap();
        let mpd = roxmltree::Document::parse(&mpd).unwrap();
        let kinds: Vec<&str> = mpd
            .descendants()
            .filter(|n| n.has_tag_name("AdaptationSet"))
            .filter_map(|n| n.attribute("contentType"))
            .collect();
        assert_eq!(kinds, ["audio"]);
        assert!(!out.path().join("v0").exists() && !out.path().join("thumbs").exists());
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(report["rungs"], serde_json::json!([]));
        assert_eq!(report["audio"].as_array().unwrap().len(), 1);
    }
}

/// The plan of `input` as JSON, with `extra` flags.
fn plan_json(input: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, stdout, stderr) = common::run(&[&["plan", input.to_str().unwrap(), "--json"], extra].concat());
    (code, serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null), stderr)
}

/// `(language, label, default)` of each planned rendition.
fn renditions(plan: &serde_json::Value) -> Vec<(String, String, bool)> {
    let audio = plan["audio"].as_array().unwrap();
    audio
        .iter()
        .map(|a| (a["language"].as_str().unwrap().into(), a["label"].as_str().unwrap().into(), a["default"] == true))
        .collect()
}

#[test]
fn the_preset_and_flags_name_the_tracks_and_choose_the_default() {
    let input = two_languages();
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let preset = common::media_dir().join("labels.toml");
    let labels = "default_language = \"de\"\n\n[audio.track.0]\ntitle = \"Floor\"\n\n[thumbnails]\n";
    std::fs::write(&preset, text.replacen("\n[thumbnails]\n", &format!("\n{labels}"), 1)).unwrap();
    let (code, plan, stderr) = plan_json(&input, &["--preset", preset.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let expected = [("en", "Floor", false), ("de", "Deutsch (Dolmetscher)", true)];
    assert_eq!(renditions(&plan), expected.map(|(l, n, d)| (l.to_owned(), n.to_owned(), d)));

    let flags = ["--audio-title", "1=Interpreter", "--audio-language", "0=fre", "--default-audio-language", "fr"];
    let (code, plan, stderr) = plan_json(&input, &flags);
    assert_eq!(code, 0, "{stderr}");
    let expected = [("fr", "French", true), ("de", "Interpreter", false)];
    assert_eq!(renditions(&plan), expected.map(|(l, n, d)| (l.to_owned(), n.to_owned(), d)));

    let (code, _, stderr) = plan_json(&input, &["--audio-language", "1=english"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("\"english\" is not a language tag"), "{stderr}");
    let bad = common::media_dir().join("bad-labels.toml");
    std::fs::write(
        &bad,
        text.replacen("\n[thumbnails]\n", "\n[audio.track.first]\ntitle = \"x\"\n\n[thumbnails]\n", 1),
    )
    .unwrap();
    let (code, _, stderr) = common::run(&["presets", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_surround_track_can_keep_a_5_1_rendition_in_a_group_of_its_own() {
    let surround = common::surround("surround-keep.mp4", "FL=c0|FR=c0|FC=0.5*c0|LFE=0.1*c0|BL=0.3*c0|BR=0.3*c0", "3");
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let preset = common::media_dir().join("surround.toml");
    std::fs::write(&preset, text.replacen("[audio]\n", "[audio]\nsurround = true\n", 1)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = ["run", surround.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--preset"];
    let (code, _, stderr) = common::run(&[&args[..], &[preset.to_str().unwrap(), "--progress", "off"]].concat());
    assert_eq!(code, 0, "{stderr}");

    let text = std::fs::read_to_string(out.path().join("master.m3u8")).unwrap();
    let master = playlist::parse_master(&text).unwrap();
    let media: Vec<_> = master.media.iter().map(|m| (m.req("GROUP-ID"), m.req("CHANNELS"), m.req("URI"))).collect();
    assert_eq!(media, [("audio", "2", "a0/index.m3u8"), ("audio-surround", "6", "a1/index.m3u8")], "{text}");
    assert!(master.media.iter().all(|m| m.req("DEFAULT") == "YES"), "each group has its default: {text}");
    let groups: Vec<&str> = master.variants.iter().map(|v| v.attributes.req("AUDIO")).collect();
    let rungs = master.iframe_streams.len();
    assert_eq!(groups.len(), 2 * rungs, "each rung once per group: {text}");
    assert!(groups.contains(&"audio") && groups.contains(&"audio-surround"));
    let (stereo, channels) = decode(out.path(), "a0");
    assert_eq!(channels, 2);
    let (five_one, channels) = decode(out.path(), "a1");
    assert_eq!(channels, 6);
    assert!((frequency(&stereo) - 440.0).abs() < 5.0 && (frequency(&five_one) - 440.0).abs() < 5.0);
}
