//! The output layout: every name ladder writes under the output root, in one place (the
//! contract with players, CDNs and reruns; see design.md). Readers and writers ask here
//! instead of spelling a name themselves.
//!
//! ```text
//! master.m3u8  manifest.mpd  report.json
//! v<i>/init.mp4  seg_<n>.m4s  index.m3u8  iframes.m3u8
//! a<k>/init.mp4  seg_<n>.m4s  index.m3u8
//! download/<rung>.mp4  audio.m4a
//! s<k>/seg_<n>.vtt  index.m3u8  subtitles.vtt
//! thumbs/poster.jpg  t_<n>.jpg  sprite_<k>.jpg  thumbs.vtt
//! .ladder/plan.json  lease.json  chunks/<c>.json  chunks/audio_<k>.json  posters/<frame>.jpg
//! ```
//!
//! Media (segments, init segments, stills) is cached as immutable under its name. An output
//! taken over from another recording with `--overwrite` therefore puts its media folders
//! under `g<n>/` ([`Media`], `n` counting the takeovers, kept in the lease), so no name a CDN
//! may hold ever comes back with other bytes; the top-level files keep their names.

/// The master playlist: its presence means the ladder is complete.
pub(crate) const MASTER_PLAYLIST: &str = "master.m3u8";
/// The DASH manifest.
pub(crate) const MPD: &str = "manifest.mpd";
/// `report.json`.
pub(crate) const REPORT: &str = "report.json";
/// Files whose presence means "complete"; removed before a run redoes any work.
pub(crate) const PUBLISHED: [&str; 2] = [MASTER_PLAYLIST, MPD];

/// A track's init segment, inside its folder.
pub(crate) const INIT: &str = "init.mp4";
/// A track's HLS media playlist, inside its folder.
pub(crate) const MEDIA_PLAYLIST: &str = "index.m3u8";
/// A video rung's HLS I-frame playlist, inside its folder.
pub(crate) const IFRAME_PLAYLIST: &str = "iframes.m3u8";
/// The DASH `SegmentTemplate` names, relative to the output root.
pub(crate) const DASH_INIT_TEMPLATE: &str = "$RepresentationID$/init.mp4";
pub(crate) const DASH_MEDIA_TEMPLATE: &str = "$RepresentationID$/seg_$Number$.m4s";

/// Where one generation of an output's media lies: the root for an output's first owner,
/// `g<n>/` after its n-th takeover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    prefix: String,
}

impl Media {
    pub(crate) fn of(generation: u32) -> Self {
        Self { prefix: if generation == 0 { String::new() } else { format!("g{generation}/") } }
    }

    /// The folder of video rung `index`: `v<index>`.
    pub(crate) fn video_dir(&self, index: usize) -> String {
        format!("{}v{index}", self.prefix)
    }

    /// The folder of audio track `index`: `a<index>`.
    pub(crate) fn audio_dir(&self, index: usize) -> String {
        format!("{}a{index}", self.prefix)
    }

    /// The folder of subtitle rendition `index`: `s<index>`.
    pub(crate) fn subtitle_dir(&self, index: usize) -> String {
        format!("{}s{index}", self.prefix)
    }

    /// `download/audio.m4a`: the default audio rendition as one progressive file.
    pub(crate) fn podcast(&self) -> String {
        format!("{}download/audio.m4a", self.prefix)
    }

    /// `download/<rung>.mp4`: a video rung and the default audio as one progressive file.
    /// `rung` is a preset's rung name, checked to be usable as a file name.
    pub(crate) fn download(&self, rung: &str) -> String {
        format!("{}download/{rung}.mp4", self.prefix)
    }

    /// The thumbnails' folder: `thumbs`.
    pub(crate) fn thumbs_dir(&self) -> String {
        format!("{}{THUMBS_DIR}", self.prefix)
    }

    /// `thumbs/t_<n>.jpg`.
    pub(crate) fn still_key(&self, n: usize) -> String {
        in_dir(&self.thumbs_dir(), &format!("t_{n}.jpg"))
    }

    /// `thumbs/sprite_<k>.jpg`.
    pub(crate) fn sprite_key(&self, k: usize) -> String {
        in_dir(&self.thumbs_dir(), &sprite_file(k))
    }

    /// `thumbs/poster.jpg`.
    pub(crate) fn poster(&self) -> String {
        in_dir(&self.thumbs_dir(), POSTER)
    }

    /// `thumbs/thumbs.vtt`: the WebVTT index of the sprites.
    pub(crate) fn thumbs_vtt(&self) -> String {
        in_dir(&self.thumbs_dir(), THUMBS_VTT)
    }
}

/// Whether `key` lies in an audio track's folder (of any generation).
pub(crate) fn is_audio(key: &str) -> bool {
    let key = key
        .strip_prefix('g')
        .and_then(|rest| rest.split_once('/'))
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .map_or(key, |(_, rest)| rest);
    key.strip_prefix('a').and_then(|rest| rest.split_once('/')).is_some_and(|(n, _)| n.parse::<u32>().is_ok())
}

/// Segment `index`'s file name inside its track's folder: `seg_<index>.m4s`.
pub(crate) fn segment_file(index: u32) -> String {
    format!("seg_{index}.m4s")
}

