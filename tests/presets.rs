//! `ladder presets …` as CI and operators use it: every shipped preset passes, and each
//! rule has a fixture whose `# expect:` markers say on which line `presets check` must
//! report what.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn ladder() -> Command {
    Command::cargo_bin("ladder").expect("the ladder binary is built for integration tests")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// (line, expected fragment) for every `# expect: …` marker in a fixture.
fn expectations(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#'))
        .filter_map(|(i, line)| line.split_once("# expect:").map(|(_, want)| (i + 1, want.trim().to_owned())))
        .collect()
}

#[test]
fn every_shipped_preset_passes_check() {
    let files: Vec<PathBuf> = std::fs::read_dir(repo("presets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(files.len() >= 4, "presets/ should hold default, small, hevc and av1: {files:?}");
    let out = ladder().args(["presets", "check"]).args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("{n} preset(s) checked: {n} valid", n = files.len())), "{stdout}");
}

#[test]
fn each_rule_reports_its_line_and_message() {
    let dir = repo("tests/fixtures/presets");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    fixtures.sort();
    assert!(fixtures.len() >= 15, "expected one fixture per rule, found {}", fixtures.len());
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).unwrap();
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{} has no # expect: marker", fixture.display());
        let out = ladder().args(["presets", "check"]).arg(&fixture).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{}: exit code\n{stdout}", fixture.display());
        let diagnostics: Vec<(usize, &str)> = stdout
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&format!("{}:", fixture.display()))?;
                let (line, rest) = rest.split_once(':')?;
                let (_col, message) = rest.split_once(": ")?;
                Some((line.parse().ok()?, message))
            })
            .collect();
        for (line, want) in &expected {
            assert!(
                diagnostics.iter().any(|(l, m)| l == line && m.contains(want.as_str())),
                "{}: expected a problem on line {line} containing {want:?}, got:\n{stdout}",
                fixture.display()
            );
        }
        for (line, message) in &diagnostics {
            assert!(
                expected.iter().any(|(l, want)| l == line && message.contains(want.as_str())),
                "{}: unexpected problem on line {line}: {message}",
                fixture.display()
            );
        }
        for (_, message) in &diagnostics {
            assert!(message.contains(" — "), "each problem says how to fix it: {message}");
        }
    }
}

#[test]
fn check_reports_every_file_and_a_json_form() {
    let good = repo("presets/small.toml");
    let bad = repo("tests/fixtures/presets/several-problems.toml");
    let out = ladder().args(["presets", "check", "--json"]).arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = problems.as_array().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    let keys: Vec<&str> = problems.iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["segments.segment_seconds", "rungs[0].height", "rungs[0].bitrate_kbps"]);
    assert!(problems.iter().all(|p| p["fix"].as_str().is_some_and(|f| !f.is_empty())));
}

#[test]
fn check_of_a_missing_file_fails_with_its_name() {
    let out = ladder().args(["presets", "check", "no/such/preset.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no/such/preset.toml:1:1: cannot read preset"));
}

#[test]
fn schema_describes_the_format_for_editors() {
    let out = ladder().args(["presets", "schema"]).output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "RawPreset");
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for key in ["name", "video", "rungs"] {
        assert!(required.contains(&key), "{key} should be required: {required:?}");
    }
    let rung = &schema["$defs"]["RawRung"]["properties"];
    assert!(rung["bitrate_kbps"]["description"].as_str().unwrap().contains("kbit/s"));
}

#[test]
fn show_fills_in_defaults_and_list_names_the_builtins() {
    let out = ladder().args(["presets", "show", "--preset", "small", "--json"]).output().unwrap();
    assert!(out.status.success());
    let preset: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(preset["name"], "small");
    assert_eq!(preset["rungs"][0]["maxrate_kbps"], 3750, "maxrate defaults to 1.5 × bitrate");
    assert_eq!(preset["audio"]["sample_rate"], 48000);

    let out = ladder().args(["presets", "list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "small", "hevc", "av1"]);
}

#[test]
fn an_unknown_preset_name_is_a_usage_error() {
    let out = ladder().args(["presets", "show", "--preset", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no preset named \"nope\" (built in: default, small, hevc, av1"), "{stderr}");
}
