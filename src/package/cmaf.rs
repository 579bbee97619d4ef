//! Reading the fragmented MP4 that libavformat's `mp4` muxer writes
//! (`empty_moov+default_base_moof+frag_custom`), at the level of boxes:
//!
//! - [`split`] finds the init part (`ftyp`+`moov`) and each fragment (`moof`+`mdat`), with
//!   its decode time, duration and the byte size of its first (IDR) sample — what the
//!   segments, the I-frame playlists and the checkpoints need;
//! - [`shift_decode_time`] moves a fragment onto the global timeline by rewriting its
//!   `tfdt`, so that chunks encoded separately continue one another;
//! - [`codec_string`] reads the RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`) from the
//!   sample entry the muxer really wrote.

use std::ops::Range;

/// Why bytes are not the fragmented MP4 ladder expects.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmafError {
    #[error("box at byte {at} is cut short or has a bad size")]
    BadBox { at: usize },
    #[error("no '{0}' box where one is required")]
    Missing(&'static str),
    #[error("fragment at byte {at} is a '{found}' box, expected 'moof' followed by 'mdat'")]
    Unexpected { at: usize, found: String },
    #[error("no codec string known for sample entry '{0}'")]
    UnknownSampleEntry(String),
}

/// One box: its four-character type and byte range (header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxRef {
    pub kind: [u8; 4],
    pub range: Range<usize>,
    pub header: usize,
}

impl BoxRef {
    /// The payload, after the header.
    pub fn body(&self) -> Range<usize> {
        self.range.start + self.header..self.range.end
    }

    pub fn is(&self, kind: &[u8; 4]) -> bool {
        &self.kind == kind
    }
}

/// The boxes directly inside `range` of `bytes`.
pub fn boxes(bytes: &[u8], range: Range<usize>) -> Result<Vec<BoxRef>, CmafError> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let bad = CmafError::BadBox { at: pos };
        if pos + 8 > range.end {
            return Err(bad);
        }
        let size32 = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = bytes[pos + 4..pos + 8].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            0 => (range.end - pos, 8),
            1 => {
                if pos + 16 > range.end {
                    return Err(bad);
                }
                let large = u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes"));
                (usize::try_from(large).map_err(|_| CmafError::BadBox { at: pos })?, 16)
            }
            n => (n as usize, 8),
        };
        if size < header || pos + size > range.end {
            return Err(bad);
        }
        out.push(BoxRef { kind, range: pos..pos + size, header });
        pos += size;
    }
    Ok(out)
}

fn child(bytes: &[u8], parent: &BoxRef, kind: &[u8; 4]) -> Result<Option<BoxRef>, CmafError> {
    Ok(boxes(bytes, parent.body())?.into_iter().find(|b| b.is(kind)))
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// A `moof`+`mdat` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// From the start of `moof` to the end of `mdat`.
    pub range: Range<usize>,
    /// `tfdt` baseMediaDecodeTime, in the track's timescale.
    pub decode_time: u64,
    /// Sum of the sample durations, in the track's timescale.
    pub duration: u64,
    pub sample_count: u32,
    /// Bytes from the start of `moof` to the end of the first sample: the byte range an
    /// I-frame playlist names for this fragment's key frame.
    pub first_sample_end: usize,
    /// Where the `tfdt` value is, and whether it is 64-bit.
    tfdt_at: usize,
    tfdt_wide: bool,
}

/// The init part and the fragments of a fragmented MP4 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `ftyp` + `moov` (and anything before the first `moof`).
    pub init: Range<usize>,
    pub fragments: Vec<Fragment>,
}

