//! Recordings as real producers write them (LiveKit egress, OBS, RTMP and HLS recorders,
//! broadcast encoders, cameras), made here with the ffmpeg CLI: each must give a ladder
//! whose every segment decodes, with its picture and its sound in sync and nothing lost.
//!
//! The source flashes and beeps together at 0.5 s into every second; the checks count the
//! flashes and beeps in the output and match them within a frame (`common::media_check`).

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]
#![allow(clippy::print_stderr, reason = "each case prints its exit code and time (shown with --nocapture)")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::media_check::{self, H264_AAC, Ladder, flashes_and_beeps};

/// Runs `ladder run` with `preset` and checks the ladder it makes.
fn ladder_of(input: &Path, preset: &Path, audio: bool) -> (Ladder, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off"];
    let preset_args = ["--preset", preset.to_str().unwrap()];
    let ended = media_check::run_within(&[&args[..], &preset_args[..]].concat(), Duration::from_secs(180));
    assert_eq!(ended.code, 0, "{}: {}", input.display(), ended.stderr);
    eprintln!("{}: exit 0 in {:.1} s", input.file_name().unwrap().to_string_lossy(), ended.seconds);
    (media_check::check_ladder(&out, audio), out, dir)
}

fn short_chunks(input: &Path) -> (Ladder, PathBuf, tempfile::TempDir) {
    ladder_of(input, &media_check::short_chunks_preset(), true)
}

/// Every picture of the top rung is the source's at that time (seeks landed right).
fn assert_same_pictures(out: &Path, source: &Path) {
    let worst = media_check::worst_psnr(out, source);
    assert!(worst > 30.0, "a frame of the ladder is not the source's frame at its time: {worst:.1} dB");
}

/// The ladder of `input` (in short chunks) lasts `seconds`, with `events` flashes and as
/// many beeps in sync, and shows the source's pictures.
fn plays_in_sync(input: &Path, seconds: f64, events: usize) {
    let (ladder, out, _dir) = short_chunks(input);
    assert_seconds(&ladder, seconds);
    ladder.assert_in_sync(events, events);
    assert_same_pictures(&out, input);
}

fn assert_seconds(ladder: &Ladder, seconds: f64) {
    assert!(
        (ladder.seconds - seconds).abs() < 1.5 / ladder.fps,
        "the ladder lasts {} s, not {seconds}",
        ladder.seconds
    );
}

#[test]
fn webm_vp8_opus_as_livekit_egress_writes_it() {
    let input =
        flashes_and_beeps("egress.webm", "320x240", "30", "5", &["-c:v", "libvpx", "-b:v", "400k", "-c:a", "libopus"]);
    plays_in_sync(&input, 5.0, 5);
}

#[test]
fn mkv_vp9_opus_written_live_without_cues_or_duration() {
    // A recorder writing as it goes (to a pipe, or uploading while recording) cannot go back
    // to write the duration and the cues: the file has no index to seek chunks by.
    let input = flashes_and_beeps(
        "egress-live.mkv",
        "320x240",
        "30",
        "6",
        &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "60", "-c:a", "libopus", "-live", "1"],
    );
    let probe = common::probe_json(&input);
    assert!(probe["remux"].as_str().unwrap().contains("written live"), "{probe:#}");
    plays_in_sync(&input, 6.0, 6);
}

#[test]
fn mpegts_h264_aac_seeks_every_chunk_to_a_key_frame() {
    // MPEG-TS has no index: libav's seek lands on any packet, mid-GOP. 2 s GOPs, 2 s chunks
    // that do not start on them.
    let codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "75", "-c:a", "aac", "-b:a", "64k"];
    let input = flashes_and_beeps("broadcast.ts", "320x240", "25", "8", &codecs);
    plays_in_sync(&input, 8.0, 8);
}

#[test]
fn mpegts_whose_timestamps_restart_mid_file_keeps_both_parts() {
    // An encoder restarted during the event: its second part's clock starts again where the
    // first part's did.
    let part = flashes_and_beeps("part.ts", "320x240", "25", "4", H264_AAC);
    let joined = common::media_dir().join("restarted.ts");
    std::fs::write(&joined, [std::fs::read(&part).unwrap(), std::fs::read(&part).unwrap()].concat()).unwrap();
    let probe = common::probe_json(&joined);
    let jumps = probe["discontinuities"].as_array().unwrap();
    assert_eq!(jumps.len(), 1, "{probe:#}");
    assert!((probe["duration_seconds"].as_f64().unwrap() - 8.0).abs() < 0.1, "{probe:#}");
    let (ladder, _out, _dir) = short_chunks(&joined);
    assert_seconds(&ladder, 8.0);
    ladder.assert_in_sync(8, 8);
}

