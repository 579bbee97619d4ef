//! Subtitles: text subtitle streams of the recording and sidecar files given at run time,
//! read into [`Cue`]s on the output's timeline and written as WebVTT ([`webvtt`]): one
//! segment per segment of the grid for HLS, one whole file per language for DASH.
//!
//! Sidecars are read when the run plans (a bad file stops it with exit 2 before anything
//! is encoded) and kept in memory; embedded streams are read when the ladder is
//! assembled, so that only the process that publishes pays for the pass over the file.

pub(crate) mod embedded;
mod srt;
mod text;
mod vtt;
pub(crate) mod webvtt;

use std::path::{Path, PathBuf};

use crate::exit::{ExitClass, Outcome};
use crate::location::{Location, StorageError};

/// One cue: shown from `start_ms` (inclusive) to `end_ms` (exclusive), in milliseconds
/// from the output's first frame (WebVTT's own resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: i64,
    pub end_ms: i64,
    /// WebVTT cue settings (`line:0 align:start`), kept from a WebVTT sidecar; else empty.
    pub settings: String,
    /// The cue's text: WebVTT cue text, lines joined by `\n`, never a blank line.
    pub text: String,
}

/// A sidecar subtitle file given at run time (`--subtitles LANG=PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// BCP 47.
    pub language: String,
    pub location: Location,
}

/// Why subtitles could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SubtitleError {
    #[error("{path}:{line}: {problem}")]
    Syntax { path: String, line: usize, problem: String },
    #[error("{path}: cannot read the subtitle file: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("subtitles {location}: {source}")]
    Fetch { location: String, source: StorageError },
    #[error("{path}: subtitle stream #{stream}: {detail}")]
    Embedded { path: String, stream: usize, detail: String },
}

impl ExitClass for SubtitleError {
    /// A sidecar is part of the call: a bad or missing one is the caller's to fix (exit 2),
    /// unless fetching it failed in passing. A broken embedded stream is the recording's.
    fn outcome(&self) -> Outcome {
        match self {
            Self::Syntax { .. } | Self::Unreadable { .. } => Outcome::Usage,
            Self::Fetch { source, .. } => match source.outcome() {
                Outcome::BadInput => Outcome::Usage,
                other => other,
            },
            Self::Embedded { .. } => Outcome::BadInput,
        }
    }
}

/// Reads a sidecar: WebVTT when it starts with `WEBVTT`, SubRip otherwise. `name` is what
/// errors call it (the location the caller gave).
pub fn read_sidecar(path: &Path, name: &str) -> Result<Vec<Cue>, SubtitleError> {
    let bytes = std::fs::read(path).map_err(|source| SubtitleError::Unreadable { path: name.to_owned(), source })?;
    let text = decode_utf8(&bytes, name)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let cues = if text.starts_with("WEBVTT") { vtt::parse(text) } else { srt::parse(text) };
    let mut cues = cues.map_err(|(line, problem)| SubtitleError::Syntax { path: name.to_owned(), line, problem })?;
    cues.sort_by_key(|c| (c.start_ms, c.end_ms));
    Ok(cues)
}

/// The text as UTF-8, or the line where it stops being UTF-8.
fn decode_utf8(bytes: &[u8], name: &str) -> Result<String, SubtitleError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let line = bytes[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        SubtitleError::Syntax {
            path: name.to_owned(),
            line,
            problem: "not UTF-8 text (save the file as UTF-8)".to_owned(),
        }
    })
}

/// A planned subtitle rendition with its cues, on the output's timeline.
#[derive(Debug, Clone)]
pub(crate) struct Rendition {
    pub(crate) planned: crate::plan::PlannedSubtitle,
    pub(crate) cues: Vec<Cue>,
}

/// A planned rendition that could not be made, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeftOut {
    pub index: usize,
    pub language: String,
    pub reason: String,
}

/// The cues of every planned rendition: the sidecars' (read when the run planned, in
/// `sidecars`), and the recording's own streams, read now from `input`. A stream that
/// cannot be read is left out with a warning: the rest of the ladder is still good.
pub(crate) fn gather(
    plan: &crate::plan::Plan,
    input: &crate::location::Source,
    sidecars: &[Vec<Cue>],
) -> (Vec<Rendition>, Vec<LeftOut>) {
    use crate::plan::SubtitleSource;
    let streams: Vec<usize> = plan
        .subtitles
        .iter()
        .filter_map(|s| match s.source {
            SubtitleSource::Embedded { stream, .. } => Some(stream),
            SubtitleSource::Sidecar { .. } => None,
        })
        .collect();
    let mut embedded = if streams.is_empty() {
        Default::default()
    } else {
        embedded::read(input, &streams, plan.source.start_seconds)
    };
    let duration_ms = (plan.duration_seconds * 1000.0).round() as i64;
    // A sidecar is timed on the whole recording: a cut start moves its cues earlier.
    let cut_ms = plan.trim.as_ref().map_or(0, |t| (t.cut_before_seconds * 1000.0).round() as i64);
    let (mut made, mut left_out) = (Vec::new(), Vec::new());
    for planned in &plan.subtitles {
        let cues = match &planned.source {
            SubtitleSource::Embedded { stream, .. } => embedded.remove(stream).unwrap_or_else(|| {
                let detail = "was not read".to_owned();
                Err(SubtitleError::Embedded { path: input.name().display().to_string(), stream: *stream, detail })
            }),
            SubtitleSource::Sidecar { position, .. } => {
                Ok(shifted(sidecars.get(*position).cloned().unwrap_or_default(), cut_ms))
            }
        };
        match cues {
            Ok(cues) => {
                made.push(Rendition { planned: planned.clone(), cues: on_the_output(cues, duration_ms, planned) })
            }
            Err(e) => {
                tracing::warn!(rendition = planned.index, error = %e, "a subtitle stream is left out");
                let reason = e.to_string();
                left_out.push(LeftOut { index: planned.index, language: planned.language.clone(), reason });
            }
        }
    }
    (made, left_out)
}

