//! Assembly: from the chunk records (whichever process wrote them) to the media and
//! I-frame playlists, the DASH MPD, sprites, the WebVTT index and the poster; then, once
//! everything else is stored, the master playlist ([`publish`]). Deterministic and
//! idempotent: two processes assembling the same records write the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exit::{ExitClass, Outcome};
use crate::layout::{self, Media};
use crate::location::{self, Output, StorageError};
use crate::package::captions::ClosedCaptions;
use crate::package::progressive::{Progressive, ProgressiveError};
use crate::package::track::{SubtitleSegment, SubtitleSummary, TrackKind, TrackSummary};
use crate::package::{dash, hls};
use crate::pipeline::loudness::LoudnessFigures;
use crate::plan::Plan;
use crate::preset::Preset;
use crate::quality::QualityTotals;
use crate::record::{ChunkRecord, FileRecord, PosterRecord, TrackRecord};
use crate::subtitles::{self, Rendition};
use crate::thumbs::{self, ThumbError};

/// Why the ladder could not be assembled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AssembleError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot assemble yet: chunk records missing for chunks {0:?}")]
    Missing(Vec<u32>),
    #[error("the chunk records disagree: {0}")]
    Inconsistent(String),
    #[error("thumbnails: {0}")]
    Thumbnails(#[from] ThumbError),
    #[error(transparent)]
    Progressive(#[from] ProgressiveError),
}

impl ExitClass for AssembleError {
    /// Records that disagree or go missing mid-assembly are another process's doing (or a
    /// bug): a rerun may see a consistent set.
    fn outcome(&self) -> Outcome {
        match self {
            Self::Storage(e) => e.outcome(),
            Self::Progressive(e) => e.outcome(),
            Self::Missing(_) | Self::Inconsistent(_) | Self::Thumbnails(_) => Outcome::Transient,
        }
    }
}

/// The assembled ladder: what the master playlist and the report describe.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub video: Vec<TrackSummary>,
    /// One per audio rendition, in plan order.
    pub audio: Vec<TrackSummary>,
    /// Per audio rendition, with loudness normalization.
    pub loudness: Vec<Option<LoudnessFigures>>,
    /// The closed captions the video rungs carry.
    pub captions: ClosedCaptions,
    /// One per subtitle rendition made, in plan order.
    pub subtitles: Vec<SubtitleSummary>,
    /// `download/audio.m4a`, when the preset asks for it.
    pub(crate) podcast: Option<FileRecord>,
    /// `download/<rung>.mp4` of each rung the preset's `download` names and the plan has.
    pub(crate) downloads: Vec<DownloadRecord>,
    /// Per video rung, with `--quality`.
    pub quality: Vec<Option<QualityTotals>>,
    /// Read from the first segment (x264 and x265 write their version into it).
    pub encoder_version: Option<String>,
    pub hls: bool,
    pub dash: bool,
    pub duration_seconds: f64,
}

/// A stored `download/<rung>.mp4`.
#[derive(Debug, Clone)]
pub(crate) struct DownloadRecord {
    /// The preset's rung name.
    pub rung: String,
    pub file: FileRecord,
}

/// What assembly reads: the records of every part, and the subtitles' cues.
pub(crate) struct Parts<'a> {
    pub(crate) records: &'a BTreeMap<u32, ChunkRecord>,
    pub(crate) audio_records: &'a BTreeMap<usize, ChunkRecord>,
    pub(crate) subtitles: &'a [Rendition],
}

