//! CMAF splitting on real fragmented MP4 written by libavformat (through the ffmpeg CLI,
//! an independent producer), checked against ffprobe.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::process::Command;

use ladder::package::cmaf;

fn ffprobe(args: &[&str], file: &std::path::Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fragmented(name: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "6"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-movflags", "empty_moov+default_base_moof+frag_keyframe", "-f", "mp4"]);
    std::fs::read(common::synth(name, &args)).expect("readable")
}

#[test]
fn a_fragmented_mp4_splits_into_init_and_one_fragment_per_gop() {
    let bytes = fragmented(
        "frag.mp4",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-video_track_timescale",
            "12800",
        ],
    );
    let split = cmaf::split(&bytes).unwrap();
    assert_eq!(split.fragments.len(), 3);
    assert_eq!(cmaf::timescale(&bytes, split.init.clone()).unwrap(), 12800);
    let frame = 12800 / 25;
    for (i, f) in split.fragments.iter().enumerate() {
        assert_eq!(f.decode_time, i as u64 * 50 * frame, "fragment {i}");
        assert_eq!(f.duration, 50 * frame);
        assert_eq!(f.sample_count, 50);
    }
    // The first sample of the first fragment is the key frame ffprobe sees first.
    let file = common::media_dir().join("frag.mp4");
    let packets = ffprobe(&["-select_streams", "v", "-show_entries", "packet=size,flags,pos", "-of", "csv=p=0"], &file);
    let first: Vec<&str> = packets.lines().next().unwrap().split(',').collect();
    let (size, pos): (usize, usize) = (first[0].parse().unwrap(), first[1].parse().unwrap());
    assert!(first[2].starts_with('K'), "{packets}");
    assert_eq!(split.fragments[0].range.start + split.fragments[0].first_sample_end, pos + size);
}

#[test]
fn shifting_the_decode_time_moves_a_fragment_on_the_timeline() {
    let mut bytes = fragmented(
        "shift.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-video_track_timescale", "25"],
    );
    let mut split = cmaf::split(&bytes).unwrap();
    let mut second = split.fragments.remove(1);
    cmaf::shift_decode_time(&mut bytes, &mut second, 1000).unwrap();
    assert_eq!(second.decode_time, 1050);
    // init + the shifted fragment alone: a player sees it start at 1050 / 25 = 42 s.
    let mut standalone = bytes[split.init.clone()].to_vec();
    standalone.extend_from_slice(&bytes[second.range.clone()]);
    let file = common::media_dir().join("shifted.mp4");
    std::fs::write(&file, standalone).unwrap();
    let pts = ffprobe(&["-select_streams", "v", "-show_entries", "packet=dts_time", "-of", "csv=p=0"], &file);
    assert_eq!(pts.lines().next().unwrap().trim(), "42.000000", "{pts}");
    assert_eq!(pts.lines().count(), 50);
}

#[test]
fn codec_strings_come_from_the_sample_entries() {
    let h264 =
        fragmented("h264.mp4", &["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-level", "3.1"]);
    let split = cmaf::split(&h264).unwrap();
    assert_eq!(cmaf::codec_string(&h264, split.init).unwrap(), "avc1.64001f");

    let hevc = fragmented("hevc.mp4", &["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error"]);
    let split = cmaf::split(&hevc).unwrap();
    assert!(cmaf::codec_string(&hevc, split.init).unwrap().starts_with("hvc1.1.6.L"));

    let aac = std::fs::read(common::synth(
        "aac.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
            "-t",
            "2",
            "-c:a",
            "aac",
            "-movflags",
            "empty_moov+default_base_moof",
            "-f",
            "mp4",
        ],
    ))
    .unwrap();
    let split = cmaf::split(&aac).unwrap();
    assert_eq!(cmaf::codec_string(&aac, split.init).unwrap(), "mp4a.40.2");
}