/// Splits a single-track fragmented MP4 into its init part and fragments.
pub fn split(bytes: &[u8]) -> Result<Split, CmafError> {
    let top = boxes(bytes, 0..bytes.len())?;
    let first_moof = top.iter().position(|b| b.is(b"moof")).unwrap_or(top.len());
    if !top[..first_moof].iter().any(|b| b.is(b"moov")) {
        return Err(CmafError::Missing("moov"));
    }
    let init = 0..top.get(first_moof).map_or(bytes.len(), |b| b.range.start);
    let trex_default = trex_defaults(bytes, &top)?;
    let mut fragments = Vec::new();
    let mut rest = top[first_moof..].iter();
    while let Some(moof) = rest.next() {
        let unexpected = |b: &BoxRef| CmafError::Unexpected {
            at: b.range.start,
            found: String::from_utf8_lossy(&b.kind).into_owned(),
        };
        if !moof.is(b"moof") {
            if moof.is(b"mfra") || moof.is(b"free") {
                continue;
            }
            return Err(unexpected(moof));
        }
        let mdat = rest.next().ok_or(CmafError::Missing("mdat"))?;
        if !mdat.is(b"mdat") {
            return Err(unexpected(mdat));
        }
        fragments.push(read_fragment(bytes, moof, mdat, trex_default)?);
    }
    Ok(Split { init, fragments })
}

/// (default duration, default size) from `moov/mvex/trex`.
fn trex_defaults(bytes: &[u8], top: &[BoxRef]) -> Result<(u32, u32), CmafError> {
    let moov = top.iter().find(|b| b.is(b"moov")).ok_or(CmafError::Missing("moov"))?;
    let Some(mvex) = child(bytes, moov, b"mvex")? else { return Ok((0, 0)) };
    let Some(trex) = child(bytes, &mvex, b"trex")? else { return Ok((0, 0)) };
    let b = trex.body().start;
    // version/flags, track_ID, default_sample_description_index, duration, size, flags
    Ok((be32(bytes, b + 12), be32(bytes, b + 16)))
}

fn read_fragment(bytes: &[u8], moof: &BoxRef, mdat: &BoxRef, trex: (u32, u32)) -> Result<Fragment, CmafError> {
    let traf = child(bytes, moof, b"traf")?.ok_or(CmafError::Missing("traf"))?;
    let tfhd = child(bytes, &traf, b"tfhd")?.ok_or(CmafError::Missing("tfhd"))?;
    let tfdt = child(bytes, &traf, b"tfdt")?.ok_or(CmafError::Missing("tfdt"))?;
    let trun = child(bytes, &traf, b"trun")?.ok_or(CmafError::Missing("trun"))?;
    let defaults = fragment_defaults(bytes, &tfhd, trex);
    let t = tfdt.body().start;
    let (decode_time, tfdt_wide) = decode_time(bytes, t);
    let TrunSummary { data_offset, sample_count, duration, first_size } = read_trun(bytes, &trun, defaults)?;
    // With default-base-is-moof the data offset counts from the start of moof.
    let first_sample_start = match data_offset {
        Some(off) => moof.range.start + off.max(0) as usize,
        None => mdat.body().start,
    };
    let first_sample_end = first_sample_start + first_size.unwrap_or(0) as usize;
    if first_sample_end > mdat.range.end {
        return Err(CmafError::BadBox { at: mdat.range.start });
    }
    Ok(Fragment {
        range: moof.range.start..mdat.range.end,
        decode_time,
        duration,
        sample_count,
        first_sample_end: first_sample_end - moof.range.start,
        tfdt_at: t + 4,
        tfdt_wide,
    })
}

/// The sample duration and size a fragment's `tfhd` sets, else the `trex` defaults.
fn fragment_defaults(bytes: &[u8], tfhd: &BoxRef, trex: (u32, u32)) -> (u32, u32) {
    let mut p = tfhd.body().start;
    let flags = be32(bytes, p) & 0x00ff_ffff;
    p += 8; // version/flags, track_ID
    if flags & 0x01 != 0 {
        p += 8; // base_data_offset
    }
    if flags & 0x02 != 0 {
        p += 4; // sample_description_index
    }
    let mut default_duration = trex.0;
    let mut default_size = trex.1;
    if flags & 0x08 != 0 {
        default_duration = be32(bytes, p);
        p += 4;
    }
    if flags & 0x10 != 0 {
        default_size = be32(bytes, p);
    }

    (default_duration, default_size)
}

