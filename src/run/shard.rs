//! `--shard i/N`: which chunks (and whether the audio) this process encodes.

use crate::plan::Chunk;

/// A share of a plan's chunks: chunk `c` belongs to shard `c % count`, the audio to the
/// shard with the fewest frames ([`Shard::owns_audio`]). Any shard that finds every record
/// present assembles and publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole job.
    pub(crate) const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/N` (0 ≤ i < N).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("shard {text:?} is not i/N (e.g. 0/4)"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0/{count} … {}/{count})",
                count.max(1) - 1
            ));
        }
        Ok(Self { index, count })
    }

    pub(crate) fn owns_chunk(self, chunk: u32) -> bool {
        chunk % self.count == self.index
    }

    /// The audio goes to the shard with the fewest video frames to encode, `encoded(chunk)`
    /// each (on a tie, the last of them: it owns the last chunk, usually the shortest), so
    /// that shards finish together.
    pub(crate) fn owns_audio(self, chunks: &[Chunk], encoded: impl Fn(&Chunk) -> u64) -> bool {
        let frames =
            |shard: u32| -> u64 { chunks.iter().filter(|c| c.index % self.count == shard).map(&encoded).sum() };
        let lightest = (0..self.count).rev().min_by_key(|&s| frames(s)).unwrap_or(0);
        self.index == lightest
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(lengths: &[u64]) -> Vec<Chunk> {
        let mut start = 0;
        (0..lengths.len() as u32)
            .map(|index| {
                let c = Chunk {
                    index,
                    first_segment: index,
                    end_segment: index + 1,
                    start_frame: start,
                    end_frame: start + lengths[index as usize],
                };
                start = c.end_frame;
                c
            })
            .collect()
    }

    fn audio_owner(count: u32, lengths: &[u64]) -> Vec<u32> {
        let chunks = chunks(lengths);
        let encoded = |c: &Chunk| c.end_frame - c.start_frame;
        (0..count).filter(|&index| Shard { index, count }.owns_audio(&chunks, encoded)).collect()
    }

    #[test]
    fn exactly_one_shard_owns_the_audio_the_one_with_the_fewest_frames() {
        assert_eq!(audio_owner(1, &[750, 750]), [0]);
        // Equal shares: the last shard.
        assert_eq!(audio_owner(2, &[750, 750]), [1]);
        // Shard 0 has chunks 0 and 2, shard 1 only chunk 1.
        assert_eq!(audio_owner(2, &[750, 750, 100]), [1]);
        // Three shards: shard 0 has two chunks, 1 and 2 one each; the last of those.
        assert_eq!(audio_owner(3, &[750, 750, 750, 750]), [2]);
        assert_eq!(audio_owner(3, &[750, 750, 750, 750, 750, 100]), [2]);
        assert_eq!(audio_owner(3, &[750, 750, 750, 750, 750, 750, 10]), [2]);
        // More shards than chunks: an idle shard takes it.
        assert_eq!(audio_owner(4, &[750, 750]), [3]);
        // What a chunk costs counts, e.g. a warm-up before every chunk but the first.
        let chunks = chunks(&[750, 750]);
        let warmed = |c: &Chunk| c.end_frame - c.start_frame + if c.start_frame > 0 { 25 } else { 0 };
        assert!(Shard { index: 0, count: 2 }.owns_audio(&chunks, warmed));
        assert!(!Shard { index: 1, count: 2 }.owns_audio(&chunks, warmed));
    }
}
