//! The part of a recording to keep: `--start`/`--end` (the operator's cut, like ffmpeg's
//! `-ss`/`-to` on the input, or MediaConvert's input clipping) and the dead air trimmed from
//! its ends ([`crate::dead_air`]). The plan applies it to the recording's span; every stage
//! after it (the grid, chunks, thumbnails, audio, captions) works on the trimmed timeline.

use serde::{Deserialize, Serialize};

/// `--start`/`--end`, in seconds from the recording's start (its first picture, or first
/// sound when that is earlier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Trim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
}

impl Trim {
    pub fn is_none(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// Checks what the flags alone can say: an end after the start.
    pub fn new(start: Option<f64>, end: Option<f64>) -> Result<Self, String> {
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            return Err(format!("--end {e:.3} is not after --start {s:.3}: give an end later than the start"));
        }
        Ok(Self { start, end })
    }
}

/// A time as `SECONDS` (`90`, `90.5`) or `[[HH:]MM:]SS[.mmm]` (`01:30`, `00:01:30.500`), as
/// ffmpeg's `-ss` takes it.
pub fn parse_time(text: &str) -> Result<f64, String> {
    let bad = || format!("{text:?} is not a time: use seconds (90.5) or HH:MM:SS.mmm (00:01:30.500)");
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let (last, whole) = parts.split_last().expect("split gives at least one part");
    let seconds: f64 = last.parse().map_err(|_| bad())?;
    if !seconds.is_finite() || seconds < 0.0 || (!whole.is_empty() && seconds >= 60.0) {
        return Err(bad());
    }
    let mut total = 0.0;
    for (n, part) in whole.iter().enumerate() {
        let value: u32 = part.parse().map_err(|_| bad())?;
        // Minutes under an hour field stay under 60; the first field may be as large as it likes.
        if n > 0 && value >= 60 {
            return Err(bad());
        }
        total = total * 60.0 + f64::from(value);
    }
    Ok(total * 60.0 + seconds)
}

/// What the plan kept of the recording: `[start, end)` seconds from its start, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTrim {
    /// What was asked (`--start`/`--end`).
    pub requested: Trim,
    /// Seconds from the recording's start where the output starts and ends.
    pub start_seconds: f64,
    pub end_seconds: f64,
    /// Seconds of the recording left out before and after.
    pub cut_before_seconds: f64,
    pub cut_after_seconds: f64,
    /// When the cut is the dead air the preset trims ([`crate::dead_air`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_air: Option<crate::dead_air::DeadAir>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_seconds_or_clock_times() {
        assert_eq!(parse_time("90"), Ok(90.0));
        assert_eq!(parse_time("3.25"), Ok(3.25));
        assert_eq!(parse_time("01:30"), Ok(90.0));
        assert_eq!(parse_time("00:01:30.500"), Ok(90.5));
        assert_eq!(parse_time("1:00:00"), Ok(3600.0));
        assert_eq!(parse_time("100:00"), Ok(6000.0));
        for bad in ["", "-1", "1:60", "1:2:3:4", "a", "1::2", "00:61:00", "inf", "NaN"] {
            assert!(parse_time(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Trim::new(Some(9.0), Some(3.0)).is_err());
        assert!(Trim::new(Some(3.0), Some(9.0)).is_ok());
    }
}
