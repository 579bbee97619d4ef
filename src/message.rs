//! What a failure says to the person or the log reading it: the cause chain once, each
//! cause only where it adds something, and never more text than a reader can use, however
//! long the value a user or a file supplied.

use std::borrow::Cow;

/// Lines longer than this keep their start and end, with what is left out counted between.
pub const MAX_LINE: usize = 400;
/// Lines after this many are counted, not shown.
pub const MAX_LINES: usize = 40;

/// `text` with its middle left out when it is over `max` characters: `start … (N characters
/// left out) … end`, so both what it is about and how it ends stay readable.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    let count = text.chars().count();
    if count <= max {
        return Cow::Borrowed(text);
    }
    let keep = max / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    Cow::Owned(format!("{head}… ({} characters left out) …{tail}", count - 2 * keep))
}

/// The error and its causes as one message: `outer: inner: innermost`, leaving out a cause
/// whose text the message already holds (libav's "Invalid data found when processing input"
/// repeated by every layer that wraps it), each line clipped ([`clip`], [`MAX_LINE`]) and
/// at most [`MAX_LINES`] lines.
pub fn render(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    let lines: Vec<&str> = message.lines().collect();
    let mut out: Vec<Cow<'_, str>> = lines.iter().take(MAX_LINES).map(|l| clip(l, MAX_LINE)).collect();
    if lines.len() > MAX_LINES {
        out.push(Cow::Owned(format!("… and {} more lines", lines.len() - MAX_LINES)));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("audio: decoding: {source}")]
    struct Wrapping {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = std::io::Error::other("Invalid data found when processing input");
        let err = anyhow::Error::new(Wrapping { source: inner }).context("running the job");
        assert_eq!(render(&err), "running the job: audio: decoding: Invalid data found when processing input");
    }

    #[test]
    fn a_cause_that_adds_something_is_kept() {
        let err = anyhow::anyhow!("permission denied").context("writing out/master.m3u8");
        assert_eq!(render(&err), "writing out/master.m3u8: permission denied");
    }

    #[test]
    fn long_values_keep_their_ends_and_many_lines_are_counted() {
        let value = format!("start{}end", "x".repeat(2 << 20));
        let err = anyhow::anyhow!("preset name {value:?} is not usable");
        let text = render(&err);
        assert!(text.len() < MAX_LINE + 100, "{} bytes", text.len());
        assert!(text.starts_with("preset name \"startxxx") && text.ends_with("xxxend\" is not usable"), "{text}");
        assert!(text.contains("characters left out"));
        let many = (0..100).map(|i| format!("problem {i}")).collect::<Vec<_>>().join("\n");
        let text = render(&anyhow::anyhow!(many));
        assert_eq!(text.lines().count(), MAX_LINES + 1);
        assert!(text.ends_with("… and 60 more lines"));
    }
}