/// Writes everything but the published marker. Every chunk of the plan must be recorded.
pub(crate) fn assemble(
    out: &dyn Output,
    plan: &Plan,
    media: &Media,
    preset: &Preset,
    parts: &Parts<'_>,
    scratch: &Path,
) -> Result<Ladder, AssembleError> {
    let Parts { records, audio_records, .. } = *parts;
    let missing: Vec<u32> = plan.chunks.iter().map(|c| c.index).filter(|c| !records.contains_key(c)).collect();
    if !missing.is_empty() || plan.audio.iter().any(|a| !audio_records.contains_key(&a.index)) {
        return Err(AssembleError::Missing(missing));
    }
    let mut video = Vec::new();
    let mut quality = Vec::new();
    for rung in &plan.rungs {
        let dir = media.video_dir(rung.index);
        let parts: Vec<&TrackRecord> =
            records.values().filter_map(|r| r.tracks.iter().find(|t| t.dir == dir)).collect();
        let kind = TrackKind::Video { width: rung.width, height: rung.height, fps: plan.fps };
        video.push(summarise(&dir, kind, &parts, plan)?);
        quality.push(parts.iter().try_fold(QualityTotals::default(), |mut sum, part| {
            sum.merge(part.quality.as_ref()?);
            Some(sum)
        }));
    }
    let (mut audio, mut loudness) = (Vec::new(), Vec::new());
    for a in &plan.audio {
        let parts: Vec<&TrackRecord> = audio_records[&a.index].tracks.iter().collect();
        loudness.push(parts.first().and_then(|p| p.loudness));
        let kind = TrackKind::Audio {
            sample_rate: a.sample_rate,
            channels: a.channels,
            language: a.language.clone(),
            name: a.label.clone(),
            default: a.default,
        };
        audio.push(summarise(&media.audio_dir(a.index), kind, &parts, plan)?);
    }

    let captions = closed_captions(plan, preset, records);
    let (hls_on, dash_on) = (preset.packaging.hls, preset.packaging.dash);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let first_frame = video
        .first()
        .or(audio.first())
        .map_or(0, |t| (u128::from(t.presentation_offset) * 90_000 / u128::from(t.timescale.max(1))) as u64);
    let subtitles = subtitle_files(plan, media, parts.subtitles, first_frame, (hls_on, dash_on), &mut files);
    if hls_on {
        for track in video.iter().chain(&audio) {
            files.push((layout::in_dir(&track.dir, layout::MEDIA_PLAYLIST), hls::media_playlist(track).into_bytes()));
            if matches!(track.kind, TrackKind::Video { .. }) {
                files.push((
                    layout::in_dir(&track.dir, layout::IFRAME_PLAYLIST),
                    hls::iframe_playlist(track).into_bytes(),
                ));
            }
        }
        if dash_on {
            let mpd = dash::mpd(&video, &audio, &subtitles, &captions, plan.duration_seconds);
            files.push((layout::MPD.into(), mpd.into_bytes()));
        }
    }
    if plan.thumbnails.is_some() {
        files.extend(thumbnail_files(out, plan, media, records)?);
    }
    let podcast = match plan.audio.iter().find(|a| a.default).filter(|_| preset.audio.podcast) {
        Some(a) => {
            let bytes = podcast(out, plan, &audio[a.index], scratch)?;
            let record = FileRecord::of(media.podcast(), &bytes);
            files.push((record.key.clone(), bytes));
            Some(record)
        }
        None => None,
    };
    location::put_all(out, &files)?;
    let downloads = downloads(out, plan, media, preset, (&video, &audio), scratch)?;
    let encoder_version = match video.first() {
        Some(v) => out.get(&layout::segment_key(&v.dir, 0))?.and_then(|bytes| encoder_version(&bytes)),
        None => None,
    };
    Ok(Ladder {
        video,
        audio,
        loudness,
        captions,
        subtitles,
        podcast,
        downloads,
        quality,
        encoder_version,
        hls: hls_on,
        dash: dash_on,
        duration_seconds: plan.duration_seconds,
    })
}

/// The caption channels any chunk's frames carry, declared in the language of the default
/// audio. Only an encoder with libav's `a53cc` writes them into its rungs (libx264; not
/// libav 5.1's x265 and SVT-AV1 wrappers): with another they are lost, and the log says so.
fn closed_captions(plan: &Plan, preset: &Preset, records: &BTreeMap<u32, ChunkRecord>) -> ClosedCaptions {
    let mut channels: Vec<String> = records.values().flat_map(|r| r.captions.iter().cloned()).collect();
    channels.sort_by_key(|c| (c.starts_with("SERVICE"), c.len(), c.clone()));
    channels.dedup();
    if !channels.is_empty() && !crate::media::encoder::writes_captions(&preset.video.encoder) {
        tracing::warn!(
            channels = channels.join(","),
            encoder = preset.video.encoder,
            "the recording's closed captions are left out: the video encoder cannot write them (libx264 can)"
        );
        channels.clear();
    }
    let language = plan.audio.iter().find(|a| a.default).map(|a| a.language.clone()).filter(|l| l != "und");
    ClosedCaptions { channels, language }
}

