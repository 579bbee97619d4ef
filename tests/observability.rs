//! Observability end to end against a real VictoriaMetrics: `ladder run` pushes its
//! metrics (periodically, then at its end, whatever ends it), `serve`'s `/metrics` is
//! imported as a scrape would, and every query of the Grafana dashboard and every alert
//! rule in `jobs/observability/` runs against what arrived. A push to an endpoint that
//! is down never changes the exit code and costs a few seconds at most.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
#![allow(clippy::print_stderr, reason = "the queries, their answers and the delays, shown with --nocapture")]

mod common;
mod dispatch_fake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::vm::VictoriaMetrics;
use serde_json::Value;

const TENANT: &str = "acme";
/// The Job names of the runs pushed to VictoriaMetrics.
const RESUMED: &str = "ladder-obs-resumed";
const BAD: &str = "ladder-obs-bad";
/// The recording ended this long before the runs: time-to-VOD is above the alert's SLO.
const ENDED_AGO: i64 = 2 * 3600;

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `ladder run` with metrics pushed to `url`, labelled with `job`.
fn run_command(input: &Path, out: &Path, preset: &Path, url: &str, job: &str, ended: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ladder"));
    cmd.args(["run", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress", "off"])
        .args(["--preset", preset.to_str().unwrap(), "--metrics-url", url])
        .env("LADDER_TENANT", TENANT)
        .env("LADDER_JOB_NAME", job)
        .env("LADDER_RECORDING_ENDED", ended)
        .env_remove("JOB_COMPLETION_INDEX");
    cmd
}

/// The small preset in chunks of one 1 s segment, so a run can be interrupted between
/// chunks, with a 120p rung, so a 240p source has two.
fn chunked_preset() -> PathBuf {
    let mut text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    for (from, to) in [
        ("\"small\"", "\"small-obs\""),
        ("gop_seconds = 2", "gop_seconds = 1"),
        ("segment_seconds = 6", "segment_seconds = 1"),
        ("chunk_segments = 5", "chunk_segments = 1"),
        ("[audio]", "[[rungs]]\nname = \"120p\"\nwidth = 214\nheight = 120\nbitrate_kbps = 200\n\n[audio]"),
    ] {
        assert!(text.contains(from), "the small preset has {from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = common::media_dir().join("small-obs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One instant query's only series: its labels and value.
fn only(vm: &VictoriaMetrics, query: &str) -> (BTreeMap<String, String>, f64) {
    let result = vm.wait_for(query);
    assert_eq!(result.len(), 1, "{query}: {result:?}");
    let labels = serde_json::from_value(result[0]["metric"].clone()).unwrap();
    (labels, result[0]["value"][1].as_str().unwrap().parse().unwrap())
}

fn value(vm: &VictoriaMetrics, query: &str) -> f64 {
    only(vm, query).1
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// What the pushing runs left behind.
struct Runs {
    report: Value,
    /// When the resumed run started and ended, and when the recording ended (Unix s).
    started: f64,
    finished: f64,
    ended: f64,
    /// Chunks the interrupted run stored.
    interrupted_chunks: usize,
}

#[test]
fn runs_and_the_dispatcher_report_to_victoria_metrics_and_every_panel_and_alert_runs() {
    let Some(vm) = VictoriaMetrics::start() else { return };
    let runs = an_interrupted_run_then_its_rerun_then_bad_inputs(&vm);
    the_finished_run_reports_what_its_report_says(&vm, &runs);
    the_interrupted_and_failed_runs_report_their_exit_class(&vm, &runs);
    the_dispatchers_metrics_are_scraped(&vm);
    every_dashboard_query_runs_and_its_panels_have_data(&vm);
    every_alert_rule_parses_runs_and_fires_on_what_it_watches(&vm, &runs);
    // The series of the finished run, for the record (`cargo test -- --nocapture`).
    let export = vm.get(&format!("/api/v1/export?match[]={{job=%22{RESUMED}%22,outcome=%22done%22}}")).unwrap().1;
    let mut lines: Vec<&str> = export.lines().collect();
    lines.sort_unstable();
    eprintln!("VictoriaMetrics export of the finished run:\n{}", lines.join("\n"));
}

/// A run interrupted by SIGTERM after its first chunk (and at least one periodic push),
/// the rerun that finishes it, and three runs of a file that is not a recording.
fn an_interrupted_run_then_its_rerun_then_bad_inputs(vm: &VictoriaMetrics) -> Runs {
    let input = common::pattern("obs10.mp4", "426x240", "25", "10", &[]);
    let preset = chunked_preset();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ended = now().floor() - ENDED_AGO as f64;
    let ended_text = jiff::Timestamp::from_second(ended as i64).unwrap().to_string();
    let url = vm.import_url();

    let mut child = run_command(&input, &out, &preset, &url, RESUMED, &ended_text)
        .args(["--jobs", "1", "--quality", "--metrics-interval", "1"])
        .spawn()
        .unwrap();
    // After its first chunk and its first periodic push (at 1 s).
    let started = Instant::now();
    while !out.join(".ladder/chunks/0.json").exists() || started.elapsed() < Duration::from_millis(1500) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        assert!(started.elapsed() < Duration::from_secs(120), "no chunk finished in 2 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(5), "interrupted");
    let interrupted_chunks = (0..10).filter(|c| out.join(format!(".ladder/chunks/{c}.json")).exists()).count();
    assert!((1..10).contains(&interrupted_chunks), "{interrupted_chunks} chunks stored");

    let started = now();
    // Only the first run's progress is pushed while it works.
    let output = run_command(&input, &out, &preset, &url, RESUMED, &ended_text)
        .args(["--quality", "--metrics-interval", "0"])
        .output()
        .unwrap();
    let finished = now();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();

    let not_media = common::media_dir().join("notes.mp4");
    std::fs::write(&not_media, b"these are meeting notes, not a recording").unwrap();
    for i in 0..3 {
        let output =
            run_command(&not_media, &dir.path().join("bad"), &preset, &url, &format!("{BAD}-{i}"), &ended_text)
                .output()
                .unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    }
    Runs { report, started, finished, ended, interrupted_chunks }
}

fn the_finished_run_reports_what_its_report_says(vm: &VictoriaMetrics, runs: &Runs) {
    let done = format!("{{job=\"{RESUMED}\",outcome=\"done\"}}");
    let (labels, media) = only(vm, &format!("ladder_job_media_seconds{done}"));
    let expected: BTreeMap<String, String> = [
        ("__name__", "ladder_job_media_seconds"),
        ("tenant", TENANT),
        ("preset", "small-obs"),
        ("job", RESUMED),
        ("shard", "0"),
        ("outcome", "done"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(labels, expected);
    let r = &runs.report;
    assert!(close(media, r["output"]["duration_seconds"].as_f64().unwrap()), "{media}");
    assert!((media - 10.0).abs() < 0.01, "media seconds {media} are the clip's 10 s");
    assert_eq!(value(vm, &format!("ladder_job_input_bytes{done}")), r["input"]["size_bytes"].as_f64().unwrap());
    assert_eq!(value(vm, &format!("ladder_job_published{done}")), 1.0);
    assert_eq!(value(vm, &format!("ladder_job_shards{done}")), 1.0);
    let reused = r["run"]["chunks_reused"].as_array().unwrap().len();
    let encoded = r["run"]["chunks_encoded"].as_array().unwrap().len();
    assert_eq!((reused, encoded), (runs.interrupted_chunks, 10 - runs.interrupted_chunks));
    assert_eq!(value(vm, &format!("ladder_job_chunks_reused{done}")), reused as f64);
    assert_eq!(value(vm, &format!("ladder_job_chunks_encoded{done}")), encoded as f64);
    let encoded_media = value(vm, &format!("ladder_job_encoded_media_seconds{done}"));
    assert!((encoded_media - encoded as f64).abs() < 0.01, "{encoded_media} s encoded in {encoded} chunks of 1 s");
    let wall = r["run"]["wall_seconds"].as_f64().unwrap();
    assert!(close(value(vm, &format!("ladder_job_wall_seconds{done}")), wall));
    assert!(close(value(vm, &format!("ladder_job_cpu_seconds{done}")), r["run"]["cpu_seconds"].as_f64().unwrap()));
    assert!(close(value(vm, &format!("ladder_job_speed_ratio{done}")), encoded_media / wall));
    let tt_vod = value(vm, &format!("ladder_job_time_to_vod_seconds{done}"));
    let (earliest, latest) = (runs.started - runs.ended, runs.finished - runs.ended);
    assert!(tt_vod >= earliest && tt_vod <= latest, "time-to-VOD {tt_vod} not within [{earliest}, {latest}]");
    assert_eq!(value(vm, &format!("ladder_job_recording_ended_timestamp_seconds{done}")), runs.ended);
    for stage in r["stages"].as_array().unwrap() {
        let name = stage["name"].as_str().unwrap();
        let seconds =
            value(vm, &format!("ladder_job_stage_seconds{{job=\"{RESUMED}\",outcome=\"done\",stage=\"{name}\"}}"));
        assert!(close(seconds, stage["wall_seconds"].as_f64().unwrap()), "{name}");
    }

    let rungs = r["rungs"].as_array().unwrap();
    assert_eq!(rungs.len(), 2, "240p and 120p of a 240p source");
    for rung in rungs {
        let of = |metric: &str| {
            let query =
                format!("{metric}{{job=\"{RESUMED}\",outcome=\"done\",rung=\"{}\"}}", rung["dir"].as_str().unwrap());
            let (labels, v) = only(vm, &query);
            assert_eq!(labels["rung_name"], rung["name"].as_str().unwrap());
            v
        };
        let kbps = |key: &str| rung[key].as_f64().unwrap() * 1000.0;
        assert!(close(of("ladder_job_rung_average_bitrate_bps"), kbps("average_kbps")), "{rung}");
        assert!(close(of("ladder_job_rung_peak_bitrate_bps"), kbps("peak_kbps")), "{rung}");
        assert_eq!(of("ladder_job_rung_target_bitrate_bps"), kbps("target_kbps"));
        assert_eq!(of("ladder_job_rung_maxrate_bps"), kbps("maxrate_kbps"));
        assert_eq!(of("ladder_job_rung_bytes"), rung["bytes"].as_f64().unwrap());
        assert!(close(of("ladder_job_rung_psnr_db"), rung["psnr_db"].as_f64().unwrap()), "{rung}");
        assert!(close(of("ladder_job_rung_ssim"), rung["ssim"].as_f64().unwrap()), "{rung}");
    }
}

fn the_interrupted_and_failed_runs_report_their_exit_class(vm: &VictoriaMetrics, runs: &Runs) {
    // While it worked, the first run pushed its progress; then its end, interrupted.
    let progress =
        value(vm, &format!("max_over_time(ladder_job_progress_ratio{{job=\"{RESUMED}\",outcome=\"running\"}}[1h])"));
    assert!(progress > 0.0 && progress < 1.0, "{progress}");
    let interrupted = format!("{{job=\"{RESUMED}\",outcome=\"interrupted\"}}");
    assert_eq!(value(vm, &format!("ladder_job_chunks_encoded{interrupted}")), runs.interrupted_chunks as f64);
    assert_eq!(value(vm, &format!("ladder_job_media_seconds{interrupted}")), 10.0);
    // A file that is not a recording: bad_input, with the times but no media figures.
    for i in 0..3 {
        let bad = format!("{{job=\"{BAD}-{i}\"}}");
        let (labels, _) = only(vm, &format!("ladder_job_wall_seconds{bad}"));
        assert_eq!((labels["outcome"].as_str(), labels["tenant"].as_str()), ("bad_input", TENANT));
        assert!(vm.query(&format!("ladder_job_media_seconds{bad}"))["data"]["result"][0].is_null());
    }
}

/// Webhooks through the real router (Jobs in a fake API server); its `/metrics` is
/// imported twice, a minute apart, as two scrapes would be.
fn the_dispatchers_metrics_are_scraped(vm: &VictoriaMetrics) {
    use ladder::dispatch::{DispatchConfig, RawConfig, TenantRoute};
    use ladder::serve::{self, AppState, Limits, Secrets};
    use tower::ServiceExt as _;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _in_runtime = runtime.enter();
    let fake = dispatch_fake::FakeApi::start();
    let raw = RawConfig {
        tenants: BTreeMap::from([(
            TENANT.to_owned(),
            TenantRoute { output: "s3://acme-vod/{stem}".into(), preset: None, queue: None },
        )]),
        buckets: BTreeMap::from([("acme-recordings".to_owned(), TENANT.to_owned())]),
        ..RawConfig::default()
    };
    let config = DispatchConfig::resolve(raw, RawConfig::default()).unwrap();
    let secrets = Secrets { s3_tokens: vec!["token".into()], ..Secrets::default() };
    let state = AppState::new(config, secrets, fake.client(), common::repo("presets"), Limits::default());
    let app = serve::router(state);
    let send = |key: &str, token: Option<&str>| {
        let body = serde_json::json!({"Records": [{"eventName": "s3:ObjectCreated:Put", "eventTime": "2026-11-25T05:00:00Z",
            "s3": {"bucket": {"name": "acme-recordings"}, "object": {"key": key}}}]});
        let mut request = axum::http::Request::post("/hooks/s3");
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request.body(axum::body::Body::from(body.to_string())).unwrap();
        runtime.block_on(app.clone().oneshot(request)).unwrap().status().as_u16()
    };
    let scrape = |at: f64| {
        let request = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
        let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
        let text = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        // A scrape stamps its samples with its own time.
        let ms = (at * 1000.0) as i64;
        let stamped: String = String::from_utf8(text.to_vec())
            .unwrap()
            .lines()
            .map(|l| if l.starts_with('#') || l.is_empty() { format!("{l}\n") } else { format!("{l} {ms}\n") })
            .collect();
        vm.import(&stamped);
    };
    assert_eq!(send("rooms/a.mp4", Some("token")), 200);
    scrape(now() - 60.0);
    assert_eq!(send("rooms/a.mp4", Some("token")), 200, "a duplicate");
    assert_eq!(send("rooms/b.mp4", Some("token")), 200);
    assert_eq!(send("rooms/c.mp4", None), 401);
    fake.fill_quota("ladder-acme", true);
    assert_eq!(send("rooms/d.mp4", Some("token")), 503);
    scrape(now());
    let jobs = |result: &str| value(vm, &format!("ladder_dispatch_jobs_total{{tenant=\"acme\",result=\"{result}\"}}"));
    assert_eq!((jobs("created"), jobs("duplicate"), jobs("refused")), (2.0, 1.0, 1.0));
    assert_eq!(value(vm, "ladder_dispatch_refusals_total{tenant=\"acme\",reason=\"quota\"}"), 1.0);
    let unauthorized = "ladder_webhook_verification_failures_total{hook=\"s3\",reason=\"missing_header\"}";
    assert_eq!(value(vm, unauthorized), 1.0);
}

/// Grafana's variables as a user would leave them (all tenants and presets, a day).
fn concrete(expr: &str) -> String {
    let expr = expr
        .replace("$tenant", ".*")
        .replace("$preset", ".*")
        .replace("$window", "1d")
        .replace("$__rate_interval", "5m");
    assert!(!expr.contains('$'), "a variable the test does not know in {expr}");
    expr
}

/// Panels that may legitimately be empty once every run has ended.
const MAY_BE_EMPTY: &[&str] = &["Runs in progress"];

fn every_dashboard_query_runs_and_its_panels_have_data(vm: &VictoriaMetrics) {
    let text = std::fs::read_to_string(common::repo("jobs/observability/ladder-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        let mut has_data = false;
        for target in panel["targets"].as_array().unwrap() {
            let expr = concrete(target["expr"].as_str().unwrap());
            vm.query_range(&expr, 30);
            let result = vm.query(&expr)["data"]["result"].as_array().unwrap().clone();
            eprintln!("panel {title:?}: {expr}\n  → {} series", result.len());
            has_data |= !result.is_empty();
            queries += 1;
        }
        assert!(has_data || MAY_BE_EMPTY.contains(&title), "panel {title:?} shows nothing after the runs");
    }
    assert!(queries >= 20, "{queries} queries");
    // The variables' queries: label_values(metric, label) is the label values API.
    for variable in dashboard["templating"]["list"].as_array().unwrap().iter().filter(|v| v["type"] == "query") {
        let q = variable["query"]["query"].as_str().unwrap();
        let (metric, label) = q.strip_prefix("label_values(").unwrap().trim_end_matches(')').split_once(", ").unwrap();
        let values = vm.label_values(label, metric);
        assert!(!values.is_empty(), "variable {q} lists nothing");
    }
    let tenants = vm.label_values("tenant", "ladder_job_push_timestamp_seconds");
    assert_eq!(tenants, [TENANT]);
}

/// What the runs above cannot show, imported as a Job would have pushed it: a pod that
/// died without exiting (its last running push 20 minutes ago), a preset encoding at half
/// realtime, and a week-old PSNR of the finished run's first rung 3 dB higher than today's.
fn a_lost_pod_a_slow_preset_and_last_weeks_quality(vm: &VictoriaMetrics, runs: &Runs) {
    let t = now().floor();
    let labels = |job: &str, preset: &str, outcome: &str| {
        format!("tenant=\"{TENANT}\",preset=\"{preset}\",job=\"{job}\",shard=\"0\",outcome=\"{outcome}\"")
    };
    let rung = &runs.report["rungs"][0];
    let (dir, name, psnr) =
        (rung["dir"].as_str().unwrap(), rung["name"].as_str().unwrap(), rung["psnr_db"].as_f64().unwrap());
    let lost = t - 1200.0;
    let week = t - 3.0 * 86400.0;
    vm.import(&format!(
        "ladder_job_push_timestamp_seconds{{{}}} {lost} {}\n\
         ladder_job_speed_ratio{{{}}} 0.5 {}\n\
         ladder_job_rung_psnr_db{{{},rung=\"{dir}\",rung_name=\"{name}\"}} {} {}\n",
        labels("ladder-obs-lost", "small-obs", "running"),
        lost as i64 * 1000,
        labels("ladder-obs-slow", "slow", "running"),
        (t - 600.0) as i64 * 1000,
        labels("ladder-obs-last-week", "small-obs", "done"),
        psnr + 3.0,
        week as i64 * 1000,
    ));
    vm.wait_for("ladder_job_push_timestamp_seconds{job=\"ladder-obs-lost\"}[1h]");
}

fn every_alert_rule_parses_runs_and_fires_on_what_it_watches(vm: &VictoriaMetrics, runs: &Runs) {
    a_lost_pod_a_slow_preset_and_last_weeks_quality(vm, runs);
    let rule: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(common::repo("jobs/observability/vmrule.yaml")).unwrap())
            .unwrap();
    // What each alert fires for: its series' labels (but __name__), "k=v" joined.
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            let (name, expr) = (r["alert"].as_str().unwrap(), r["expr"].as_str().unwrap());
            vm.query_range(expr, 30);
            let result = vm.query(expr)["data"]["result"].as_array().unwrap().clone();
            let series: Vec<String> = result
                .iter()
                .map(|s| {
                    let labels = s["metric"].as_object().unwrap().iter().filter(|(k, _)| *k != "__name__");
                    labels.map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect::<Vec<_>>().join(",")
                })
                .collect();
            eprintln!("alert {name}: {series:?}");
            fired.insert(name.to_owned(), series);
        }
    }
    let fired = |name: &str| fired.get(name).unwrap_or_else(|| panic!("no alert {name}")).clone();
    // Three bad inputs among five runs.
    assert_eq!(fired("LadderJobsFailing"), ["tenant=acme"]);
    // A recording published two hours after it ended.
    assert_eq!(fired("LadderTimeToVODAboveSLO"), ["tenant=acme"]);
    // The slow preset; the runs above may join it on a busy machine (a debug build).
    assert!(fired("LadderSlowerThanRealtime").contains(&"preset=slow,tenant=acme".to_owned()));
    assert_eq!(fired("LadderRungPSNRDropped"), ["preset=small-obs,rung_name=240p"]);
    assert_eq!(fired("LadderJobPushesMissing"), ["job=ladder-obs-lost,shard=0,tenant=acme"]);
    // Jobs pushed: nothing is missing fleet-wide.
    assert!(fired("LadderNoJobMetrics").is_empty());
    // The quota refusal the dispatcher answered 503.
    assert_eq!(fired("LadderDispatchRefused"), ["reason=quota,tenant=acme"]);
    // vmalert (same package) parses the groups, templates included, as the operator would.
    let groups = common::media_dir().join("rules.json");
    std::fs::write(&groups, serde_json::to_string(&serde_json::json!({"groups": rule["spec"]["groups"]})).unwrap())
        .unwrap();
    let status = Command::new("vmalert")
        .arg("-dryRun")
        .arg(format!("-rule={}", groups.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "vmalert -dryRun refuses the rules");
}

/// An endpoint that refuses connections, and one that accepts and never answers: the run's
/// exit code is its own, and the exit is delayed by the final push's deadline at most.
#[test]
fn a_metrics_endpoint_that_is_down_changes_nothing_but_a_few_seconds() {
    let input = common::pattern("obs2.mp4", "320x240", "25", "2", &[]);
    let preset = common::repo("presets/small.toml");
    let dir = tempfile::tempdir().unwrap();
    let refused = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}/api/v1/import/prometheus")
    };
    let silent_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}/api/v1/import/prometheus", silent_listener.local_addr().unwrap());
    let timed = |url: &str, input: &Path, n: &str| {
        let out = dir.path().join(n);
        let started = Instant::now();
        let output = run_command(input, &out, &preset, url, "ladder-down", "2026-11-25T05:00:00Z").output().unwrap();
        (output.status.code(), started.elapsed().as_secs_f64())
    };
    let not_media = common::media_dir().join("down-notes.mp4");
    std::fs::write(&not_media, b"not a recording").unwrap();
    let mut figures = Vec::new();
    for (what, input, code) in [("a transcode", &input, 0), ("a bad input", &not_media, 3)] {
        // An output of its own per recording: another recording's output is refused (exit 2).
        let (base_code, baseline) = timed("", input, &format!("none-{code}"));
        let (refused_code, with_refused) = timed(&refused, input, &format!("refused-{code}"));
        let (silent_code, with_silent) = timed(&silent, input, &format!("silent-{code}"));
        assert_eq!((base_code, refused_code, silent_code), (Some(code), Some(code), Some(code)), "{what}");
        figures.push(format!(
            "{what} exits after {baseline:.2} s without metrics, {with_refused:.2} s with a refused endpoint, \
             {with_silent:.2} s with a silent one"
        ));
        // The final push's deadline is 4 s; the rest is the noise of a shared machine.
        assert!(with_refused - baseline < 2.5, "{what}, refused: {with_refused:.2} s against {baseline:.2} s");
        assert!(with_silent - baseline < 6.0, "{what}, silent: {with_silent:.2} s against {baseline:.2} s");
    }
    eprintln!("{}", figures.join("\n"));
}

/// A run that fails at once waits for the silent endpoint the final push's deadline, 4 s,
/// and not longer: what an unreachable endpoint can cost a Job's exit.
#[test]
fn a_silent_endpoint_costs_the_final_pushs_deadline() {
    let silent_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}/api/v1/import/prometheus", silent_listener.local_addr().unwrap());
    let not_media = common::media_dir().join("silent-notes.mp4");
    std::fs::write(&not_media, b"not a recording").unwrap();
    let out = tempfile::tempdir().unwrap();
    let preset = common::repo("presets/small.toml");
    let timed = |url: &str| {
        let started = Instant::now();
        let code = run_command(&not_media, out.path(), &preset, url, "ladder-silent", "2026-11-25T05:00:00Z")
            .output()
            .unwrap()
            .status
            .code();
        assert_eq!(code, Some(3));
        started.elapsed().as_secs_f64()
    };
    let baseline = timed("");
    let with_silent = timed(&silent);
    eprintln!("bad input exits after {baseline:.2} s without metrics, {with_silent:.2} s with a silent endpoint");
    let delay = with_silent - baseline;
    assert!((3.5..5.0).contains(&delay), "a silent endpoint delayed the exit by {delay:.2} s");
}
