//! PSNR and SSIM of an encoded rung against the pictures it was made from, measured in
//! process on 8-bit YUV 4:2:0 frames.
//!
//! The numbers are those of FFmpeg's `psnr` and `ssim` filters (so they can be checked
//! with the CLI): PSNR from the squared error summed over all samples of all planes, SSIM
//! by x264's method (4×4 block sums, 8×8 windows overlapping by 4) with the planes weighted
//! by their sample counts (Y 4 : U 1 : V 1 for 4:2:0).
//!
//! Totals are integers (SSIM in fixed point), so totals of chunks measured apart, in any
//! order or process, merge into exactly the totals of one uninterrupted run.

use std::cell::RefCell;

use ffmpeg_next::{format::Pixel, frame};
use serde::{Deserialize, Serialize};

/// The PSNR reported for pictures without any error (x264 reports the same); also the
/// ceiling of every PSNR reported, so that reports stay finite numbers in JSON.
pub(crate) const PSNR_CAP_DB: f64 = 100.0;

/// Fixed-point scale of the SSIM sums: 2^32 keeps 9 decimal places and room for 2^31
/// frames in an `i64`.
const SSIM_SCALE: f64 = (1u64 << 32) as f64;

/// Why a pair of frames could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("the {which} frame is {format:?}; quality is measured on 8-bit yuv420p frames")]
    Format { which: &'static str, format: Pixel },
    #[error("the distorted frame is {distorted_w}x{distorted_h}, its reference {reference_w}x{reference_h}")]
    SizeMismatch { reference_w: u32, reference_h: u32, distorted_w: u32, distorted_h: u32 },
    #[error("a {width}x{height} frame is too small for SSIM (needs at least 16x16, one 8x8 window per chroma plane)")]
    TooSmall { width: u32, height: u32 },
}

/// Running totals over a rung's frames: everything needed to report its PSNR and SSIM.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityTotals {
    /// Frames compared.
    pub frames: u64,
    /// Sum of squared errors per plane (Y, U, V) over all frames.
    pub sse: [u64; 3],
    /// Samples per plane (Y, U, V) over all frames.
    pub samples: [u64; 3],
    /// Per plane (Y, U, V), the sum over frames of the plane's SSIM, in units of 2^-32.
    pub ssim_sum_q32: [i64; 3],
}

impl QualityTotals {
    /// Adds one frame: `distorted` (decoded from the encoder's output) against `reference`
    /// (the picture given to the encoder). Both must be yuv420p (or yuvj420p) of one size.
    pub fn add_frame(&mut self, reference: &frame::Video, distorted: &frame::Video) -> Result<(), QualityError> {
        for (which, f) in [("reference", reference), ("distorted", distorted)] {
            if !matches!(f.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
                return Err(QualityError::Format { which, format: f.format() });
            }
        }
        let (width, height) = (reference.width(), reference.height());
        if (distorted.width(), distorted.height()) != (width, height) {
            return Err(QualityError::SizeMismatch {
                reference_w: width,
                reference_h: height,
                distorted_w: distorted.width(),
                distorted_h: distorted.height(),
            });
        }
        if width < 16 || height < 16 {
            return Err(QualityError::TooSmall { width, height });
        }
        for plane in 0..3 {
            let (w, h) = (reference.plane_width(plane) as usize, reference.plane_height(plane) as usize);
            let (a, a_stride) = (reference.data(plane), reference.stride(plane));
            let (b, b_stride) = (distorted.data(plane), distorted.stride(plane));
            self.sse[plane] += plane_sse(a, a_stride, b, b_stride, w, h);
            self.samples[plane] += (w * h) as u64;
            let (sum, count) = plane_ssim(a, a_stride, b, b_stride, w, h);
            self.ssim_sum_q32[plane] += (sum / count as f64 * SSIM_SCALE).round() as i64;
        }
        self.frames += 1;
        Ok(())
    }

    /// Adds totals measured elsewhere (another chunk of the same rung).
    pub fn merge(&mut self, other: &QualityTotals) {
        self.frames += other.frames;
        for plane in 0..3 {
            self.sse[plane] += other.sse[plane];
            self.samples[plane] += other.samples[plane];
            self.ssim_sum_q32[plane] += other.ssim_sum_q32[plane];
        }
    }