/// The default audio rendition as one progressive `.m4a`, from its stored segments (no
/// second encode), titled as the recording is (else by its file name).
fn podcast(out: &dyn Output, plan: &Plan, track: &TrackSummary, scratch: &Path) -> Result<Vec<u8>, AssembleError> {
    progressive_file(out, "download/audio.m4a", &[track], ("ipod", &title(plan)), scratch)
}

/// The recording's title tag, else its file name without extension.
fn title(plan: &Plan) -> String {
    let stem = || Path::new(&plan.source.path).file_stem().map(|s| s.to_string_lossy().into_owned());
    plan.source.title.clone().or_else(stem).unwrap_or_default()
}

/// Stored segments fetched at a time for a progressive file: a few, so that a long
/// rung never sits in memory whole.
const PROGRESSIVE_BATCH: usize = 8;

/// `tracks` copied from their stored init segments and segments into one progressive
/// file, in libavformat's container `format`, titled `title`.
fn progressive_file(
    out: &dyn Output,
    name: &str,
    tracks: &[&TrackSummary],
    (format, title): (&str, &str),
    scratch: &Path,
) -> Result<Vec<u8>, AssembleError> {
    let mut file = Progressive::new(name, scratch)?;
    for track in tracks {
        file.start_track()?;
        let mut keys = vec![layout::init_key(&track.dir)];
        keys.extend(track.segments.iter().map(|s| layout::segment_key(&track.dir, s.index)));
        for batch in keys.chunks(PROGRESSIVE_BATCH) {
            for (key, bytes) in batch.iter().zip(location::get_all(out, batch)?) {
                file.append(&bytes.ok_or_else(|| AssembleError::Inconsistent(format!("{key} is missing")))?)?;
            }
        }
    }
    Ok(file.finish(format, title)?)
}

/// What the preset's `download` asks for, in its order: each rung the plan has, with the
/// default audio rendition (if any), as a progressive `download/<rung>.mp4`, each stored
/// before the next is made (one finished file in memory at a time). A rung the plan
/// dropped (the recording is smaller than it) is skipped with a warning: the other files
/// are still worth having, and failing the whole ladder for a size the preset cannot know
/// in advance would be worse.
fn downloads(
    out: &dyn Output,
    plan: &Plan,
    media: &Media,
    preset: &Preset,
    tracks: (&[TrackSummary], &[TrackSummary]),
    scratch: &Path,
) -> Result<Vec<DownloadRecord>, AssembleError> {
    let (video, audio) = tracks;
    let default_audio = plan.audio.iter().find(|a| a.default).map(|a| &audio[a.index]);
    let mut records = Vec::new();
    for name in &preset.download {
        let Some(rung) = plan.rungs.iter().find(|r| &r.name == name) else {
            tracing::warn!(
                rung = name.as_str(),
                "download: the recording is too small for this rung; no download file"
            );
            continue;
        };
        let key = media.download(name);
        let tracks: Vec<&TrackSummary> = [Some(&video[rung.index]), default_audio].into_iter().flatten().collect();
        let bytes = progressive_file(out, &key, &tracks, ("mp4", &title(plan)), scratch)?;
        out.put(&key, &bytes)?;
        records.push(DownloadRecord { rung: name.clone(), file: FileRecord::of(key, &bytes) });
    }
    Ok(records)
}

/// Writes the marker of a complete ladder (the master playlist, or the MPD when HLS is
/// off) and returns its key. Call it last, after the report.
pub(crate) fn publish(out: &dyn Output, ladder: &Ladder) -> Result<&'static str, StorageError> {
    if ladder.hls {
        let master = hls::master_playlist(&ladder.video, &ladder.audio, &ladder.subtitles, &ladder.captions);
        out.put(layout::MASTER_PLAYLIST, master.as_bytes())?;
        Ok(layout::MASTER_PLAYLIST)
    } else {
        let mpd = dash::mpd(&ladder.video, &ladder.audio, &ladder.subtitles, &ladder.captions, ladder.duration_seconds);
        out.put(layout::MPD, mpd.as_bytes())?;
        Ok(layout::MPD)
    }
}

