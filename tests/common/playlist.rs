//! A small, strict HLS playlist parser for tests: enough of RFC 8216 to read back what
//! `ladder` writes (media, I-frame and master playlists) and check it by value.
//!
//! It is also compiled into the library's unit tests (`src/package/hls.rs`), so it uses
//! only `std`.

#![allow(dead_code, reason = "each test binary uses a different part of it")]

use std::collections::BTreeMap;

/// An attribute list (`NAME=value,…`), quoted strings unquoted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    values: BTreeMap<String, String>,
    /// Attribute names whose value was a quoted string.
    quoted: Vec<String>,
}

impl Attributes {
    /// The value of `name`, quotes removed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name`, which must be present.
    pub fn req(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| panic!("attribute {name} missing in {self:?}"))
    }

    /// The value of `name` as an unsigned integer, which must be present.
    pub fn int(&self, name: &str) -> u64 {
        self.req(name).parse().unwrap_or_else(|_| panic!("attribute {name} is not an integer in {self:?}"))
    }

    /// Whether `name`'s value was written as a quoted string.
    pub fn is_quoted(&self, name: &str) -> bool {
        self.quoted.iter().any(|q| q == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// `length` bytes from `offset`, with the offset resolved when the playlist left it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub length: u64,
    pub offset: u64,
}

/// One media segment (or I-frame) of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The `EXTINF` duration in seconds.
    pub duration: f64,
    /// The `EXTINF` duration as written.
    pub duration_text: String,
    pub byte_range: Option<ByteRange>,
    pub uri: String,
}

/// A media or I-frame playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    pub version: Option<u64>,
    pub target_duration: Option<u64>,
    pub media_sequence: Option<u64>,
    pub playlist_type: Option<String>,
    pub independent_segments: bool,
    pub iframes_only: bool,
    pub end_list: bool,
    /// `EXT-X-MAP`'s `URI`.
    pub map_uri: Option<String>,
    pub segments: Vec<Segment>,
    /// Tags this parser does not interpret, as written.
    pub other_tags: Vec<String>,
}

impl MediaPlaylist {
    /// The sum of the `EXTINF` durations, in seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

/// A variant stream (`EXT-X-STREAM-INF` and the URI line after it).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub attributes: Attributes,
    pub uri: String,
}

/// A master (multivariant) playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterPlaylist {
    pub version: Option<u64>,
    pub independent_segments: bool,
    /// `EXT-X-MEDIA` tags.
    pub media: Vec<Attributes>,
    pub variants: Vec<Variant>,
    /// `EXT-X-I-FRAME-STREAM-INF` tags (their `URI` is an attribute).
    pub iframe_streams: Vec<Attributes>,
    pub other_tags: Vec<String>,
}

/// Reads an attribute list; errors name what is wrong.
pub fn parse_attributes(text: &str) -> Result<Attributes, String> {
    let mut attributes = Attributes::default();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(|| format!("attribute without '=' in {text:?}"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("bad attribute name {name:?} in {text:?}"));
        }
        let (value, after) = if let Some(inner) = after.strip_prefix('"') {
            let end = inner.find('"').ok_or_else(|| format!("unterminated quoted string in {text:?}"))?;
            attributes.quoted.push(name.to_owned());
            (&inner[..end], &inner[end + 1..])
        } else {
            after.split_at(after.find(',').unwrap_or(after.len()))
        };
        if attributes.values.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(format!("attribute {name} given twice in {text:?}"));
        }
        rest = match after.strip_prefix(',') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err(format!("trailing comma in {text:?}")),
            None if after.is_empty() => after,
            None => return Err(format!("expected ',' after {name} in {text:?}")),
        };
    }
    Ok(attributes)
}

/// Lines that are not blank, numbered from 1, after checking the `#EXTM3U` header.
fn lines(text: &str) -> Result<Vec<(usize, &str)>, String> {
    let lines: Vec<(usize, &str)> =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end())).filter(|(_, l)| !l.is_empty()).collect();
    match lines.first() {
        Some((1, "#EXTM3U")) => Ok(lines),
        _ => Err("the first line is not #EXTM3U".to_owned()),
    }
}

fn int(value: &str, at: usize) -> Result<u64, String> {
    value.parse().map_err(|_| format!("line {at}: {value:?} is not a decimal integer"))
}

