//! HLS playlists (RFC 8216) for a finished ladder: a media playlist per track, an I-frame
//! playlist per video rung, and the master playlist naming them all.
//!
//! These are pure functions of the [`TrackSummary`]s: the same ladder always gives the
//! same bytes, so reruns and concurrent assemblers write identical files. URIs are relative
//! to the playlist's own folder (`<dir>/index.m3u8` names `seg_0.m4s`, the master at the
//! output root names `v0/index.m3u8`).

use std::fmt::Write as _;

use crate::layout::{self, IFRAME_PLAYLIST, MEDIA_PLAYLIST, in_dir};

use super::captions::{self, ClosedCaptions};
use super::track::{SubtitleSummary, TrackKind, TrackSummary, micros_fixed6, ticks_to_micros};

/// Every playlist declares version 7: fMP4 segments with `EXT-X-MAP` in a media playlist
/// need 6+ (RFC 8216 §7), and 7 is what Apple's authoring spec asks for with CMAF.
const VERSION: u32 = 7;

/// The `GROUP-ID` tying the video variants to the audio rendition.
const AUDIO_GROUP: &str = "audio";
/// The group of 5.1 renditions.
const SURROUND_GROUP: &str = "audio-surround";
/// The group of WebVTT subtitle renditions, which every variant names.
const SUBTITLES_GROUP: &str = "subs";

/// One entry of a media or I-frame playlist, before formatting.
struct Entry {
    /// Ticks from the track's start to this entry's start.
    start: u64,
    duration: u64,
    /// `<length>@<offset>`, for I-frame entries.
    byte_range: Option<(u64, u64)>,
    uri: String,
}

/// The VOD media playlist of one track (`<dir>/index.m3u8`).
///
/// `EXTINF` values are exact to the microsecond and never drift: each is the difference
/// of the rounded start and end times, so they add up to the track's duration (rounded
/// once) however many segments there are.
pub(crate) fn media_playlist(track: &TrackSummary) -> String {
    let mut start = 0;
    let entries: Vec<Entry> = track
        .segments
        .iter()
        .map(|s| {
            let entry = Entry { start, duration: s.duration, byte_range: None, uri: s.file_name() };
            start += s.duration;
            entry
        })
        .collect();
    playlist(track.timescale, &entries, false, Some(layout::INIT))
}

/// The VOD media playlist of a subtitle rendition (`s<k>/index.m3u8`): its WebVTT
/// segments, on the same grid (and so with the same target duration) as the video.
pub(crate) fn subtitle_playlist(track: &SubtitleSummary) -> String {
    let mut start = 0;
    let entries: Vec<Entry> = track
        .segments
        .iter()
        .map(|s| {
            let entry =
                Entry { start, duration: s.duration, byte_range: None, uri: layout::subtitle_segment_file(s.index) };
            start += s.duration;
            entry
        })
        .collect();
    playlist(track.timescale, &entries, false, None)
}

/// The I-frame playlist of a video rung (`<dir>/iframes.m3u8`): one entry per key frame,
/// naming its bytes (the key frame with its `moof`) inside the segment file, lasting until
/// the next key frame (see [`TrackSummary::key_frame_spans`] for how that time is known).
pub(crate) fn iframe_playlist(track: &TrackSummary) -> String {
    let entries: Vec<Entry> = track
        .key_frame_spans()
        .into_iter()
        .map(|k| Entry {
            start: k.start,
            duration: k.duration,
            byte_range: Some((k.range.length, k.range.offset)),
            uri: layout::segment_file(k.segment),
        })
        .collect();
    playlist(track.timescale, &entries, true, Some(layout::INIT))
}