    /// PSNR over all planes, as FFmpeg's `psnr` filter prints "average": from the mean
    /// squared error over every sample of every plane (for frames of one size, the mean
    /// over frames of each frame's MSE). `None` before any frame; [`PSNR_CAP_DB`] when
    /// there is no error at all, and never more.
    pub fn psnr_db(&self) -> Option<f64> {
        psnr(self.sse.iter().sum(), self.samples.iter().sum())
    }

    /// PSNR of the luma plane alone (FFmpeg's "y"), with the same `None` and cap as
    /// [`Self::psnr_db`].
    pub fn psnr_y_db(&self) -> Option<f64> {
        psnr(self.sse[0], self.samples[0])
    }

    /// SSIM over all planes, as FFmpeg's `ssim` filter prints "All": the mean over frames of
    /// each frame's SSIM, whose planes are weighted by their sample counts. 1 for identical
    /// pictures; `None` before any frame.
    pub fn ssim(&self) -> Option<f64> {
        let total: u64 = self.samples.iter().sum();
        if self.frames == 0 || total == 0 {
            return None;
        }
        // Weights applied before dividing, so that identical pictures give exactly 1.
        let weighted: f64 = (0..3).map(|p| self.samples[p] as f64 * self.plane_ssim_mean(p)).sum();
        Some(weighted / total as f64)
    }

    /// SSIM of the luma plane alone (FFmpeg's "Y"); `None` before any frame.
    pub fn ssim_y(&self) -> Option<f64> {
        (self.frames > 0).then(|| self.plane_ssim_mean(0))
    }

    fn plane_ssim_mean(&self, plane: usize) -> f64 {
        self.ssim_sum_q32[plane] as f64 / SSIM_SCALE / self.frames as f64
    }
}

fn psnr(sse: u64, samples: u64) -> Option<f64> {
    if samples == 0 {
        return None;
    }
    if sse == 0 {
        return Some(PSNR_CAP_DB);
    }
    let mse = sse as f64 / samples as f64;
    Some((10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_CAP_DB))
}

/// Samples summed in `u32` lanes before widening: 255² × 32768 / 16 per lane < 2^32.
const SSE_RUN: usize = 32 * 1024;

/// Sum of squared differences between two 8-bit planes of `width` × `height` samples, rows
/// `a_stride` and `b_stride` bytes apart.
///
/// # Panics
/// If a slice is shorter than its last row ends (`(height - 1) * stride + width`).
pub(crate) fn plane_sse(a: &[u8], a_stride: usize, b: &[u8], b_stride: usize, width: usize, height: usize) -> u64 {
    let mut total = 0u64;
    for y in 0..height {
        let row_a = &a[y * a_stride..][..width];
        let row_b = &b[y * b_stride..][..width];
        for (run_a, run_b) in row_a.chunks(SSE_RUN).zip(row_b.chunks(SSE_RUN)) {
            // 16 independent lanes with 16-bit squares (255² fits) let the compiler use
            // baseline SSE2 well: a quarter faster than one 32-bit accumulator.
            let mut lanes = [0u32; 16];
            let (head_a, head_b) = (run_a.chunks_exact(16), run_b.chunks_exact(16));
            let (tail_a, tail_b) = (head_a.remainder(), head_b.remainder());
            for (xa, xb) in head_a.zip(head_b) {
                for ((lane, &x), &y) in lanes.iter_mut().zip(xa).zip(xb) {
                    let d = u16::from(x.abs_diff(y));
                    *lane += u32::from(d * d);
                }
            }
            let mut run: u32 = lanes.iter().sum();
            for (&x, &y) in tail_a.iter().zip(tail_b) {
                let d = u32::from(x.abs_diff(y));
                run += d * d;
            }
            total += u64::from(run);
        }
    }
    total
}

/// Sums over one 4×4 block: Σa, Σb, Σa²+Σb², Σab.
type BlockSums = [u32; 4];

/// Working memory of [`plane_ssim`], kept per thread so that measuring a frame allocates
/// nothing once the widest plane has been seen.
#[derive(Default)]
struct SsimScratch {
    /// Per column, over the 4 rows of a band: Σa, Σb (at most 4 × 255), Σa²+Σb², Σab.
    col_a: Vec<u16>,
    col_b: Vec<u16>,
    col_squares: Vec<u32>,
    col_products: Vec<u32>,
    /// Block sums of two adjacent bands.
    above: Vec<BlockSums>,
    below: Vec<BlockSums>,
}