/// Parses a media or I-frame playlist.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, String> {
    let mut p = MediaPlaylist::default();
    let mut pending: Option<(f64, String, Option<ByteRange>)> = None;
    // Where the last byte range of each URI ended, for ranges without an offset.
    let mut range_end: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending_range: Option<(u64, Option<u64>)> = None;
    for (at, line) in lines(text)?.into_iter().skip(1) {
        if let Some(tag) = line.strip_prefix('#') {
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-VERSION" => p.version = Some(int(value, at)?),
                "EXT-X-TARGETDURATION" => p.target_duration = Some(int(value, at)?),
                "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = Some(int(value, at)?),
                "EXT-X-PLAYLIST-TYPE" => p.playlist_type = Some(value.to_owned()),
                "EXT-X-INDEPENDENT-SEGMENTS" => p.independent_segments = true,
                "EXT-X-I-FRAMES-ONLY" => p.iframes_only = true,
                "EXT-X-ENDLIST" => p.end_list = true,
                "EXT-X-MAP" => p.map_uri = Some(parse_attributes(value)?.req("URI").to_owned()),
                "EXTINF" => {
                    let (duration, _title) =
                        value.split_once(',').ok_or_else(|| format!("line {at}: EXTINF without a comma"))?;
                    let seconds: f64 =
                        duration.parse().map_err(|_| format!("line {at}: EXTINF {duration:?} is not a number"))?;
                    if pending.is_some() {
                        return Err(format!("line {at}: EXTINF follows an EXTINF without a URI"));
                    }
                    pending = Some((seconds, duration.to_owned(), None));
                }
                "EXT-X-BYTERANGE" => {
                    let (length, offset) = match value.split_once('@') {
                        Some((l, o)) => (int(l, at)?, Some(int(o, at)?)),
                        None => (int(value, at)?, None),
                    };
                    pending_range = Some((length, offset));
                }
                _ if name.starts_with("EXT") => p.other_tags.push(line.to_owned()),
                // A comment.
                _ => {}
            }
        } else {
            let (duration, duration_text, _) =
                pending.take().ok_or_else(|| format!("line {at}: URI {line:?} without an EXTINF before it"))?;
            let byte_range = match pending_range.take() {
                Some((length, offset)) => {
                    let offset = match offset {
                        Some(o) => o,
                        None => *range_end
                            .get(line)
                            .ok_or_else(|| format!("line {at}: byte range without offset for a new URI"))?,
                    };
                    range_end.insert(line.to_owned(), offset + length);
                    Some(ByteRange { length, offset })
                }
                None => None,
            };
            p.segments.push(Segment { duration, duration_text, byte_range, uri: line.to_owned() });
        }
    }
    if pending.is_some() {
        return Err("the last EXTINF has no URI".to_owned());
    }
    Ok(p)
}

/// Parses a master playlist.
pub fn parse_master(text: &str) -> Result<MasterPlaylist, String> {
    let mut p = MasterPlaylist::default();
    let mut pending: Option<Attributes> = None;
    for (at, line) in lines(text)?.into_iter().skip(1) {
        if let Some(tag) = line.strip_prefix('#') {
            if pending.is_some() {
                return Err(format!("line {at}: EXT-X-STREAM-INF is not followed by its URI"));
            }
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            let attributes = || parse_attributes(value).map_err(|e| format!("line {at}: {e}"));
            match name {
                "EXT-X-VERSION" => p.version = Some(int(value, at)?),
                "EXT-X-INDEPENDENT-SEGMENTS" => p.independent_segments = true,
                "EXT-X-MEDIA" => p.media.push(attributes()?),
                "EXT-X-STREAM-INF" => pending = Some(attributes()?),
                "EXT-X-I-FRAME-STREAM-INF" => p.iframe_streams.push(attributes()?),
                "EXTINF" | "EXT-X-TARGETDURATION" => return Err(format!("line {at}: media playlist tag in a master")),
                _ if name.starts_with("EXT") => p.other_tags.push(line.to_owned()),
                _ => {}
            }
        } else {
            let attributes =
                pending.take().ok_or_else(|| format!("line {at}: URI {line:?} without EXT-X-STREAM-INF"))?;
            p.variants.push(Variant { attributes, uri: line.to_owned() });
        }
    }
    if pending.is_some() {
        return Err("the last EXT-X-STREAM-INF has no URI".to_owned());
    }
    Ok(p)
}
