//! What the checksum an S3 object is stored with promises about its bytes, and whether a
//! fetched copy keeps that promise.
//!
//! S3 stores one checksum per object, of one algorithm, in one of two kinds:
//! - **full object**: the checksum of all the bytes. Every single-request upload
//!   (`PutObject`, always `FULL_OBJECT`), and multipart uploads created with
//!   `ChecksumType=FULL_OBJECT` (CRC32, CRC32C, CRC64NVME only; CRC64NVME is always full).
//! - **composite**: the checksum of the parts' binary checksums concatenated in part order,
//!   reported in base64 with a `-N` suffix (N parts) and `x-amz-checksum-type: COMPOSITE`.
//!   The default of multipart uploads with CRC32, CRC32C, SHA-1 and SHA-256 (what the AWS
//!   CLI and SDK transfer managers make of anything over their multipart threshold). It
//!   depends on where the parts were cut, so checking it needs the part sizes, and
//!   localising a bad part needs each part's own checksum (`GetObjectAttributes` with
//!   `ObjectParts`).
//!
//! S3-compatible stores are less precise: some omit the type and the `-N` suffix (moto's
//! HEAD), so a CRC on a multipart object (its ETag ends in `-N`) can be either kind; then
//! the copy is accepted when it reproduces the value under either.

use std::ops::Range;
use std::path::Path;

use base64::Engine as _;

/// A checksum algorithm S3 stores with objects, that ladder can recompute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    /// As S3 spells it (`x-amz-checksum-type`, error messages).
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    fn hasher(self) -> Box<dyn aws_smithy_checksums::http::HttpChecksum> {
        use aws_smithy_checksums::ChecksumAlgorithm as A;
        match self {
            Self::Crc32 => A::Crc32,
            Self::Crc32c => A::Crc32c,
            Self::Crc64Nvme => A::Crc64Nvme,
            Self::Sha1 => A::Sha1,
            Self::Sha256 => A::Sha256,
        }
        .into_impl()
    }

    /// The checksum of `bytes`.
    pub(super) fn digest(self, bytes: &[u8]) -> Vec<u8> {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finalize().to_vec()
    }
}

/// How a stored checksum relates to the object's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    FullObject,
    /// Of the part checksums; the number of parts when the store said it.
    Composite {
        parts: Option<u32>,
    },
    /// A multipart object's CRC whose kind the store did not say: either of the two.
    Unstated {
        parts: u32,
    },
}

/// The checksum an object is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    pub algorithm: Algorithm,
    /// Decoded, without any `-N` suffix.
    pub value: Vec<u8>,
    pub kind: Kind,
}

impl Stored {
    /// Reads what a HEAD says: the value of the algorithm's `x-amz-checksum-*` header,
    /// `x-amz-checksum-type` if any, and the ETag (`…-N` for a multipart upload). `None`
    /// when the value is not base64.
    pub(super) fn from_head(algorithm: Algorithm, value: &str, kind: Option<&str>, etag: &str) -> Option<Self> {
        let (value, suffix) = split_part_count(value);
        let value = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
        let multipart = split_part_count(etag.trim_matches('"')).1;
        let kind = match kind {
            Some(k) if k.eq_ignore_ascii_case("FULL_OBJECT") => Kind::FullObject,
            Some(k) if k.eq_ignore_ascii_case("COMPOSITE") => Kind::Composite { parts: suffix.or(multipart) },
            _ => match (suffix, multipart) {
                (Some(parts), _) => Kind::Composite { parts: Some(parts) },
                (None, None) => Kind::FullObject,
                (None, Some(_)) if algorithm == Algorithm::Crc64Nvme => Kind::FullObject,
                (None, Some(parts)) if matches!(algorithm, Algorithm::Sha1 | Algorithm::Sha256) => {
                    Kind::Composite { parts: Some(parts) }
                }
                (None, Some(parts)) => Kind::Unstated { parts },
            },
        };
        Some(Self { algorithm, value, kind })
    }

    /// Whether checking this checksum needs the object's part boundaries.
    pub(super) fn needs_parts(&self) -> bool {
        !matches!(self.kind, Kind::FullObject)
    }