/// `tfdt`'s base media decode time, and whether it is the 64-bit version.
fn decode_time(bytes: &[u8], t: usize) -> (u64, bool) {
    let tfdt_wide = bytes[t] == 1;
    let decode_time = if tfdt_wide {
        u64::from_be_bytes(bytes[t + 4..t + 12].try_into().expect("8 bytes"))
    } else {
        u64::from(be32(bytes, t + 4))
    };

    (decode_time, tfdt_wide)
}

/// What `trun` says of a fragment's samples.
struct TrunSummary {
    data_offset: Option<i32>,
    sample_count: u32,
    /// Of all samples, in track ticks.
    duration: u64,
    first_size: Option<u32>,
}

fn read_trun(
    bytes: &[u8],
    trun: &BoxRef,
    (default_duration, default_size): (u32, u32),
) -> Result<TrunSummary, CmafError> {
    let mut r = trun.body().start;
    let trun_flags = be32(bytes, r) & 0x00ff_ffff;
    let sample_count = be32(bytes, r + 4);
    r += 8;
    let data_offset = if trun_flags & 0x01 != 0 {
        let v = be32(bytes, r) as i32;
        r += 4;
        Some(v)
    } else {
        None
    };
    if trun_flags & 0x04 != 0 {
        r += 4; // first_sample_flags
    }
    let mut duration = 0u64;
    let mut first_size = None;
    for _ in 0..sample_count {
        let mut d = default_duration;
        let mut s = default_size;
        if trun_flags & 0x100 != 0 {
            d = be32(bytes, r);
            r += 4;
        }
        if trun_flags & 0x200 != 0 {
            s = be32(bytes, r);
            r += 4;
        }
        if trun_flags & 0x400 != 0 {
            r += 4;
        }
        if trun_flags & 0x800 != 0 {
            r += 4;
        }
        if r > trun.range.end {
            return Err(CmafError::BadBox { at: trun.range.start });
        }
        duration += u64::from(d);
        first_size.get_or_insert(s);
    }
    Ok(TrunSummary { data_offset, sample_count, duration, first_size })
}

/// Adds `delta` to a fragment's `tfdt` in place (`bytes` is the buffer it was split from).
/// A 32-bit `tfdt` that would overflow is an error: the muxer writes 64-bit ones once
/// times grow, so this only guards against misuse.
pub fn shift_decode_time(bytes: &mut [u8], fragment: &mut Fragment, delta: u64) -> Result<(), CmafError> {
    let value = fragment.decode_time + delta;
    if fragment.tfdt_wide {
        bytes[fragment.tfdt_at..fragment.tfdt_at + 8].copy_from_slice(&value.to_be_bytes());
    } else {
        let narrow = u32::try_from(value).map_err(|_| CmafError::BadBox { at: fragment.tfdt_at })?;
        bytes[fragment.tfdt_at..fragment.tfdt_at + 4].copy_from_slice(&narrow.to_be_bytes());
    }
    fragment.decode_time = value;
    Ok(())
}

/// The brand of a CMAF track (ISO/IEC 23000-19 §7.2), which the MPD's CMAF profile
/// promises every init segment's `ftyp` lists.
pub const CMAF_BRAND: [u8; 4] = *b"cmfc";

/// `init` (an init segment: `ftyp` first) with `brand` among its `ftyp`'s compatible
/// brands. libavformat 5.1's muxer writes `iso5`/`iso6`/`mp41` only; its `cmaf` flag would
/// also change the major brand and other boxes, so the one box is rewritten instead. The
/// `moov` after it only moves: an init segment holds no sample offsets.
pub fn with_compatible_brand(init: &[u8], brand: [u8; 4]) -> Result<Vec<u8>, CmafError> {
    let top = boxes(init, 0..init.len())?;
    let ftyp = top.first().filter(|b| b.is(b"ftyp")).ok_or(CmafError::Missing("ftyp"))?;
    let body = &init[ftyp.body()];
    if body.len() < 8 || ftyp.header != 8 {
        return Err(CmafError::BadBox { at: 0 });
    }
    if body[8..].chunks(4).any(|b| b == brand) {
        return Ok(init.to_vec());
    }
    let size = u32::try_from(ftyp.range.len() + 4).map_err(|_| CmafError::BadBox { at: 0 })?;
    let mut out = Vec::with_capacity(init.len() + 4);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(b"ftyp");
    out.extend_from_slice(body);
    out.extend_from_slice(&brand);
    out.extend_from_slice(&init[ftyp.range.end..]);
    Ok(out)
}

