//! SubRip (`.srt`): numbered blocks of a timing line and text, separated by blank lines.

use super::{Cue, parse_timing, text};

const EXAMPLE: &str = "00:00:01,000 --> 00:00:02,500";

/// The cues of a SubRip file, or the (1-based) line that is wrong and what is wrong with it.
pub(super) fn parse(source: &str) -> Result<Vec<Cue>, (usize, String)> {
    let mut cues = Vec::new();
    let mut lines = source.lines().map(|l| l.trim_end_matches('\r')).enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // The block's number, then its timing (some writers leave the number out).
        let (n, timing) = if line.bytes().all(|b| b.is_ascii_digit()) {
            match lines.next() {
                Some((m, t)) => (m, t.trim()),
                None => return Err((n + 2, format!("cue {line} has no time range after its number"))),
            }
        } else if line.contains("-->") {
            (n, line)
        } else {
            let problem = format!("expected a cue number or a time range like `{EXAMPLE}`, found `{}`", clip(line));
            return Err((n + 1, problem));
        };
        let (start_ms, end_ms, _) = parse_timing(timing, EXAMPLE).map_err(|problem| (n + 1, problem))?;
        let mut body = Vec::new();
        while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            body.push(l);
        }
        let text = text::from_subrip(&body.join("\n"));
        if !text.is_empty() {
            cues.push(Cue { start_ms, end_ms, settings: String::new(), text });
        }
    }
    Ok(cues)
}

fn clip(line: &str) -> std::borrow::Cow<'_, str> {
    crate::message::clip(line, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_cues() {
        let srt = "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\n<i>world</i>\r\n\r\n2\n00:00:03,000 --> 00:00:04,000\nBye\n";
        let cues = parse(srt).expect("valid");
        assert_eq!(cues.len(), 2);
        assert_eq!((cues[0].start_ms, cues[0].end_ms, cues[0].text.as_str()), (1000, 2500, "Hello\n<i>world</i>"));
        assert_eq!((cues[1].start_ms, cues[1].end_ms, cues[1].text.as_str()), (3000, 4000, "Bye"));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let srt = "1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 -> 00:00:04,000\nBye\n";
        let (line, problem) = parse(srt).expect_err("broken timing");
        assert_eq!(line, 6);
        assert!(problem.contains("00:00:03,000 -> 00:00:04,000"), "{problem}");
        let (line, _) = parse("1\n00:00:05,000 --> 00:00:04,000\nBackwards\n").expect_err("ends before it starts");
        assert_eq!(line, 2);
        let (line, _) = parse("\n\nnot subtitles\n").expect_err("not SubRip");
        assert_eq!(line, 3);
    }
}
