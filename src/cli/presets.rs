//! `ladder presets list|show|check|schema`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::exit::Outcome;
use crate::media::encoder::VideoCodec;
use crate::preset::{self, Diagnostic, Preset, PresetError};

use super::args::{CheckArgs, ListArgs, PresetsCommand, ShowArgs};

/// Runs one `presets` subcommand.
pub(crate) fn execute(out: &mut impl Write, command: &PresetsCommand) -> anyhow::Result<Outcome> {
    match command {
        PresetsCommand::List(args) => list(out, args),
        PresetsCommand::Show(args) => show(out, args),
        PresetsCommand::Check(args) => check(out, args),
        PresetsCommand::Schema => {
            writeln!(out, "{}", serde_json::to_string_pretty(&preset::schema())?)?;
            Ok(Outcome::Done)
        }
    }
}

/// One line of `presets list`, and one object of its `--json`.
// Fields in alphabetical order: the JSON keys come out in the order they always had.
#[derive(Debug, Serialize)]
struct PresetRow {
    /// `None` for a file that does not load.
    codec: Option<VideoCodec>,
    description: String,
    name: String,
    rungs: usize,
    /// `built-in`, or the file's path.
    source: String,
}

impl PresetRow {
    fn new(name: String, source: String, preset: &Preset) -> Self {
        Self {
            codec: Some(preset.video.codec),
            description: preset.description.clone(),
            name,
            rungs: preset.rungs.len(),
            source,
        }
    }

    /// A file in the presets folder that does not load.
    fn invalid(path: &Path) -> Self {
        Self {
            codec: None,
            description: "INVALID: run `ladder presets check` on it".to_owned(),
            name: path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
            rungs: 0,
            source: path.display().to_string(),
        }
    }
}

fn list(out: &mut impl Write, args: &ListArgs) -> anyhow::Result<Outcome> {
    let mut rows = builtin_rows()?;
    rows.extend(folder_rows(&args.dir.presets_dir));
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(Outcome::Done);
    }
    for r in rows {
        writeln!(
            out,
            "{:<10} {:<6} {} rungs  {:<24} {}",
            r.name,
            r.codec.map_or("-", VideoCodec::name),
            r.rungs,
            r.source,
            r.description
        )?;
    }
    Ok(Outcome::Done)
}

fn builtin_rows() -> anyhow::Result<Vec<PresetRow>> {
    preset::builtin_names()
        .map(|name| {
            let text = preset::builtin_text(name).expect("a listed built-in has text");
            let preset = preset::load_str(text, name)?;
            Ok(PresetRow::new(name.to_owned(), "built-in".to_owned(), &preset))
        })
        .collect()
}

/// The `*.toml` files of the presets folder, sorted, but for shipped copies of built-ins.
/// A folder that cannot be read lists nothing.
fn folder_rows(dir: &Path) -> Vec<PresetRow> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|path| !is_builtin_copy(path))
        .map(|path| match preset::load_file(&path) {
            Ok(p) => PresetRow::new(p.name.clone(), path.display().to_string(), &p),
            Err(_) => PresetRow::invalid(&path),
        })
        .collect()
}

fn is_builtin_copy(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    preset::builtin_names().any(|n| preset::builtin_text(n) == Some(text.as_str()))
}

fn show(out: &mut impl Write, args: &ShowArgs) -> anyhow::Result<Outcome> {
    let preset = args.preset.load()?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&preset)?)?;
    } else {
        write!(out, "{}", preset.to_toml().context("formatting the preset as TOML")?)?;
    }
    Ok(Outcome::Done)
}

/// Every problem of every file; exit 2 if there is any.
fn check(out: &mut impl Write, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let found: Vec<Vec<Diagnostic>> = args.files.iter().map(|file| problems(file)).collect();
    let bad_files = found.iter().filter(|f| !f.is_empty()).count();
    let all: Vec<Diagnostic> = found.into_iter().flatten().collect();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        for d in &all {
            writeln!(out, "{d}")?;
        }
        let files = args.files.len();
        let ok = files - bad_files;
        writeln!(out, "{files} preset(s) checked: {ok} valid, {bad_files} with problems ({} problem(s))", all.len())?;
    }
    Ok(if all.is_empty() { Outcome::Done } else { Outcome::Usage })
}

/// A file's problems; one that cannot be read is one problem at its first line.
fn problems(file: &Path) -> Vec<Diagnostic> {
    match preset::load_file(file) {
        Ok(_) => Vec::new(),
        Err(PresetError::Invalid { diagnostics, .. }) => diagnostics,
        Err(e) => vec![Diagnostic {
            file: file.display().to_string(),
            line: 1,
            column: 1,
            key: String::new(),
            message: e.to_string(),
            fix: "check the path".to_owned(),
        }],
    }
}
