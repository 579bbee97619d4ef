//! `jobs/`: the cluster side agrees with what the dispatcher builds. (Schema validation of
//! every manifest against the Kubernetes OpenAPI schema runs in CI:
//! `scripts/validate-manifests.sh`.)

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Node, PodSpec, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use ladder::dispatch::config::{DEFAULT_POOL_KEY, DEFAULT_POOL_VALUE, DEFAULT_PRIORITY_CLASS};
use ladder::dispatch::{DispatchConfig, RawConfig};
use serde::de::DeserializeOwned;

/// The example recording; `--config jobs/overlays/<overlay>/ladder.toml --dry-run` follows.
const EXAMPLE_ARGS: &[&str] = &[
    "dispatch",
    "s3://acme-recordings/rooms/standup/2026-11-25.mp4",
    "--out",
    "s3://acme-vod/rooms/standup/2026-11-25",
    "--tenant",
    "acme",
    "--preset",
    "small",
];
/// The example overlays, each with the Job `ladder dispatch` makes from its config.
const OVERLAYS: [&str; 2] = ["example", "example-kueue"];

fn read<T: DeserializeOwned>(path: &str) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read_all<T: DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_example_jobs_are_what_dispatch_prints() {
    for overlay in OVERLAYS {
        let mut cmd = Command::cargo_bin("ladder").unwrap();
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LADDER_") {
                cmd.env_remove(&key);
            }
        }
        let config = format!("jobs/overlays/{overlay}/ladder.toml");
        let out = cmd.args(EXAMPLE_ARGS).args(["--config", &config, "--dry-run"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8(out.stdout).unwrap();
        let path = format!("jobs/overlays/{overlay}/job.yaml");
        let checked_in = std::fs::read_to_string(&path).unwrap();
        let without_header: String =
            checked_in.lines().skip_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        assert!(without_header == printed, "{path} is out of date: run `make jobs-example`\n--- printed:\n{printed}");
    }
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
        let components = k["components"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap());
        for c in components {
            assert!(dir.join(c).join("kustomization.yaml").is_file(), "{}: component {c}", kustomization.display());
        }
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
    assert_eq!(
        checked, 10,
        "base, tenant, kueue and its tenant component, two example overlays and their tenants, observability and its alternative"
    );
}

fn example_pod(overlay: &str) -> PodSpec {
    let job: Job = read(&format!("jobs/overlays/{overlay}/job.yaml"));
    job.spec.unwrap().template.spec.unwrap()
}

/// The "restricted" Pod Security Standard's checks that a pod spec can fail.
fn assert_restricted(what: &str, pod: &PodSpec) {
    let psc = pod.security_context.clone().unwrap_or_default();
    assert!(pod.host_network != Some(true) && pod.host_pid != Some(true) && pod.host_ipc != Some(true), "{what}");
    for volume in pod.volumes.iter().flatten() {
        assert!(volume.host_path.is_none(), "{what}: hostPath volume {}", volume.name);
    }
    let pod_seccomp = psc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
    for c in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
        let sc = c.security_context.clone().unwrap_or_default();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}/{}", c.name);
        assert!(sc.privileged != Some(true), "{what}/{}", c.name);
        assert!(sc.run_as_non_root.or(psc.run_as_non_root) == Some(true), "{what}/{}: runAsNonRoot", c.name);
        assert!(sc.run_as_user.or(psc.run_as_user) != Some(0), "{what}/{}: runs as root", c.name);
        let seccomp = sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()).or(pod_seccomp);
        assert!(matches!(seccomp, Some("RuntimeDefault" | "Localhost")), "{what}/{}: seccomp", c.name);
        let caps = sc.capabilities.clone().unwrap_or_default();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]), "{what}/{}: drop ALL", c.name);
        assert!(caps.add.iter().flatten().all(|a| a == "NET_BIND_SERVICE"), "{what}/{}", c.name);
        assert!(c.ports.iter().flatten().all(|p| p.host_port.is_none()), "{what}/{}: hostPort", c.name);
    }
}