/// A playlist of `entries`, with `EXT-X-MAP` naming `init` when the segments need one.
fn playlist(timescale: u32, entries: &[Entry], iframes_only: bool, init: Option<&str>) -> String {
    // Rounded times of the entries' edges; an EXTINF is the difference of two of them.
    let extinf: Vec<u64> = entries
        .iter()
        .map(|e| ticks_to_micros(e.start + e.duration, timescale) - ticks_to_micros(e.start, timescale))
        .collect();
    // No EXTINF exceeds the target duration: the longest, rounded up to whole seconds.
    // RFC 8216 §4.3.3.1 only asks it of EXTINFs rounded to the nearest integer, but Apple's
    // authoring rules (and strict validators) ask it of the exact values, and AAC segments
    // end on 1024-sample frames, up to one frame past the grid (6.016 s): such an audio
    // playlist says 7. Each media playlist has its own (RFC 8216 §4.3.3.1), so a video
    // playlist of exact 6 s segments still says 6.
    let target = extinf.iter().map(|&us| us.div_ceil(1_000_000)).max().unwrap_or(0).max(1);

    let mut out = String::new();
    line(&mut out, "#EXTM3U");
    line(&mut out, &format!("#EXT-X-VERSION:{VERSION}"));
    line(&mut out, &format!("#EXT-X-TARGETDURATION:{target}"));
    line(&mut out, "#EXT-X-MEDIA-SEQUENCE:0");
    line(&mut out, "#EXT-X-PLAYLIST-TYPE:VOD");
    if iframes_only {
        line(&mut out, "#EXT-X-I-FRAMES-ONLY");
    }
    line(&mut out, "#EXT-X-INDEPENDENT-SEGMENTS");
    if let Some(init) = init {
        line(&mut out, &format!("#EXT-X-MAP:URI=\"{init}\""));
    }
    for (entry, us) in entries.iter().zip(extinf) {
        line(&mut out, &format!("#EXTINF:{},", micros_fixed6(us)));
        if let Some((length, offset)) = entry.byte_range {
            line(&mut out, &format!("#EXT-X-BYTERANGE:{length}@{offset}"));
        }
        line(&mut out, &entry.uri);
    }
    line(&mut out, "#EXT-X-ENDLIST");
    out
}

/// The master playlist (`master.m3u8` at the output root): the audio renditions (one
/// `EXT-X-MEDIA` each, stereo and mono in one group, 5.1 in a group of its own), one
/// variant per video rung and audio group in the order given, then one I-frame stream per
/// rung. Subtitle renditions form one `SUBTITLES` group that every variant names.
///
/// `BANDWIDTH` is the measured peak video bitrate plus the highest measured peak of the
/// group's renditions (and of the subtitle renditions): the peaks need not fall in the same segment, so their sum is an
/// upper bound of any segment's combined rate with any of them, which is what RFC 8216 asks
/// `BANDWIDTH` to be. `AVERAGE-BANDWIDTH` likewise sums the averages.
pub(crate) fn master_playlist(
    video: &[TrackSummary],
    audio: &[TrackSummary],
    subtitles: &[SubtitleSummary],
    captions: &ClosedCaptions,
) -> String {
    let mut out = String::new();
    line(&mut out, "#EXTM3U");
    line(&mut out, &format!("#EXT-X-VERSION:{VERSION}"));
    line(&mut out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let groups = audio_groups(audio);
    for group in &groups {
        for a in &group.renditions {
            line(&mut out, &audio_rendition(group.id, a));
        }
    }
    for rendition in captions.hls_renditions() {
        line(&mut out, &rendition);
    }
    for s in subtitles {
        line(&mut out, &subtitle_rendition(s));
    }
    let subs = Subtitles::of(subtitles);
    // A ladder without audio still has one variant per rung.
    let no_audio = [AudioGroup { id: "", renditions: Vec::new() }];
    let variant_groups = if groups.is_empty() { &no_audio[..] } else { &groups[..] };
    for v in video {
        for group in variant_groups {
            line(&mut out, &video_variant(v, group, &subs, captions));
            line(&mut out, &in_dir(&v.dir, MEDIA_PLAYLIST));
        }
    }
    if video.is_empty() {
        for group in &groups {
            audio_only_variant(&mut out, group, &subs);
        }
    }
    for v in video {
        let mut tag = format!(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS={}",
            v.iframe_peak_bitrate(),
            v.iframe_average_bitrate(),
            quoted(&v.codec)
        );
        if let TrackKind::Video { width, height, .. } = &v.kind {
            let _ = write!(tag, ",RESOLUTION={width}x{height}");
        }
        let _ = write!(tag, ",URI={}", quoted(&in_dir(&v.dir, IFRAME_PLAYLIST)));
        line(&mut out, &tag);
    }
    out
}

/// An `EXT-X-MEDIA` group: renditions a player switches between by language. Apple's
/// authoring specification keeps each channel count in a group of its own, each variant
/// repeated per group, so a stereo device never picks 5.1 by language alone.
struct AudioGroup<'a> {
    id: &'static str,
    renditions: Vec<&'a TrackSummary>,
}