/// Each subtitle rendition's files: for HLS a WebVTT segment per segment of the grid
/// (`first_frame`: the first frame's presentation time in 90 kHz, for `X-TIMESTAMP-MAP`)
/// and its playlist; for DASH the whole file. Returns what the manifests say about them.
fn subtitle_files(
    plan: &Plan,
    media: &Media,
    renditions: &[Rendition],
    first_frame: u64,
    (hls_on, dash_on): (bool, bool),
    files: &mut Vec<(String, Vec<u8>)>,
) -> Vec<SubtitleSummary> {
    let (num, den) = (u64::from(plan.fps.num()), u64::from(plan.fps.den()));
    let ms =
        |frames: u64| ((u128::from(frames) * 1000 * u128::from(den) + u128::from(num) / 2) / u128::from(num)) as i64;
    let mut summaries = Vec::with_capacity(renditions.len());
    for r in renditions {
        let dir = media.subtitle_dir(r.planned.index);
        let mut segments = Vec::with_capacity(plan.segments.len());
        for seg in &plan.segments {
            let span = (ms(seg.start_frame), ms(seg.start_frame + u64::from(seg.frames)));
            let text = subtitles::webvtt::segment(&r.cues, span, first_frame);
            segments.push(SubtitleSegment {
                index: seg.index,
                duration: u64::from(seg.frames) * den,
                size: text.len() as u64,
            });
            if hls_on {
                files.push((layout::in_dir(&dir, &layout::subtitle_segment_file(seg.index)), text.into_bytes()));
            }
        }
        let whole = subtitles::webvtt::whole(&r.cues);
        let summary = SubtitleSummary {
            index: r.planned.index,
            dir: dir.clone(),
            language: r.planned.language.clone(),
            name: r.planned.label.clone(),
            forced: r.planned.forced,
            timescale: plan.fps.num(),
            segments,
            size: whole.len() as u64,
            cues: r.cues.len(),
        };
        if hls_on {
            files.push((layout::in_dir(&dir, layout::MEDIA_PLAYLIST), hls::subtitle_playlist(&summary).into_bytes()));
        }
        if dash_on {
            files.push((layout::in_dir(&dir, layout::SUBTITLES_FILE), whole.into_bytes()));
        }
        summaries.push(summary);
    }
    summaries
}

/// One track from its parts in chunk order, checked to fit together: the same init
/// segment, contiguous segment numbers, and each segment starting where the last ended.
fn summarise(dir: &str, kind: TrackKind, parts: &[&TrackRecord], plan: &Plan) -> Result<TrackSummary, AssembleError> {
    let disagree = |what: String| AssembleError::Inconsistent(format!("{dir}: {what}"));
    let first = parts.first().ok_or_else(|| disagree("no chunk has this track".into()))?;
    let mut segments = Vec::with_capacity(plan.segments.len());
    for part in parts {
        if part.init.sha256 != first.init.sha256 || part.timescale != first.timescale || part.codec != first.codec {
            return Err(disagree("chunks were encoded with different settings (init segments differ)".into()));
        }
        if part.presentation_offset != first.presentation_offset {
            return Err(disagree("chunks start presentation at different offsets".into()));
        }
        segments.extend(part.segments.iter().map(|s| s.summary.clone()));
    }
    for (n, pair) in segments.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        if b.index != a.index + 1 || b.decode_time != a.decode_time + a.duration {
            return Err(disagree(format!(
                "segment {} (decode time {}) does not follow segment {} (ends at {}), position {n}",
                b.index,
                b.decode_time,
                a.index,
                a.decode_time + a.duration
            )));
        }
    }
    if segments.len() != plan.segments.len() {
        return Err(disagree(format!("{} segments, the plan has {}", segments.len(), plan.segments.len())));
    }
    Ok(TrackSummary {
        dir: dir.to_owned(),
        kind,
        codec: first.codec.clone(),
        timescale: first.timescale,
        presentation_offset: first.presentation_offset,
        segments,
    })
}

