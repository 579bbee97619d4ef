//! Frame rates as exact fractions (`30000/1001`), never as floats, so that segment grids
//! are computed in whole frames.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive frame rate `num/den` in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRate {
    num: u32,
    den: u32,
}

/// Why text could not be read as a frame rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid frame rate {text:?} (expected a positive number such as 25, 29.97 or 30000/1001)")]
pub struct FrameRateError {
    text: String,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl FrameRate {
    /// `num/den` reduced; `None` when either is zero.
    pub fn new(num: u32, den: u32) -> Option<Self> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(u64::from(num), u64::from(den)) as u32;
        Some(Self { num: num / g, den: den / g })
    }

    /// Reads a libav rational, rejecting the `0/0` and `x/0` libav uses for "unknown".
    pub fn from_av(r: ffmpeg_next::Rational) -> Option<Self> {
        let (n, d) = (r.numerator(), r.denominator());
        if n <= 0 || d <= 0 {
            return None;
        }
        Self::new(n as u32, d as u32)
    }

    /// The closest fraction for a decimal rate, preferring the NTSC `/1001` family
    /// (29.97 → 30000/1001) since that is what such a number always means in video.
    pub fn from_f64(fps: f64) -> Option<Self> {
        if !fps.is_finite() || fps <= 0.0 || fps > 1000.0 {
            return None;
        }
        let rounded = fps.round();
        if (fps - rounded).abs() < 1e-6 {
            return Self::new(rounded as u32, 1);
        }
        let ntsc = (fps * 1.001).round();
        if (ntsc * 1000.0 / 1001.0 - fps).abs() < 0.006 {
            return Self::new(ntsc as u32 * 1000, 1001);
        }
        Self::new((fps * 1000.0).round() as u32, 1000)
    }

    pub fn num(self) -> u32 {
        self.num
    }

    pub fn den(self) -> u32 {
        self.den
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// This rate as a libav rational.
    pub fn to_av(self) -> ffmpeg_next::Rational {
        ffmpeg_next::Rational::new(self.num as i32, self.den as i32)
    }

    /// `seconds × rate` when it is a whole number of frames.
    pub fn whole_frames_in(self, seconds: f64) -> Option<u64> {
        let frames = seconds * self.as_f64();
        let rounded = frames.round();
        ((frames - rounded).abs() < 1e-6 && rounded >= 1.0).then_some(rounded as u64)
    }

    /// This rate divided by `d` (e.g. 50 → 25 when halving).
    pub fn divided_by(self, d: u32) -> Self {
        Self::new(self.num, self.den * d).expect("a positive rate divided by a positive integer is positive")
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

impl FromStr for FrameRate {
    type Err = FrameRateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FrameRateError { text: s.to_owned() };
        let t = s.trim();
        if let Some((n, d)) = t.split_once('/') {
            let n = n.trim().parse().map_err(|_| err())?;
            let d = d.trim().parse().map_err(|_| err())?;
            return Self::new(n, d).ok_or_else(err);
        }
        let x: f64 = t.parse().map_err(|_| err())?;
        Self::from_f64(x).ok_or_else(err)
    }
}

impl Serialize for FrameRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FrameRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for FrameRate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FrameRate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A frame rate as `num/den` or a whole number, e.g. \"30000/1001\" or \"25\".",
            "pattern": "^[0-9]+(/[0-9]+)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_ntsc_rates_become_1001_fractions() {
        assert_eq!("29.97".parse::<FrameRate>().unwrap().to_string(), "30000/1001");
        assert_eq!("23.976".parse::<FrameRate>().unwrap().to_string(), "24000/1001");
        assert_eq!("59.94".parse::<FrameRate>().unwrap().to_string(), "60000/1001");
        assert_eq!("25".parse::<FrameRate>().unwrap().to_string(), "25");
        assert_eq!("50/2".parse::<FrameRate>().unwrap().to_string(), "25");
        assert_eq!("12.5".parse::<FrameRate>().unwrap().to_string(), "25/2");
    }

    #[test]
    fn zero_and_garbage_are_rejected() {
        assert!("0".parse::<FrameRate>().is_err());
        assert!("30/0".parse::<FrameRate>().is_err());
        assert!("fast".parse::<FrameRate>().is_err());
    }

    #[test]
    fn whole_frames_only_for_exact_multiples() {
        let ntsc: FrameRate = "30000/1001".parse().unwrap();
        assert_eq!(ntsc.whole_frames_in(2.0), None);
        assert_eq!(ntsc.whole_frames_in(2.002), Some(60));
        let pal: FrameRate = "25".parse().unwrap();
        assert_eq!(pal.whole_frames_in(2.0), Some(50));
        assert_eq!(pal.whole_frames_in(0.5), None);
    }
}