impl AudioGroup<'_> {
    fn peak(&self) -> u64 {
        self.renditions.iter().map(|a| a.peak_bitrate()).max().unwrap_or(0)
    }

    fn average(&self) -> u64 {
        self.renditions.iter().map(|a| a.average_bitrate()).max().unwrap_or(0)
    }

    /// Each codec of its renditions, once.
    fn codecs(&self) -> Vec<&str> {
        let mut codecs: Vec<&str> = self.renditions.iter().map(|a| a.codec.as_str()).collect();
        codecs.dedup();
        codecs
    }
}

/// Mono and stereo renditions in `audio`, 5.1 in `audio-surround`; empty groups left out.
fn audio_groups(audio: &[TrackSummary]) -> Vec<AudioGroup<'_>> {
    let surround = |a: &TrackSummary| matches!(a.kind, TrackKind::Audio { channels, .. } if channels > 2);
    [(AUDIO_GROUP, false), (SURROUND_GROUP, true)]
        .into_iter()
        .map(|(id, wanted)| AudioGroup { id, renditions: audio.iter().filter(|a| surround(a) == wanted).collect() })
        .filter(|g| !g.renditions.is_empty())
        .collect()
}

/// What the variants say about the subtitle group: its name (when there is one) and the
/// bitrate its renditions add.
struct Subtitles {
    group: Option<&'static str>,
    peak: u64,
    average: u64,
}

impl Subtitles {
    fn of(subtitles: &[SubtitleSummary]) -> Self {
        Self {
            group: (!subtitles.is_empty()).then_some(SUBTITLES_GROUP),
            peak: subtitles.iter().map(SubtitleSummary::peak_bitrate).max().unwrap_or(0),
            average: subtitles.iter().map(SubtitleSummary::average_bitrate).max().unwrap_or(0),
        }
    }

    /// `,SUBTITLES="subs"`, or nothing without subtitles.
    fn attribute(&self) -> String {
        self.group.map(|g| format!(",SUBTITLES=\"{g}\"")).unwrap_or_default()
    }
}

/// The `EXT-X-STREAM-INF` tag of rung `v` with the audio of `group` (none when its id is
/// empty), the subtitles and the closed captions.
fn video_variant(v: &TrackSummary, group: &AudioGroup<'_>, subs: &Subtitles, captions: &ClosedCaptions) -> String {
    let codecs = std::iter::once(v.codec.as_str()).chain(group.codecs()).collect::<Vec<_>>().join(",");
    let mut tag = format!(
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS={}",
        v.peak_bitrate() + group.peak() + subs.peak,
        v.average_bitrate() + group.average() + subs.average,
        quoted(&codecs)
    );
    if let TrackKind::Video { width, height, fps } = &v.kind {
        let thousandths = (u64::from(fps.num()) * 2000 + u64::from(fps.den())) / (2 * u64::from(fps.den()));
        let _ = write!(tag, ",RESOLUTION={width}x{height},FRAME-RATE={}.{:03}", thousandths / 1000, thousandths % 1000);
    }
    if !group.id.is_empty() {
        let _ = write!(tag, ",AUDIO=\"{}\"", group.id);
    }
    tag.push_str(&subs.attribute());
    // Stated either way: without it a player assumes captions may be in the video and may
    // show a captions menu for nothing.
    match captions.is_empty() {
        true => tag.push_str(",CLOSED-CAPTIONS=NONE"),
        false => tag.push_str(&format!(",CLOSED-CAPTIONS=\"{}\"", captions::GROUP)),
    }
    tag
}

/// The variant of an audio-only ladder: the audio group, played through its default
/// rendition's playlist (RFC 8216 §4.3.4.2 allows a variant of audio alone; it has no
/// `RESOLUTION`).
fn audio_only_variant(out: &mut String, group: &AudioGroup<'_>, subs: &Subtitles) {
    let renditions = &group.renditions;
    let default = renditions.iter().find(|a| matches!(a.kind, TrackKind::Audio { default: true, .. }));
    let Some(default) = default.or(renditions.first()) else { return };
    line(
        out,
        &format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS={},AUDIO=\"{}\"{}",
            group.peak() + subs.peak,
            group.average() + subs.average,
            quoted(&group.codecs().join(",")),
            group.id,
            subs.attribute()
        ),
    );
    line(out, &in_dir(&default.dir, MEDIA_PLAYLIST));
}