/// Sprites from the stored stills, their WebVTT index, and the poster, to store.
fn thumbnail_files(
    out: &dyn Output,
    plan: &Plan,
    media: &Media,
    records: &BTreeMap<u32, ChunkRecord>,
) -> Result<Vec<(String, Vec<u8>)>, AssembleError> {
    let t = plan.thumbnails.as_ref().expect("called only when the plan has thumbnails");
    let poster = choose_poster(records.values().flat_map(|r| &r.posters))
        .ok_or_else(|| AssembleError::Inconsistent("no chunk kept a poster candidate".into()))?;
    // The stills, then the chosen poster candidate.
    let keys: Vec<String> =
        (0..t.still_frames.len()).map(|n| media.still_key(n)).chain([poster.file.key.clone()]).collect();
    let mut stills = Vec::with_capacity(keys.len());
    for (key, bytes) in keys.iter().zip(location::get_all(out, &keys)?) {
        stills.push(bytes.ok_or_else(|| AssembleError::Inconsistent(format!("{key} is missing")))?);
    }
    let poster = stills.pop().expect("the poster's key is the last");

    let per_sprite = (t.sprite_columns * t.sprite_rows) as usize;
    let mut files = Vec::new();
    for (k, tiles) in stills.chunks(per_sprite).enumerate() {
        let sprite = thumbs::compose_sprite(tiles, t.sprite_columns, t.sprite_rows, t.width, t.height)?;
        files.push((media.sprite_key(k), sprite));
    }
    let fps = plan.fps.as_f64();
    let seconds: Vec<f64> = t.still_frames.iter().map(|&f| f as f64 / fps).collect();
    let vtt = thumbs::thumbs_vtt(&seconds, plan.duration_seconds, t.sprite_columns, t.sprite_rows, t.width, t.height);
    files.push((media.thumbs_vtt(), vtt.into_bytes()));
    files.push((media.poster(), poster));
    Ok(files)
}

/// The earliest worthy candidate (chunks only keep candidates from the search start on),
/// else the first frame.
fn choose_poster<'a>(candidates: impl Iterator<Item = &'a PosterRecord>) -> Option<&'a PosterRecord> {
    let all: Vec<&PosterRecord> = candidates.collect();
    all.iter().filter(|p| p.worthy).min_by_key(|p| p.frame).or_else(|| all.iter().min_by_key(|p| p.frame)).copied()
}

/// The encoder's own version string from its SEI message, e.g. `x264 core 164 r3095 baf4ae5`.
fn encoder_version(segment: &[u8]) -> Option<String> {
    for tag in [b"x264 - core ".as_slice(), b"x265 (build ".as_slice()] {
        if let Some(at) = segment.windows(tag.len()).position(|w| w == tag) {
            let text: String = segment[at..]
                .iter()
                .take(80)
                .take_while(|b| b.is_ascii_graphic() || **b == b' ')
                .map(|&b| b as char)
                .collect();
            return Some(text.split(" - ").take(2).collect::<Vec<_>>().join(" ").trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FileRecord;

    fn poster(frame: u64, worthy: bool) -> PosterRecord {
        PosterRecord { frame, worthy, file: FileRecord { key: format!("p{frame}"), size: 1, sha256: String::new() } }
    }

    #[test]
    fn the_earliest_worthy_poster_wins_else_the_first_frame() {
        let c = [poster(0, false), poster(900, true), poster(50, true)];
        assert_eq!(choose_poster(c.iter()).unwrap().frame, 50);
        let c = [poster(75, false), poster(0, false)];
        assert_eq!(choose_poster(c.iter()).unwrap().frame, 0);
    }

    #[test]
    fn encoder_versions_are_read_from_sei_text() {
        let seg = b"\0\0junkx264 - core 164 r3095 baf4ae5 - H.264/MPEG-4 AVC codec - Copyleft";
        assert_eq!(encoder_version(seg).unwrap(), "x264 core 164 r3095 baf4ae5");
        assert_eq!(encoder_version(b"nothing here"), None);
    }
}
