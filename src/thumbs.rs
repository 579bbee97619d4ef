//! Thumbnails from frames the pipeline has already decoded: JPEG stills, the poster test,
//! sprite sheets and their WebVTT index.
//!
//! JPEG (JFIF) is full-range BT.601 YCbCr by definition, whatever the source. Pictures go
//! through RGB on the way (swscale converts between YUV matrices only through RGB), so a
//! BT.709 or BT.2020 source keeps its colours, and a limited-range one its blacks and whites.

use std::fmt::Write as _;

use ffmpeg_next::{
    self as ff, codec,
    color::{Range, Space},
    ffi,
    format::Pixel,
    frame,
    software::scaling,
};

/// On libav's `-q:v` scale (2 best, 31 worst): 3, as `ffmpeg -q:v 3`, is visually clean
/// and small (7.5 KB for a 320×180 still of the `testsrc2` pattern).
const JPEG_QUALITY: i32 = 3;

/// The largest thumbnail or sprite side accepted (JPEG allows 65535; larger is a mistake).
const MAX_SIDE: u32 = 16384;

/// Luma is sampled on this grid for the poster test: enough to see structure, cheap.
const POSTER_GRID: (u32, u32) = (96, 54);
/// Mean full-range luma (0–255) below which a frame is too dark for a poster: black,
/// near-black and the first third of a fade from black.
///
/// Measured (mean / standard deviation): `testsrc2` 125 / 67, fading in over 20 frames
/// 6 / 4, 19 / 10, 37 / 20 and from the seventh frame (35 %) 44 / 23 on; `smptebars`
/// 94 / 72; `mandelbrot` 151 / 37; `testsrc2` darkened like a dim stage (`eq` brightness
/// −0.25, contrast 0.6) 52 / 38; `rgbtestsrc` (bars on black) 42 / 38.
const POSTER_MIN_MEAN: f64 = 40.0;
/// Standard deviation of full-range luma below which a frame is too flat for a poster:
/// slates of one colour, grey or white flashes (0), grain on black.
const POSTER_MIN_STDDEV: f64 = 16.0;