/// The track timescale from `moov/trak/mdia/mdhd`.
pub fn timescale(bytes: &[u8], init: Range<usize>) -> Result<u32, CmafError> {
    let top = boxes(bytes, init)?;
    let moov = top.iter().find(|b| b.is(b"moov")).ok_or(CmafError::Missing("moov"))?;
    let trak = child(bytes, moov, b"trak")?.ok_or(CmafError::Missing("trak"))?;
    let mdia = child(bytes, &trak, b"mdia")?.ok_or(CmafError::Missing("mdia"))?;
    let mdhd = child(bytes, &mdia, b"mdhd")?.ok_or(CmafError::Missing("mdhd"))?;
    let b = mdhd.body().start;
    // version 1: 8-byte creation and modification times; version 0: 4-byte ones.
    Ok(if bytes[b] == 1 { be32(bytes, b + 20) } else { be32(bytes, b + 12) })
}

/// The RFC 6381 codec string of the (single) track in an init segment, read from the
/// sample entry the muxer wrote: `avc1.64001f`, `hvc1.1.6.L93.B0`, `av01.0.04M.08`, `mp4a.40.2`.
pub fn codec_string(bytes: &[u8], init: Range<usize>) -> Result<String, CmafError> {
    let top = boxes(bytes, init)?;
    let moov = top.iter().find(|b| b.is(b"moov")).ok_or(CmafError::Missing("moov"))?;
    let mut node = child(bytes, moov, b"trak")?.ok_or(CmafError::Missing("trak"))?;
    for kind in [b"mdia", b"minf", b"stbl", b"stsd"] {
        node = child(bytes, &node, kind)?.ok_or(CmafError::Missing("stsd"))?;
    }
    // stsd: version/flags, entry_count, then the sample entries.
    let entries = boxes(bytes, node.body().start + 8..node.range.end)?;
    let entry = entries.first().ok_or(CmafError::Missing("sample entry"))?;
    let name = String::from_utf8_lossy(&entry.kind).into_owned();
    // Visual sample entries have 78 bytes of fields before their child boxes; audio 28.
    let (fields, is_audio) = match &entry.kind {
        b"mp4a" => (28, true),
        _ => (78, false),
    };
    let children = boxes(bytes, entry.body().start + fields..entry.range.end)?;
    let find = |kind: &[u8; 4]| children.iter().find(|b| b.is(kind)).map(|b| &bytes[b.body()]);
    match (&entry.kind, is_audio) {
        (b"avc1" | b"avc3", _) => {
            let c = find(b"avcC").ok_or(CmafError::Missing("avcC"))?;
            Ok(format!("{name}.{:02x}{:02x}{:02x}", c[1], c[2], c[3]))
        }
        (b"hvc1" | b"hev1", _) => find(b"hvcC").map(|c| hevc_string(&name, c)).ok_or(CmafError::Missing("hvcC")),
        (b"av01", _) => find(b"av1C").map(av1_string).ok_or(CmafError::Missing("av1C")),
        (b"mp4a", true) => find(b"esds")
            .and_then(aac_object_type)
            .map(|aot| format!("mp4a.40.{aot}"))
            .ok_or(CmafError::Missing("esds")),
        _ => Err(CmafError::UnknownSampleEntry(name)),
    }
}

