//! `ladder dispatch`: the Job it prints, and what it does against an API server (a fake
//! speaking the real REST paths and Status objects).

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod dispatch_fake;

use std::process::Output;

use assert_cmd::Command;
use dispatch_fake::{Ending, FakeApi};
use k8s_openapi::api::batch::v1::Job;

/// The example inputs with the example dispatcher config; `jobs/overlays/example/job.yaml`
/// is what they print (`tests/jobs.rs`).
pub const EXAMPLE: &[&str] = &[
    "dispatch",
    "s3://acme-recordings/rooms/standup/2026-11-25.mp4",
    "--out",
    "s3://acme-vod/rooms/standup/2026-11-25",
    "--tenant",
    "acme",
    "--preset",
    "small",
    "--config",
    "jobs/overlays/example/ladder.toml",
];

fn ladder() -> Command {
    let mut cmd = Command::cargo_bin("ladder").unwrap();
    // Nothing from the developer's or CI's environment may change the Job.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LADDER_") || key == "KUBERNETES_SERVICE_HOST" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("HOME", "/nonexistent").env_remove("KUBECONFIG");
    cmd
}

fn dry_run(args: &[&str]) -> String {
    let out = ladder().args(args).arg("--dry-run").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn parse(yaml: &str) -> Job {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn dry_run_prints_the_whole_contract() {
    let job = parse(&dry_run(EXAMPLE));
    let meta = &job.metadata;
    let name = meta.name.as_deref().unwrap();
    assert!(name.starts_with("ladder-") && name.len() <= 63, "{name}");
    assert_eq!(meta.namespace.as_deref(), Some("ladder-acme"));
    let labels = meta.labels.as_ref().unwrap();
    for key in ["name", "instance", "component", "part-of", "managed-by"] {
        assert!(labels.contains_key(&format!("app.kubernetes.io/{key}")), "missing app.kubernetes.io/{key}");
    }
    assert_eq!(labels["ladder.dev/tenant"], "acme");

    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
    assert!(spec.backoff_limit.is_some() && spec.active_deadline_seconds.is_some());
    assert!(spec.ttl_seconds_after_finished.is_some());
    assert_eq!(spec.completions, Some(1));
    let rules = &spec.pod_failure_policy.as_ref().unwrap().rules;
    let ignore = rules.iter().find(|r| r.action == "Ignore").unwrap();
    let cond = &ignore.on_pod_conditions.as_ref().unwrap()[0];
    assert_eq!((cond.type_.as_str(), cond.status.as_str()), ("DisruptionTarget", "True"));
    let fail = rules.iter().find(|r| r.action == "FailJob").unwrap();
    let codes = fail.on_exit_codes.as_ref().unwrap();
    assert_eq!(codes.operator, "In");
    assert!(codes.values.contains(&3), "bad input (exit 3) must fail the Job at once");
    assert_eq!(codes.container_name.as_deref(), Some("ladder"));

    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("ladder-batch"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let tol = &pod.tolerations.as_ref().unwrap()[0];
    assert_eq!(
        (tol.key.as_deref(), tol.value.as_deref(), tol.effect.as_deref()),
        (Some("ladder.dev/pool"), Some("transcode"), Some("NoSchedule"))
    );
    let affinity = pod.affinity.as_ref().unwrap().node_affinity.as_ref().unwrap();
    let term = &affinity.required_during_scheduling_ignored_during_execution.as_ref().unwrap().node_selector_terms[0];
    let expr = &term.match_expressions.as_ref().unwrap()[0];
    assert_eq!((expr.key.as_str(), expr.operator.as_str()), ("ladder.dev/pool", "In"));
    assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));

    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example.com/ladder:0.1.0"));
    let args = c.args.as_ref().unwrap();
    assert_eq!(
        args,
        &[
            "run",
            "--out=s3://acme-vod/rooms/standup/2026-11-25",
            "--preset=small",
            "--",
            "s3://acme-recordings/rooms/standup/2026-11-25.mp4"
        ]
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    // Resources come from the preset (`small`: 2 CPUs, 1 GiB, 10 GiB of scratch).
    let res = c.resources.as_ref().unwrap();
    let requests = res.requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "2");
    assert_eq!(requests["memory"].0, "1Gi");
    assert_eq!(res.limits.as_ref().unwrap()["memory"].0, "1Gi");
    let volume = &pod.volumes.as_ref().unwrap()[0];
    let empty_dir = volume.empty_dir.as_ref().unwrap();
    assert_eq!(empty_dir.size_limit.as_ref().unwrap().0, "10Gi");
    assert_eq!(c.volume_mounts.as_ref().unwrap()[0].name, volume.name);
    // Credentials only by reference: a Secret's name, never a value.
    let env_from = c.env_from.as_ref().unwrap();
    assert_eq!(env_from[0].secret_ref.as_ref().unwrap().name, "ladder-storage");
    for var in c.env.as_ref().unwrap() {
        // Only the pod's own fields (its Job's name) come from elsewhere.
        assert!(var.value_from.as_ref().is_none_or(|v| v.field_ref.is_some() && v.secret_key_ref.is_none()));
        assert!(!var.name.contains("SECRET") && !var.name.contains("KEY"), "{}", var.name);
    }
}

/// Its metrics' labels, where to push them, and when the recording ended: time-to-VOD.
#[test]
fn the_job_carries_what_its_metrics_need() {
    let env = |args: &[&str]| -> Vec<(String, String)> {
        let job = parse(&dry_run(args));
        let c = job.spec.unwrap().template.spec.unwrap().containers[0].clone();
        c.env
            .unwrap()
            .into_iter()
            .map(|e| {
                let value = match e.value_from {
                    Some(from) => format!("fieldRef {}", from.field_ref.unwrap().field_path),
                    None => e.value.unwrap(),
                };
                (e.name, value)
            })
            .filter(|(name, _)| ["TENANT", "JOB_NAME", "METRICS", "RECORDING"].iter().any(|k| name.contains(k)))
            .collect()
    };
    let mut args = EXAMPLE.to_vec();
    args.extend(["--recording-ended", "2026-11-25T06:00:00+01:00"]);
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    assert_eq!(
        env(&args),
        pairs(&[
            ("LADDER_TENANT", "acme"),
            ("LADDER_JOB_NAME", "fieldRef metadata.labels['batch.kubernetes.io/job-name']"),
            ("LADDER_METRICS_URL", "http://victoria-metrics.monitoring:8428/api/v1/import/prometheus"),
            ("LADDER_RECORDING_ENDED", "2026-11-25T05:00:00Z"),
        ])
    );
    // No push URL configured, no recording end: only the labels.
    let mut defaults = EXAMPLE.to_vec();
    defaults.truncate(EXAMPLE.len() - 2);
    let names: Vec<String> = env(&defaults).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["LADDER_TENANT", "LADDER_JOB_NAME"]);
    // A time that is not RFC 3339 is a usage error.
    let out = ladder().args(EXAMPLE).args(["--recording-ended", "yesterday", "--dry-run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dry_run_job_snapshot() {
    insta::assert_snapshot!(dry_run(EXAMPLE));
}

#[test]
fn shards_make_an_indexed_job() {
    let mut args = EXAMPLE.to_vec();
    args.extend(["--shards", "4"]);
    let job = parse(&dry_run(&args));
    let spec = job.spec.unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
    let env = spec.template.spec.unwrap().containers[0].env.clone().unwrap();
    assert!(env.iter().any(|e| e.name == "LADDER_SHARDS" && e.value.as_deref() == Some("4")));
}

#[test]
fn subtitle_files_reach_the_run_and_name_another_job() {
    let mut args = EXAMPLE.to_vec();
    args.extend(["--subtitles", "ger=s3://acme-rec/talk.de.srt", "--subtitles", "en=s3://acme-rec/talk.en.vtt"]);
    let job = parse(&dry_run(&args));
    let run = job.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap();
    let flags: Vec<&str> = run.iter().map(String::as_str).filter(|a| a.starts_with("--subtitles")).collect();
    assert_eq!(flags, ["--subtitles=de=s3://acme-rec/talk.de.srt", "--subtitles=en=s3://acme-rec/talk.en.vtt"]);
    let dashes = run.iter().position(|a| a == "--").unwrap();
    assert!(run.iter().position(|a| a.starts_with("--subtitles")).unwrap() < dashes, "{run:?}");
    assert_ne!(job.metadata.name, parse(&dry_run(EXAMPLE)).metadata.name);
    args.extend(["--subtitles", "english=x.vtt"]);
    ladder().args(&args).arg("--dry-run").assert().code(2).stderr(predicates::str::contains("english"));
}

#[test]
fn plain_quota_mode_starts_jobs_at_once() {
    let job = parse(&dry_run(EXAMPLE));
    assert!(!job.metadata.labels.unwrap().contains_key("kueue.x-k8s.io/queue-name"));
    assert_eq!(job.spec.unwrap().suspend, None);
}

#[test]
fn kueue_mode_creates_the_job_suspended_in_the_queue() {
    let mut args = EXAMPLE.to_vec();
    args.extend(["--queue", "ladder"]);
    let job = parse(&dry_run(&args));
    assert_eq!(job.metadata.labels.as_ref().unwrap()["kueue.x-k8s.io/queue-name"], "ladder");
    assert!(!job.metadata.annotations.as_ref().unwrap().contains_key("kueue.x-k8s.io/job-min-parallelism"));
    assert_eq!(job.spec.as_ref().unwrap().suspend, Some(true));
    // The queue changes when the Job runs, never which Job it is.
    assert_eq!(job.metadata.name, parse(&dry_run(EXAMPLE)).metadata.name);

    // A sharded Job may be admitted with fewer pods than shards when the quota is tight;
    // the remaining indexes run as those finish.
    args.extend(["--shards", "4"]);
    let job = parse(&dry_run(&args));
    assert_eq!(job.metadata.annotations.as_ref().unwrap()["kueue.x-k8s.io/job-min-parallelism"], "1");
    let spec = job.spec.unwrap();
    assert_eq!((spec.suspend, spec.completion_mode.as_deref()), (Some(true), Some("Indexed")));
    assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
    let pod_annotations = spec.template.metadata.unwrap().annotations.unwrap();
    assert!(!pod_annotations.contains_key("kueue.x-k8s.io/job-min-parallelism"), "a Job annotation only");
}

#[test]
fn node_consolidation_leaves_running_transcodes_alone() {
    let job = parse(&dry_run(EXAMPLE));
    let spec = job.spec.unwrap();
    let annotations = spec.template.metadata.unwrap().annotations.unwrap();
    assert_eq!(annotations["karpenter.sh/do-not-disrupt"], "true");
    assert_eq!(annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"], "false");
    // Preemption by priority still evicts them: that is a DisruptionTarget, which costs no
    // retry, and the next pod resumes from the chunk records.
    let ignore = spec.pod_failure_policy.unwrap().rules.into_iter().find(|r| r.action == "Ignore").unwrap();
    assert_eq!(ignore.on_pod_conditions.unwrap()[0].type_, "DisruptionTarget");
}

#[test]
fn the_name_follows_tenant_input_and_preset_only() {
    let name = |job: Job| job.metadata.name.unwrap();
    let base = name(parse(&dry_run(EXAMPLE)));
    let mut other_out = EXAMPLE.to_vec();
    other_out[3] = "s3://elsewhere/x";
    assert_eq!(name(parse(&dry_run(&other_out))), base, "the output does not name the Job");
    let mut other_tenant = EXAMPLE.to_vec();
    other_tenant[5] = "globex";
    assert_ne!(name(parse(&dry_run(&other_tenant))), base);
    let mut other_preset = EXAMPLE.to_vec();
    other_preset[7] = "default";
    assert_ne!(name(parse(&dry_run(&other_preset))), base);
}

#[test]
fn config_file_env_and_flags_resolve_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ladder.toml");
    std::fs::write(
        &config,
        "image = \"from-file:1\"\npriority_class = \"from-file\"\nnamespace_pattern = \"vod-{tenant}\"\n[pool]\ntaint_key = \"pool\"\ntaint_value = \"spot\"\n",
    )
    .unwrap();
    let out = ladder()
        .args(&EXAMPLE[..8])
        .args(["--dry-run", "--config"])
        .arg(&config)
        .env("LADDER_PRIORITY_CLASS", "from-env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job = parse(&String::from_utf8(out.stdout).unwrap());
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(job.metadata.namespace.as_deref(), Some("vod-acme"));
    assert_eq!(pod.containers[0].image.as_deref(), Some("from-file:1"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("from-env"));
    assert_eq!(pod.tolerations.unwrap()[0].value.as_deref(), Some("spot"));

    let out = ladder()
        .args(&EXAMPLE[..8])
        .args(["--dry-run", "--priority-class", "from-flag", "--config"])
        .arg(&config)
        .env("LADDER_PRIORITY_CLASS", "from-env")
        .output()
        .unwrap();
    let job = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(job.spec.unwrap().template.spec.unwrap().priority_class_name.as_deref(), Some("from-flag"));
}

#[test]
fn bad_requests_are_usage_errors() {
    let mut bad_tenant = EXAMPLE.to_vec();
    bad_tenant[5] = "Acme Corp";
    ladder().args(&bad_tenant).arg("--dry-run").assert().code(2).stderr(predicates::str::contains("tenant"));
    ladder()
        .args(["dispatch", "--out", "x", "--tenant", "a", "--dry-run", "--", "--preset=evil"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("starts with '-'"));
    let mut bad_config = EXAMPLE.to_vec();
    bad_config.extend(["--namespace-pattern", "no-tenant-here"]);
    ladder().args(&bad_config).arg("--dry-run").assert().code(2).stderr(predicates::str::contains("{tenant}"));
}

fn against(fake: &FakeApi, dir: &tempfile::TempDir, extra: &[&str]) -> Output {
    ladder().args(EXAMPLE).args(extra).env("KUBECONFIG", fake.kubeconfig(dir.path())).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn creates_the_job_then_reports_the_existing_one() {
    let fake = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let first = against(&fake, &dir, &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).starts_with("created job ladder-acme/ladder-"), "{}", text(&first.stdout));
    let jobs = fake.jobs();
    assert_eq!(jobs.len(), 1);
    let expected: serde_json::Value = serde_json::to_value(parse(&dry_run(EXAMPLE))).unwrap();
    assert_eq!(jobs[0]["spec"], expected["spec"], "the created Job is the one --dry-run prints");

    let again = against(&fake, &dir, &["--json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(answer["outcome"], "existing");
    assert_eq!(answer["name"], jobs[0]["metadata"]["name"]);
    assert_eq!(fake.jobs().len(), 1, "a repeat creates nothing new");
    assert_eq!(fake.creates(), 2);
}

#[test]
fn a_full_quota_is_transient() {
    let fake = FakeApi::start();
    fake.fill_quota("ladder-acme", true);
    let dir = tempfile::tempdir().unwrap();
    let out = against(&fake, &dir, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("403") && err.contains("exceeded quota") && err.contains("ResourceQuota"), "{err}");
    assert!(fake.jobs().is_empty());
}

#[test]
fn a_missing_namespace_says_to_onboard_the_tenant() {
    let fake = FakeApi::start();
    fake.namespaces(&["ladder-globex"]);
    let dir = tempfile::tempdir().unwrap();
    let out = against(&fake, &dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("onboard the tenant"), "{}", text(&out.stderr));
}

#[test]
fn an_unreachable_api_server_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::start();
    let kubeconfig = fake.kubeconfig(dir.path());
    drop(fake);
    let out = ladder()
        .args(EXAMPLE)
        .env("KUBECONFIG", kubeconfig)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

#[test]
fn wait_watches_to_complete() {
    let fake = FakeApi::start();
    fake.end_jobs_with(Ending::Complete);
    let dir = tempfile::tempdir().unwrap();
    let out = against(&fake, &dir, &["--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created job") && stdout.trim_end().ends_with("complete"), "{stdout}");
    assert!(fake.watches() >= 2, "the client watches again when the server ends a watch");
}

#[test]
fn wait_reports_why_a_job_failed() {
    let fake = FakeApi::start();
    fake.end_jobs_with(Ending::Failed {
        reason: "PodFailurePolicy".into(),
        message: "Container ladder for pod ladder-acme/x failed with exit code 3 matching FailJob rule at index 1"
            .into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = against(&fake, &dir, &["--wait"]);
    assert_eq!(out.status.code(), Some(3), "bad input stays bad: {}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("failed (PodFailurePolicy)") && err.contains("exit code 3"), "{err}");

    let fake = FakeApi::start();
    fake.end_jobs_with(Ending::Failed {
        reason: "BackoffLimitExceeded".into(),
        message: "Job has reached the specified backoff limit".into(),
    });
    let out = against(&fake, &dir, &["--wait"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("BackoffLimitExceeded"));
}
