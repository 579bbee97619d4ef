//! Problems found in a preset, and where they are in the file (`file:line:col`).

use std::fmt;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

/// One step of a path into the preset: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the preset such as `rungs[2].width`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// Parses the dotted form used in code: `"rungs"`, `"video.options.tune"`.
    pub fn parse(dotted: &str) -> Self {
        Self(dotted.split('.').filter(|s| !s.is_empty()).map(|s| Seg::Key(s.to_owned())).collect())
    }

    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    /// The path without its last step.
    pub fn parent(&self) -> Self {
        let mut p = self.0.clone();
        p.pop();
        Self(p)
    }

    /// The last key of the path, if it ends with one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A rule a preset breaks: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: KeyPath,
    pub message: String,
    pub fix: String,
    /// Point at the key itself rather than its value (unknown keys).
    pub at_key: bool,
}

impl Problem {
    /// The message and fix are clipped ([`crate::message::clip`]): they quote values from
    /// the file, which may be megabytes long.
    pub fn new(path: KeyPath, message: impl Into<String>, fix: impl Into<String>) -> Self {
        let clipped = |text: String| crate::message::clip(&text, crate::message::MAX_LINE / 2).into_owned();
        Self { path, message: clipped(message.into()), fix: clipped(fix.into()), at_key: false }
    }
}

/// A problem placed in a file, printed as `file:line:col: message — fix`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The preset key concerned, e.g. `rungs[2].width` (empty for syntax errors).
    pub key: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {} — {}", self.file, self.line, self.column, self.message, self.fix)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The byte offset of `path` in the parsed document: the value's (or the key's when
/// `at_key`), or the deepest existing table's when part of the path is missing.
pub(crate) fn locate(root: &DeTable<'_>, path: &KeyPath, at_key: bool) -> usize {
    let mut table = Some(root);
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    let mut best = 0;
    for seg in &path.0 {
        let value = match seg {
            Seg::Key(k) => {
                let Some((key, value)) = table.and_then(|t| t.get_key_value(k.as_str())) else {
                    return best;
                };
                if at_key {
                    best = key.span().start;
                    // Keep descending: a deeper key refines the position.
                } else {
                    best = value.span().start;
                }
                value
            }
            Seg::Index(i) => {
                let Some(value) = array.and_then(|a| a.get(*i)) else {
                    return best;
                };
                best = value.span().start;
                value
            }
        };
        table = value.get_ref().as_table();
        array = value.get_ref().as_array().map(|a| &a[..]);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name = \"x\"\n[video]\ncodec = \"h264\"\n\n[[rungs]]\nname = \"a\"\nwidth = 641\n";

    fn at(path: &KeyPath, at_key: bool) -> (usize, usize) {
        let root = DeTable::parse(DOC).unwrap();
        line_col(DOC, locate(root.get_ref(), path, at_key))
    }

    #[test]
    fn locates_values_in_arrays_of_tables() {
        assert_eq!(at(&KeyPath::parse("rungs").index(0).key("width"), false), (7, 9));
        assert_eq!(at(&KeyPath::parse("rungs").index(0).key("width"), true), (7, 1));
        assert_eq!(at(&KeyPath::parse("video.codec"), false), (3, 9));
    }

    #[test]
    fn missing_keys_point_at_the_nearest_parent() {
        let (line, _) = at(&KeyPath::parse("video.level"), false);
        assert!(line <= 3, "line {line}");
    }

    #[test]
    fn paths_print_like_toml_keys() {
        assert_eq!(KeyPath::parse("rungs").index(2).key("width").to_string(), "rungs[2].width");
    }
}
