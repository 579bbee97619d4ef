//! WebVTT sidecars: the `WEBVTT` header, then cues (an optional identifier, a timing line
//! with optional settings, the text), `NOTE`, `STYLE` and `REGION` blocks skipped.

use super::{Cue, parse_timing, text};

const EXAMPLE: &str = "00:00:01.000 --> 00:00:02.500";

/// The cues of a WebVTT file, or the (1-based) line that is wrong and what is wrong with it.
pub(super) fn parse(source: &str) -> Result<Vec<Cue>, (usize, String)> {
    let mut lines = source.lines().map(|l| l.trim_end_matches('\r')).enumerate().peekable();
    match lines.next() {
        Some((_, header)) if header == "WEBVTT" || header.starts_with("WEBVTT ") || header.starts_with("WEBVTT\t") => {}
        _ => return Err((1, "a WebVTT file starts with a `WEBVTT` line".to_owned())),
    }
    // The rest of the header block.
    while lines.next_if(|(_, l)| !l.trim().is_empty()).is_some() {}
    let mut cues = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let mut block = vec![(n, line)];
        while let Some(next) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            block.push(next);
        }
        if ["NOTE", "STYLE", "REGION"].iter().any(|k| line == *k || line.starts_with(&format!("{k} "))) {
            continue;
        }
        // An identifier line first, unless the block starts with its timing.
        let timing = if line.contains("-->") { 0 } else { 1 };
        let Some(&(t, timing_line)) = block.get(timing) else {
            return Err((n + 2, format!("cue `{line}` has no time range like `{EXAMPLE}`")));
        };
        let (start_ms, end_ms, settings) = parse_timing(timing_line, EXAMPLE).map_err(|p| (t + 1, p))?;
        let body: Vec<&str> = block[timing + 1..].iter().map(|(_, l)| *l).collect();
        let text = text::tidy(&body.join("\n"));
        if !text.is_empty() {
            cues.push(Cue { start_ms, end_ms, settings, text });
        }
    }
    Ok(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_notes_and_settings() {
        let vtt = "WEBVTT - talk\n\nNOTE a comment\nover lines\n\nintro\n00:01.000 --> 00:02.000 line:0\nHello\n\n00:00:03.000 --> 00:00:04.000\n<v Ann>Bye\n";
        let cues = parse(vtt).expect("valid");
        assert_eq!(cues.len(), 2);
        assert_eq!((cues[0].start_ms, cues[0].settings.as_str(), cues[0].text.as_str()), (1000, "line:0", "Hello"));
        assert_eq!((cues[1].end_ms, cues[1].text.as_str()), (4000, "<v Ann>Bye"));
    }

    #[test]
    fn problems_name_their_line() {
        assert_eq!(parse("WEBVTX\n").expect_err("no header").0, 1);
        let (line, problem) =
            parse("WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\nid\n00:03.000 --> 0:4\nbad\n").unwrap_err();
        assert_eq!(line, 7, "{problem}");
        assert_eq!(parse("WEBVTT\n\nonly an id\n").expect_err("no timing").0, 4);
    }
}