/// The `EXT-X-MEDIA` tag of an audio rendition: players offer it by `NAME` and match the
/// viewer's language against `LANGUAGE`; `DEFAULT` is the one they play otherwise.
fn audio_rendition(group: &str, a: &TrackSummary) -> String {
    let (language, name, channels, default) = match &a.kind {
        TrackKind::Audio { language, name, channels, default, .. } => {
            (language.as_str(), name.as_str(), *channels, *default)
        }
        TrackKind::Video { .. } => ("und", a.dir.as_str(), 2, false),
    };
    format!(
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",NAME={},LANGUAGE={},DEFAULT={},AUTOSELECT=YES,\
         CHANNELS=\"{channels}\",URI={}",
        quoted(name),
        quoted(language),
        if default { "YES" } else { "NO" },
        quoted(&in_dir(&a.dir, MEDIA_PLAYLIST)),
    )
}

/// The `EXT-X-MEDIA` tag of a subtitle rendition. `DEFAULT=NO`: subtitles are shown
/// when the viewer asks (or the player's accessibility settings do, by `AUTOSELECT`).
fn subtitle_rendition(s: &SubtitleSummary) -> String {
    format!(
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLES_GROUP}\",NAME={},LANGUAGE={},DEFAULT=NO,AUTOSELECT=YES,\
         FORCED={},URI={}",
        quoted(&s.name),
        quoted(&s.language),
        if s.forced { "YES" } else { "NO" },
        quoted(&in_dir(&s.dir, MEDIA_PLAYLIST)),
    )
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// An RFC 8216 quoted-string. It has no escape mechanism and may not hold `"`, CR or LF,
/// so those (and other control characters) are replaced rather than breaking the playlist.
fn quoted(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("\"{clean}\"")
}

/// The integration tests' playlist parser, so that unit and integration tests read
/// playlists back the same way.
#[cfg(test)]
#[allow(unreachable_pub)] // shared with the integration tests, whose crate uses it
#[path = "../../tests/common/playlist.rs"]
mod parser;

#[cfg(test)]
mod tests {
    use super::parser::{self, MasterPlaylist, MediaPlaylist};
    use super::*;
    use crate::package::track::fixture;
    use crate::rate::FrameRate;

    fn seconds(ticks: u64, timescale: u32) -> f64 {
        ticks as f64 / f64::from(timescale)
    }

    /// Bit/s of each segment, measured independently of the code under test.
    fn segment_rates(track: &TrackSummary) -> Vec<f64> {
        track.segments.iter().map(|s| s.size as f64 * 8.0 / seconds(s.duration, track.timescale)).collect()
    }

    fn average_rate(track: &TrackSummary) -> f64 {
        let bytes: u64 = track.segments.iter().map(|s| s.size).sum();
        let ticks: u64 = track.segments.iter().map(|s| s.duration).sum();
        bytes as f64 * 8.0 / seconds(ticks, track.timescale)
    }

    fn media(track: &TrackSummary) -> MediaPlaylist {
        parser::parse_media(&media_playlist(track)).expect("a well-formed media playlist")
    }

    fn master(video: &[TrackSummary], audio: &[TrackSummary]) -> MasterPlaylist {
        parser::parse_master(&master_playlist(video, audio, &[], &ClosedCaptions::default()))
            .expect("a well-formed master playlist")
    }

    /// No EXTINF exceeds the target duration (Apple's rule, stricter than RFC 8216
    /// §4.3.3.1's rounding), and the target is no larger than it needs to be.
    fn assert_target_duration_fits(p: &MediaPlaylist) {
        let target = p.target_duration.expect("EXT-X-TARGETDURATION");
        let longest = p.segments.iter().map(|s| s.duration).fold(0.0, f64::max);
        assert!(longest <= target as f64, "EXTINF {longest} exceeds target {target}");
        assert_eq!(longest.ceil() as u64, target, "target duration is the longest EXTINF rounded up");
    }

    fn assert_vod_header(p: &MediaPlaylist) {
        assert_eq!(p.version, Some(7));
        assert_eq!(p.media_sequence, Some(0));
        assert_eq!(p.playlist_type.as_deref(), Some("VOD"));
        assert!(p.independent_segments);
        assert!(p.end_list);
        assert_eq!(p.map_uri.as_deref(), Some("init.mp4"));
        assert_eq!(p.other_tags, Vec::<String>::new());
    }