#[test]
fn namespaces_enforce_the_restricted_pod_security_standard_and_the_pods_meet_it() {
    for path in ["jobs/base/namespace.yaml", "jobs/tenant/namespace.yaml"] {
        let ns: Namespace = read(path);
        let labels = ns.metadata.labels.unwrap();
        for mode in ["enforce", "warn", "audit"] {
            assert_eq!(labels[&format!("pod-security.kubernetes.io/{mode}")], "restricted", "{path}: {mode}");
            let version = &labels[&format!("pod-security.kubernetes.io/{mode}-version")];
            assert!(version.starts_with("v1."), "{path}: {mode} is pinned to a version, not {version:?}");
        }
    }
    for overlay in OVERLAYS {
        assert_restricted(overlay, &example_pod(overlay));
    }
    let deployment: Deployment = read("jobs/base/dispatcher-deployment.yaml");
    assert_restricted("dispatcher", &deployment.spec.unwrap().template.spec.unwrap());
}

fn policies(path: &str) -> Vec<NetworkPolicy> {
    read_all(path)
}

fn port_numbers(ports: Option<&Vec<k8s_openapi::api::networking::v1::NetworkPolicyPort>>) -> Vec<(String, i32)> {
    ports
        .into_iter()
        .flatten()
        .map(|p| {
            let number = match p.port.as_ref().expect("a port, not all ports") {
                IntOrString::Int(n) => *n,
                IntOrString::String(name) => panic!("named port {name}: use the number"),
            };
            (p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()), number)
        })
        .collect()
}

#[test]
fn tenants_accept_nothing_and_reach_only_dns_and_https_off_the_metadata_service() {
    let all = policies("jobs/tenant/networkpolicy.yaml");
    let deny = all.iter().find(|p| p.metadata.name.as_deref() == Some("ladder-default-deny")).unwrap();
    let deny = deny.spec.as_ref().unwrap();
    assert_eq!(deny.pod_selector, Some(Default::default()), "every pod of the namespace");
    assert_eq!(deny.policy_types.as_deref(), Some(&["Ingress".to_owned(), "Egress".to_owned()][..]));
    assert!(deny.ingress.is_none() && deny.egress.is_none());
    assert!(all.iter().all(|p| p.spec.as_ref().unwrap().ingress.is_none()), "no policy lets anything in");

    // The egress policy selects the transcode pods as the dispatcher labels them.
    let egress = all.iter().find(|p| p.metadata.name.as_deref() == Some("ladder-transcode-egress")).unwrap();
    let spec = egress.spec.as_ref().unwrap();
    let pod_labels = {
        let job: Job = read("jobs/overlays/example/job.yaml");
        job.spec.unwrap().template.metadata.unwrap().labels.unwrap()
    };
    for (k, v) in spec.pod_selector.as_ref().unwrap().match_labels.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "the transcode pods carry {k}={v}");
    }
    let rules = spec.egress.as_ref().unwrap();
    assert_eq!(rules.len(), 2, "DNS and HTTPS, nothing else");
    let dns = &rules[0];
    assert_eq!(port_numbers(dns.ports.as_ref()), [("UDP".to_owned(), 53), ("TCP".to_owned(), 53)]);
    let peer: &NetworkPolicyPeer = &dns.to.as_ref().unwrap()[0];
    assert_eq!(peer.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap()["k8s-app"], "kube-dns");
    let https = &rules[1];
    assert_eq!(port_numbers(https.ports.as_ref()), [("TCP".to_owned(), 443)]);
    let blocks: Vec<_> = https.to.iter().flatten().map(|p| p.ip_block.clone().unwrap()).collect();
    assert!(
        blocks.iter().any(|b| b.cidr == "0.0.0.0/0" && b.except.iter().flatten().any(|e| e == "169.254.169.254/32")),
        "{blocks:?}"
    );
    assert!(blocks.iter().all(|b| !b.except.as_ref().unwrap().is_empty()), "every range excludes the metadata address");

    // What the example configs name must be reachable: an S3 endpoint is HTTPS on 443 here.
    for overlay in OVERLAYS {
        let raw = DispatchConfig::read_file(Path::new(&format!("jobs/overlays/{overlay}/ladder.toml"))).unwrap();
        let config = DispatchConfig::resolve(raw, RawConfig::default()).unwrap();
        if let Some(endpoint) = &config.s3_endpoint {
            let port = endpoint.rsplit_once(':').and_then(|(_, p)| p.trim_end_matches('/').parse().ok()).unwrap_or(443);
            assert_eq!(port, 443, "{overlay}: the S3 endpoint {endpoint} needs its own egress rule");
        }
    }
}

