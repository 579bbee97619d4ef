//! The output layout: every name ladder writes under the output root, in one place (the
//! contract with players, CDNs and reruns; see design.md). Readers and writers ask here
//! instead of spelling a name themselves.
//!
//! ```text
//! master.m3u8  manifest.mpd  report.json
//! v<i>/init.mp4  seg_<n>.m4s  index.m3u8  iframes.m3u8
//! a<k>/init.mp4  seg_<n>.m4s  index.m3u8
//! thumbs/poster.jpg  t_<n>.jpg  sprite_<k>.jpg  thumbs.vtt
//! .ladder/plan.json  lease.json  chunks/<c>.json  chunks/audio.json  posters/<frame>.jpg
//! ```

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

/// The folder of video rung `index`: `v<index>`.
pub(crate) fn video_dir(index: usize) -> String {
    format!("v{index}")
}

/// The folder of audio track `index`: `a<index>`.
pub(crate) fn audio_dir(index: usize) -> String {
    format!("a{index}")
}

/// Whether `key` lies in an audio track's folder.
pub(crate) fn is_audio(key: &str) -> bool {
    key.strip_prefix('a').and_then(|rest| rest.split_once('/')).is_some_and(|(n, _)| n.parse::<u32>().is_ok())
}

/// Segment `index`'s file name inside its track's folder: `seg_<index>.m4s`.
pub(crate) fn segment_file(index: u32) -> String {
    format!("seg_{index}.m4s")
}

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

/// The thumbnails' folder.
pub(crate) const THUMBS_DIR: &str = "thumbs";
/// `thumbs/poster.jpg`.
pub(crate) const POSTER: &str = "thumbs/poster.jpg";
/// `thumbs/thumbs.vtt`: the WebVTT index of the sprites.
pub(crate) const THUMBS_VTT: &str = "thumbs/thumbs.vtt";

/// `thumbs/t_<n>.jpg`.
pub(crate) fn still_key(n: usize) -> String {
    format!("{THUMBS_DIR}/t_{n}.jpg")
}

/// Sprite sheet `k`'s name inside `thumbs/` (as the WebVTT index names it).
pub(crate) fn sprite_file(k: usize) -> String {
    format!("sprite_{k}.jpg")
}

/// `thumbs/sprite_<k>.jpg`.
pub(crate) fn sprite_key(k: usize) -> String {
    in_dir(THUMBS_DIR, &sprite_file(k))
}

/// The checkpoints' folder: never published, never cached.
pub(crate) const CHECKPOINTS_DIR: &str = ".ladder";
/// The plan every record of this output was made for.
pub(crate) const PLAN: &str = ".ladder/plan.json";
/// The output's owner: which recording and preset it holds (a conditional create).
pub(crate) const LEASE: &str = ".ladder/lease.json";

/// The record of a chunk, or of the audio (`chunk = None`).
pub(crate) fn record_key(chunk: Option<u32>) -> String {
    match chunk {
        Some(c) => format!("{CHECKPOINTS_DIR}/chunks/{c}.json"),
        None => format!("{CHECKPOINTS_DIR}/chunks/audio.json"),
    }
}

/// A poster candidate from output frame `frame`: kept out of the published tree; assembly
/// copies the chosen one to [`POSTER`].
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
        assert_eq!(segment_key(&video_dir(2), 7), "v2/seg_7.m4s");
        assert_eq!(init_key(&audio_dir(0)), "a0/init.mp4");
        assert_eq!(in_dir("v0", MEDIA_PLAYLIST), "v0/index.m3u8");
        assert_eq!(still_key(3), "thumbs/t_3.jpg");
        assert_eq!(sprite_key(1), "thumbs/sprite_1.jpg");
        assert_eq!(record_key(Some(4)), ".ladder/chunks/4.json");
        assert_eq!(record_key(None), ".ladder/chunks/audio.json");
        assert_eq!(poster_candidate_key(10), ".ladder/posters/10.jpg");
        assert_eq!(DASH_MEDIA_TEMPLATE.replace("$RepresentationID$", "v1").replace("$Number$", "3"), "v1/seg_3.m4s");
    }

    #[test]
    fn kinds_of_key_are_told_apart() {
        assert!(is_audio("a0/init.mp4") && is_audio("a12/seg_1.m4s"));
        assert!(!is_audio("v0/init.mp4") && !is_audio("assets/x.mp4") && !is_audio("a0"));
        assert!(is_checkpoint(".ladder/chunks/0.json") && !is_checkpoint(".ladderx/y") && !is_checkpoint("v0/x"));
    }
}