    #[test]
    fn media_playlists_list_every_segment_with_exact_durations() {
        let mut tracks = fixture::video_rungs();
        tracks.push(fixture::audio());
        for track in &tracks {
            let p = media(track);
            assert_vod_header(&p);
            assert!(!p.iframes_only);
            assert_eq!(p.segments.len(), fixture::SEGMENTS, "{}", track.dir);
            let mut start = 0;
            for (segment, entry) in track.segments.iter().zip(&p.segments) {
                assert_eq!(entry.uri, format!("seg_{}.m4s", segment.index));
                assert_eq!(entry.byte_range, None);
                let digits = entry.duration_text.split_once('.').map(|(_, d)| d.len());
                assert_eq!(digits, Some(6), "EXTINF {} has six decimals", entry.duration_text);
                // Each EXTINF is its segment's duration to the microsecond…
                let exact = seconds(segment.duration, track.timescale);
                assert!((entry.duration - exact).abs() <= 1e-6 + 1e-9, "{} vs {exact}", entry.duration);
                start += segment.duration;
            }
            // … and together they add up to the track without drift.
            let total = seconds(start, track.timescale);
            assert!((p.duration() - total).abs() <= 1e-6, "{}: {} vs {total}", track.dir, p.duration());
            assert_target_duration_fits(&p);
        }
    }

    #[test]
    fn audio_extinf_rounding_does_not_drift() {
        // 281-frame AAC segments are 5.994666… s: rounded one by one, 13 of them would be
        // off by several microseconds in total.
        let audio = fixture::audio();
        let p = media(&audio);
        let durations: Vec<&str> = p.segments.iter().map(|s| s.duration_text.as_str()).collect();
        assert_eq!(&durations[..4], ["6.016000", "5.994667", "5.994666", "5.994667"]);
        assert!((p.duration() - 74.56).abs() < 1e-9, "{}", p.duration());
    }

    #[test]
    fn target_duration_is_the_longest_extinf_rounded_up() {
        let mut track = fixture::video_rungs().remove(0);
        assert_eq!(media(&track).target_duration, Some(6));
        // 6.0008 s (one tick over) is above 6: the target is 7.
        track.segments[3].duration = 6 * 12_800 + 1;
        assert_eq!(media(&track).target_duration, Some(7));
        // AAC segments of 282 frames, 6.016 s.
        assert_eq!(media(&fixture::audio()).target_duration, Some(7));
    }

    #[test]
    fn iframe_playlists_name_each_key_frame_for_its_gop() {
        for track in &fixture::video_rungs() {
            let p = parser::parse_media(&iframe_playlist(track)).expect("a well-formed I-frame playlist");
            assert_vod_header(&p);
            assert!(p.iframes_only);
            let expected: Vec<(String, parser::ByteRange)> = track
                .segments
                .iter()
                .flat_map(|s| {
                    s.key_frames.iter().map(|k| {
                        (format!("seg_{}.m4s", s.index), parser::ByteRange { length: k.length, offset: k.offset })
                    })
                })
                .collect();
            let found: Vec<(String, parser::ByteRange)> = p
                .segments
                .iter()
                .map(|e| (e.uri.clone(), e.byte_range.expect("every I-frame entry has a byte range")))
                .collect();
            assert_eq!(found, expected);
            // 2 s GOPs, and the short last segment's two key frames share its 2.56 s.
            assert!(p.segments[..36].iter().all(|e| e.duration_text == "2.000000"));
            assert_eq!(p.segments[36].duration_text, "1.280000");
            assert_eq!(p.segments[37].duration_text, "1.280000");
            let total = seconds(track.duration(), track.timescale);
            assert!((p.duration() - total).abs() <= 1e-6, "{} vs {total}", p.duration());
            assert_target_duration_fits(&p);
        }
    }

