//! The tests' HLS parser (`tests/common/playlist.rs`) on handwritten playlists, so that the
//! checks built on it are known to read playlists right.

mod common;

use common::playlist::{ByteRange, parse_master, parse_media};

#[test]
fn a_handwritten_iframe_playlist_reads_back_tag_by_tag() {
    let text = "#EXTM3U\n\
                #EXT-X-VERSION:7\n\
                #EXT-X-TARGETDURATION:3\n\
                #EXT-X-MEDIA-SEQUENCE:0\n\
                #EXT-X-PLAYLIST-TYPE:VOD\n\
                #EXT-X-I-FRAMES-ONLY\n\
                #EXT-X-MAP:URI=\"init.mp4\"\n\
                # a comment\n\
                #EXTINF:2.500000,\n\
                #EXT-X-BYTERANGE:1000@200\n\
                seg_0.m4s\n\
                #EXTINF:0.5,title\n\
                #EXT-X-BYTERANGE:300\n\
                seg_0.m4s\n\
                #EXT-X-DISCONTINUITY\n\
                #EXTINF:3,\n\
                seg_1.m4s\n\
                #EXT-X-ENDLIST\n";
    let p = parse_media(text).expect("parses");
    assert_eq!((p.version, p.target_duration, p.media_sequence), (Some(7), Some(3), Some(0)));
    assert_eq!(p.playlist_type.as_deref(), Some("VOD"));
    assert!(p.iframes_only && p.end_list && !p.independent_segments);
    assert_eq!(p.map_uri.as_deref(), Some("init.mp4"));
    assert_eq!(p.other_tags, ["#EXT-X-DISCONTINUITY"]);
    let uris: Vec<&str> = p.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["seg_0.m4s", "seg_0.m4s", "seg_1.m4s"]);
    assert_eq!(p.segments[0].duration_text, "2.500000");
    // A range without an offset continues the previous range of the same file.
    assert_eq!(p.segments[0].byte_range, Some(ByteRange { length: 1000, offset: 200 }));
    assert_eq!(p.segments[1].byte_range, Some(ByteRange { length: 300, offset: 1200 }));
    assert_eq!(p.segments[2].byte_range, None);
    assert!((p.duration() - 6.0).abs() < 1e-12);
}

#[test]
fn a_handwritten_master_reads_back_with_attribute_maps() {
    let text = "#EXTM3U\n\
                #EXT-X-VERSION:7\n\
                #EXT-X-INDEPENDENT-SEGMENTS\n\
                #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English, main\",CHANNELS=\"2\",URI=\"a0/index.m3u8\"\n\
                #EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aud\"\n\
                v0/index.m3u8\n\
                #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360\n\
                v1/index.m3u8\n\
                #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,CODECS=\"avc1.64001f\",URI=\"v0/iframes.m3u8\"\n";
    let m = parse_master(text).expect("parses");
    assert_eq!(m.version, Some(7));
    assert!(m.independent_segments);
    assert_eq!(m.media.len(), 1);
    // A comma inside a quoted string does not end the attribute.
    assert_eq!(m.media[0].get("NAME"), Some("English, main"));
    assert_eq!(m.media[0].get("CHANNELS"), Some("2"));
    assert!(m.media[0].is_quoted("URI") && !m.media[0].is_quoted("TYPE"));
    let uris: Vec<&str> = m.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["v0/index.m3u8", "v1/index.m3u8"]);
    let v0 = &m.variants[0].attributes;
    assert_eq!(v0.int("BANDWIDTH"), 2_000_000);
    assert_eq!(v0.get("CODECS"), Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(v0.get("FRAME-RATE"), Some("29.970"));
    assert_eq!(m.variants[1].attributes.get("AUDIO"), None);
    assert_eq!(m.iframe_streams.len(), 1);
    assert_eq!(m.iframe_streams[0].get("URI"), Some("v0/iframes.m3u8"));
}

#[test]
fn malformed_playlists_are_rejected_with_the_line() {
    assert!(parse_media("#EXT-X-VERSION:7\n").is_err(), "no #EXTM3U header");
    let no_uri = parse_media("#EXTM3U\n#EXTINF:6.0,\n#EXT-X-ENDLIST\n").expect_err("EXTINF without URI");
    assert!(no_uri.contains("no URI"), "{no_uri}");
    let bad = parse_media("#EXTM3U\n#EXTINF:six,\nseg_0.m4s\n").expect_err("bad EXTINF");
    assert!(bad.contains("line 2"), "{bad}");
    let orphan = parse_media("#EXTM3U\nseg_0.m4s\n").expect_err("URI without EXTINF");
    assert!(orphan.contains("line 2"), "{orphan}");
    assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").is_err(), "variant without URI");
    assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,\nv0.m3u8\n").is_err(), "trailing comma");
    assert!(parse_master("#EXTM3U\n#EXT-X-MEDIA:NAME=\"open\nx\n").is_err(), "unterminated quote");
}