/// Why a thumbnail or sprite could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("thumbnail size {width}x{height} is out of range (each side 1 to {MAX_SIDE})")]
    Size { width: u32, height: u32 },
    #[error("sprite tiles are {width}x{height}; they must have even sides to share the sheet's 4:2:0 chroma")]
    OddTile { width: u32, height: u32 },
    #[error("{count} tiles do not fit a {columns}x{rows} sprite sheet")]
    TooManyTiles { count: usize, columns: u32, rows: u32 },
    #[error("libav has no {0} codec (is FFmpeg built without it?)")]
    MissingCodec(&'static str),
    #[error("sprite tile {index} is not a JPEG libav can decode: {source}")]
    TileDecode { index: usize, source: ff::Error },
    #[error("{context}: {source}")]
    Libav { context: &'static str, source: ff::Error },
}

fn libav(context: &'static str) -> impl FnOnce(ff::Error) -> ThumbError {
    move |source| ThumbError::Libav { context, source }
}

/// JPEG of `frame` scaled (bicubic) to `width` × `height`, which the caller chooses to keep
/// the aspect ratio. Any pixel format and bit depth; the JPEG is full range with BT.601
/// colours as JFIF requires, made by libav's `mjpeg` encoder at quality 3 (`-q:v 3`).
pub(crate) fn encode_jpeg(frame: &frame::Video, width: u32, height: u32) -> Result<Vec<u8>, ThumbError> {
    crate::media::init();
    check_size(width, height)?;
    let mut picture = to_jpeg_yuv(frame, width, height)?;
    encode_yuv(&mut picture)
}

/// Whether a frame makes a good poster: bright enough (not black, near-black or early in a
/// fade from black) and with enough contrast (not a flat slate). Judged on full-range luma
/// sampled on a small grid, for any pixel format.
pub(crate) fn is_poster_worthy(frame: &frame::Video) -> bool {
    crate::media::init();
    let Ok((mean, stddev)) = luma_stats(frame) else {
        // A frame swscale cannot read is no poster; the pipeline tries the next one.
        return false;
    };
    mean >= POSTER_MIN_MEAN && stddev >= POSTER_MIN_STDDEV
}

/// Mean and standard deviation of the frame's full-range luma on [`POSTER_GRID`].
fn luma_stats(frame: &frame::Video) -> Result<(f64, f64), ThumbError> {
    let (w, h) = POSTER_GRID;
    // Point sampling keeps the picture's own contrast (averaging would smooth noise and
    // fine text into a flat grey).
    let point = scaling::Flags::POINT;
    let mut scaler = scaling::Context::get(frame.format(), frame.width(), frame.height(), Pixel::GRAY8, w, h, point)
        .map_err(libav("preparing to sample luma"))?;
    set_colorspace(&mut scaler, frame, ffi::SWS_CS_ITU601)?;
    let mut grey = frame::Video::empty();
    scaler.run(frame, &mut grey).map_err(libav("sampling luma"))?;
    let stride = grey.stride(0);
    let (mut sum, mut squares) = (0u64, 0u64);
    for row in grey.data(0).chunks(stride).take(h as usize) {
        for &v in &row[..w as usize] {
            sum += u64::from(v);
            squares += u64::from(v) * u64::from(v);
        }
    }
    let n = f64::from(w * h);
    let mean = sum as f64 / n;
    let variance = (squares as f64 / n - mean * mean).max(0.0);
    Ok((mean, variance.sqrt()))
}

/// A sprite sheet: `tiles` (JPEGs of stills, each `tile_width` × `tile_height`) laid out
/// row-major on a `columns` × `rows` grid and encoded as one JPEG. Fewer tiles than cells
/// leave the last cells black. A tile of another size is scaled to fit its cell.
pub(crate) fn compose_sprite(
    tiles: &[Vec<u8>],
    columns: u32,
    rows: u32,
    tile_width: u32,
    tile_height: u32,
) -> Result<Vec<u8>, ThumbError> {
    crate::media::init();
    if !tile_width.is_multiple_of(2) || !tile_height.is_multiple_of(2) {
        return Err(ThumbError::OddTile { width: tile_width, height: tile_height });
    }
    let (sheet_w, sheet_h) = (columns.saturating_mul(tile_width), rows.saturating_mul(tile_height));
    check_size(sheet_w, sheet_h)?;
    if tiles.len() > (columns * rows) as usize {
        return Err(ThumbError::TooManyTiles { count: tiles.len(), columns, rows });
    }
    let mut sheet = frame::Video::new(Pixel::YUV420P, sheet_w, sheet_h);
    sheet.set_color_range(Range::JPEG);
    // Full-range black.
    sheet.data_mut(0).fill(0);
    sheet.data_mut(1).fill(128);
    sheet.data_mut(2).fill(128);
    for (index, jpeg) in tiles.iter().enumerate() {
        let decoded = decode_jpeg(jpeg).map_err(|source| ThumbError::TileDecode { index, source })?;
        let tile = if is_jpeg_yuv(&decoded, tile_width, tile_height) {
            decoded
        } else {
            to_jpeg_yuv(&decoded, tile_width, tile_height)?
        };
        let (column, row) = (index as u32 % columns, index as u32 / columns);
        paste(&mut sheet, &tile, column * tile_width, row * tile_height);
    }
    encode_yuv(&mut sheet)
}

/// Whether `frame` is already full-range 4:2:0 of the given size, as our own tiles decode.
fn is_jpeg_yuv(frame: &frame::Video, width: u32, height: u32) -> bool {
    frame.format() == Pixel::YUV420P
        && frame.color_range() == Range::JPEG
        && (frame.width(), frame.height()) == (width, height)
}

/// Copies `tile` (4:2:0, even position) into `sheet` with its top left corner at (x, y).
fn paste(sheet: &mut frame::Video, tile: &frame::Video, x: u32, y: u32) {
    for plane in 0..3 {
        let shift = u32::from(plane > 0);
        let (px, py) = ((x >> shift) as usize, (y >> shift) as usize);
        let (w, h) = (tile.plane_width(plane) as usize, tile.plane_height(plane) as usize);
        let (src_stride, dst_stride) = (tile.stride(plane), sheet.stride(plane));
        let src = tile.data(plane);
        let dst = sheet.data_mut(plane);
        for row in 0..h {
            dst[(py + row) * dst_stride + px..][..w].copy_from_slice(&src[row * src_stride..][..w]);
        }
    }
}

/// WebVTT index of the stills: one cue per still n from `still_seconds[n]` to the next
/// still (the last one to `duration_seconds`), whose text points at the still's tile:
/// `sprite_<k>.jpg#xywh=x,y,w,h` with k = n / (columns × rows). Times are rounded to the
/// millisecond, the same way for a cue's end and the next cue's start, so cues neither
/// overlap nor leave gaps; a still that would get an empty cue (a repeated time) gets none.
pub(crate) fn thumbs_vtt(
    still_seconds: &[f64],
    duration_seconds: f64,
    columns: u32,
    rows: u32,
    tile_width: u32,
    tile_height: u32,
) -> String {
    let per_sheet = (columns * rows).max(1) as usize;
    let columns = columns.max(1) as usize;
    let mut out = String::from("WEBVTT\n");
    for (n, &start) in still_seconds.iter().enumerate() {
        let end = still_seconds.get(n + 1).copied().unwrap_or(duration_seconds);
        let (start_ms, end_ms) = (millis(start), millis(end));
        if end_ms <= start_ms {
            continue;
        }
        let (sheet, cell) = (n / per_sheet, n % per_sheet);
        let (x, y) = ((cell % columns) as u32 * tile_width, (cell / columns) as u32 * tile_height);
        let _ = write!(
            out,
            "\n{} --> {}\n{}#xywh={x},{y},{tile_width},{tile_height}\n",
            vtt_time(start_ms),
            vtt_time(end_ms),
            crate::layout::sprite_file(sheet)
        );
    }
    out
}

fn millis(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

/// `HH:MM:SS.mmm`, hours growing past 99 if they must.
fn vtt_time(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn check_size(width: u32, height: u32) -> Result<(), ThumbError> {
    if (1..=MAX_SIDE).contains(&width) && (1..=MAX_SIDE).contains(&height) {
        Ok(())
    } else {
        Err(ThumbError::Size { width, height })
    }
}

/// swscale's coefficient table for the frame's colour matrix. Unspecified is guessed as
/// players do: BT.709 from 720 lines up, BT.601 below.
fn source_matrix(frame: &frame::Video) -> i32 {
    match frame.color_space() {
        Space::BT709 => ffi::SWS_CS_ITU709,
        Space::FCC => ffi::SWS_CS_FCC,
        Space::SMPTE240M => ffi::SWS_CS_SMPTE240M,
        Space::BT2020NCL | Space::BT2020CL => ffi::SWS_CS_BT2020,
        Space::BT470BG | Space::SMPTE170M => ffi::SWS_CS_ITU601,
        _ if frame.height() >= 720 => ffi::SWS_CS_ITU709,
        _ => ffi::SWS_CS_ITU601,
    }
}

/// Whether the frame's samples are full range: flagged so, or a `yuvj` format.
fn is_full_range(frame: &frame::Video) -> bool {
    frame.color_range() == Range::JPEG
        || matches!(frame.format(), Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P)
}

/// Tells `scaler` the source's matrix and range (swscale otherwise assumes BT.601 limited
/// for every YUV input) and that its output is full range with the `output_matrix`.
fn set_colorspace(scaler: &mut scaling::Context, source: &frame::Video, output_matrix: i32) -> Result<(), ThumbError> {
    // SAFETY: the context is valid for the call; sws_getCoefficients returns pointers to
    // static tables for any argument (unknown ones give the default), which swscale reads.
    let result = unsafe {
        ffi::sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            ffi::sws_getCoefficients(source_matrix(source)),
            i32::from(is_full_range(source)),
            ffi::sws_getCoefficients(output_matrix),
            1,
            0,
            1 << 16,
            1 << 16,
        )
    };
    if result < 0 {
        return Err(ThumbError::Libav { context: "setting colour conversion", source: ff::Error::from(result) });
    }
    Ok(())
}

/// `frame` scaled to `width` × `height` as full-range BT.601 yuv420p, the JPEG's own form.
fn to_jpeg_yuv(frame: &frame::Video, width: u32, height: u32) -> Result<frame::Video, ThumbError> {
    // Scale and convert to RGB in one step, with the source's matrix and range...
    let quality = scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT;
    let mut to_rgb =
        scaling::Context::get(frame.format(), frame.width(), frame.height(), Pixel::RGB24, width, height, quality)
            .map_err(libav("preparing to scale the thumbnail"))?;
    set_colorspace(&mut to_rgb, frame, ffi::SWS_CS_ITU601)?;
    let mut rgb = frame::Video::empty();
    to_rgb.run(frame, &mut rgb).map_err(libav("scaling the thumbnail"))?;

    // ...then into JPEG's matrix and range.
    let flags = quality | scaling::Flags::FULL_CHR_H_INP;
    let mut to_yuv = scaling::Context::get(Pixel::RGB24, width, height, Pixel::YUV420P, width, height, flags)
        .map_err(libav("preparing the thumbnail's colours"))?;
    set_colorspace(&mut to_yuv, &rgb, ffi::SWS_CS_ITU601)?;
    let mut yuv = frame::Video::empty();
    to_yuv.run(&rgb, &mut yuv).map_err(libav("converting the thumbnail's colours"))?;
    yuv.set_color_range(Range::JPEG);
    Ok(yuv)
}

/// Encodes a full-range yuv420p picture as one JPEG.
fn encode_yuv(picture: &mut frame::Video) -> Result<Vec<u8>, ThumbError> {
    let codec = ff::encoder::find(codec::Id::MJPEG).ok_or(ThumbError::MissingCodec("mjpeg encoder"))?;
    let mut encoder =
        codec::Context::new_with_codec(codec).encoder().video().map_err(libav("creating the JPEG encoder"))?;
    encoder.set_width(picture.width());
    encoder.set_height(picture.height());
    encoder.set_format(Pixel::YUV420P);
    // Full range is what makes plain yuv420p acceptable to the encoder without the
    // deprecated yuvj420p format or lowering its standard compliance.
    encoder.set_color_range(Range::JPEG);
    encoder.set_time_base((1, 25));
    encoder.set_flags(codec::Flags::QSCALE);
    encoder.set_global_quality(JPEG_QUALITY * ffi::FF_QP2LAMBDA);
    let mut encoder = encoder.open().map_err(libav("opening the JPEG encoder"))?;

    // With a fixed quantiser the encoder takes each frame's own quality, as the ffmpeg CLI
    // sets it from `-q:v`.
    // SAFETY: the frame is valid and owned here; `quality` is a plain field with no setter.
    unsafe {
        (*picture.as_mut_ptr()).quality = JPEG_QUALITY * ffi::FF_QP2LAMBDA;
    }
    picture.set_pts(Some(0));
    encoder.send_frame(picture).map_err(libav("encoding the JPEG"))?;
    encoder.send_eof().map_err(libav("finishing the JPEG"))?;
    let mut jpeg = Vec::new();
    let mut packet = ff::Packet::empty();
    loop {
        match encoder.receive_packet(&mut packet) {
            Ok(()) => jpeg.extend_from_slice(packet.data().unwrap_or_default()),
            Err(ff::Error::Eof) => break,
            Err(source) => return Err(ThumbError::Libav { context: "receiving the JPEG", source }),
        }
    }
    Ok(jpeg)
}

/// Decodes one JPEG with libav.
fn decode_jpeg(jpeg: &[u8]) -> Result<frame::Video, ff::Error> {
    let codec = ff::decoder::find(codec::Id::MJPEG).ok_or(ff::Error::DecoderNotFound)?;
    let mut decoder = codec::Context::new_with_codec(codec).decoder().video()?;
    decoder.send_packet(&ff::Packet::copy(jpeg))?;
    decoder.send_eof()?;
    let mut decoded = frame::Video::empty();
    decoder.receive_frame(&mut decoded)?;
    // The decoder reports the deprecated yuvj formats; the same samples described as yuv
    // with a full range are what swscale expects now.
    let plain = match decoded.format() {
        Pixel::YUVJ420P => Some(Pixel::YUV420P),
        Pixel::YUVJ422P => Some(Pixel::YUV422P),
        Pixel::YUVJ444P => Some(Pixel::YUV444P),
        Pixel::YUVJ440P => Some(Pixel::YUV440P),
        _ => None,
    };
    if let Some(format) = plain {
        decoded.set_format(format);
        decoded.set_color_range(Range::JPEG);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;

    /// A yuv420p frame, limited range, luma from `luma(x, y)`, neutral chroma.
    fn frame_with(width: u32, height: u32, luma: impl Fn(u32, u32) -> u8) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P, width, height);
        f.set_color_range(Range::MPEG);
        let stride = f.stride(0);
        let data = f.data_mut(0);
        for y in 0..height {
            for x in 0..width {
                data[y as usize * stride + x as usize] = luma(x, y);
            }
        }
        f.data_mut(1).fill(128);
        f.data_mut(2).fill(128);
        f
    }

    fn flat(width: u32, height: u32, y: u8, u: u8, v: u8) -> frame::Video {
        let mut f = frame_with(width, height, |_, _| y);
        f.data_mut(1).fill(u);
        f.data_mut(2).fill(v);
        f
    }

    /// The JPEG decoded by the ffmpeg CLI (an independent decoder) to `pix_fmt` samples,
    /// with its size from ffprobe.
    fn cli_decode(jpeg: &[u8], pix_fmt: &str) -> (u32, u32, Vec<u8>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.jpg");
        std::fs::write(&path, jpeg).expect("write jpeg");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,pix_fmt"])
            .args(["-of", "csv=p=0"])
            .arg(&path)
            .output()
            .expect("ffprobe is installed (tests use it as an independent checker)");
        let text = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
        let fields: Vec<&str> = text.split(',').collect();
        assert_eq!(fields.len(), 3, "ffprobe: {text}");
        let (w, h) = (fields[0].parse().expect("width"), fields[1].parse().expect("height"));
        assert!(fields[2].starts_with("yuvj420p"), "a full-range 4:2:0 JPEG, got {}", fields[2]);
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
            .output()
            .expect("ffmpeg is installed");
        assert!(out.status.success(), "ffmpeg could not decode: {}", String::from_utf8_lossy(&out.stderr));
        (w, h, out.stdout)
    }

    /// Mean of a gray8 picture over the rectangle [x0, x1) × [y0, y1).
    fn mean(grey: &[u8], width: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> f64 {
        let mut sum = 0u64;
        for y in y0..y1 {
            for x in x0..x1 {
                sum += u64::from(grey[(y * width + x) as usize]);
            }
        }
        sum as f64 / f64::from((x1 - x0) * (y1 - y0))
    }

    fn near(actual: f64, expected: f64, tolerance: f64, what: &str) {
        assert!((actual - expected).abs() <= tolerance, "{what}: {actual:.1}, expected {expected} ± {tolerance}");
    }

    #[test]
    fn jpeg_is_scaled_and_full_range() {
        // Limited-range black (16) on the left, white (235) on the right.
        let source = frame_with(640, 360, |x, _| if x < 320 { 16 } else { 235 });
        let jpeg = encode_jpeg(&source, 320, 180).expect("encodes");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "starts like a JPEG");
        let (w, h, grey) = cli_decode(&jpeg, "gray");
        assert_eq!((w, h), (320, 180));
        near(mean(&grey, w, (0, 0, 150, 180)), 0.0, 3.0, "left (black) half");
        near(mean(&grey, w, (170, 0, 320, 180)), 255.0, 3.0, "right (white) half");
    }

    #[test]
    fn jpeg_of_a_mid_grey_keeps_its_level() {
        // Limited 126 is full-range 128: (126 - 16) × 255 / 219 = 128.1.
        let jpeg = encode_jpeg(&flat(320, 240, 126, 128, 128), 160, 120).expect("encodes");
        let (w, _, grey) = cli_decode(&jpeg, "gray");
        near(mean(&grey, w, (0, 0, 160, 120)), 128.0, 2.0, "grey level");
    }

    #[test]
    fn jpeg_of_a_ten_bit_frame() {
        // 10-bit limited range: black 64, white 940.
        let f = ten_bit(640, 360, |plane, x, width| match plane {
            0 if x < width / 2 => 64,
            0 => 940,
            _ => 512,
        });
        let jpeg = encode_jpeg(&f, 320, 180).expect("encodes");
        let (w, h, grey) = cli_decode(&jpeg, "gray");
        assert_eq!((w, h), (320, 180));
        near(mean(&grey, w, (0, 0, 150, 180)), 0.0, 3.0, "left (black) half");
        near(mean(&grey, w, (170, 0, 320, 180)), 255.0, 3.0, "right (white) half");
    }

    #[test]
    fn jpeg_keeps_bt709_colours() {
        // Pure red in BT.709 limited range is Y 63, Cb 102, Cr 240; read as BT.601 it
        // would come out orange-ish (G ≈ 30).
        let mut red = flat(1280, 720, 63, 102, 240);
        red.set_color_space(Space::BT709);
        let jpeg = encode_jpeg(&red, 320, 180).expect("encodes");
        let (_, _, rgb) = cli_decode(&jpeg, "rgb24");
        let pixels = rgb.len() / 3;
        let channel = |c: usize| rgb.iter().skip(c).step_by(3).map(|&v| f64::from(v)).sum::<f64>() / pixels as f64;
        near(channel(0), 255.0, 6.0, "red");
        near(channel(1), 0.0, 6.0, "green");
        near(channel(2), 0.0, 6.0, "blue");
    }

    #[test]
    fn jpeg_quality_is_that_of_ffmpeg_q3() {
        crate::media::init();
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = dir.path().join("f.yuv");
        let st = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360",
                "-frames:v",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(&raw)
            .status()
            .expect("ffmpeg");
        assert!(st.success());
        let cli = dir.path().join("cli.jpg");
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "640x360", "-i"])
            .arg(&raw)
            .args(["-vf", "scale=320:180:flags=bicubic", "-q:v", "3"])
            .arg(&cli)
            .status()
            .expect("ffmpeg");
        assert!(st.success());
        let bytes = std::fs::read(&raw).expect("raw");
        let mut f = frame::Video::new(Pixel::YUV420P, 640, 360);
        let mut at = 0;
        for p in 0..3 {
            let (pw, ph) = (f.plane_width(p) as usize, f.plane_height(p) as usize);
            let s = f.stride(p);
            let d = f.data_mut(p);
            for y in 0..ph {
                d[y * s..][..pw].copy_from_slice(&bytes[at..at + pw]);
                at += pw;
            }
        }
        let ours = encode_jpeg(&f, 320, 180).expect("encodes");
        // Quality 2 or 4 would change the size by a quarter or more.
        let theirs = std::fs::metadata(&cli).expect("ffmpeg wrote the still").len() as f64;
        let ratio = ours.len() as f64 / theirs;
        assert!((0.9..1.1).contains(&ratio), "ours {} bytes, ffmpeg -q:v 3 {theirs} bytes", ours.len());
    }

    #[test]
    fn jpeg_refuses_a_zero_size() {
        let err = encode_jpeg(&flat(64, 64, 16, 128, 128), 0, 90).expect_err("no pixels");
        assert!(err.to_string().contains("0x90"), "{err}");
    }

    /// A yuv420p10le frame, limited range, whose samples are `sample(plane, x, plane width)`.
    fn ten_bit(width: u32, height: u32, sample: impl Fn(usize, usize, usize) -> u16) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P10LE, width, height);
        f.set_color_range(Range::MPEG);
        for plane in 0..3 {
            let (pw, ph) = (f.plane_width(plane) as usize, f.plane_height(plane) as usize);
            let stride = f.stride(plane);
            let bytes = f.data_mut(plane);
            for y in 0..ph {
                for x in 0..pw {
                    bytes[y * stride + 2 * x..][..2].copy_from_slice(&sample(plane, x, pw).to_le_bytes());
                }
            }
        }
        f
    }

    /// Deterministic noise in 0..256.
    fn noise(x: u32, y: u32) -> u8 {
        let mut h = x.wrapping_mul(0x9E37_79B9) ^ y.wrapping_mul(0x85EB_CA6B);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2C1B_3C6D);
        (h >> 24) as u8
    }

    #[test]
    fn dark_and_flat_frames_are_not_posters() {
        let (w, h) = (640, 360);
        assert!(!is_poster_worthy(&flat(w, h, 16, 128, 128)), "black");
        assert!(!is_poster_worthy(&flat(w, h, 20, 128, 128)), "near-black");
        assert!(!is_poster_worthy(&flat(w, h, 126, 128, 128)), "flat grey");
        assert!(!is_poster_worthy(&flat(w, h, 235, 128, 128)), "white flash");
        assert!(!is_poster_worthy(&flat(w, h, 41, 240, 110)), "flat blue slate");
        // Noise faded to a fifth of its range, as early in a fade from black.
        assert!(!is_poster_worthy(&frame_with(w, h, |x, y| 16 + noise(x, y) / 5)), "fade from black");
        // Dark grain on black: some contrast, no picture.
        assert!(!is_poster_worthy(&frame_with(w, h, |x, y| 16 + noise(x, y) / 16)), "sensor noise on black");
    }

    #[test]
    fn pictures_with_structure_are_posters() {
        let (w, h) = (640, 360);
        assert!(is_poster_worthy(&frame_with(w, h, |x, _| (16 + x * 219 / w) as u8)), "horizontal gradient");
        assert!(is_poster_worthy(&frame_with(w, h, |x, y| 16 + (u32::from(noise(x, y)) * 219 / 255) as u8)), "noise");
        // Text-like: white strokes on a dark background, 1 pixel in 6 lit.
        let text = |x: u32, y: u32| if (x / 3 + y / 7).is_multiple_of(6) && y % 40 < 24 { 235 } else { 40 };
        assert!(is_poster_worthy(&frame_with(w, h, text)), "text on a dark slate");
        // Later in the fade from black: most of the picture is back.
        assert!(is_poster_worthy(&frame_with(w, h, |x, y| 16 + noise(x, y) / 3 * 2)), "late fade");
    }

    #[test]
    fn poster_test_reads_ten_bit_and_full_range_frames() {
        let bright = ten_bit(320, 180, |plane, x, width| if plane == 0 { 64 + (x * 876 / width) as u16 } else { 512 });
        assert!(is_poster_worthy(&bright), "10-bit gradient");
        // Full-range 20 is darker than limited 20 would suggest... and still near black.
        let mut dark = flat(320, 180, 20, 128, 128);
        dark.set_color_range(Range::JPEG);
        assert!(!is_poster_worthy(&dark), "full-range near-black");
    }

    fn tile(level: u8) -> Vec<u8> {
        encode_jpeg(&flat(320, 180, level, 128, 128), 160, 90).expect("tile encodes")
    }

    #[test]
    fn sprite_lays_tiles_row_major_and_leaves_missing_cells_black() {
        // Limited levels 40..200 in steps of 40; full range (l - 16) × 255 / 219.
        let levels = [40u8, 80, 120, 160, 200];
        let tiles: Vec<Vec<u8>> = levels.iter().map(|&l| tile(l)).collect();
        let sheet = compose_sprite(&tiles, 3, 2, 160, 90).expect("composes");
        let (w, h, grey) = cli_decode(&sheet, "gray");
        assert_eq!((w, h), (480, 180));
        for (n, &level) in levels.iter().enumerate() {
            let (x, y) = ((n as u32 % 3) * 160, (n as u32 / 3) * 90);
            let expected = (f64::from(level) - 16.0) * 255.0 / 219.0;
            // Away from the borders, where JPEG blocks straddle two tiles.
            near(mean(&grey, w, (x + 8, y + 8, x + 152, y + 82)), expected, 3.0, &format!("tile {n}"));
        }
        near(mean(&grey, w, (328, 98, 472, 172)), 0.0, 3.0, "missing tile");
    }

    #[test]
    fn sprite_scales_a_tile_of_another_size_to_its_cell() {
        let big = encode_jpeg(&flat(320, 180, 126, 128, 128), 320, 180).expect("encodes");
        let sheet = compose_sprite(&[big], 2, 1, 160, 90).expect("composes");
        let (w, h, grey) = cli_decode(&sheet, "gray");
        assert_eq!((w, h), (320, 90));
        near(mean(&grey, w, (8, 8, 152, 82)), 128.0, 3.0, "scaled tile");
    }

    #[test]
    fn sprite_refuses_bad_input() {
        let err = compose_sprite(&[tile(100), tile(100)], 1, 1, 160, 90).expect_err("2 tiles, 1 cell");
        assert!(matches!(err, ThumbError::TooManyTiles { count: 2, .. }), "{err}");
        let err = compose_sprite(&[], 2, 2, 161, 90).expect_err("odd width");
        assert!(matches!(err, ThumbError::OddTile { .. }), "{err}");
        let err = compose_sprite(&[tile(100), b"not a jpeg".to_vec()], 2, 1, 160, 90).expect_err("garbage");
        assert!(err.to_string().starts_with("sprite tile 1 is not a JPEG"), "{err}");
    }

    /// (start ms, end ms, sprite, x, y, w, h) of each cue.
    fn cues(vtt: &str) -> Vec<(u64, u64, u32, u32, u32, u32, u32)> {
        let parse_time = |t: &str| {
            let (hms, ms) = t.split_once('.').expect("HH:MM:SS.mmm");
            let p: Vec<u64> = hms.split(':').map(|v| v.parse().expect("number")).collect();
            assert_eq!((p.len(), ms.len()), (3, 3), "{t}");
            ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<u64>().expect("ms")
        };
        let mut lines = vtt.lines();
        assert_eq!(lines.next(), Some("WEBVTT"));
        let mut out = Vec::new();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                continue;
            }
            let (start, end) = line.split_once(" --> ").expect("a timing line");
            let text = lines.next().expect("cue text");
            let (file, xywh) = text.split_once("#xywh=").expect("media fragment");
            let sprite = file.strip_prefix("sprite_").and_then(|f| f.strip_suffix(".jpg")).expect("sprite name");
            let v: Vec<u32> = xywh.split(',').map(|n| n.parse().expect("number")).collect();
            out.push((parse_time(start), parse_time(end), sprite.parse().expect("index"), v[0], v[1], v[2], v[3]));
        }
        out
    }

    #[test]
    fn vtt_cues_tile_the_timeline_and_the_sprites() {
        // A still every 10 s of a 125.4 s video; 2x2 sprites of 160x90.
        let stills: Vec<f64> = (0..13).map(|n| f64::from(n) * 10.0).collect();
        let vtt = thumbs_vtt(&stills, 125.4, 2, 2, 160, 90);
        let cues = cues(&vtt);
        assert_eq!(cues.len(), 13);
        assert_eq!(cues[0].0, 0);
        assert_eq!(cues.last().expect("cues").1, 125_400);
        for pair in cues.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "no gap or overlap between {pair:?}");
        }
        for (n, &(start, end, sprite, x, y, w, h)) in cues.iter().enumerate() {
            assert!(start < end);
            assert_eq!(sprite, n as u32 / 4, "4 stills per sprite");
            assert!(x + w <= 320 && y + h <= 180, "cue {n} inside its sprite");
            assert_eq!((w, h), (160, 90));
        }
        assert_eq!((cues[4].2, cues[4].3, cues[4].4), (1, 0, 0), "the fifth still opens the second sprite");
        assert_eq!((cues[7].2, cues[7].3, cues[7].4), (1, 160, 90), "the eighth still is its last cell");
        assert!(vtt.contains("00:02:00.000 --> 00:02:05.400\nsprite_3.jpg#xywh=0,0,160,90\n"), "{vtt}");
    }

    #[test]
    fn vtt_times_are_hours_minutes_seconds_millis() {
        let vtt = thumbs_vtt(&[3599.9996, 3725.25], 3730.0, 5, 5, 128, 72);
        assert!(vtt.contains("01:00:00.000 --> 01:02:05.250\n"), "{vtt}");
        assert!(vtt.contains("01:02:05.250 --> 01:02:10.000\n"), "{vtt}");
    }

    #[test]
    fn vtt_skips_empty_cues() {
        let cues = cues(&thumbs_vtt(&[0.0, 5.0, 5.0, 10.0], 10.0, 2, 2, 160, 90));
        assert_eq!(cues.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), vec![(0, 5000), (5000, 10000)]);
        assert_eq!(cues[1].3, 0, "the still at 5 s that got a cue is the third (x 0, y 90)");
        assert_eq!(cues[1].4, 90);
    }
}