    #[test]
    fn master_names_audio_then_each_rung_in_order_then_iframe_streams() {
        let video = fixture::video_rungs();
        let audio = fixture::audio();
        let m = master(&video, std::slice::from_ref(&audio));
        assert_eq!(m.version, Some(7));
        assert!(m.independent_segments);
        assert_eq!(m.other_tags, Vec::<String>::new());

        assert_eq!(m.media.len(), 1);
        let a = &m.media[0];
        for (name, value) in [
            ("TYPE", "AUDIO"),
            ("GROUP-ID", "audio"),
            ("NAME", "English"),
            ("LANGUAGE", "en"),
            ("DEFAULT", "YES"),
            ("AUTOSELECT", "YES"),
            ("CHANNELS", "2"),
            ("URI", "a0/index.m3u8"),
        ] {
            assert_eq!(a.get(name), Some(value), "EXT-X-MEDIA {name}");
        }
        assert!(a.is_quoted("CHANNELS") && a.is_quoted("URI") && !a.is_quoted("TYPE"));

        let uris: Vec<&str> = m.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, ["v0/index.m3u8", "v1/index.m3u8", "v2/index.m3u8"]);
        let audio_rates = segment_rates(&audio);
        for (variant, track) in m.variants.iter().zip(&video) {
            let attrs = &variant.attributes;
            let bandwidth = attrs.int("BANDWIDTH") as f64;
            for (i, (v, a)) in segment_rates(track).iter().zip(&audio_rates).enumerate() {
                assert!(bandwidth >= v + a, "{}: BANDWIDTH {bandwidth} below segment {i}'s {}", track.dir, v + a);
            }
            let peaks =
                segment_rates(track).into_iter().fold(0.0, f64::max) + audio_rates.iter().copied().fold(0.0, f64::max);
            assert!(bandwidth - peaks < 2.0, "BANDWIDTH {bandwidth} is the sum of the peaks {peaks}, rounded up");
            let average = average_rate(track) + average_rate(&audio);
            let stated = attrs.int("AVERAGE-BANDWIDTH") as f64;
            assert!((0.0..2.0).contains(&(stated - average)), "AVERAGE-BANDWIDTH {stated} vs measured {average}");
            assert_eq!(attrs.get("CODECS"), Some(format!("{},mp4a.40.2", track.codec).as_str()));
            assert!(attrs.is_quoted("CODECS"));
            let TrackKind::Video { width, height, .. } = track.kind else { panic!("video") };
            assert_eq!(attrs.get("RESOLUTION"), Some(format!("{width}x{height}").as_str()));
            assert_eq!(attrs.get("FRAME-RATE"), Some("25.000"));
            assert_eq!(attrs.get("AUDIO"), Some("audio"));
            assert_eq!(attrs.get("CLOSED-CAPTIONS"), Some("NONE"));
        }