/// `cues` `ms` earlier.
fn shifted(mut cues: Vec<Cue>, ms: i64) -> Vec<Cue> {
    for cue in &mut cues {
        cue.start_ms -= ms;
        cue.end_ms -= ms;
    }
    cues
}

/// The cues [`clip`]ped to the output, with a warning when some lie outside it: often a
/// sign of a file timed for another cut of the recording.
fn on_the_output(cues: Vec<Cue>, duration_ms: i64, planned: &crate::plan::PlannedSubtitle) -> Vec<Cue> {
    let given = cues.len();
    let cues = clip(cues, duration_ms);
    if cues.len() < given {
        let outside = given - cues.len();
        tracing::warn!(rendition = planned.index, outside, "subtitle cues outside the recording are left out");
    }
    cues
}

/// Fetches (when on S3) and reads each sidecar, in order: any problem stops the run.
pub fn load_sidecars(
    sidecars: &[Sidecar],
    scratch: &Path,
    storage: &crate::location::StorageConfig,
) -> Result<Vec<Vec<Cue>>, SubtitleError> {
    sidecars
        .iter()
        .enumerate()
        .map(|(k, sidecar)| {
            let name = sidecar.location.to_string();
            let path = local_copy(&sidecar.location, &scratch.join(format!("subtitles-{k}")), storage)?;
            read_sidecar(&path, &name)
        })
        .collect()
}

/// The sidecar's local path: itself, or its copy fetched into `folder`.
fn local_copy(
    location: &Location,
    folder: &Path,
    storage: &crate::location::StorageConfig,
) -> Result<PathBuf, SubtitleError> {
    if let Location::Local(path) = location {
        return Ok(path.clone());
    }
    let fetch_error = |source| SubtitleError::Fetch { location: location.to_string(), source };
    std::fs::create_dir_all(folder)
        .map_err(|source| SubtitleError::Unreadable { path: folder.display().to_string(), source })?;
    crate::location::fetch_input(location, folder, storage).map_err(fetch_error)
}

/// Cues on the output's timeline `[0, duration_ms)`: those outside dropped, those across
/// an edge cut to it.
pub(crate) fn clip(cues: Vec<Cue>, duration_ms: i64) -> Vec<Cue> {
    cues.into_iter()
        .filter(|c| c.end_ms > 0 && c.start_ms < duration_ms && c.end_ms > c.start_ms)
        .map(|c| Cue { start_ms: c.start_ms.max(0), end_ms: c.end_ms.min(duration_ms), ..c })
        .collect()
}

/// `[h:]mm:ss.mmm` (or `,mmm`, as SubRip writes it) in milliseconds.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let (clock, millis) = s.split_once(['.', ','])?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |p: &str| (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse::<i64>().ok())?;
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (number(h)?, number(m)?, number(s)?),
        [m, s] => (0, number(m)?, number(s)?),
        _ => return None,
    };
    if m > 59 || s > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + s) * 1000 + millis.parse::<i64>().ok()?)
}

/// `start --> end[ settings]` as two times in milliseconds and the settings, or a message
/// saying what was expected.
pub(crate) fn parse_timing(line: &str, example: &str) -> Result<(i64, i64, String), String> {
    let expected = || format!("expected a time range like `{example}`, found `{}`", crate::message::clip(line, 80));
    let (start, rest) = line.split_once("-->").ok_or_else(expected)?;
    let rest = rest.trim_start();
    let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let start = parse_timestamp(start.trim()).ok_or_else(expected)?;
    let end = parse_timestamp(end.trim()).ok_or_else(expected)?;
    if end < start {
        return Err(format!("the cue ends ({}) before it starts", end_text(line)));
    }
    Ok((start, end, settings.trim().to_owned()))
}

fn end_text(line: &str) -> &str {
    line.split_once("-->").map_or(line, |(_, e)| e.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_hours() {
        assert_eq!(parse_timestamp("00:00:01,500"), Some(1500));
        assert_eq!(parse_timestamp("01:02:03.004"), Some(3_723_004));
        assert_eq!(parse_timestamp("02:03.004"), Some(123_004));
        assert_eq!(parse_timestamp("100:00:00.000"), Some(360_000_000));
        assert_eq!(parse_timestamp("00:60:00.000"), None);
        assert_eq!(parse_timestamp("00:00:01.5"), None);
        assert_eq!(parse_timestamp("a:00:01.500"), None);
    }

    #[test]
    fn cues_are_clipped_to_the_output() {
        let cue = |s, e| Cue { start_ms: s, end_ms: e, settings: String::new(), text: "x".into() };
        let clipped = clip(vec![cue(-500, -1), cue(-500, 500), cue(900, 1500), cue(2000, 2500)], 1000);
        assert_eq!(clipped, vec![cue(0, 500), cue(900, 1000)]);
    }
}
