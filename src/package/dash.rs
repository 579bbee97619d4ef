//! The DASH MPD (ISO/IEC 23009-1) for a finished ladder: one static Period, a video
//! AdaptationSet with a Representation per rung and an audio AdaptationSet, all pointing at
//! the same CMAF segments as the HLS playlists through a `SegmentTemplate` with a
//! `SegmentTimeline` (exact per-segment durations; no drift from a nominal `duration`).
//!
//! Like the playlists, the MPD is a pure function of the [`TrackSummary`]s, written with
//! integer arithmetic so that the same ladder always gives the same bytes.

use std::fmt::Write as _;

use super::captions::ClosedCaptions;
use super::track::{SegmentSummary, SubtitleSummary, TrackKind, TrackSummary, ticks_to_micros};
use crate::layout;
use crate::rate::FrameRate;

const PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019";
const CHANNEL_SCHEME: &str = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011";
const ROLE_SCHEME: &str = "urn:mpeg:dash:role:2011";

/// One `<S>` of a `SegmentTimeline`: `r + 1` segments of `d` ticks, the first at `t` when
/// it does not simply follow the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    t: Option<u64>,
    d: u64,
    r: u64,
}

/// The static MPD (`manifest.mpd` at the output root) of the ladder.
///
/// `duration_seconds` is the presentation's duration (`mediaPresentationDuration`);
/// `minBufferTime` is the longest segment of any track, which together with each
/// Representation's `bandwidth` being its measured peak segment bitrate satisfies the
/// MPD's bandwidth promise: every segment arrives within its own duration at that rate.
///
/// Segment numbers (`$Number$`) are counted from the first segment's index, so the
/// tracks' segment indices must be contiguous, as the output layout guarantees.
///
/// Each subtitle rendition is a text AdaptationSet of its own, its cues in one whole WebVTT
/// file (`BaseURL`): the form DASH-IF's guidelines describe for WebVTT outside MP4, which
/// dash.js and Shaka play; segmented WebVTT (only in HLS) is not. Its times start at the
/// Period's start, which `presentationTimeOffset` puts at the first frame.
pub(crate) fn mpd(
    video: &[TrackSummary],
    audio: &[TrackSummary],
    subtitles: &[SubtitleSummary],
    captions: &ClosedCaptions,
    duration_seconds: f64,
) -> String {
    let longest =
        video.iter().chain(audio).map(|t| ticks_to_micros(t.max_segment_duration(), t.timescale)).max().unwrap_or(0);
    // `max` also turns NaN into 0: a bad duration must not produce an unparsable MPD.
    let duration_micros = (duration_seconds.max(0.0) * 1e6).round() as u64;

    let mut x = Xml::default();
    x.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.open(
        "MPD",
        &[
            ("xmlns", "urn:mpeg:dash:schema:mpd:2011".into()),
            ("profiles", PROFILES.into()),
            ("type", "static".into()),
            ("mediaPresentationDuration", xs_duration(duration_micros)),
            ("minBufferTime", xs_duration(longest)),
        ],
    );
    x.open("Period", &[("id", "0".into()), ("start", "PT0S".into())]);
    let mut next_id = 0;
    if !video.is_empty() {
        video_adaptation_set(&mut x, next_id, video, captions);
        next_id += 1;
    }
    // One set per rendition: a player switches bitrates within a set, and languages by
    // choosing another set (by `@lang` and `Role`).
    for a in audio {
        audio_adaptation_set(&mut x, next_id, a);
        next_id += 1;
    }
    for s in subtitles {
        text_adaptation_set(&mut x, next_id, s);
        next_id += 1;
    }
    x.close("Period");
    x.close("MPD");
    x.out
}