/// ISO/IEC 14496-15 Annex E: `hvc1.<profile>.<compat, reversed>.<tier><level>.<constraints>`.
fn hevc_string(name: &str, c: &[u8]) -> String {
    let space = ["", "A", "B", "C"][usize::from(c[1] >> 6)];
    let tier = if c[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = c[1] & 0x1f;
    let compat = u32::from_be_bytes([c[2], c[3], c[4], c[5]]).reverse_bits();
    let level = c[12];
    let mut constraints: Vec<u8> = c[6..12].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut s = format!("{name}.{space}{profile}.{compat:x}.{tier}{level}");
    for b in constraints {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// AV1 ISOBMFF binding: `av01.<profile>.<level><tier>.<bitdepth>`.
fn av1_string(c: &[u8]) -> String {
    let profile = c[1] >> 5;
    let level = c[1] & 0x1f;
    let tier = if c[2] & 0x80 != 0 { 'H' } else { 'M' };
    let high_bitdepth = c[2] & 0x40 != 0;
    let twelve_bit = c[2] & 0x20 != 0;
    let depth = match (high_bitdepth, twelve_bit) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    format!("av01.{profile}.{level:02}{tier}.{depth:02}")
}

/// The audio object type from an `esds` box's AudioSpecificConfig (2 = AAC-LC).
fn aac_object_type(esds: &[u8]) -> Option<u8> {
    // Skip version/flags, then walk descriptors: ES (3) → DecoderConfig (4) → DecSpecificInfo (5).
    let mut p = 4;
    let mut want = 3u8;
    while p < esds.len() {
        let tag = esds[p];
        p += 1;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = *esds.get(p)?;
            p += 1;
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        match (tag, want) {
            (3, 3) => {
                let flags = *esds.get(p + 2)?;
                p += 3;
                if flags & 0x80 != 0 {
                    p += 2;
                }
                if flags & 0x40 != 0 {
                    p += 1 + usize::from(*esds.get(p)?);
                }
                if flags & 0x20 != 0 {
                    p += 2;
                }
                want = 4;
            }
            (4, 4) => {
                p += 13;
                want = 5;
            }
            (5, 5) => {
                let aot = esds.get(p)? >> 3;
                return Some(if aot == 31 { 32 + ((esds.get(p)? & 0x07) << 3 | esds.get(p + 1)? >> 5) } else { aot });
            }
            _ => p += len,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_main_level_4_1() {
        // general_profile_space 0, tier main, profile 1, compat flags 0x60000000, level 123.
        let mut c = vec![1u8, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 123];
        c.resize(23, 0);
        assert_eq!(hevc_string("hvc1", &c), "hvc1.1.6.L123.90");
    }

    #[test]
    fn av1_main_8_bit() {
        assert_eq!(av1_string(&[0x81, 0x08, 0x0c, 0]), "av01.0.08M.08");
    }

    #[test]
    fn aac_lc_from_esds() {
        // ES_Descriptor(ES_ID 1) > DecoderConfig(0x40 audio) > DecSpecificInfo 0x11 0x90 (AAC-LC 48 kHz stereo)
        let esds = [
            0, 0, 0, 0, 0x03, 0x19, 0x00, 0x01, 0x00, 0x04, 0x11, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
            0x02, 0x11, 0x90, 0x06, 0x01, 0x02,
        ];
        assert_eq!(aac_object_type(&esds), Some(2));
    }

    #[test]
    fn cmfc_joins_the_compatible_brands_once() {
        let ftyp = [&[0, 0, 0, 24][..], b"ftypiso5", &[0, 0, 2, 0], b"iso5iso6"].concat();
        let moov = [&[0, 0, 0, 8][..], b"moov"].concat();
        let init = [ftyp, moov.clone()].concat();
        let branded = with_compatible_brand(&init, CMAF_BRAND).unwrap();
        let top = boxes(&branded, 0..branded.len()).unwrap();
        assert_eq!(
            &branded[top[0].range.clone()],
            [&[0, 0, 0, 28][..], b"ftypiso5", &[0, 0, 2, 0], b"iso5iso6cmfc"].concat()
        );
        assert_eq!(&branded[top[1].range.clone()], moov.as_slice());
        assert_eq!(with_compatible_brand(&branded, CMAF_BRAND).unwrap(), branded);
        assert_eq!(with_compatible_brand(&moov, CMAF_BRAND), Err(CmafError::Missing("ftyp")));
    }

    #[test]
    fn truncated_boxes_are_errors() {
        let bytes = [0, 0, 0, 32, b'f', b't', b'y', b'p', 0, 0];
        assert_eq!(boxes(&bytes, 0..bytes.len()), Err(CmafError::BadBox { at: 0 }));
    }
}