/// A subtitle rendition's WebVTT segment `index` inside its folder: `seg_<index>.vtt`.
pub(crate) fn subtitle_segment_file(index: u32) -> String {
    format!("seg_{index}.vtt")
}

/// A subtitle rendition's cues in one WebVTT file, inside its folder: what the MPD names.
pub(crate) const SUBTITLES_FILE: &str = "subtitles.vtt";

/// `<dir>/<file>`.
pub(crate) fn in_dir(dir: &str, file: &str) -> String {
    format!("{dir}/{file}")
}

/// `<dir>/seg_<index>.m4s`.
pub(crate) fn segment_key(dir: &str, index: u32) -> String {
    in_dir(dir, &segment_file(index))
}

/// `<dir>/init.mp4`.
pub(crate) fn init_key(dir: &str) -> String {
    in_dir(dir, INIT)
}

/// The thumbnails' folder ([`Media::thumbs_dir`]) and the names in it.
const THUMBS_DIR: &str = "thumbs";
const POSTER: &str = "poster.jpg";
const THUMBS_VTT: &str = "thumbs.vtt";

/// Sprite sheet `k`'s name inside `thumbs/` (as the WebVTT index names it).
pub(crate) fn sprite_file(k: usize) -> String {
    format!("sprite_{k}.jpg")
}

/// The checkpoints' folder: never published, never cached.
pub(crate) const CHECKPOINTS_DIR: &str = ".ladder";
/// The plan every record of this output was made for.
pub(crate) const PLAN: &str = ".ladder/plan.json";
/// The output's owner: which recording and preset it holds (a conditional create).
pub(crate) const LEASE: &str = ".ladder/lease.json";

/// A part of the work with a record of its own: a chunk of the video, or an audio rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Chunk(u32),
    Audio(usize),
}

/// The record of a part: `chunks/<c>.json`, `chunks/audio_<k>.json`.
pub(crate) fn record_key(part: Part) -> String {
    match part {
        Part::Chunk(c) => format!("{CHECKPOINTS_DIR}/chunks/{c}.json"),
        Part::Audio(k) => format!("{CHECKPOINTS_DIR}/chunks/audio_{k}.json"),
    }
}

/// A poster candidate from output frame `frame`: kept out of the published tree; assembly
/// copies the chosen one to [`Media::poster`].
pub(crate) fn poster_candidate_key(frame: u64) -> String {
    format!("{CHECKPOINTS_DIR}/posters/{frame}.jpg")
}

/// Whether `key` is a checkpoint (under `.ladder/`).
pub(crate) fn is_checkpoint(key: &str) -> bool {
    key.strip_prefix(CHECKPOINTS_DIR).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let media = Media::of(0);
        assert_eq!(segment_key(&media.video_dir(2), 7), "v2/seg_7.m4s");
        assert_eq!(init_key(&media.audio_dir(0)), "a0/init.mp4");
        assert_eq!(in_dir("v0", MEDIA_PLAYLIST), "v0/index.m3u8");
        assert_eq!(media.still_key(3), "thumbs/t_3.jpg");
        assert_eq!(media.sprite_key(1), "thumbs/sprite_1.jpg");
        assert_eq!(media.poster(), "thumbs/poster.jpg");
        assert_eq!(media.thumbs_vtt(), "thumbs/thumbs.vtt");
        assert_eq!(in_dir(&media.subtitle_dir(1), &subtitle_segment_file(3)), "s1/seg_3.vtt");
        assert_eq!(in_dir(&media.subtitle_dir(0), SUBTITLES_FILE), "s0/subtitles.vtt");
        assert_eq!(Media::of(2).subtitle_dir(0), "g2/s0");
        assert_eq!(record_key(Part::Chunk(4)), ".ladder/chunks/4.json");
        assert_eq!(record_key(Part::Audio(1)), ".ladder/chunks/audio_1.json");
        assert_eq!(poster_candidate_key(10), ".ladder/posters/10.jpg");
        assert_eq!(DASH_MEDIA_TEMPLATE.replace("$RepresentationID$", "v1").replace("$Number$", "3"), "v1/seg_3.m4s");
    }

    #[test]
    fn kinds_of_key_are_told_apart() {
        assert!(is_audio("a0/init.mp4") && is_audio("a12/seg_1.m4s"));
        assert!(!is_audio("v0/init.mp4") && !is_audio("assets/x.mp4") && !is_audio("a0"));
        assert!(is_checkpoint(".ladder/chunks/0.json") && !is_checkpoint(".ladderx/y") && !is_checkpoint("v0/x"));
    }

    #[test]
    fn a_takeover_puts_media_under_its_generation() {
        let media = Media::of(2);
        assert_eq!(segment_key(&media.video_dir(0), 1), "g2/v0/seg_1.m4s");
        assert_eq!(init_key(&media.audio_dir(0)), "g2/a0/init.mp4");
        assert_eq!(media.poster(), "g2/thumbs/poster.jpg");
        assert!(is_audio("g2/a0/init.mp4") && is_audio("a1/seg_3.m4s"));
        assert!(!is_audio("g2/v0/init.mp4") && !is_audio("gx/a0/init.mp4") && !is_audio("v0/init.mp4"));
    }
}