fn video_adaptation_set(x: &mut Xml, id: u32, video: &[TrackSummary], captions: &ClosedCaptions) {
    let sizes = video.iter().filter_map(|t| match t.kind {
        TrackKind::Video { width, height, fps } => Some((width, height, fps)),
        TrackKind::Audio { .. } => None,
    });
    let max_width = sizes.clone().map(|(w, _, _)| w).max().unwrap_or(0);
    let max_height = sizes.clone().map(|(_, h, _)| h).max().unwrap_or(0);
    let rates: Vec<FrameRate> = sizes.map(|(_, _, fps)| fps).collect();
    let mut attrs = vec![
        ("id", id.to_string()),
        ("contentType", "video".into()),
        ("mimeType", "video/mp4".into()),
        ("segmentAlignment", "true".into()),
        ("startWithSAP", "1".into()),
        ("maxWidth", max_width.to_string()),
        ("maxHeight", max_height.to_string()),
    ];
    // One rate for the set when the rungs agree; otherwise only its bound is common.
    match rates.split_first() {
        Some((first, rest)) if rest.iter().all(|r| r == first) => attrs.push(("frameRate", first.to_string())),
        Some((first, rest)) => {
            let fastest = rest.iter().fold(*first, |a, &b| if faster(b, a) { b } else { a });
            attrs.push(("maxFrameRate", fastest.to_string()));
        }
        None => {}
    }
    x.open("AdaptationSet", &attrs);
    for (scheme, value) in captions.dash_descriptors() {
        x.empty("Accessibility", &[("schemeIdUri", scheme.into()), ("value", value)]);
    }
    let shared = shared_timing(video);
    if shared {
        segment_template(x, &video[0]);
    }
    for t in video {
        let mut attrs = vec![("id", t.dir.clone()), ("bandwidth", bandwidth(t)), ("codecs", t.codec.clone())];
        if let TrackKind::Video { width, height, fps } = t.kind {
            attrs.push(("width", width.to_string()));
            attrs.push(("height", height.to_string()));
            attrs.push(("frameRate", fps.to_string()));
            attrs.push(("sar", "1:1".into()));
        }
        representation(x, &attrs, (!shared).then_some(t));
    }
    x.close("AdaptationSet");
}

fn audio_adaptation_set(x: &mut Xml, id: u32, audio: &TrackSummary) {
    let (language, sample_rate, channels, default) = match &audio.kind {
        TrackKind::Audio { language, sample_rate, channels, default, .. } => {
            (language.as_str(), *sample_rate, *channels, *default)
        }
        TrackKind::Video { .. } => ("und", 0, 0, false),
    };
    x.open(
        "AdaptationSet",
        &[
            ("id", id.to_string()),
            ("contentType", "audio".into()),
            ("mimeType", "audio/mp4".into()),
            ("lang", language.into()),
            ("segmentAlignment", "true".into()),
            ("startWithSAP", "1".into()),
        ],
    );
    // The schema's order: descriptors of the common base (AudioChannelConfiguration), then
    // the AdaptationSet's own (Role), then segment information, then Representations.
    x.empty("AudioChannelConfiguration", &[("schemeIdUri", CHANNEL_SCHEME.into()), ("value", channels.to_string())]);
    let role = if default { "main" } else { "alternate" };
    x.empty("Role", &[("schemeIdUri", ROLE_SCHEME.into()), ("value", role.into())]);
    segment_template(x, audio);
    let attrs = [
        ("id", audio.dir.clone()),
        ("bandwidth", bandwidth(audio)),
        ("codecs", audio.codec.clone()),
        ("audioSamplingRate", sample_rate.to_string()),
    ];
    representation(x, &attrs, None);
    x.close("AdaptationSet");
}

fn text_adaptation_set(x: &mut Xml, id: u32, s: &SubtitleSummary) {
    x.open(
        "AdaptationSet",
        &[
            ("id", id.to_string()),
            ("contentType", "text".into()),
            ("mimeType", "text/vtt".into()),
            ("lang", s.language.clone()),
        ],
    );
    let role = if s.forced { "forced-subtitle" } else { "subtitle" };
    x.empty("Role", &[("schemeIdUri", ROLE_SCHEME.into()), ("value", role.into())]);
    let bandwidth = s.average_bitrate().clamp(1, u64::from(u32::MAX));
    x.open("Representation", &[("id", s.dir.clone()), ("bandwidth", bandwidth.to_string())]);
    x.text("BaseURL", &layout::in_dir(&s.dir, layout::SUBTITLES_FILE));
    x.close("Representation");
    x.close("AdaptationSet");
}