#[test]
fn mpegts_across_the_33_bit_timestamp_wrap() {
    // The 90 kHz clock wraps at 2^33 ticks (26.5 h): this recording crosses it at 2 s.
    let wrap = (1u64 << 33) as f64 / 90_000.0;
    let offset = format!("{:.3}", wrap - 2.0 - 1.4); // the muxer starts at 1.4 s
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-output_ts_offset", &offset]);
    let input = flashes_and_beeps("wrap.ts", "320x240", "25", "6", &codecs);
    plays_in_sync(&input, 6.0, 6);
}

#[test]
fn flv_as_rtmp_recorders_write_it() {
    let input = flashes_and_beeps("rtmp.flv", "320x240", "30", "6", H264_AAC);
    plays_in_sync(&input, 6.0, 6);
}

#[test]
fn mp4_with_the_moov_at_the_end_or_the_start() {
    for (name, flags) in [("moov-last.mp4", "+default_base_moof"), ("moov-first.mp4", "+faststart")] {
        let mut codecs = H264_AAC.to_vec();
        codecs.extend(["-movflags", flags]);
        let input = flashes_and_beeps(name, "320x240", "25", "5", &codecs);
        plays_in_sync(&input, 5.0, 5);
    }
}

#[test]
fn fragmented_mp4_as_obs_writes_it() {
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-movflags", "frag_keyframe+empty_moov+default_base_moof"]);
    let input = flashes_and_beeps("obs-fragmented.mp4", "320x240", "30", "6", &codecs);
    plays_in_sync(&input, 6.0, 6);
}

#[test]
fn an_hls_recording_given_as_its_playlist() {
    let dir = common::media_dir().join("hls-recording");
    std::fs::create_dir_all(&dir).unwrap();
    let segments = dir.join("seg_%03d.ts");
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename"]);
    codecs.push(segments.to_str().unwrap());
    let input = flashes_and_beeps("hls-recording/index.m3u8", "320x240", "25", "6", &codecs);
    plays_in_sync(&input, 6.0, 6);
}

