//! Codec level limits (H.264 Table A-1, HEVC Table A.8, Main tier), used to reject rungs
//! that a player claiming the preset's level could not decode.

/// What one rung asks of a decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RungLoad {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub maxrate_kbps: u32,
    pub bufsize_kbit: u32,
}

/// H.264 levels: (name, MaxMBPS, MaxFS, MaxBR kbit/s, MaxCPB kbit) for Baseline/Main.
const H264: &[(&str, u64, u64, u64, u64)] = &[
    ("1", 1_485, 99, 64, 175),
    ("1b", 1_485, 99, 128, 350),
    ("1.1", 3_000, 396, 192, 500),
    ("1.2", 6_000, 396, 384, 1_000),
    ("1.3", 11_880, 396, 768, 2_000),
    ("2", 11_880, 396, 2_000, 2_000),
    ("2.1", 19_800, 792, 4_000, 4_000),
    ("2.2", 20_250, 1_620, 4_000, 4_000),
    ("3", 40_500, 1_620, 10_000, 10_000),
    ("3.1", 108_000, 3_600, 14_000, 14_000),
    ("3.2", 216_000, 5_120, 20_000, 20_000),
    ("4", 245_760, 8_192, 20_000, 25_000),
    ("4.1", 245_760, 8_192, 50_000, 62_500),
    ("4.2", 522_240, 8_704, 50_000, 62_500),
    ("5", 589_824, 22_080, 135_000, 135_000),
    ("5.1", 983_040, 36_864, 240_000, 240_000),
    ("5.2", 2_073_600, 36_864, 240_000, 240_000),
    ("6", 4_177_920, 139_264, 240_000, 240_000),
    ("6.1", 8_355_840, 139_264, 480_000, 480_000),
    ("6.2", 16_711_680, 139_264, 800_000, 800_000),
];

/// HEVC levels, Main tier: (name, MaxLumaPs, MaxLumaSr, MaxBR kbit/s, MaxCPB kbit).
const HEVC: &[(&str, u64, u64, u64, u64)] = &[
    ("1", 36_864, 552_960, 128, 350),
    ("2", 122_880, 3_686_400, 1_500, 1_500),
    ("2.1", 245_760, 7_372_800, 3_000, 3_000),
    ("3", 552_960, 16_588_800, 6_000, 6_000),
    ("3.1", 983_040, 33_177_600, 10_000, 10_000),
    ("4", 2_228_224, 66_846_720, 12_000, 12_000),
    ("4.1", 2_228_224, 133_693_440, 20_000, 20_000),
    ("5", 8_912_896, 267_386_880, 25_000, 25_000),
    ("5.1", 8_912_896, 534_773_760, 40_000, 40_000),
    ("5.2", 8_912_896, 1_069_547_520, 60_000, 60_000),
    ("6", 35_651_584, 1_069_547_520, 60_000, 60_000),
    ("6.1", 35_651_584, 2_139_095_040, 120_000, 120_000),
    ("6.2", 35_651_584, 4_278_190_080, 240_000, 240_000),
];

/// Normalises `4.0`, `"4.0"`, `40` and `"4"` to the table's spelling `4`.
pub(crate) fn normalise(level: &str) -> String {
    let t = level.trim().to_ascii_lowercase();
    if t == "1b" {
        return t;
    }
    // x264 also accepts level_idc integers (42 = 4.2).
    if let Ok(idc) = t.parse::<u32>()
        && idc >= 10
    {
        return normalise(&format!("{}.{}", idc / 10, idc % 10));
    }
    match t.strip_suffix(".0") {
        Some(major) => major.to_owned(),
        None => t,
    }
}

/// The level names known for a codec, for "expected one of" messages.
pub(crate) fn names(hevc: bool) -> Vec<&'static str> {
    let table = if hevc { HEVC } else { H264 };
    table.iter().map(|l| l.0).collect()
}

/// Whether `level` (normalised) exists for the codec.
pub(crate) fn is_known(level: &str, hevc: bool) -> bool {
    names(hevc).contains(&level)
}