thread_local! {
    static SSIM_SCRATCH: RefCell<SsimScratch> = RefCell::new(SsimScratch::default());
}

/// SSIM of two 8-bit planes by x264's (and FFmpeg's) method: sums over 4×4 blocks, SSIM of
/// every 8×8 window made of 2×2 blocks (windows overlap by 4 samples; samples past the last
/// whole block are not used). Returns the sum of the windows' SSIM and their count; the
/// plane's SSIM is `sum / count`. A plane smaller than 8×8 has no window: `(0.0, 0)`.
///
/// # Panics
/// If a slice is shorter than its last row ends (`(height - 1) * stride + width`).
pub(crate) fn plane_ssim(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    width: usize,
    height: usize,
) -> (f64, u64) {
    let (blocks_w, blocks_h) = (width / 4, height / 4);
    if blocks_w < 2 || blocks_h < 2 {
        return (0.0, 0);
    }
    SSIM_SCRATCH.with_borrow_mut(|scratch| {
        scratch.above.resize(blocks_w, [0; 4]);
        scratch.below.resize(blocks_w, [0; 4]);
        let band = |scratch: &mut SsimScratch, band: usize| {
            let rows = 4 * band..4 * band + 4;
            let rows_a = rows.clone().map(|y| &a[y * a_stride..][..4 * blocks_w]);
            let rows_b = rows.map(|y| &b[y * b_stride..][..4 * blocks_w]);
            scratch.fill_below(rows_a, rows_b, blocks_w);
        };
        band(scratch, 0);
        std::mem::swap(&mut scratch.above, &mut scratch.below);
        let mut sum = 0.0f64;
        for z in 1..blocks_h {
            band(scratch, z);
            sum += window_ssim_sum(&scratch.above[..blocks_w], &scratch.below[..blocks_w]);
            std::mem::swap(&mut scratch.above, &mut scratch.below);
        }
        (sum, ((blocks_w - 1) * (blocks_h - 1)) as u64)
    })
}

impl SsimScratch {
    /// Sets `below[k]` to the sums of block k of a band of 4 rows (each `4 * blocks` long).
    ///
    /// Sums go down the columns first and across the blocks second: each step is then a
    /// plain loop over contiguous samples that the compiler vectorises (a third faster
    /// than summing each 4×4 block in turn).
    fn fill_below<'a>(
        &mut self,
        rows_a: impl Iterator<Item = &'a [u8]>,
        rows_b: impl Iterator<Item = &'a [u8]>,
        blocks: usize,
    ) {
        let n = 4 * blocks;
        for col in [&mut self.col_a, &mut self.col_b] {
            col.clear();
            col.resize(n, 0);
        }
        for col in [&mut self.col_squares, &mut self.col_products] {
            col.clear();
            col.resize(n, 0);
        }
        for (row_a, row_b) in rows_a.zip(rows_b) {
            let (row_a, row_b) = (&row_a[..n], &row_b[..n]);
            for (sum, &x) in self.col_a.iter_mut().zip(row_a) {
                *sum += u16::from(x);
            }
            for (sum, &y) in self.col_b.iter_mut().zip(row_b) {
                *sum += u16::from(y);
            }
            // 16-bit products: 255² fits.
            for ((sum, &x), &y) in self.col_squares.iter_mut().zip(row_a).zip(row_b) {
                let (x, y) = (u16::from(x), u16::from(y));
                *sum += u32::from(x * x) + u32::from(y * y);
            }
            for ((sum, &x), &y) in self.col_products.iter_mut().zip(row_a).zip(row_b) {
                *sum += u32::from(u16::from(x) * u16::from(y));
            }
        }
        let quads = self
            .col_a
            .chunks_exact(4)
            .zip(self.col_b.chunks_exact(4))
            .zip(self.col_squares.chunks_exact(4))
            .zip(self.col_products.chunks_exact(4));
        for (block, (((qa, qb), qs), qp)) in self.below[..blocks].iter_mut().zip(quads) {
            *block = [
                u32::from(qa[0] + qa[1] + qa[2] + qa[3]),
                u32::from(qb[0] + qb[1] + qb[2] + qb[3]),
                qs[0] + qs[1] + qs[2] + qs[3],
                qp[0] + qp[1] + qp[2] + qp[3],
            ];
        }
    }
}

