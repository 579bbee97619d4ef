//! `jobs/`: the cluster side agrees with what the dispatcher builds. (Schema validation of
//! every manifest against the Kubernetes OpenAPI schema runs in CI:
//! `scripts/validate-manifests.sh`.)

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{LimitRange, Node, ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use ladder::dispatch::config::{DEFAULT_POOL_KEY, DEFAULT_POOL_VALUE, DEFAULT_PRIORITY_CLASS};
use ladder::dispatch::{DispatchConfig, RawConfig};
use serde::de::DeserializeOwned;

const EXAMPLE_ARGS: &[&str] = &[
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
    "--dry-run",
];

fn read<T: DeserializeOwned>(path: &str) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read_all<T: DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_example_job_is_what_dispatch_prints() {
    let mut cmd = Command::cargo_bin("ladder").unwrap();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LADDER_") {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.args(EXAMPLE_ARGS).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string("jobs/overlays/example/job.yaml").unwrap();
    let without_header: String =
        checked_in.lines().skip_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert!(
        without_header == printed,
        "jobs/overlays/example/job.yaml is out of date: run `make jobs-example`\n--- printed:\n{printed}"
    );
}

#[test]
fn the_priority_class_is_low_and_never_preempts() {
    let pc: PriorityClass = read("jobs/base/priorityclass.yaml");
    assert_eq!(pc.metadata.name.as_deref(), Some(DEFAULT_PRIORITY_CLASS));
    assert_eq!(pc.preemption_policy.as_deref(), Some("Never"));
    assert!(pc.value < 0, "below ordinary pods");
    assert!(pc.value >= -10, "not expendable to the cluster autoscaler, or the pool never scales up");
    assert_ne!(pc.global_default, Some(true));
}

#[test]
fn the_dispatcher_may_only_create_and_watch_jobs_in_tenant_namespaces() {
    let role: Role = read("jobs/tenant/dispatcher-role.yaml");
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].api_groups.as_deref(), Some(&["batch".to_owned()][..]));
    assert_eq!(rules[0].resources.as_deref(), Some(&["jobs".to_owned()][..]));
    let mut verbs = rules[0].verbs.clone();
    verbs.sort();
    assert_eq!(verbs, ["create", "get", "list", "watch"]);

    let binding: RoleBinding = read("jobs/tenant/dispatcher-rolebinding.yaml");
    assert_eq!(binding.role_ref.kind, "Role", "a Role in the tenant namespace, never a ClusterRole");
    let sa: ServiceAccount = read("jobs/base/dispatcher-serviceaccount.yaml");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(subject.name, sa.metadata.name.unwrap());
    assert_eq!(subject.namespace, sa.metadata.namespace);
    let deployment: Deployment = read("jobs/base/dispatcher-deployment.yaml");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ladder-dispatcher"));
}

#[test]
fn the_tenant_quota_counts_transcode_pods_by_priority_class() {
    let quotas: Vec<ResourceQuota> = read_all("jobs/tenant/resourcequota.yaml");
    let scoped =
        quotas.iter().find_map(|q| q.spec.as_ref()?.scope_selector.as_ref()).expect("a quota with a scopeSelector");
    let expr = &scoped.match_expressions.as_ref().unwrap()[0];
    assert_eq!((expr.scope_name.as_str(), expr.operator.as_str()), ("PriorityClass", "In"));
    assert_eq!(expr.values.as_deref(), Some(&[DEFAULT_PRIORITY_CLASS.to_owned()][..]));
    assert!(quotas.iter().any(|q| q.spec.as_ref().unwrap().hard.as_ref().unwrap().contains_key("count/jobs.batch")));
    let limits: LimitRange = read("jobs/tenant/limitrange.yaml");
    let max = limits.spec.unwrap().limits[0].max.clone().unwrap();
    // Every shipped preset must fit under the ceiling.
    for name in ladder::preset::builtin_names() {
        let p = ladder::preset::resolve(name, None).unwrap();
        let cpu: f64 = p.resources.cpu.parse().unwrap();
        assert!(
            cpu <= max["cpu"].0.parse::<f64>().unwrap(),
            "preset {name} asks for more CPU than the LimitRange allows"
        );
    }
}

