//! Cue text from other formats made into WebVTT cue text: SubRip's and ASS's markup, and
//! what WebVTT forbids inside a cue (a blank line ends it, `-->` starts a timing).

/// SubRip text (lines joined by `\n`): `<i>`, `<b>`, `<u>` kept (WebVTT has them), other
/// tags (`<font color=…>`) and ASS override blocks (`{\an8}`, but for their italic, bold
/// and underline switches) dropped, `&` and stray `<` escaped.
pub(crate) fn from_subrip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let stripped = strip_ass_overrides(text);
    let mut rest: &str = &stripped;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('&') {
            out.push_str("&amp;");
            rest = &rest[1..];
            continue;
        }
        match rest.find('>') {
            Some(close) if is_tag(&rest[1..close]) => {
                let tag = rest[1..close].trim().to_ascii_lowercase();
                if matches!(tag.as_str(), "i" | "b" | "u" | "/i" | "/b" | "/u") {
                    out.push('<');
                    out.push_str(&tag);
                    out.push('>');
                }
                rest = &rest[close + 1..];
            }
            _ => {
                out.push_str("&lt;");
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    tidy(&out)
}

/// An ASS event as libav's decoders give it (`ReadOrder,Layer,Style,Name,MarginL,MarginR,
/// MarginV,Effect,Text`, or a whole `Dialogue:` line): the text, override blocks dropped,
/// `\N` and `\n` as line breaks, `\h` as a space.
pub(crate) fn from_ass(event: &str) -> String {
    let (fields, body) = match event.strip_prefix("Dialogue:") {
        Some(rest) => (9, rest),
        None => (8, event),
    };
    let text = body.splitn(fields + 1, ',').nth(fields).unwrap_or(body);
    let text = strip_ass_overrides(text).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ");
    from_subrip(&text)
}

/// Text with every `{…}` block that starts with a backslash taken out, but for the
/// italic, bold and underline switches in it, which become WebVTT's tags.
fn strip_ass_overrides(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("{\\") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut open: Vec<char> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{\\") {
        out.push_str(&rest[..at]);
        let Some(close) = rest[at..].find('}') else {
            rest = "";
            break;
        };
        for tag in rest[at + 1..at + close].split('\\').map(str::trim) {
            match tag.as_bytes() {
                [kind @ (b'i' | b'b' | b'u'), b'1'] if !open.contains(&char::from(*kind)) => {
                    open.push(char::from(*kind));
                    out.push_str(&format!("<{}>", char::from(*kind)));
                }
                [kind @ (b'i' | b'b' | b'u'), b'0'] => close_tags(&mut out, &mut open, Some(char::from(*kind))),
                // `\r`: back to the style's defaults.
                [b'r', ..] => close_tags(&mut out, &mut open, None),
                _ => {}
            }
        }
        rest = &rest[at + close + 1..];
    }
    out.push_str(rest);
    close_tags(&mut out, &mut open, None);
    out.into()
}

/// Closes the open tag `kind` (and those opened after it), or every open tag.
fn close_tags(out: &mut String, open: &mut Vec<char>, kind: Option<char>) {
    let from = match kind {
        Some(k) => match open.iter().position(|&o| o == k) {
            Some(at) => at,
            None => return,
        },
        None => 0,
    };
    for tag in open.drain(from..).rev() {
        out.push_str(&format!("</{tag}>"));
    }
}

/// Whether `<inner>` looks like a markup tag rather than a `<` in prose.
fn is_tag(inner: &str) -> bool {
    let name = inner.trim_start_matches('/');
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().take_while(|c| !c.is_whitespace()).all(|c| c.is_ascii_alphanumeric())
}

/// Lines trimmed at their ends, blank ones dropped, `-->` defused, `\r` gone.
pub(crate) fn tidy(text: &str) -> String {
    text.lines()
        .map(|l| l.trim_end_matches('\r').trim().replace("-->", "->"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subrip_markup_becomes_webvtt_markup() {
        assert_eq!(from_subrip("<i>Hello</i> & <font color=\"red\">you</font>"), "<i>Hello</i> &amp; you");
        assert_eq!(from_subrip("a < b\n\n  c --> d  "), "a &lt; b\nc -> d");
        assert_eq!(from_subrip("{\\an8}On top"), "On top");
    }

    #[test]
    fn ass_events_lose_their_fields_and_overrides() {
        assert_eq!(from_ass("0,0,Default,,0,0,0,,{\\i1}Hello{\\i0}\\Nworld, again"), "<i>Hello</i>\nworld, again");
        assert_eq!(from_ass("0,0,Default,,0,0,0,,{\\an8\\b1}Top{\\b0\\fs20} line"), "<b>Top</b> line");
        assert_eq!(from_ass("0,0,Default,,0,0,0,,and {\\i1}welcome{\\r}."), "and <i>welcome</i>.");
        assert_eq!(from_ass("0,0,Default,,0,0,0,,{\\i1}{\\b1}never closed"), "<i><b>never closed</b></i>");
        assert_eq!(from_ass("Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,Hi\\hthere"), "Hi there");
    }
}