/// Sum of the SSIM of the windows made of blocks k and k+1 of two adjacent bands.
fn window_ssim_sum(above: &[BlockSums], below: &[BlockSums]) -> f64 {
    let mut sum = 0.0f64;
    for (pair_above, pair_below) in above.windows(2).zip(below.windows(2)) {
        let s = |i: usize| {
            i64::from(pair_above[0][i])
                + i64::from(pair_above[1][i])
                + i64::from(pair_below[0][i])
                + i64::from(pair_below[1][i])
        };
        sum += f64::from(ssim_end1(s(0), s(1), s(2), s(3)));
    }
    sum
}

/// SSIM of one 8×8 window from its sums, as FFmpeg's `ssim_end1` (x264's constants,
/// scaled by 64 and by 64×63 for the unbiased variance; `f32` like FFmpeg, so the results
/// agree to its last digit).
fn ssim_end1(s1: i64, s2: i64, ss: i64, s12: i64) -> f32 {
    const C1: i64 = (0.01 * 0.01 * 255.0 * 255.0 * 64.0 + 0.5) as i64;
    const C2: i64 = (0.03 * 0.03 * 255.0 * 255.0 * 64.0 * 63.0 + 0.5) as i64;
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    ((2 * s1 * s2 + C1) as f32 * (2 * covar + C2) as f32) / ((s1 * s1 + s2 * s2 + C1) as f32 * (vars + C2) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::{Path, PathBuf};
    use std::process::Command;

    const W: u32 = 320;
    const H: u32 = 240;

    fn grey_frame(width: u32, height: u32, value: u8) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P, width, height);
        for p in 0..3 {
            f.data_mut(p).fill(value);
        }
        f
    }

    /// Frames of a raw yuv420p file, each copied row by row into a libav frame (whose
    /// rows are padded), as the pipeline's decoded frames are.
    fn read_raw(path: &Path, width: u32, height: u32) -> Vec<frame::Video> {
        let bytes = std::fs::read(path).expect("raw clip readable");
        let (w, h) = (width as usize, height as usize);
        let frame_len = w * h * 3 / 2;
        assert_eq!(bytes.len() % frame_len, 0, "whole frames in {path:?}");
        bytes
            .chunks_exact(frame_len)
            .map(|raw| {
                let mut f = frame::Video::new(Pixel::YUV420P, width, height);
                let mut at = 0;
                for p in 0..3 {
                    let (pw, ph) = (f.plane_width(p) as usize, f.plane_height(p) as usize);
                    let stride = f.stride(p);
                    let data = f.data_mut(p);
                    for y in 0..ph {
                        data[y * stride..][..pw].copy_from_slice(&raw[at..at + pw]);
                        at += pw;
                    }
                }
                f
            })
            .collect()
    }

    fn ffmpeg(args: &[&str]) -> String {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-y"])
            .args(args)
            .output()
            .expect("ffmpeg is installed (tests use it as an independent checker)");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ffmpeg {args:?} failed: {stderr}");
        stderr
    }

    fn synth_raw(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
        let path = dir.join(name);
        let mut all = args.to_vec();
        let p = path.to_str().expect("utf-8 temp path");
        all.extend_from_slice(&["-f", "rawvideo", "-pix_fmt", "yuv420p", p]);
        ffmpeg(&all);
        path
    }

    /// The number after `key` in the last line of ffmpeg's log that has it.
    fn logged(stderr: &str, key: &str) -> f64 {
        let line = stderr.lines().rev().find(|l| l.contains(key)).unwrap_or_else(|| panic!("{key} in {stderr}"));
        let rest = &line[line.find(key).expect("found above") + key.len()..];
        let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        number.parse().unwrap_or_else(|e| panic!("{key} in {line:?}: {e}"))
    }

    /// (PSNR average, SSIM All) as printed by FFmpeg's filters for two raw clips.
    fn ffmpeg_scores(reference: &Path, distorted: &Path) -> (f64, f64) {
        let size = format!("{W}x{H}");
        let input = |p: &Path| p.to_str().expect("utf-8 temp path").to_owned();
        let (r, d) = (input(reference), input(distorted));
        let raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", &size];
        let run = |filter: &str| {
            let mut args: Vec<&str> = raw.to_vec();
            args.extend_from_slice(&["-i", &d]);
            args.extend_from_slice(&raw);
            args.extend_from_slice(&["-i", &r, "-lavfi", filter, "-f", "null", "-"]);
            ffmpeg(&args)
        };
        (logged(&run("[0][1]psnr"), "average:"), logged(&run("[0][1]ssim"), "All:"))
    }

    fn totals(reference: &[frame::Video], distorted: &[frame::Video]) -> QualityTotals {
        let mut t = QualityTotals::default();
        for (r, d) in reference.iter().zip(distorted) {
            t.add_frame(r, d).expect("same-size yuv420p frames");
        }
        t
    }

    struct Clips {
        _dir: tempfile::TempDir,
        reference: PathBuf,
        noisy: PathBuf,
        encoded: PathBuf,
    }

    fn clips() -> Clips {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = format!("testsrc2=size={W}x{H}:rate=25");
        let reference = synth_raw(dir.path(), "ref.yuv", &["-f", "lavfi", "-i", &src, "-frames:v", "12"]);
        let size = format!("{W}x{H}");
        let raw_in = |p: &Path| {
            vec![
                "-f".to_owned(),
                "rawvideo".to_owned(),
                "-pix_fmt".to_owned(),
                "yuv420p".to_owned(),
                "-s".to_owned(),
                size.clone(),
                "-i".to_owned(),
                p.to_str().expect("utf-8 temp path").to_owned(),
            ]
        };
        let mut noisy_args = raw_in(&reference);
        noisy_args.extend(["-vf", "noise=alls=20:allf=t"].map(str::to_owned));
        let noisy_args: Vec<&str> = noisy_args.iter().map(String::as_str).collect();
        let noisy = synth_raw(dir.path(), "noisy.yuv", &noisy_args);

        let mp4 = dir.path().join("crf35.mp4");
        let mut enc_args = raw_in(&reference);
        enc_args.extend(["-c:v", "libx264", "-preset", "veryfast", "-crf", "35"].map(str::to_owned));
        enc_args.push(mp4.to_str().expect("utf-8 temp path").to_owned());
        ffmpeg(&enc_args.iter().map(String::as_str).collect::<Vec<_>>());
        let encoded = synth_raw(dir.path(), "crf35.yuv", &["-i", mp4.to_str().expect("utf-8 temp path")]);
        Clips { _dir: dir, reference, noisy, encoded }
    }

    #[test]
    fn identical_frames_have_ssim_one_and_capped_psnr() {
        let a = grey_frame(64, 48, 100);
        let mut t = QualityTotals::default();
        t.add_frame(&a, &a.clone()).expect("same frames");
        assert_eq!(t.ssim(), Some(1.0));
        assert_eq!(t.ssim_y(), Some(1.0));
        assert_eq!(t.psnr_db(), Some(PSNR_CAP_DB));
        assert_eq!(t.psnr_y_db(), Some(PSNR_CAP_DB));
        assert_eq!(t.frames, 1);
        assert_eq!(t.samples, [64 * 48, 32 * 24, 32 * 24]);
    }

    #[test]
    fn no_frames_no_scores() {
        let t = QualityTotals::default();
        assert_eq!((t.psnr_db(), t.psnr_y_db(), t.ssim(), t.ssim_y()), (None, None, None, None));
    }

    #[test]
    fn psnr_of_a_uniform_error_is_known() {
        // Every sample off by 10: MSE 100, PSNR = 10·log10(255²/100) = 28.1308 dB.
        let mut t = QualityTotals::default();
        t.add_frame(&grey_frame(64, 64, 100), &grey_frame(64, 64, 110)).expect("same-size frames");
        let expected = 10.0 * (255.0f64 * 255.0 / 100.0).log10();
        assert!((t.psnr_db().expect("one frame") - expected).abs() < 1e-9);
        assert!((t.psnr_y_db().expect("one frame") - expected).abs() < 1e-9);
    }

    #[test]
    fn mismatched_frames_are_refused() {
        let mut t = QualityTotals::default();
        let err = t.add_frame(&grey_frame(64, 64, 0), &grey_frame(64, 48, 0)).expect_err("sizes differ");
        assert!(matches!(err, QualityError::SizeMismatch { .. }), "{err}");
        let rgb = frame::Video::new(Pixel::RGB24, 64, 64);
        let err = t.add_frame(&grey_frame(64, 64, 0), &rgb).expect_err("not yuv420p");
        assert!(err.to_string().contains("distorted frame is RGB24"), "{err}");
        let err = t.add_frame(&grey_frame(8, 8, 0), &grey_frame(8, 8, 0)).expect_err("too small");
        assert!(matches!(err, QualityError::TooSmall { .. }), "{err}");
        assert_eq!(t, QualityTotals::default(), "refused frames leave no trace");
    }

    #[test]
    fn scores_agree_with_ffmpeg_filters() {
        crate::media::init();
        let clips = clips();
        let reference = read_raw(&clips.reference, W, H);
        for distorted_path in [&clips.noisy, &clips.encoded] {
            let distorted = read_raw(distorted_path, W, H);
            assert_eq!(distorted.len(), reference.len());
            let ours = totals(&reference, &distorted);
            let (psnr, ssim) = ffmpeg_scores(&clips.reference, distorted_path);
            let our_psnr = ours.psnr_db().expect("frames compared");
            let our_ssim = ours.ssim().expect("frames compared");
            // ffmpeg prints both with 6 decimals; they agree to the last one (its SIMD sums
            // in a different order), so these bounds are ten times tighter than needed.
            assert!((our_psnr - psnr).abs() <= 0.001, "{distorted_path:?}: PSNR ours {our_psnr}, ffmpeg {psnr}");
            assert!((our_ssim - ssim).abs() <= 0.0001, "{distorted_path:?}: SSIM ours {our_ssim}, ffmpeg {ssim}");
            assert!(our_ssim < 0.999 && our_psnr < 50.0, "the clip is really distorted");
        }
    }

    #[test]
    fn merged_halves_equal_the_whole() {
        crate::media::init();
        let clips = clips();
        let reference = read_raw(&clips.reference, W, H);
        let distorted = read_raw(&clips.encoded, W, H);
        let whole = totals(&reference, &distorted);
        let mid = reference.len() / 2;
        let mut first = totals(&reference[..mid], &distorted[..mid]);
        let second = totals(&reference[mid..], &distorted[mid..]);
        first.merge(&second);
        assert_eq!(first, whole);
        assert_eq!(first.ssim(), whole.ssim());
        assert_eq!(first.psnr_db(), whole.psnr_db());

        let json = serde_json::to_string(&whole).expect("plain data");
        let back: QualityTotals = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, whole, "a chunk record keeps the totals exactly");
    }

    #[test]
    fn plane_functions_ignore_row_padding() {
        // The same 16x16 picture, once with rows 16 apart and once padded to 40.
        let picture: Vec<u8> = (0..256u32).map(|i| (i * 7 % 251) as u8).collect();
        let other: Vec<u8> = picture.iter().map(|&v| v.wrapping_add(3) & 0xfe).collect();
        let pad = |p: &[u8]| -> Vec<u8> {
            p.chunks_exact(16).flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(0xAA, 24))).collect()
        };
        let (pa, pb) = (pad(&picture), pad(&other));
        assert_eq!(plane_sse(&picture, 16, &other, 16, 16, 16), plane_sse(&pa, 40, &pb, 40, 16, 16));
        assert_eq!(plane_ssim(&picture, 16, &other, 16, 16, 16), plane_ssim(&pa, 40, &pb, 40, 16, 16));
        assert_eq!(plane_ssim(&picture, 16, &other, 16, 16, 16).1, 9, "3x3 windows in 16x16");
        assert_eq!(plane_ssim(&picture, 16, &other, 16, 7, 16), (0.0, 0), "narrower than a window");
    }

    /// Cost per call on a 1280x720 plane (best of 200 calls, as the machine is shared). Run
    /// with `cargo test --release --lib quality::tests::bench_720p -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand in release mode"]
    fn bench_720p() {
        let (w, h, stride) = (1280usize, 720usize, 1344usize);
        let a: Vec<u8> = (0..stride * h).map(|i| (i * 31 % 253) as u8).collect();
        let b: Vec<u8> = a.iter().enumerate().map(|(i, &v)| v.saturating_add((i % 7) as u8)).collect();
        let best = |f: &dyn Fn() -> f64| {
            (0..200)
                .map(|_| {
                    let t = std::time::Instant::now();
                    std::hint::black_box(f());
                    t.elapsed()
                })
                .min()
                .expect("200 runs")
        };
        let a = std::hint::black_box(&a);
        let sse = best(&|| plane_sse(a, stride, &b, stride, w, h) as f64);
        let ssim = best(&|| plane_ssim(a, stride, &b, stride, w, h).0);
        eprintln!("1280x720 plane: plane_sse {sse:?}, plane_ssim {ssim:?} per call");
    }
}
