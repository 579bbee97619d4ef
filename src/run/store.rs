//! Storing what the encoders made: a chunk's files, then its record; the audio's segments
//! as they are cut, then its init segment and record.

use std::time::Duration;

use super::RunError;
use crate::layout::{self, Media};
use crate::location::{self, Output};
use crate::package::cmaf;
use crate::package::track::{ByteRange, SegmentSummary};
use crate::pipeline::EncodedSegment;
use crate::pipeline::audio::AudioTrack;
use crate::pipeline::video::{self, ChunkOutput, RungChunk};
use crate::plan::Plan;
use crate::record::{self, ChunkRecord, FileRecord, PosterRecord, SegmentRecord, TrackRecord};

/// Where a run stores its parts: the output, the media's generation there, and the plan
/// every record names.
pub(super) struct Destination<'a> {
    pub(super) out: &'a dyn Output,
    pub(super) media: Media,
    pub(super) plan_id: &'a str,
    /// The input's check, which an audio record waits for ([`super::prepare::Verification`]).
    pub(super) verification: &'a super::prepare::Verification,
    /// The recording: a part made while a read of it failed is never recorded (libav
    /// skips what it could not read, and the part would hide the hole).
    pub(super) input: &'a crate::location::Source,
}

impl Destination<'_> {
    /// Stores `record`, unless a read of the input has failed meanwhile.
    fn record(&self, record: &ChunkRecord) -> Result<(), RunError> {
        if let Some(failed) = self.input.failure() {
            return Err(failed.into());
        }
        record.store(self.out)?;
        Ok(())
    }
}

/// Stores a chunk's segments (and the init segment, identical in every chunk), then its
/// record. `delay` is the encoder delay every rung must have.
pub(super) fn store_chunk(
    to: &Destination<'_>,
    plan: &Plan,
    chunk: u32,
    output: ChunkOutput,
    delay: u32,
    took: Duration,
) -> Result<ChunkRecord, RunError> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    let mut tracks = Vec::with_capacity(output.rungs.len());
    for rung in &output.rungs {
        tracks.push(rung_track(plan, &to.media, chunk, rung, delay, &mut files)?);
    }
    let mut stills = Vec::with_capacity(output.stills.len());
    for (n, jpeg) in &output.stills {
        let record = FileRecord::of(to.media.still_key(*n), jpeg);
        files.push((record.key.clone(), jpeg));
        stills.push(record);
    }
    let mut posters = Vec::with_capacity(output.posters.len());
    for p in &output.posters {
        let file = FileRecord::of(layout::poster_candidate_key(p.frame), &p.jpeg);
        files.push((file.key.clone(), &p.jpeg));
        posters.push(PosterRecord { frame: p.frame, worthy: p.worthy, file });
    }
    location::put_all(to.out, &files)?;
    let record = ChunkRecord {
        version: record::RECORD_VERSION,
        plan_id: to.plan_id.to_owned(),
        chunk: Some(chunk),
        audio: None,
        tracks,
        stills,
        posters,
        captions: output.captions.clone(),
        encode_seconds: took.as_secs_f64(),
    };
    to.record(&record)?;
    tracing::info!(chunk, seconds = took.as_secs_f64(), "chunk stored");
    Ok(record)
}

/// A rung's share of a chunk: its files (added to `files`) and its track record.
fn rung_track<'a>(
    plan: &Plan,
    media: &Media,
    chunk: u32,
    rung: &'a RungChunk,
    delay: u32,
    files: &mut Vec<(String, &'a [u8])>,
) -> Result<TrackRecord, RunError> {
    let dir = media.video_dir(rung.rung);
    if rung.delay_frames != delay {
        return Err(RunError::Inconsistent(format!(
            "chunk {chunk}, rung {dir}: the encoder delays presentation by {} frames, not {delay} like the others",
            rung.delay_frames
        )));
    }
    let codec = cmaf::codec_string(&rung.init, 0..rung.init.len())
        .map_err(|e| RunError::Inconsistent(format!("chunk {chunk}, {dir}: {e}")))?;
    // Every chunk's init segment is the same; rewriting it is as cheap as checking it.
    let init = FileRecord::of(layout::init_key(&dir), &rung.init);
    files.push((init.key.clone(), &rung.init));
    files.extend(rung.segments.iter().map(|s| (layout::segment_key(&dir, s.index), s.bytes.as_slice())));
    let (_, ticks_per_frame) = video::timescale_for(plan);
    Ok(TrackRecord {
        codec,
        timescale: rung.timescale,
        presentation_offset: u64::from(delay) * u64::from(ticks_per_frame),
        init,
        segments: rung.segments.iter().map(segment_record).collect(),
        quality: rung.quality,
        loudness: None,
        dir,
    })
}

/// Stores audio rendition `index`'s init segment and its record (its segments are stored already).
pub(super) fn store_audio(
    to: &Destination<'_>,
    index: usize,
    track: AudioTrack,
    segments: Vec<SegmentRecord>,
    took: Duration,
) -> Result<ChunkRecord, RunError> {
    let dir = to.media.audio_dir(index);
    let inconsistent = |e: cmaf::CmafError| RunError::Inconsistent(format!("{dir}: {e}"));
    // The video's init segments get the CMAF brand where they are cut (`video::rung`).
    let init_bytes = cmaf::with_compatible_brand(&track.init, cmaf::CMAF_BRAND).map_err(inconsistent)?;
    let codec = cmaf::codec_string(&init_bytes, 0..init_bytes.len()).map_err(inconsistent)?;
    let offset = segments.first().map_or(0, |s| s.summary.decode_time);
    let init = FileRecord::of(layout::init_key(&dir), &init_bytes);
    to.out.put(&init.key, &init_bytes)?;
    let record = ChunkRecord {
        version: record::RECORD_VERSION,
        plan_id: to.plan_id.to_owned(),
        chunk: None,
        audio: Some(index),
        tracks: vec![TrackRecord {
            dir,
            codec,
            timescale: track.timescale,
            presentation_offset: offset,
            init,
            segments,
            quality: None,
            loudness: track.loudness,
        }],
        stills: Vec::new(),
        posters: Vec::new(),
        captions: Vec::new(),
        encode_seconds: took.as_secs_f64(),
    };
    // Without the audio's record nothing is published: not before the input is known good.
    to.verification.wait()?;
    to.record(&record)?;
    Ok(record)
}

/// Stores a segment of audio rendition `index` as soon as it is cut.
pub(super) fn store_audio_segment(
    to: &Destination<'_>,
    index: usize,
    s: &EncodedSegment,
) -> Result<SegmentRecord, RunError> {
    to.out.put(&layout::segment_key(&to.media.audio_dir(index), s.index), &s.bytes)?;
    Ok(segment_record(s))
}

fn segment_record(s: &EncodedSegment) -> SegmentRecord {
    SegmentRecord {
        summary: SegmentSummary {
            index: s.index,
            decode_time: s.decode_time,
            duration: s.duration,
            size: s.bytes.len() as u64,
            key_frames: s
                .key_frames
                .iter()
                .map(|r| ByteRange { offset: r.start as u64, length: (r.end - r.start) as u64 })
                .collect(),
            key_frame_times: s.key_frame_times.clone(),
        },
        sha256: record::sha256_hex(&s.bytes),
    }
}