/// A Representation, with its own SegmentTemplate when the set does not share one.
fn representation(x: &mut Xml, attrs: &[(&str, String)], own_template: Option<&TrackSummary>) {
    match own_template {
        Some(t) => {
            x.open("Representation", attrs);
            segment_template(x, t);
            x.close("Representation");
        }
        None => x.empty("Representation", attrs),
    }
}

fn segment_template(x: &mut Xml, track: &TrackSummary) {
    let start_number = track.segments.first().map_or(0, |s| s.index);
    x.open(
        "SegmentTemplate",
        &[
            ("initialization", layout::DASH_INIT_TEMPLATE.into()),
            ("media", layout::DASH_MEDIA_TEMPLATE.into()),
            ("startNumber", start_number.to_string()),
            ("timescale", track.timescale.to_string()),
            ("presentationTimeOffset", track.presentation_offset.to_string()),
        ],
    );
    x.open("SegmentTimeline", &[]);
    for run in timeline(&track.segments, &track.presentation_times()) {
        let mut attrs = Vec::with_capacity(3);
        if let Some(t) = run.t {
            attrs.push(("t", t.to_string()));
        }
        attrs.push(("d", run.d.to_string()));
        if run.r > 0 {
            attrs.push(("r", run.r.to_string()));
        }
        x.empty("S", &attrs);
    }
    x.close("SegmentTimeline");
    x.close("SegmentTemplate");
}

/// The segments as run-length `<S>` elements on the presentation timeline
/// (`presentation_times`, one per segment): `t` is a segment's earliest presentation time
/// and `d` its span, so with `presentationTimeOffset` at the first segment's, every track
/// starts at the Period's start. Consecutive segments of equal span that follow one
/// another without a gap share one element; `t` is written for the first and wherever the
/// timeline jumps.
fn timeline(segments: &[SegmentSummary], presentation_times: &[u64]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut next: Option<u64> = None;
    for (s, &t) in segments.iter().zip(presentation_times) {
        let contiguous = next == Some(t);
        match runs.last_mut() {
            Some(run) if contiguous && run.d == s.duration => run.r += 1,
            _ => runs.push(Run { t: (!contiguous).then_some(t), d: s.duration, r: 0 }),
        }
        next = Some(t + s.duration);
    }
    runs
}

/// Whether one SegmentTemplate can describe every track: the same timescale, offset and
/// segments (numbers and times). Rungs cut on the shared grid normally are.
fn shared_timing(tracks: &[TrackSummary]) -> bool {
    let timing = |t: &TrackSummary| {
        (
            t.timescale,
            t.presentation_offset,
            t.segments.iter().map(|s| (s.index, s.decode_time, s.duration)).collect::<Vec<_>>(),
        )
    };
    tracks.split_first().is_some_and(|(first, rest)| {
        let first = timing(first);
        rest.iter().all(|t| timing(t) == first)
    })
}

/// The schema's `bandwidth` is an `xs:unsignedInt`.
fn bandwidth(track: &TrackSummary) -> String {
    track.peak_bitrate().min(u64::from(u32::MAX)).to_string()
}

fn faster(a: FrameRate, b: FrameRate) -> bool {
    u64::from(a.num()) * u64::from(b.den()) > u64::from(b.num()) * u64::from(a.den())
}

/// An `xs:duration` in seconds, as the shortest exact decimal of the microseconds:
/// `PT6S`, `PT74.56S`, `PT0.021333S`.
fn xs_duration(micros: u64) -> String {
    let (whole, fraction) = (micros / 1_000_000, micros % 1_000_000);
    if fraction == 0 {
        return format!("PT{whole}S");
    }
    let digits = format!("{fraction:06}");
    format!("PT{whole}.{}S", digits.trim_end_matches('0'))
}