#[test]
fn the_transcode_service_account_has_no_token() {
    let sa: ServiceAccount = read("jobs/tenant/transcode-serviceaccount.yaml");
    let config = DispatchConfig::resolve(RawConfig::default(), RawConfig::default()).unwrap();
    assert_eq!(sa.metadata.name.as_deref(), Some(config.service_account.as_str()));
    assert_eq!(sa.automount_service_account_token, Some(false));
}

#[test]
fn the_dispatcher_runs_locked_down_with_probes() {
    let deployment: Deployment = read("jobs/base/dispatcher-deployment.yaml");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());
    let res = c.resources.as_ref().unwrap();
    assert!(res.requests.is_some() && res.limits.is_some());
    // Secrets only by reference.
    for var in c.env.as_ref().unwrap() {
        if var.name.contains("SECRET") || var.name.contains("TOKEN") || var.name.contains("KEY") {
            assert!(var.value.is_none() && var.value_from.is_some(), "{} must come from a Secret", var.name);
        }
    }
}

/// Both scrape configs select the dispatcher's Service by its labels and name its port.
#[test]
fn the_scrapes_find_the_dispatchers_metrics() {
    let service: k8s_openapi::api::core::v1::Service = read("jobs/base/dispatcher-service.yaml");
    let labels = service.metadata.labels.unwrap();
    let ports: Vec<String> = service.spec.unwrap().ports.unwrap().into_iter().filter_map(|p| p.name).collect();
    for path in
        ["jobs/observability/vmservicescrape.yaml", "jobs/observability/prometheus-operator/servicemonitor.yaml"]
    {
        let scrape: serde_json::Value = read(path);
        assert_eq!(scrape["metadata"]["namespace"], service.metadata.namespace.as_deref().unwrap(), "{path}");
        for (k, v) in scrape["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(labels.get(k).map(String::as_str), v.as_str(), "{path}: label {k}");
        }
        let endpoint = &scrape["spec"]["endpoints"][0];
        assert!(ports.iter().any(|p| endpoint["port"] == p.as_str()), "{path}: port {}", endpoint["port"]);
        assert_eq!(endpoint["path"], "/metrics", "{path}");
    }
}

#[test]
fn the_example_config_and_node_pool_match_the_defaults() {
    let raw = DispatchConfig::read_file(Path::new("jobs/overlays/example/ladder.toml")).unwrap();
    let config = DispatchConfig::resolve(raw, RawConfig::default()).unwrap();
    assert_eq!((config.taint_key.as_str(), config.taint_value.as_str()), (DEFAULT_POOL_KEY, DEFAULT_POOL_VALUE));
    let node: Node = read("jobs/examples/node-pool-taint.yaml");
    let taint = &node.spec.unwrap().taints.unwrap()[0];
    assert_eq!(
        (taint.key.as_str(), taint.value.as_deref(), taint.effect.as_str()),
        (DEFAULT_POOL_KEY, Some(DEFAULT_POOL_VALUE), "NoSchedule")
    );
    assert_eq!(node.metadata.labels.unwrap()[DEFAULT_POOL_KEY], DEFAULT_POOL_VALUE);
}

/// Every kustomization names files that exist, and every manifest beside one is named.
#[test]
fn kustomizations_list_exactly_their_manifests() {
    let mut dirs = vec![PathBuf::from("jobs")];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        let kustomization = dir.join("kustomization.yaml");
        let entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        dirs.extend(entries.iter().filter(|p| p.is_dir()).cloned());
        if !kustomization.exists() {
            continue;
        }
        checked += 1;
        let k: serde_json::Value = read(kustomization.to_str().unwrap());
        let resources: Vec<String> =
            k["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
        for r in &resources {
            let target = dir.join(r);
            assert!(
                target.is_file() || target.join("kustomization.yaml").is_file(),
                "{}: resource {r} does not exist",
                kustomization.display()
            );
        }
        for file in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let name = file.file_name().unwrap().to_str().unwrap();
            // The example Job is checked in to be read and diffed, not applied.
            if name == "kustomization.yaml" || name == "job.yaml" {
                continue;
            }
            assert!(resources.iter().any(|r| r == name), "{}: {name} is not listed", kustomization.display());
        }
    }
    assert_eq!(checked, 6, "base, tenant, the example overlay and its tenant, observability and its alternative");
}