        assert_eq!(m.iframe_streams.len(), 3);
        for (attrs, track) in m.iframe_streams.iter().zip(&video) {
            assert_eq!(attrs.get("URI"), Some(format!("{}/iframes.m3u8", track.dir).as_str()));
            assert_eq!(attrs.get("CODECS"), Some(track.codec.as_str()));
            assert!(attrs.get("RESOLUTION").is_some());
            let bandwidth = attrs.int("BANDWIDTH") as f64;
            let spans = track.key_frame_spans();
            for k in &spans {
                let rate = k.range.length as f64 * 8.0 / seconds(k.duration, track.timescale);
                assert!(bandwidth >= rate, "I-frame BANDWIDTH {bandwidth} below a key frame's {rate}");
            }
            let bytes: u64 = spans.iter().map(|k| k.range.length).sum();
            let average = bytes as f64 * 8.0 / seconds(track.duration(), track.timescale);
            let stated = attrs.int("AVERAGE-BANDWIDTH") as f64;
            assert!((0.0..1.0).contains(&(stated - average)), "I-frame AVERAGE-BANDWIDTH {stated} vs {average}");
        }
    }

    #[test]
    fn master_without_audio_has_no_audio_group() {
        let video = fixture::video_rungs();
        let m = master(&video, &[]);
        assert!(m.media.is_empty());
        for (variant, track) in m.variants.iter().zip(&video) {
            assert_eq!(variant.attributes.get("AUDIO"), None);
            assert_eq!(variant.attributes.get("CODECS"), Some(track.codec.as_str()));
            assert_eq!(variant.attributes.int("BANDWIDTH"), track.peak_bitrate());
        }
    }

    #[test]
    fn subtitles_are_a_group_every_variant_names_on_the_videos_grid() {
        let (video, audio) = (fixture::video_rungs(), fixture::audio());
        let mut subs = vec![fixture::subtitles(0, "en", "English"), fixture::subtitles(1, "de", "Deutsch")];
        subs[1].forced = true;
        let m = parser::parse_master(&master_playlist(
            &video,
            std::slice::from_ref(&audio),
            &subs,
            &ClosedCaptions::default(),
        ))
        .expect("parses");
        let rendered: Vec<_> = m.media.iter().filter(|r| r.req("TYPE") == "SUBTITLES").collect();
        let fields = |r: &&parser::Attributes| {
            ["GROUP-ID", "NAME", "LANGUAGE", "DEFAULT", "AUTOSELECT", "FORCED", "URI"].map(|k| r.req(k).to_owned())
        };
        assert_eq!(
            rendered.iter().map(fields).collect::<Vec<_>>(),
            [
                ["subs", "English", "en", "NO", "YES", "NO", "s0/index.m3u8"].map(str::to_owned),
                ["subs", "Deutsch", "de", "NO", "YES", "YES", "s1/index.m3u8"].map(str::to_owned),
            ]
        );
        let extra = subs.iter().map(SubtitleSummary::peak_bitrate).max().expect("two renditions");
        let without = master(&video, std::slice::from_ref(&audio));
        for (v, plain) in m.variants.iter().zip(&without.variants) {
            assert_eq!(v.attributes.get("SUBTITLES"), Some("subs"));
            assert_eq!(v.attributes.int("BANDWIDTH"), plain.attributes.int("BANDWIDTH") + extra);
        }
        let audio_only = parser::parse_master(&master_playlist(
            &[],
            std::slice::from_ref(&audio),
            &subs[..1],
            &ClosedCaptions::default(),
        ))
        .expect("parses");
        assert_eq!(audio_only.variants[0].attributes.get("SUBTITLES"), Some("subs"));

        let p = parser::parse_media(&subtitle_playlist(&subs[0])).expect("a well-formed subtitle playlist");
        assert_eq!(p.map_uri, None, "WebVTT segments need no initialization section");
        assert_eq!(p.target_duration, media(&video[0]).target_duration);
        let uris: Vec<String> = p.segments.iter().map(|s| s.uri.clone()).collect();
        assert_eq!(uris.first().map(String::as_str), Some("seg_0.vtt"));
        let durations = |p: &MediaPlaylist| p.segments.iter().map(|s| s.duration_text.clone()).collect::<Vec<_>>();
        assert_eq!(durations(&p), durations(&media(&video[0])));
    }

    #[test]
    fn ntsc_frame_rate_has_three_decimals() {
        let mut video = fixture::video_rungs();
        video[0].kind =
            TrackKind::Video { width: 1280, height: 720, fps: FrameRate::new(30_000, 1001).expect("valid") };
        video[1].kind = TrackKind::Video { width: 854, height: 480, fps: FrameRate::new(60_000, 1001).expect("valid") };
        let m = master(&video, &[]);
        assert_eq!(m.variants[0].attributes.get("FRAME-RATE"), Some("29.970"));
        assert_eq!(m.variants[1].attributes.get("FRAME-RATE"), Some("59.940"));
    }

    #[test]
    fn names_cannot_break_out_of_a_quoted_string() {
        let mut audio = fixture::audio();
        audio.kind = TrackKind::Audio {
            sample_rate: 48_000,
            channels: 2,
            language: "en".into(),
            name: "Director's \"cut\",\nEXT".into(),
            default: true,
        };
        let m = master(&fixture::video_rungs(), std::slice::from_ref(&audio));
        assert_eq!(m.media[0].get("NAME"), Some("Director's 'cut', EXT"));
        assert_eq!(m.media[0].get("URI"), Some("a0/index.m3u8"));
    }

    #[test]
    fn snapshots_of_the_synthetic_ladder() {
        let video = fixture::video_rungs();
        let audio = fixture::audio();
        insta::assert_snapshot!("media_playlist_v0", media_playlist(&video[0]));
        insta::assert_snapshot!("media_playlist_a0", media_playlist(&audio));
        insta::assert_snapshot!("iframe_playlist_v0", iframe_playlist(&video[0]));
        insta::assert_snapshot!(
            "master_playlist",
            master_playlist(&video, std::slice::from_ref(&audio), &[], &ClosedCaptions::default())
        );
    }
}