#[test]
fn an_hls_playlist_naming_urls_or_missing_segments_is_refused() {
    // A recording uploaded by a tenant must not make ladder fetch from the network (or the
    // cluster's metadata service).
    let dir = common::media_dir().join("hls-remote");
    std::fs::create_dir_all(&dir).unwrap();
    let playlist = dir.join("index.m3u8");
    std::fs::write(
        &playlist,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nhttp://169.254.169.254/latest/meta-data/seg.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    let ended = media_check::run_within(&["probe", playlist.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(ended.code, 3, "{}", ended.stderr);
    assert_eq!(ended.errors().len(), 1, "{}", ended.stderr);
    assert!(ended.stderr.contains("169.254.169.254/latest/meta-data/seg.ts\", a URL"), "{}", ended.stderr);
    // A playlist uploaded without its segments says which one is missing.
    std::fs::write(&playlist, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_000.ts\n#EXT-X-ENDLIST\n").unwrap();
    let ended = media_check::run_within(&["probe", playlist.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(ended.code, 3, "{}", ended.stderr);
    assert!(ended.stderr.contains("names \"seg_000.ts\", not there"), "{}", ended.stderr);
}

#[test]
fn fifty_nine_point_nine_four_frames_a_second() {
    let input = flashes_and_beeps("ntsc60.mp4", "320x240", "60000/1001", "4", H264_AAC);
    let (ladder, out, _dir) = short_chunks(&input);
    assert!((ladder.fps - 59.94).abs() < 0.01, "{}", ladder.fps);
    assert_seconds(&ladder, 4.0 * 1.001);
    ladder.assert_in_sync(4, 4);
    assert_same_pictures(&out, &input);
}

/// A recording of `seconds` whose video (only) goes through `trim`, an ffmpeg filter:
/// the camera started late or stopped early while the microphone went on.
fn video_trimmed(name: &str, seconds: &str, trim: &str) -> PathBuf {
    let lossless = ["-c:v", "ffv1", "-c:a", "flac"];
    let source = flashes_and_beeps(&format!("{name}.mkv"), "320x240", "25", seconds, &lossless);
    let mut args = vec!["-i", source.to_str().unwrap(), "-filter_complex", trim, "-map", "[v]", "-map", "0:a"];
    args.extend_from_slice(H264_AAC);
    common::synth(name, &args)
}

#[test]
fn audio_that_starts_a_second_before_the_video_is_kept() {
    // The camera joined a second after the microphone: in MPEG-TS the video's first
    // timestamp is a second after the audio's. The first picture is shown meanwhile.
    let input = video_trimmed("lead-in.ts", "5", "[0:v]trim=start=1,setpts=PTS[v]");
    let probe = common::probe_json(&input);
    let (video, audio) =
        (probe["video"]["start_seconds"].as_f64().unwrap(), probe["audio"]["start_seconds"].as_f64().unwrap());
    assert!((video - audio - 1.0).abs() < 0.05, "video starts at {video} s, audio at {audio} s");
    let (ladder, _out, _dir) = short_chunks(&input);
    assert_seconds(&ladder, 5.0);
    // The beep at 0.5 s comes before any picture; every later flash has its beep.
    ladder.assert_in_sync(4, 5);
}

#[test]
fn audio_that_goes_on_after_the_video_is_kept() {
    // The camera stopped two seconds before the microphone.
    let input = video_trimmed("tail.mp4", "6", "[0:v]trim=duration=4[v]");
    let (ladder, _out, _dir) = short_chunks(&input);
    assert_seconds(&ladder, 6.0);
    ladder.assert_in_sync(4, 6);
}

#[test]
fn an_attached_cover_picture_is_not_taken_for_the_video() {
    let cover = common::synth("cover.png", &["-f", "lavfi", "-i", "color=c=red:s=1280x1280", "-frames:v", "1"]);
    let mut codecs = vec!["-i", cover.to_str().unwrap(), "-map", "0:v", "-map", "1:a", "-map", "2:v"];
    codecs.extend(["-c:v:0", "libx264", "-preset", "ultrafast", "-g", "50", "-c:v:1", "mjpeg"]);
    codecs.extend(["-disposition:v:1", "attached_pic", "-c:a", "aac", "-b:a", "64k", "-t", "4"]);
    let input = flashes_and_beeps("with-cover.mp4", "320x240", "25", "4", &codecs);
    let probe = common::probe_json(&input);
    assert_eq!(probe["streams"].as_array().unwrap().len(), 3, "{probe:#}");
    let (ladder, out, _dir) = short_chunks(&input);
    assert_eq!(ladder.rungs, ["320x240"]);
    ladder.assert_in_sync(4, 4);
    assert_same_pictures(&out, &input);
}

#[test]
fn anamorphic_pixels_give_square_pixel_rungs_of_the_displayed_shape() {
    // PAL 4:3 coded 352x288 with 12:11 pixels: displayed 384x288.
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-vf", "setsar=12/11"]);
    let input = flashes_and_beeps("anamorphic.mp4", "352x288", "25", "4", &codecs);
    let probe = common::probe_json(&input);
    assert_eq!(
        (probe["video"]["display_width"].as_u64(), probe["video"]["display_height"].as_u64()),
        (Some(384), Some(288))
    );
    let (ladder, out, _dir) = short_chunks(&input);
    ladder.assert_in_sync(4, 4);
    for (n, rung) in ladder.rungs.iter().enumerate() {
        let (w, h) = rung.split_once('x').unwrap();
        let aspect = w.parse::<f64>().unwrap() / h.parse::<f64>().unwrap();
        assert!((aspect - 4.0 / 3.0).abs() < 0.02, "{rung}");
        let sar = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=sample_aspect_ratio", "-of", "csv=p=0"])
            .arg(media_check::whole_track(&out, &format!("v{n}")))
            .output()
            .unwrap();
        let sar = String::from_utf8_lossy(&sar.stdout).trim().to_owned();
        assert!(sar == "1:1" || sar == "N/A" || sar.is_empty(), "v{n} has {sar} pixels");
    }
}

#[test]
fn four_two_two_four_four_four_and_ten_bit_sources_give_8_bit_4_2_0_rungs() {
    for format in ["yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le"] {
        let mut codecs = H264_AAC.to_vec();
        codecs.extend(["-pix_fmt", format]);
        let input = flashes_and_beeps(&format!("{format}.mp4"), "320x240", "25", "4", &codecs);
        assert_eq!(common::probe_json(&input)["video"]["pixel_format"], format);
        let (ladder, out, _dir) = short_chunks(&input);
        ladder.assert_in_sync(4, 4);
        let text = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=pix_fmt", "-of", "csv=p=0"])
            .arg(media_check::whole_track(&out, "v0"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&text.stdout).trim(), "yuv420p", "{format}");
    }
}

#[test]
fn a_key_frame_only_at_the_start_of_a_long_gop() {
    // Some encoders (screen recorders, cameras) send one key frame and then only P-frames:
    // every chunk must decode from the start of the recording.
    let mut codecs = H264_AAC.to_vec();
    codecs.extend(["-g", "100000", "-keyint_min", "100000", "-sc_threshold", "0"]);
    for (name, container) in [("one-gop.mp4", "mp4"), ("one-gop.ts", "mpegts")] {
        let mut codecs = codecs.clone();
        codecs.extend(["-f", container]);
        let input = flashes_and_beeps(name, "320x240", "25", "8", &codecs);
        plays_in_sync(&input, 8.0, 8);
    }
}