/// Each limit of H.264 `level` that `load` exceeds, as a sentence. `high_profile` raises
/// the bitrate and buffer limits by the 1.25 factor of the High profile.
pub(crate) fn h264_violations(level: &str, high_profile: bool, load: RungLoad) -> Vec<String> {
    let Some(&(_, max_mbps, max_fs, max_br, max_cpb)) = H264.iter().find(|l| l.0 == level) else {
        return Vec::new();
    };
    let factor = if high_profile { 1.25 } else { 1.0 };
    let mbs_w = u64::from(load.width.div_ceil(16));
    let mbs_h = u64::from(load.height.div_ceil(16));
    let fs = mbs_w * mbs_h;
    let side_limit = ((max_fs * 8) as f64).sqrt() as u64;
    let mut out = Vec::new();
    if fs > max_fs {
        out.push(format!("{fs} macroblocks per frame exceed level {level}'s {max_fs}"));
    } else if mbs_w > side_limit || mbs_h > side_limit {
        out.push(format!("a side of {} macroblocks exceeds level {level}'s {side_limit}", mbs_w.max(mbs_h)));
    }
    let mbps = fs as f64 * load.fps;
    if mbps > max_mbps as f64 {
        out.push(format!("{mbps:.0} macroblocks/s at {:.3} fps exceed level {level}'s {max_mbps}", load.fps));
    }
    let br = max_br as f64 * factor;
    if f64::from(load.maxrate_kbps) > br {
        out.push(format!("maxrate {} kbit/s exceeds level {level}'s {br:.0}", load.maxrate_kbps));
    }
    let cpb = max_cpb as f64 * factor;
    if f64::from(load.bufsize_kbit) > cpb {
        out.push(format!("bufsize {} kbit exceeds level {level}'s {cpb:.0}", load.bufsize_kbit));
    }
    out
}

/// Each limit of HEVC Main-tier `level` that `load` exceeds, as a sentence.
pub(crate) fn hevc_violations(level: &str, load: RungLoad) -> Vec<String> {
    let Some(&(_, max_ps, max_sr, max_br, max_cpb)) = HEVC.iter().find(|l| l.0 == level) else {
        return Vec::new();
    };
    let ps = u64::from(load.width) * u64::from(load.height);
    let side_limit = ((max_ps * 8) as f64).sqrt() as u64;
    let mut out = Vec::new();
    if ps > max_ps {
        out.push(format!("{ps} luma samples per picture exceed level {level}'s {max_ps}"));
    } else if u64::from(load.width.max(load.height)) > side_limit {
        out.push(format!("a side of {} pixels exceeds level {level}'s {side_limit}", load.width.max(load.height)));
    }
    let sr = ps as f64 * load.fps;
    if sr > max_sr as f64 {
        out.push(format!("{sr:.0} luma samples/s at {:.3} fps exceed level {level}'s {max_sr}", load.fps));
    }
    if u64::from(load.maxrate_kbps) > max_br {
        out.push(format!("maxrate {} kbit/s exceeds level {level}'s {max_br}", load.maxrate_kbps));
    }
    if u64::from(load.bufsize_kbit) > max_cpb {
        out.push(format!("bufsize {} kbit exceeds level {level}'s {max_cpb}", load.bufsize_kbit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(width: u32, height: u32, fps: f64, maxrate_kbps: u32) -> RungLoad {
        RungLoad { width, height, fps, maxrate_kbps, bufsize_kbit: maxrate_kbps * 2 }
    }

    #[test]
    fn apple_top_rung_fits_high_4_2_at_60_fps() {
        assert!(h264_violations("4.2", true, load(1920, 1080, 60.0, 9_000)).is_empty());
    }

    #[test]
    fn level_4_1_cannot_carry_1080p60() {
        let v = h264_violations("4.1", true, load(1920, 1080, 60.0, 9_000));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("macroblocks/s"), "{v:?}");
    }

    #[test]
    fn level_3_1_cannot_carry_1080p() {
        let v = h264_violations("3.1", true, load(1920, 1080, 30.0, 6_000));
        assert!(v.iter().any(|m| m.contains("per frame")), "{v:?}");
    }

    #[test]
    fn hevc_level_4_caps_main_tier_bitrate() {
        let at = |maxrate_kbps| RungLoad { bufsize_kbit: maxrate_kbps, ..load(1920, 1080, 30.0, maxrate_kbps) };
        assert!(hevc_violations("4", at(12_000)).is_empty());
        let v = hevc_violations("4", at(15_000));
        assert!(v.iter().any(|m| m.contains("maxrate")), "{v:?}");
    }

    #[test]
    fn spellings_of_a_level_normalise() {
        assert_eq!(normalise("4.0"), "4");
        assert_eq!(normalise("42"), "4.2");
        assert_eq!(normalise(" 5.1 "), "5.1");
        assert_eq!(normalise("1B"), "1b");
    }
}