#[test]
fn the_dispatcher_namespace_accepts_webhooks_only_on_its_port() {
    let all = policies("jobs/base/networkpolicy.yaml");
    let deployment: Deployment = read("jobs/base/dispatcher-deployment.yaml");
    let template = deployment.spec.unwrap().template;
    let container_ports: Vec<i32> =
        template.spec.unwrap().containers[0].ports.iter().flatten().map(|p| p.container_port).collect();
    let deny = all.iter().find(|p| p.metadata.name.as_deref() == Some("ladder-default-deny-ingress")).unwrap();
    let deny = deny.spec.as_ref().unwrap();
    assert_eq!(deny.pod_selector, Some(Default::default()));
    assert!(deny.ingress.is_none());
    let allow = all.iter().find(|p| p.metadata.name.as_deref() == Some("ladder-dispatcher-webhooks")).unwrap();
    let allow = allow.spec.as_ref().unwrap();
    let pod_labels = template.metadata.unwrap().labels.unwrap();
    for (k, v) in allow.pod_selector.as_ref().unwrap().match_labels.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v));
    }
    let ingress = allow.ingress.as_ref().unwrap();
    assert_eq!(ingress.len(), 1);
    let ports = port_numbers(ingress[0].ports.as_ref());
    assert_eq!(ports, container_ports.iter().map(|p| ("TCP".to_owned(), *p)).collect::<Vec<_>>());
}

#[test]
fn the_dispatcher_stays_up_through_drains_and_node_loss() {
    let deployment: Deployment = read("jobs/base/dispatcher-deployment.yaml");
    let spec = deployment.spec.unwrap();
    let replicas = spec.replicas.unwrap();
    assert!(replicas >= 2);
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)), "an update never drops a ready replica first");
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    let pod = spec.template.spec.unwrap();

    let pdb: PodDisruptionBudget = read("jobs/base/dispatcher-pdb.yaml");
    let pdb = pdb.spec.unwrap();
    let min = match pdb.min_available.unwrap() {
        IntOrString::Int(n) => n,
        IntOrString::String(s) => panic!("minAvailable {s}: use a count"),
    };
    assert!(min >= 1 && min < replicas, "a drain may take one replica, never all ({min} of {replicas})");
    for (k, v) in pdb.selector.unwrap().match_labels.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "the budget selects the dispatcher's pods");
    }

    let spread = pod.topology_spread_constraints.unwrap();
    let by_node = spread.iter().find(|c| c.topology_key == "kubernetes.io/hostname").unwrap();
    assert_eq!((by_node.max_skew, by_node.when_unsatisfiable.as_str()), (1, "DoNotSchedule"), "never both on one node");
    assert!(spread.iter().any(|c| c.topology_key == "topology.kubernetes.io/zone"));

    let dispatcher: PriorityClass = read("jobs/base/dispatcher-priorityclass.yaml");
    let transcode: PriorityClass = read("jobs/base/priorityclass.yaml");
    assert_eq!(pod.priority_class_name.as_deref(), dispatcher.metadata.name.as_deref());
    assert!(dispatcher.value > transcode.value && dispatcher.value >= 0, "above the transcode Jobs and ordinary pods");
    assert_ne!(dispatcher.global_default, Some(true));
}
