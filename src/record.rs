//! Checkpoints: `.ladder/plan.json` and one record per finished chunk (and one for the
//! audio) under `.ladder/chunks/`. A record is written only after every file it names is
//! stored, so its presence means "this part is done"; assembly reads only records, so any
//! process (or shard) that finds them all can publish the ladder.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::{self, Part, record_key};
use crate::location::{Output, StorageError};
use crate::package::track::SegmentSummary;
use crate::plan::Plan;

/// Bumped whenever a record's meaning changes, so older records are redone, not misread
/// (3: init segments list the `cmfc` brand, so older chunks' would not match new ones; chunk
/// records list the closed-caption channels their frames carry).
pub(crate) const RECORD_VERSION: u32 = 3;

/// Identifies a plan: records made for another plan (other input, preset or ladder
/// version) are never reused.
///
/// Subtitles are left out: they are made when the ladder is assembled, from the plan
/// alone, so no record depends on them, and a rerun that adds a sidecar to a finished
/// ladder re-assembles it instead of encoding it again. (A plan without subtitles
/// serialises as before they existed, so its id is unchanged.)
pub(crate) fn plan_id(plan: &Plan) -> String {
    let mut plan = plan.clone();
    plan.subtitles.clear();
    plan.skipped_subtitles.clear();
    let json = serde_json::to_vec(&plan).expect("a plan is plain data and always serialises");
    hex(&Sha256::digest(&json))[..16].to_owned()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One stored file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

impl FileRecord {
    pub(crate) fn of(key: String, bytes: &[u8]) -> Self {
        Self { key, size: bytes.len() as u64, sha256: sha256_hex(bytes) }
    }
}

/// One stored segment: what the manifests need, plus its checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SegmentRecord {
    #[serde(flatten)]
    pub summary: SegmentSummary,
    pub sha256: String,
}

/// One track's share of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrackRecord {
    /// `v<i>` or `a0`.
    pub dir: String,
    pub codec: String,
    pub timescale: u32,
    /// Ticks from decode to presentation of the first sample.
    pub presentation_offset: u64,
    pub init: FileRecord,
    pub segments: Vec<SegmentRecord>,
    /// With `--quality`: PSNR/SSIM sums of this chunk's frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::quality::QualityTotals>,
    /// An audio rendition's loudness normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<crate::pipeline::loudness::LoudnessFigures>,
}

/// A poster candidate found in a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PosterRecord {
    /// Output frame it shows.
    pub frame: u64,
    /// Not near-black or flat; the first frame is kept as a fallback even when it is.
    pub worthy: bool,
    pub file: FileRecord,
}

/// Everything a finished chunk (or the audio) stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChunkRecord {
    pub version: u32,
    pub plan_id: String,
    /// `None` for an audio rendition's record.
    pub chunk: Option<u32>,
    /// The audio rendition's number, for its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<usize>,
    pub tracks: Vec<TrackRecord>,
    /// `thumbs/t_<n>.jpg` taken in this chunk.
    pub stills: Vec<FileRecord>,
    pub posters: Vec<PosterRecord>,
    /// The closed-caption channels the chunk's frames carry (`CC1`, `SERVICE1`): kept in
    /// its H.264 rungs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<String>,
    /// Wall-clock seconds the chunk took to encode.
    pub encode_seconds: f64,
}

impl ChunkRecord {
    /// What the record is of.
    pub(crate) fn part(&self) -> Option<Part> {
        match (self.chunk, self.audio) {
            (Some(c), None) => Some(Part::Chunk(c)),
            (None, Some(k)) => Some(Part::Audio(k)),
            _ => None,
        }
    }

    /// Every file the record names, segments first.
    pub(crate) fn files(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let tracks = self.tracks.iter().flat_map(|t| {
            t.segments
                .iter()
                .map(|s| (layout::segment_key(&t.dir, s.summary.index), s.summary.size))
                .chain(std::iter::once((t.init.key.clone(), t.init.size)))
        });
        tracks
            .chain(self.stills.iter().map(|f| (f.key.clone(), f.size)))
            .chain(self.posters.iter().map(|p| (p.file.key.clone(), p.file.size)))
    }

    /// Stores the record; call only once every file it names is stored.
    pub(crate) fn store(&self, out: &dyn Output) -> Result<(), StorageError> {
        let json = serde_json::to_vec_pretty(self).expect("a record is plain data and always serialises");
        let part = self.part().expect("a record is of a chunk or of an audio rendition");
        out.put(&record_key(part), &json)
    }

    /// The stored record of `part` if it belongs to this plan and every file it names is
    /// stored with the recorded size; `None` means the chunk must be (re)done.
    pub(crate) fn load_valid(out: &dyn Output, plan_id: &str, part: Part) -> Result<Option<Self>, StorageError> {
        let Some(bytes) = out.get(&record_key(part))? else { return Ok(None) };
        let Ok(record) = serde_json::from_slice::<ChunkRecord>(&bytes) else {
            tracing::warn!(key = record_key(part), "unreadable chunk record: redoing the chunk");
            return Ok(None);
        };
        if record.version != RECORD_VERSION || record.plan_id != plan_id || record.part() != Some(part) {
            return Ok(None);
        }
        for (key, size) in record.files() {
            if out.size(&key)? != Some(size) {
                tracing::warn!(key, "a file of a finished chunk is missing or has another size: redoing the chunk");
                return Ok(None);
            }
        }
        Ok(Some(record))
    }
}