/// A minimal XML writer: indented elements, escaped attribute values.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn start(&mut self, name: &str, attrs: &[(&str, String)]) {
        let _ = write!(self.out, "{:indent$}<{name}", "", indent = self.depth * 2);
        for (key, value) in attrs {
            let _ = write!(self.out, " {key}=\"{}\"", escape(value));
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.start(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.start(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name>text</name>` on one line.
    fn text(&mut self, name: &str, text: &str) {
        self.start(name, &[]);
        let _ = writeln!(self.out, ">{}</{name}>", escape(text));
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        let _ = writeln!(self.out, "{:indent$}</{name}>", "", indent = self.depth * 2);
    }
}

/// Escapes an attribute value. Whitespace other than a space is written as a character
/// reference, since a parser would otherwise normalise it to a space; characters XML 1.0
/// cannot carry at all become U+FFFD.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use roxmltree::{Document, Node};

    use super::*;
    use crate::package::track::fixture;

    const NS: &str = "urn:mpeg:dash:schema:mpd:2011";

    fn parse(text: &str) -> Document<'_> {
        Document::parse(text).expect("the MPD is well-formed XML")
    }

    fn children<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
        node.children().filter(|c| c.is_element() && c.tag_name().name() == name).collect()
    }

    fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
        let found = children(node, name);
        assert_eq!(found.len(), 1, "one <{name}> in <{}>", node.tag_name().name());
        found[0]
    }

    fn attr<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
        node.attribute(name).unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name()))
    }

    fn num(node: Node<'_, '_>, name: &str) -> u64 {
        attr(node, name).parse().expect("an unsigned integer")
    }

    /// `PT<seconds>S` in seconds.
    fn seconds_of(duration: &str) -> f64 {
        let s = duration.strip_prefix("PT").and_then(|d| d.strip_suffix('S')).expect("PT…S");
        s.parse().expect("decimal seconds")
    }

    fn adaptation_sets<'a, 'i>(doc: &'a Document<'i>) -> Vec<Node<'a, 'i>> {
        children(child(doc.root_element(), "Period"), "AdaptationSet")
    }

    /// The SegmentTemplate that applies to a Representation: its own, or its set's.
    fn template<'a, 'i>(representation: Node<'a, 'i>) -> Node<'a, 'i> {
        let own = children(representation, "SegmentTemplate");
        match own.first() {
            Some(t) => *t,
            None => child(representation.parent().expect("in an AdaptationSet"), "SegmentTemplate"),
        }
    }

    /// A SegmentTimeline expanded to (number, t, d) per segment, as a player does.
    fn expand(template: Node<'_, '_>) -> Vec<(u64, u64, u64)> {
        let mut number = num(template, "startNumber");
        let mut out = Vec::new();
        let mut t = 0;
        for s in children(child(template, "SegmentTimeline"), "S") {
            if let Some(start) = s.attribute("t") {
                t = start.parse().expect("t");
            }
            let d = num(s, "d");
            let r: u64 = s.attribute("r").map_or(0, |r| r.parse().expect("non-negative r"));
            for _ in 0..=r {
                out.push((number, t, d));
                number += 1;
                t += d;
            }
        }
        out
    }

    /// (number, earliest presentation time, span) of each segment: the first is presented
    /// at the track's offset, and each later one as far after it as it is decoded.
    fn expected(track: &TrackSummary) -> Vec<(u64, u64, u64)> {
        let first = track.segments[0].decode_time;
        let start = |s: &SegmentSummary| s.decode_time - first + track.presentation_offset;
        track.segments.iter().map(|s| (u64::from(s.index), start(s), s.duration)).collect()
    }

    fn ladder_mpd() -> String {
        mpd(&fixture::video_rungs(), &[fixture::audio()], &[], &ClosedCaptions::default(), 74.56)
    }

    #[test]
    fn the_mpd_is_static_with_the_presentation_duration_and_longest_segment_as_buffer() {
        let text = ladder_mpd();
        let doc = parse(&text);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "MPD");
        assert_eq!(root.tag_name().namespace(), Some(NS));
        assert_eq!(attr(root, "type"), "static");
        assert_eq!(attr(root, "profiles"), PROFILES);
        assert_eq!(attr(root, "mediaPresentationDuration"), "PT74.56S");
        assert!((seconds_of(attr(root, "mediaPresentationDuration")) - 74.56).abs() < 1e-9);
        // The longest segment is the audio's 282 AAC frames, 6.016 s.
        assert_eq!(attr(root, "minBufferTime"), "PT6.016S");
        assert_eq!(children(root, "Period").len(), 1);
        assert_eq!(adaptation_sets(&doc).len(), 2);
    }

    #[test]
    fn the_video_set_has_a_representation_per_rung_with_its_measured_peak() {
        let video = fixture::video_rungs();
        let text = ladder_mpd();
        let doc = parse(&text);
        let set = adaptation_sets(&doc)[0];
        assert_eq!(attr(set, "contentType"), "video");
        assert_eq!(attr(set, "mimeType"), "video/mp4");
        assert_eq!(attr(set, "segmentAlignment"), "true");
        assert_eq!(attr(set, "startWithSAP"), "1");
        assert_eq!(attr(set, "maxWidth"), "1280");
        assert_eq!(attr(set, "maxHeight"), "720");
        assert_eq!(attr(set, "frameRate"), "25");
        let representations = children(set, "Representation");
        let ids: Vec<&str> = representations.iter().map(|r| attr(*r, "id")).collect();
        assert_eq!(ids, ["v0", "v1", "v2"]);
        for (r, track) in representations.iter().zip(&video) {
            let bandwidth = num(*r, "bandwidth") as f64;
            let rates: Vec<f64> = track
                .segments
                .iter()
                .map(|s| s.size as f64 * 8.0 * f64::from(track.timescale) / s.duration as f64)
                .collect();
            let peak = rates.iter().copied().fold(0.0, f64::max);
            assert!((0.0..1.0).contains(&(bandwidth - peak)), "bandwidth {bandwidth} vs measured peak {peak}");
            assert_eq!(attr(*r, "codecs"), track.codec);
            let TrackKind::Video { width, height, .. } = track.kind else { panic!("video") };
            assert_eq!(num(*r, "width"), u64::from(width));
            assert_eq!(num(*r, "height"), u64::from(height));
            assert_eq!(attr(*r, "frameRate"), "25");
            assert_eq!(attr(*r, "sar"), "1:1");
        }
    }

    #[test]
    fn segment_timelines_expand_to_exactly_the_stored_segments() {
        let video = fixture::video_rungs();
        let audio = fixture::audio();
        let text = ladder_mpd();
        let doc = parse(&text);
        let sets = adaptation_sets(&doc);
        let representations: Vec<Node> = sets.iter().flat_map(|s| children(*s, "Representation")).collect();
        let tracks: Vec<&TrackSummary> = video.iter().chain([&audio]).collect();
        assert_eq!(representations.len(), tracks.len());
        for (r, track) in representations.iter().zip(tracks) {
            let template = template(*r);
            assert_eq!(expand(template), expected(track), "{}", track.dir);
            assert_eq!(num(template, "timescale"), u64::from(track.timescale));
            assert_eq!(num(template, "presentationTimeOffset"), track.presentation_offset);
            assert_eq!(attr(template, "initialization"), "$RepresentationID$/init.mp4");
            assert_eq!(attr(template, "media"), "$RepresentationID$/seg_$Number$.m4s");
            // The offset is the same instant, 0.08 s, on every track, and the first segment
            // is presented then: every track starts at the Period's start, together.
            let offset = track.presentation_offset as f64 / f64::from(track.timescale);
            assert!((offset - 0.08).abs() < 1e-12);
            assert_eq!(expand(template)[0].1, track.presentation_offset, "{}", track.dir);
        }
        // The rungs share one timeline, run-length compressed: twelve 6 s segments and the
        // short last one.
        let shared = child(sets[0], "SegmentTemplate");
        let runs: Vec<(Option<&str>, &str, Option<&str>)> = children(child(shared, "SegmentTimeline"), "S")
            .iter()
            .map(|s| (s.attribute("t"), attr(*s, "d"), s.attribute("r")))
            .collect();
        assert_eq!(runs, [(Some("1024"), "76800", Some("11")), (None, "32768", None)]);
    }

    #[test]
    fn the_audio_set_describes_language_channels_and_rate_in_schema_order() {
        let text = ladder_mpd();
        let doc = parse(&text);
        let set = adaptation_sets(&doc)[1];
        assert_eq!(attr(set, "contentType"), "audio");
        assert_eq!(attr(set, "mimeType"), "audio/mp4");
        assert_eq!(attr(set, "lang"), "en");
        let order: Vec<&str> = set.children().filter(|c| c.is_element()).map(|c| c.tag_name().name()).collect();
        assert_eq!(order, ["AudioChannelConfiguration", "Role", "SegmentTemplate", "Representation"]);
        let channels = child(set, "AudioChannelConfiguration");
        assert_eq!(attr(channels, "schemeIdUri"), CHANNEL_SCHEME);
        assert_eq!(attr(channels, "value"), "2");
        let role = child(set, "Role");
        assert_eq!((attr(role, "schemeIdUri"), attr(role, "value")), (ROLE_SCHEME, "main"));
        let r = child(set, "Representation");
        assert_eq!(attr(r, "id"), "a0");
        assert_eq!(attr(r, "codecs"), "mp4a.40.2");
        assert_eq!(attr(r, "audioSamplingRate"), "48000");
        assert_eq!(num(r, "bandwidth"), fixture::audio().peak_bitrate());
        // 281- and 282-frame segments alternate, so the audio timeline has many runs.
        assert!(children(child(child(set, "SegmentTemplate"), "SegmentTimeline"), "S").len() > 2);
    }

    #[test]
    fn rungs_on_different_timelines_get_a_template_each() {
        let mut video = fixture::video_rungs();
        // One rung on a 90 kHz timescale, another at 50 fps: same instants, other ticks.
        let v2 = &mut video[2];
        v2.timescale = 90_000;
        v2.presentation_offset = 7200;
        for s in &mut v2.segments {
            s.decode_time = s.decode_time * 90_000 / 12_800;
            s.duration = s.duration * 90_000 / 12_800;
        }
        video[1].kind = TrackKind::Video { width: 854, height: 480, fps: FrameRate::new(50, 1).expect("valid") };
        let text = mpd(&video, &[], &[], &ClosedCaptions::default(), 74.56);
        let doc = parse(&text);
        let sets = adaptation_sets(&doc);
        assert_eq!(sets.len(), 1);
        let set = sets[0];
        assert!(children(set, "SegmentTemplate").is_empty(), "no shared template");
        assert_eq!(set.attribute("frameRate"), None);
        assert_eq!(attr(set, "maxFrameRate"), "50");
        for (r, track) in children(set, "Representation").iter().zip(&video) {
            let own = child(*r, "SegmentTemplate");
            assert_eq!(expand(own), expected(track));
            assert_eq!(num(own, "timescale"), u64::from(track.timescale));
            assert_eq!(num(own, "presentationTimeOffset"), track.presentation_offset);
        }
    }

    #[test]
    fn a_gap_in_the_timeline_restates_t() {
        let mut video = fixture::video_rungs();
        video.truncate(1);
        for s in &mut video[0].segments[5..] {
            s.decode_time += 512;
        }
        let text = mpd(&video, &[], &[], &ClosedCaptions::default(), 74.6);
        let doc = parse(&text);
        let template = child(adaptation_sets(&doc)[0], "SegmentTemplate");
        assert_eq!(expand(template), expected(&video[0]));
        let ts: Vec<Option<&str>> =
            children(child(template, "SegmentTimeline"), "S").iter().map(|s| s.attribute("t")).collect();
        assert_eq!(ts, [Some("1024"), Some("385536"), None]);
    }

    #[test]
    fn ntsc_rates_are_fractions() {
        let mut video = fixture::video_rungs();
        for v in &mut video {
            if let TrackKind::Video { fps, .. } = &mut v.kind {
                *fps = FrameRate::new(30_000, 1001).expect("valid");
            }
        }
        let text = mpd(&video, &[], &[], &ClosedCaptions::default(), 74.56);
        let doc = parse(&text);
        let set = adaptation_sets(&doc)[0];
        assert_eq!(attr(set, "frameRate"), "30000/1001");
        for r in children(set, "Representation") {
            assert_eq!(attr(r, "frameRate"), "30000/1001");
        }
    }

    #[test]
    fn each_subtitle_rendition_is_a_text_set_naming_its_whole_file() {
        let mut subs = vec![fixture::subtitles(0, "en", "English"), fixture::subtitles(1, "de", "Deutsch")];
        subs[1].forced = true;
        let text = mpd(&fixture::video_rungs(), &[fixture::audio()], &subs, &ClosedCaptions::default(), 74.56);
        let doc = parse(&text);
        let sets = adaptation_sets(&doc);
        let text_sets: Vec<_> = sets.iter().filter(|s| attr(**s, "contentType") == "text").collect();
        assert_eq!(text_sets.len(), 2);
        for (set, (lang, role, url)) in text_sets
            .iter()
            .zip([("en", "subtitle", "s0/subtitles.vtt"), ("de", "forced-subtitle", "s1/subtitles.vtt")])
        {
            assert_eq!((attr(**set, "lang"), attr(**set, "mimeType")), (lang, "text/vtt"));
            assert_eq!(attr(child(**set, "Role"), "value"), role);
            let representation = child(**set, "Representation");
            assert!(num(representation, "bandwidth") > 0);
            assert_eq!(child(representation, "BaseURL").text(), Some(url));
        }
        let ids: Vec<&str> = sets.iter().map(|s| attr(*s, "id")).collect();
        assert_eq!(ids, ["0", "1", "2", "3"], "ids stay unique");
    }

    #[test]
    fn attribute_values_are_escaped() {
        let mut audio = fixture::audio();
        audio.kind = TrackKind::Audio {
            sample_rate: 48_000,
            channels: 2,
            language: "x\"<&'>\tz".into(),
            name: "n".into(),
            default: true,
        };
        audio.codec = "mp4a.40.2\n".into();
        let text = mpd(&[], std::slice::from_ref(&audio), &[], &ClosedCaptions::default(), 1.0);
        let doc = parse(&text);
        let set = adaptation_sets(&doc)[0];
        assert_eq!(attr(set, "lang"), "x\"<&'>\tz");
        assert_eq!(attr(child(set, "Representation"), "codecs"), "mp4a.40.2\n");
    }

    #[test]
    fn the_same_ladder_gives_the_same_bytes() {
        assert_eq!(ladder_mpd(), ladder_mpd());
        // Through the serialised form too, as an assembler reading chunk records would.
        let video: Vec<TrackSummary> =
            serde_json::from_str(&serde_json::to_string(&fixture::video_rungs()).expect("serialises"))
                .expect("deserialises");
        assert_eq!(video, fixture::video_rungs());
        assert_eq!(mpd(&video, &[fixture::audio()], &[], &ClosedCaptions::default(), 74.56), ladder_mpd());
    }

    #[test]
    fn durations_are_the_shortest_exact_decimal() {
        assert_eq!(xs_duration(ticks_to_micros(32_768, 12_800)), "PT2.56S");
        assert_eq!(xs_duration(6_000_000), "PT6S");
        assert_eq!(xs_duration(21_333), "PT0.021333S");
        assert_eq!(xs_duration(0), "PT0S");
    }

    #[test]
    fn snapshot_of_the_synthetic_ladder() {
        insta::assert_snapshot!("mpd", ladder_mpd());
    }
}
