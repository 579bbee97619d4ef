//! Language tags: containers say `eng` or `ger` (ISO 639-2, as MP4 and Matroska store
//! them); HLS `LANGUAGE` and DASH `@lang` want BCP 47, whose primary subtag is the
//! shortest ISO 639 code (`en`, `de`). Players match a viewer's preference against it.

/// ISO 639-2 bibliographic and terminology codes, the ISO 639-1 code, and the English
/// name, for the languages events are interpreted into most. A code not listed is kept as
/// it is: a three-letter ISO 639-2/3 code is valid BCP 47 where no two-letter one exists.
const LANGUAGES: &[(&str, &str, &str, &str)] = &[
    ("ara", "ara", "ar", "Arabic"),
    ("bul", "bul", "bg", "Bulgarian"),
    ("cat", "cat", "ca", "Catalan"),
    ("chi", "zho", "zh", "Chinese"),
    ("cze", "ces", "cs", "Czech"),
    ("dan", "dan", "da", "Danish"),
    ("dut", "nld", "nl", "Dutch"),
    ("ell", "gre", "el", "Greek"),
    ("eng", "eng", "en", "English"),
    ("est", "est", "et", "Estonian"),
    ("fin", "fin", "fi", "Finnish"),
    ("fre", "fra", "fr", "French"),
    ("ger", "deu", "de", "German"),
    ("heb", "heb", "he", "Hebrew"),
    ("hin", "hin", "hi", "Hindi"),
    ("hrv", "hrv", "hr", "Croatian"),
    ("hun", "hun", "hu", "Hungarian"),
    ("ind", "ind", "id", "Indonesian"),
    ("ita", "ita", "it", "Italian"),
    ("jpn", "jpn", "ja", "Japanese"),
    ("kor", "kor", "ko", "Korean"),
    ("lav", "lav", "lv", "Latvian"),
    ("lit", "lit", "lt", "Lithuanian"),
    ("may", "msa", "ms", "Malay"),
    ("nor", "nor", "no", "Norwegian"),
    ("per", "fas", "fa", "Persian"),
    ("pol", "pol", "pl", "Polish"),
    ("por", "por", "pt", "Portuguese"),
    ("rum", "ron", "ro", "Romanian"),
    ("rus", "rus", "ru", "Russian"),
    ("slo", "slk", "sk", "Slovak"),
    ("slv", "slv", "sl", "Slovenian"),
    ("spa", "spa", "es", "Spanish"),
    ("srp", "srp", "sr", "Serbian"),
    ("swe", "swe", "sv", "Swedish"),
    ("tha", "tha", "th", "Thai"),
    ("tur", "tur", "tr", "Turkish"),
    ("ukr", "ukr", "uk", "Ukrainian"),
    ("vie", "vie", "vi", "Vietnamese"),
];

/// The BCP 47 tag for a container's language tag, or `None` when it is not one (empty,
/// or not letters): `eng` → `en`, `ger`/`deu` → `de`, `pt-BR` stays, `und` stays.
pub(crate) fn bcp47(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let (primary, rest) = tag.split_once(['-', '_']).unwrap_or((tag, ""));
    let primary = primary.to_ascii_lowercase();
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let subtag_ok = |p: &str| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric());
    if !rest.is_empty() && !rest.split(['-', '_']).all(subtag_ok) {
        return None;
    }
    let primary = LANGUAGES
        .iter()
        .find(|(b, t, one, _)| primary == *b || primary == *t || primary == *one)
        .map_or(primary, |(_, _, one, _)| (*one).to_owned());
    Some(if rest.is_empty() { primary } else { format!("{primary}-{}", rest.replace('_', "-")) })
}

/// The English name of a BCP 47 tag's language, when it is one of [`LANGUAGES`].
pub(crate) fn name(bcp47: &str) -> Option<&'static str> {
    let primary = bcp47.split('-').next()?;
    LANGUAGES.iter().find(|(_, _, one, _)| *one == primary).map(|(_, _, _, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_tags_become_bcp47() {
        assert_eq!(bcp47("eng").as_deref(), Some("en"));
        assert_eq!(bcp47("ger").as_deref(), Some("de"));
        assert_eq!(bcp47("deu").as_deref(), Some("de"));
        assert_eq!(bcp47("FRE").as_deref(), Some("fr"));
        assert_eq!(bcp47("pt-BR").as_deref(), Some("pt-BR"));
        assert_eq!(bcp47("und").as_deref(), Some("und"));
        assert_eq!(bcp47("gsw").as_deref(), Some("gsw"), "no two-letter code: kept");
        assert_eq!(bcp47(""), None);
        assert_eq!(bcp47("english"), None);
        assert_eq!(bcp47("e1"), None);
    }

    #[test]
    fn known_languages_have_names() {
        assert_eq!(name("de"), Some("German"));
        assert_eq!(name("pt-BR"), Some("Portuguese"));
        assert_eq!(name("und"), None);
    }
}