    /// The number of parts the store reported, if it did.
    pub(super) fn parts(&self) -> Option<u32> {
        match self.kind {
            Kind::FullObject => None,
            Kind::Composite { parts } => parts,
            Kind::Unstated { parts } => Some(parts),
        }
    }

    /// `x-amz-checksum-type` from `GetObjectAttributes`, for a store whose HEAD omits it.
    pub(super) fn settle_kind(&mut self, kind: &str) {
        let parts = self.parts();
        if kind.eq_ignore_ascii_case("FULL_OBJECT") {
            self.kind = Kind::FullObject;
        } else if kind.eq_ignore_ascii_case("COMPOSITE") {
            self.kind = Kind::Composite { parts };
        }
    }

    fn show(&self, value: &[u8]) -> String {
        let text = base64::engine::general_purpose::STANDARD.encode(value);
        match self.kind {
            Kind::Composite { parts: Some(n) } => format!("{text}-{n}"),
            _ => text,
        }
    }
}

/// `("abc==", Some(3))` for `"abc==-3"`: the part count S3 appends to composite checksums
/// and multipart ETags.
pub(super) fn split_part_count(value: &str) -> (&str, Option<u32>) {
    match value.rsplit_once('-') {
        Some((head, count)) if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) => {
            (head, count.parse().ok())
        }
        _ => (value, None),
    }
}

/// One part of a multipart object: its bytes and, when the store listed it, its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub number: u32,
    /// End exclusive.
    pub range: Range<u64>,
    pub expected: Option<Vec<u8>>,
}

/// Whether `parts` cut exactly `size` bytes into consecutive pieces, and as many as the
/// checksum says when it says.
pub(super) fn is_layout(parts: &[Part], size: u64, count: Option<u32>) -> bool {
    let mut end = 0;
    for (i, p) in parts.iter().enumerate() {
        if p.range.start != end || p.range.end < p.range.start || u64::from(p.number) != i as u64 + 1 {
            return false;
        }
        end = p.range.end;
    }
    !parts.is_empty() && end == size && count.is_none_or(|n| n as usize == parts.len())
}

/// Checksums of a fetched file: of all of it, and of each part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Digests {
    pub whole: Vec<u8>,
    pub parts: Vec<Vec<u8>>,
}

/// Reads the file once, computing the checksum of all of it and of each of `parts` (which
/// must be consecutive from byte 0).
pub(super) fn digest_file(path: &Path, algorithm: Algorithm, parts: &[Range<u64>]) -> std::io::Result<Digests> {
    digest_reader(std::fs::File::open(path)?, algorithm, parts)
}

/// [`digest_file`] over any reader, from its start to its end.
pub(super) fn digest_reader(
    mut file: impl std::io::Read,
    algorithm: Algorithm,
    parts: &[Range<u64>],
) -> std::io::Result<Digests> {
    let mut whole = algorithm.hasher();
    let mut done = Vec::with_capacity(parts.len());
    let mut part = algorithm.hasher();
    let mut offset = 0u64;
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buffer[..n];
        whole.update(chunk);
        while !chunk.is_empty() {
            let Some(current) = parts.get(done.len()) else { break };
            let take = usize::try_from(current.end - offset).map_or(chunk.len(), |left| left.min(chunk.len()));
            part.update(&chunk[..take]);
            chunk = &chunk[take..];
            offset += take as u64;
            if offset == current.end {
                done.push(std::mem::replace(&mut part, algorithm.hasher()).finalize().to_vec());
            }
        }
    }
    // Empty trailing parts (a zero-byte object uploaded as one part) end where they start.
    while parts.get(done.len()).is_some_and(|p| p.start == p.end && p.end == offset) {
        done.push(std::mem::replace(&mut part, algorithm.hasher()).finalize().to_vec());
    }
    Ok(Digests { whole: whole.finalize().to_vec(), parts: done })
}

/// The composite checksum of parts whose checksums are `parts`.
pub(super) fn composite(algorithm: Algorithm, parts: &[Vec<u8>]) -> Vec<u8> {
    algorithm.digest(&parts.concat())
}

