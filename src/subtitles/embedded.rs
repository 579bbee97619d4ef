//! Text subtitle streams of the recording (mov_text, SubRip, WebVTT, ASS/SSA) through
//! libav's decoders, in one pass over the file for every stream asked for.

use std::collections::BTreeMap;

use ff::ffi;
use ffmpeg_next as ff;

use super::{Cue, SubtitleError, text};

/// A stream being read: its decoder, time base and the cues so far.
struct Reader {
    decoder: ff::decoder::Subtitle,
    time_base: ff::Rational,
    cues: Vec<Cue>,
}

/// The cues of each of `streams`, in milliseconds from `zero_seconds` on the recording's
/// clock (the output's first frame): a stream that cannot be read gets its error.
pub(crate) fn read(
    source: &crate::location::Source,
    streams: &[usize],
    zero_seconds: f64,
) -> BTreeMap<usize, Result<Vec<Cue>, SubtitleError>> {
    crate::media::init();
    let path = source.name();
    let error = |stream, detail: String| SubtitleError::Embedded { path: path.display().to_string(), stream, detail };
    let mut input = match crate::media::input::open_with_info(source, crate::probe::PROTOCOLS) {
        Ok(input) => input,
        Err(e) => {
            return streams.iter().map(|&s| (s, Err(error(s, format!("cannot open the recording: {e}"))))).collect();
        }
    };
    let mut results = BTreeMap::new();
    let mut readers = BTreeMap::new();
    for &s in streams {
        match open(&input, s) {
            Ok(reader) => {
                readers.insert(s, reader);
            }
            Err(detail) => {
                results.insert(s, Err(error(s, detail)));
            }
        }
    }
    discard_others(&mut input, &readers);
    let zero_ms = (zero_seconds * 1000.0).round() as i64;
    for (stream, packet) in input.packets() {
        let index = stream.index();
        let Some(reader) = readers.get_mut(&index) else { continue };
        if let Err(detail) = reader.take(&packet, zero_ms) {
            readers.remove(&index);
            results.insert(index, Err(error(index, detail)));
        }
    }
    for (s, reader) in readers {
        let mut cues = reader.cues;
        cues.sort_by_key(|c| (c.start_ms, c.end_ms));
        results.insert(s, Ok(cues));
    }
    results
}

/// A decoder for stream `index`.
fn open(input: &ff::format::context::Input, index: usize) -> Result<Reader, String> {
    let stream = input.stream(index).ok_or_else(|| "the recording has no such stream".to_owned())?;
    let context = ff::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| e.to_string())?;
    let decoder = context.decoder().subtitle().map_err(|e| format!("no text subtitle decoder: {e}"))?;
    Ok(Reader { decoder, time_base: stream.time_base(), cues: Vec::new() })
}

/// Tells the demuxer to skip every stream not read, so the pass reads no more than it must.
fn discard_others(input: &mut ff::format::context::Input, readers: &BTreeMap<usize, Reader>) {
    // SAFETY: the context is open; its streams array holds nb_streams valid streams, and
    // `discard` is a plain field the demuxer reads.
    unsafe {
        let ctx = input.as_mut_ptr();
        for i in 0..(*ctx).nb_streams as usize {
            if !readers.contains_key(&i) {
                (*(*(*ctx).streams.add(i))).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

impl Reader {
    /// Decodes one packet into cues; an error the decoder gives is the stream's end.
    fn take(&mut self, packet: &ff::Packet, zero_ms: i64) -> Result<(), String> {
        let Some(pts) = packet.pts().or(packet.dts()) else { return Ok(()) };
        let ms = |t: i64| (t as f64 * f64::from(self.time_base) * 1000.0).round() as i64;
        let mut subtitle = ff::Subtitle::new();
        let got = self.decoder.decode(packet, &mut subtitle).map_err(|e| {
            // libav refuses text that is not UTF-8 (a file saved in Latin-1, say).
            let hint = if e == ff::Error::InvalidData { " (is its text UTF-8?)" } else { "" };
            format!("its cue at {:.3} s cannot be decoded: {e}{hint}", ms(pts) as f64 / 1000.0)
        })?;
        if !got {
            return Ok(());
        }
        let start = ms(pts) + i64::from(subtitle.start()) - zero_ms;
        let end = if packet.duration() > 0 {
            ms(pts + packet.duration()) - zero_ms
        } else {
            ms(pts) + i64::from(subtitle.end()) - zero_ms
        };
        let text: Vec<String> = subtitle
            .rects()
            .filter_map(|rect| match rect {
                ff::subtitle::Rect::Text(t) => Some(text::from_subrip(t.get())),
                ff::subtitle::Rect::Ass(a) => Some(text::from_ass(a.get())),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect();
        if !text.is_empty() && end > start {
            self.cues.push(Cue { start_ms: start, end_ms: end, settings: String::new(), text: text.join("\n") });
        }
        Ok(())
    }
}
