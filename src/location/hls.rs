//! An HLS recording given as its playlist: the files the playlist names, which must lie
//! beside it (relative names only: ladder never follows a URL a tenant's upload names). The
//! probe checks a local playlist's names; an S3 one is fetched with every file it names.

use std::path::{Component, Path, PathBuf};

use super::{StorageConfig, StorageError, s3};

/// Whether `key` names an HLS playlist.
pub(crate) fn is_playlist(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|name| name.to_ascii_lowercase().ends_with(".m3u8"))
}

/// Every URI an HLS playlist names: its segment lines and its tags' `URI="…"` attributes
/// (`EXT-X-MAP`, `EXT-X-KEY`).
pub(crate) fn uris(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter_map(|line| match line {
        "" => None,
        l if l.starts_with('#') => l.split_once("URI=\"").and_then(|(_, rest)| rest.split('"').next()),
        l => Some(l),
    })
}

/// Why a URI cannot be a file beside the playlist, if it cannot.
pub(crate) fn not_beside(uri: &str) -> Option<&'static str> {
    if uri.contains("://") {
        Some("a URL: ladder reads only files beside the playlist")
    } else if Path::new(uri).components().any(|c| !matches!(c, Component::Normal(_))) {
        Some("outside the playlist's folder: ladder reads only files beside the playlist")
    } else {
        None
    }
}

/// Fetches the playlist `s3://bucket/key` and every file it names (keys relative to the
/// playlist's) into `scratch/hls/`, keeping their relative names; returns the playlist's
/// path. A name that is not beside the playlist is left for the probe to refuse.
pub(crate) fn fetch(bucket: &str, key: &str, scratch: &Path, config: &StorageConfig) -> Result<PathBuf, StorageError> {
    let dir = scratch.join("hls");
    let name = key.rsplit('/').next().unwrap_or("index.m3u8");
    let playlist = dir.join(name);
    let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
    let mut files = vec![(key.to_owned(), playlist.clone())];
    s3::fetch_files(bucket, &files, config)?;
    let text = std::fs::read_to_string(&playlist).map_err(|source| StorageError::Io {
        location: format!("s3://{bucket}/{key}"),
        action: "reading the fetched playlist",
        key: playlist.display().to_string(),
        source,
    })?;
    // A file named twice (an `EXT-X-MAP` repeated after each discontinuity) is fetched once.
    let mut named = std::collections::BTreeSet::new();
    files = uris(&text)
        .filter(|uri| !uri.starts_with("data:") && not_beside(uri).is_none() && named.insert(*uri))
        .map(|uri| (if folder.is_empty() { uri.to_owned() } else { format!("{folder}/{uri}") }, dir.join(uri)))
        .collect();
    tracing::info!(files = files.len(), "fetching the files the HLS playlist names");
    s3::fetch_files(bucket, &files, config)?;
    Ok(playlist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beside_the_playlist_are_taken_and_others_refused() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nseg_0.m4s\n\n#EXTINF:2,\nparts/seg_1.m4s\n";
        assert_eq!(uris(text).collect::<Vec<_>>(), ["init.mp4", "seg_0.m4s", "parts/seg_1.m4s"]);
        assert_eq!(not_beside("parts/seg_1.m4s"), None);
        assert!(not_beside("http://169.254.169.254/x.ts").is_some_and(|why| why.starts_with("a URL")));
        assert!(not_beside("../other/seg.ts").is_some());
        assert!(not_beside("/etc/passwd").is_some());
        assert!(is_playlist("rooms/a/index.M3U8") && !is_playlist("rooms/a.m3u8/seg.ts"));
    }
}