/// What checking a fetched copy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The copy reproduces the stored checksum; says which.
    Verified(String),
    /// The stored checksum cannot be checked against the copy; says why.
    Unverifiable(String),
    Mismatch(Mismatch),
}

/// Bytes of the copy that do not match the stored checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mismatch {
    /// What to fetch again: the parts whose checksums differ, or the whole object when the
    /// difference cannot be narrowed down.
    pub ranges: Vec<Range<u64>>,
    /// What those bytes read back as: equal on two fetches means the store serves them so.
    pub read: Vec<Vec<u8>>,
    /// A clause saying what differs (`part 2 of 3 (bytes …) has CRC32 … where the store recorded …`).
    pub what: String,
}

/// Checks `digests` (of a copy of `size` bytes, per part of `layout` when known) against
/// the stored checksum.
pub(super) fn check(stored: &Stored, layout: Option<&[Part]>, digests: &Digests, size: u64) -> Verdict {
    let name = stored.algorithm.name();
    let everything = || std::iter::once(0..size).collect();
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let whole_matches = digests.whole == stored.value;
    if stored.kind == Kind::FullObject {
        return if whole_matches {
            Verdict::Verified(format!("{name} of the whole object"))
        } else {
            Verdict::Mismatch(Mismatch {
                ranges: everything(),
                read: vec![digests.whole.clone()],
                what: format!(
                    "its bytes have {name} {} where the store recorded {}",
                    b64(&digests.whole),
                    stored.show(&stored.value)
                ),
            })
        };
    }
    if matches!(stored.kind, Kind::Unstated { .. }) && whole_matches {
        return Verdict::Verified(format!("{name} of the whole object"));
    }
    let Some(layout) = layout.filter(|l| l.len() == digests.parts.len()) else {
        return Verdict::Unverifiable(format!(
            "its {name} checksum is a composite of {} parts and the store does not say where the parts end",
            stored.parts().map_or_else(|| "its".to_owned(), |n| n.to_string())
        ));
    };
    let count = layout.len();
    let bad: Vec<(&Part, &Vec<u8>)> = layout
        .iter()
        .zip(&digests.parts)
        .filter(|(part, read)| part.expected.as_ref().is_some_and(|e| e != *read))
        .collect();
    if let Some((first, read)) = bad.first() {
        let more = match bad.len() {
            1 => String::new(),
            n => format!(" (and {} more parts)", n - 1),
        };
        return Verdict::Mismatch(Mismatch {
            ranges: bad.iter().map(|(p, _)| p.range.clone()).collect(),
            read: bad.iter().map(|(_, r)| (*r).clone()).collect(),
            what: format!(
                "part {} of {count} (bytes {}–{}) has {name} {} where the store recorded {}{more}",
                first.number,
                first.range.start,
                first.range.end.saturating_sub(1),
                b64(read),
                b64(first.expected.as_deref().unwrap_or_default()),
            ),
        });
    }
    let of_parts = composite(stored.algorithm, &digests.parts);
    let each = if layout.iter().all(|p| p.expected.is_some()) { ", each part's checked" } else { "" };
    if of_parts == stored.value {
        return Verdict::Verified(format!("composite {name} of {count} parts{each}"));
    }
    let what = if matches!(stored.kind, Kind::Unstated { .. }) {
        format!(
            "it has {name} {} (whole) and {}-{count} (of its {count} parts) where the store recorded {}",
            b64(&digests.whole),
            b64(&of_parts),
            b64(&stored.value)
        )
    } else {
        format!(
            "its {count} parts have composite {name} {}-{count} where the store recorded {}",
            b64(&of_parts),
            stored.show(&stored.value)
        )
    };
    Verdict::Mismatch(Mismatch { ranges: everything(), read: vec![digests.whole.clone(), of_parts], what })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    fn noise(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7]).collect()
    }

    /// A file of `bytes` in a temp dir, its parts cut every `part` bytes.
    fn file_with_parts(bytes: &[u8], part: usize) -> (tempfile::NamedTempFile, Vec<Part>) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let parts = bytes
            .chunks(part)
            .enumerate()
            .map(|(i, c)| {
                let start = (i * part) as u64;
                Part { number: i as u32 + 1, range: start..start + c.len() as u64, expected: None }
            })
            .collect();
        (file, parts)
    }

    fn ranges(parts: &[Part]) -> Vec<Range<u64>> {
        parts.iter().map(|p| p.range.clone()).collect()
    }

    #[test]
    fn the_part_count_suffix_is_split_off_values_and_etags() {
        assert_eq!(split_part_count("Y+soHg==-3"), ("Y+soHg==", Some(3)));
        assert_eq!(split_part_count("Y+soHg=="), ("Y+soHg==", None));
        assert_eq!(
            split_part_count("d41d8cd98f00b204e9800998ecf8427e-12"),
            ("d41d8cd98f00b204e9800998ecf8427e", Some(12))
        );
        assert_eq!(split_part_count("a-b"), ("a-b", None));
        assert_eq!(split_part_count("abc-"), ("abc-", None));
    }

    #[test]
    fn the_kind_comes_from_the_type_then_the_suffix_then_the_etag() {
        let value = b64(b"1234");
        let kind = |algorithm, value: &str, kind, etag| Stored::from_head(algorithm, value, kind, etag).unwrap().kind;
        let single = "\"0123456789abcdef0123456789abcdef\"";
        let multi = "\"0123456789abcdef0123456789abcdef-3\"";
        assert_eq!(kind(Algorithm::Crc32, &value, None, single), Kind::FullObject);
        assert_eq!(kind(Algorithm::Crc32, &format!("{value}-3"), None, multi), Kind::Composite { parts: Some(3) });
        assert_eq!(kind(Algorithm::Crc32, &value, Some("COMPOSITE"), multi), Kind::Composite { parts: Some(3) });
        assert_eq!(kind(Algorithm::Crc32, &value, Some("FULL_OBJECT"), multi), Kind::FullObject);
        // A store that says neither: SHA can only be composite, CRC64NVME only full, the
        // other CRCs either.
        assert_eq!(kind(Algorithm::Sha256, &value, None, multi), Kind::Composite { parts: Some(3) });
        assert_eq!(kind(Algorithm::Crc64Nvme, &value, None, multi), Kind::FullObject);
        assert_eq!(kind(Algorithm::Crc32c, &value, None, multi), Kind::Unstated { parts: 3 });
        // An SSE-KMS object's ETag is no MD5 but still says multipart or not.
        assert_eq!(kind(Algorithm::Crc32, &value, None, "\"kms-opaque-tag\""), Kind::FullObject);
        assert!(Stored::from_head(Algorithm::Crc32, "not base64!", None, single).is_none());
    }

    #[test]
    fn digests_split_at_part_boundaries_across_read_buffers() {
        let bytes = noise((1 << 20) * 2 + 12345);
        let (file, parts) = file_with_parts(&bytes, 700_000);
        let digests = digest_file(file.path(), Algorithm::Crc32c, &ranges(&parts)).unwrap();
        assert_eq!(digests.whole, Algorithm::Crc32c.digest(&bytes));
        let expected: Vec<Vec<u8>> = bytes.chunks(700_000).map(|c| Algorithm::Crc32c.digest(c)).collect();
        assert_eq!(digests.parts, expected);
        assert!(is_layout(&parts, bytes.len() as u64, Some(4)));
        assert!(!is_layout(&parts, bytes.len() as u64, Some(3)));
        assert!(!is_layout(&parts[1..], bytes.len() as u64, None));
    }

    #[test]
    fn a_composite_checksum_is_verified_part_by_part_and_a_bad_part_is_named() {
        let mut bytes = noise(3_000_000);
        let (file, mut parts) = file_with_parts(&bytes, 1_200_000);
        for algorithm in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Sha1, Algorithm::Sha256] {
            let part_sums: Vec<Vec<u8>> = bytes.chunks(1_200_000).map(|c| algorithm.digest(c)).collect();
            let header = format!("{}-3", b64(&composite(algorithm, &part_sums)));
            let stored = Stored::from_head(algorithm, &header, Some("COMPOSITE"), "\"x-3\"").unwrap();
            for (p, sum) in parts.iter_mut().zip(&part_sums) {
                p.expected = Some(sum.clone());
            }
            let digests = digest_file(file.path(), algorithm, &ranges(&parts)).unwrap();
            let verdict = check(&stored, Some(&parts), &digests, bytes.len() as u64);
            assert_eq!(
                verdict,
                Verdict::Verified(format!("composite {} of 3 parts, each part's checked", algorithm.name()))
            );
            // Without the part list, the composite alone still holds; without part sizes it
            // cannot be checked.
            let sizes_only: Vec<Part> = parts.iter().map(|p| Part { expected: None, ..p.clone() }).collect();
            assert!(matches!(check(&stored, Some(&sizes_only), &digests, 3_000_000), Verdict::Verified(_)));
            let no_parts = digest_file(file.path(), algorithm, &[]).unwrap();
            assert!(matches!(check(&stored, None, &no_parts, 3_000_000), Verdict::Unverifiable(_)));
        }
        // A flipped byte in part 2 is found in part 2, and only part 2 is fetched again.
        bytes[1_500_000] ^= 1;
        std::fs::write(file.path(), &bytes).unwrap();
        let stored = Stored::from_head(
            Algorithm::Sha256,
            &format!("{}-3", b64(&composite(Algorithm::Sha256, &[vec![0]]))),
            None,
            "\"x-3\"",
        )
        .unwrap();
        let digests = digest_file(file.path(), Algorithm::Sha256, &ranges(&parts)).unwrap();
        let Verdict::Mismatch(m) = check(&stored, Some(&parts), &digests, 3_000_000) else { panic!() };
        let part2 = 1_200_000..2_400_000;
        assert_eq!(m.ranges, [part2]);
        assert!(m.what.starts_with("part 2 of 3 (bytes 1200000–2399999) has SHA256 "), "{}", m.what);
    }

    #[test]
    fn a_full_object_checksum_is_of_all_the_bytes_whatever_the_parts() {
        let bytes = noise(2_500_000);
        let (file, parts) = file_with_parts(&bytes, 1_000_000);
        let value = b64(&Algorithm::Crc64Nvme.digest(&bytes));
        let stored = Stored::from_head(Algorithm::Crc64Nvme, &value, Some("FULL_OBJECT"), "\"x-3\"").unwrap();
        assert!(!stored.needs_parts());
        let digests = digest_file(file.path(), Algorithm::Crc64Nvme, &[]).unwrap();
        assert_eq!(
            check(&stored, None, &digests, 2_500_000),
            Verdict::Verified("CRC64NVME of the whole object".into())
        );
        // A CRC32 of unstated kind: the whole-object reading first, then the composite.
        for value in [
            Algorithm::Crc32.digest(&bytes),
            composite(
                Algorithm::Crc32,
                &bytes.chunks(1_000_000).map(|c| Algorithm::Crc32.digest(c)).collect::<Vec<_>>(),
            ),
        ] {
            let stored = Stored::from_head(Algorithm::Crc32, &b64(&value), None, "\"x-3\"").unwrap();
            assert_eq!(stored.kind, Kind::Unstated { parts: 3 });
            let digests = digest_file(file.path(), Algorithm::Crc32, &ranges(&parts)).unwrap();
            assert!(matches!(check(&stored, Some(&parts), &digests, 2_500_000), Verdict::Verified(_)));
        }
        let stored = Stored::from_head(Algorithm::Crc32, &b64(&[1, 2, 3, 4]), None, "\"x-3\"").unwrap();
        let digests = digest_file(file.path(), Algorithm::Crc32, &ranges(&parts)).unwrap();
        let Verdict::Mismatch(m) = check(&stored, Some(&parts), &digests, 2_500_000) else { panic!() };
        let everything = 0..2_500_000;
        assert_eq!(m.ranges, [everything]);
        assert!(m.what.contains("(whole)") && m.what.contains("AQIDBA=="), "{}", m.what);
    }
}
