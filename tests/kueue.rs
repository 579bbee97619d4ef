//! Kueue mode (`jobs/kueue`, `docs/queueing.md`). Kueue's objects have no schema in the
//! Kubernetes OpenAPI document `scripts/validate-manifests.sh` checks against, so they are
//! parsed here into types written from Kueue's `kueue.x-k8s.io/v1beta1` API reference
//! (`ResourceFlavor`, `ClusterQueue`, `LocalQueue`; spec only, as a manifest has no
//! status), unknown fields and enum values rejected, the API's own validation rules
//! applied, and then checked against the Jobs the dispatcher makes.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
#![allow(dead_code, reason = "the types mirror Kueue's API: not every field is read")]

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use ladder::dispatch::job::KUEUE_QUEUE_LABEL;
use ladder::dispatch::{DispatchConfig, RawConfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const API_VERSION: &str = "kueue.x-k8s.io/v1beta1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectMeta {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A `resource.Quantity`: written as a string (`"64"`, `128Gi`, `500m`) or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Quantity {
    Text(String),
    Number(f64),
}

impl Quantity {
    /// The value in base units (cores, bytes).
    fn value(&self) -> f64 {
        match self {
            Self::Number(n) => *n,
            Self::Text(s) => parse_quantity(s).unwrap_or_else(|| panic!("{s:?} is not a quantity")),
        }
    }
}

fn parse_quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 11] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().filter(|v| *v >= 0.0).map(|v| v * factor);
        }
    }
    s.parse::<f64>().ok().filter(|v| *v >= 0.0)
}

// --- ResourceFlavor ---------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceFlavor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ResourceFlavorSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceFlavorSpec {
    #[serde(default)]
    node_labels: BTreeMap<String, String>,
    #[serde(default)]
    node_taints: Vec<Taint>,
    #[serde(default)]
    tolerations: Vec<Toleration>,
    topology_name: Option<String>,
}

/// `corev1.Taint`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Taint {
    key: String,
    value: Option<String>,
    effect: TaintEffect,
    time_added: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    fn as_str(self) -> &'static str {
        match self {
            Self::NoSchedule => "NoSchedule",
            Self::PreferNoSchedule => "PreferNoSchedule",
            Self::NoExecute => "NoExecute",
        }
    }
}

/// `corev1.Toleration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Toleration {
    key: Option<String>,
    operator: Option<String>,
    value: Option<String>,
    effect: Option<TaintEffect>,
    toleration_seconds: Option<i64>,
}

// --- ClusterQueue -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterQueue {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ClusterQueueSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterQueueSpec {
    #[serde(default)]
    resource_groups: Vec<ResourceGroup>,
    cohort: Option<String>,
    queueing_strategy: Option<QueueingStrategy>,
    namespace_selector: Option<LabelSelector>,
    flavor_fungibility: Option<FlavorFungibility>,
    preemption: Option<ClusterQueuePreemption>,
    #[serde(default)]
    admission_checks: Vec<String>,
    admission_checks_strategy: Option<AdmissionChecksStrategy>,
    stop_policy: Option<StopPolicy>,
    fair_sharing: Option<FairSharing>,
    admission_scope: Option<AdmissionScope>,
    #[serde(default)]
    exclude_resource_prefixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceGroup {
    covered_resources: Vec<String>,
    flavors: Vec<FlavorQuotas>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FlavorQuotas {
    name: String,
    resources: Vec<ResourceQuota>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceQuota {
    name: String,
    nominal_quota: Quantity,
    borrowing_limit: Option<Quantity>,
    lending_limit: Option<Quantity>,
}

#[derive(Debug, Deserialize)]
enum QueueingStrategy {
    StrictFIFO,
    BestEffortFIFO,
}

#[derive(Debug, Deserialize)]
enum StopPolicy {
    None,
    Hold,
    HoldAndDrain,
}

/// `metav1.LabelSelector`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelSelectorRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

impl LabelSelector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => !value.is_some_and(|v| e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    other => panic!("unknown selector operator {other}"),
                }
            })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FlavorFungibility {
    when_can_borrow: Option<FlavorFungibilityPolicy>,
    when_can_preempt: Option<FlavorFungibilityPolicy>,
}

#[derive(Debug, Deserialize)]
enum FlavorFungibilityPolicy {
    Borrow,
    Preempt,
    MayStopSearch,
    TryNextFlavor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterQueuePreemption {
    reclaim_within_cohort: Option<PreemptionPolicy>,
    borrow_within_cohort: Option<BorrowWithinCohort>,
    within_cluster_queue: Option<PreemptionPolicy>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
enum PreemptionPolicy {
    Never,
    Any,
    LowerPriority,
    LowerOrNewerEqualPriority,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BorrowWithinCohort {
    policy: Option<BorrowWithinCohortPolicy>,
    max_priority_threshold: Option<i32>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
enum BorrowWithinCohortPolicy {
    Never,
    LowerPriority,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AdmissionChecksStrategy {
    #[serde(default)]
    admission_checks: Vec<AdmissionCheckStrategyRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AdmissionCheckStrategyRule {
    name: String,
    #[serde(default)]
    on_flavors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FairSharing {
    weight: Option<Quantity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AdmissionScope {
    admission_mode: AdmissionMode,
}

#[derive(Debug, Deserialize)]
enum AdmissionMode {
    UsageBasedAdmissionFairSharing,
    NoAdmissionFairSharing,
}

// --- LocalQueue -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LocalQueue {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: LocalQueueSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LocalQueueSpec {
    cluster_queue: String,
    stop_policy: Option<StopPolicy>,
    fair_sharing: Option<FairSharing>,
}

// --- Reading and the API's own rules ------------------------------------------------------

/// Every document of a file, as `T`.
fn read_all<T: DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(ladder::dispatch::config::is_dns_label)
}

/// What every Kueue object has.
trait Object: DeserializeOwned {
    const KIND: &'static str;
    fn header(&self) -> (&str, &str, &ObjectMeta);
}

macro_rules! object {
    ($type:ty) => {
        impl Object for $type {
            const KIND: &'static str = stringify!($type);
            fn header(&self) -> (&str, &str, &ObjectMeta) {
                (&self.api_version, &self.kind, &self.metadata)
            }
        }
    };
}
object!(ResourceFlavor);
object!(ClusterQueue);
object!(LocalQueue);

/// Every object of a file, of the kind and API version `T` is, with valid names; cluster-
/// scoped kinds have no namespace, the LocalQueue has one.
fn read_objects<T: Object>(path: &str) -> Vec<T> {
    let objects: Vec<T> = read_all(path);
    for o in &objects {
        let (api_version, kind, meta) = o.header();
        assert_eq!((api_version, kind), (API_VERSION, T::KIND), "{path}");
        assert!(is_dns_subdomain(&meta.name), "{path}: name {:?}", meta.name);
        assert!(meta.annotations.keys().chain(meta.labels.keys()).all(|k| !k.is_empty()), "{path}");
        assert_eq!(meta.namespace.is_some(), T::KIND == "LocalQueue", "{path}: {} {}", T::KIND, meta.name);
    }
    objects
}

fn flavors() -> Vec<ResourceFlavor> {
    let path = "jobs/kueue/resourceflavor.yaml";
    let flavors: Vec<ResourceFlavor> = read_objects(path);
    for f in &flavors {
        let spec = &f.spec;
        assert!(spec.node_labels.len() <= 8 && spec.node_taints.len() <= 8 && spec.tolerations.len() <= 8);
        assert!(spec.topology_name.is_none() || !spec.node_labels.is_empty(), "a topology needs node labels");
        for t in &spec.node_taints {
            assert!(!t.key.is_empty() && t.time_added.is_none(), "{path}: {t:?}");
        }
        for t in &spec.tolerations {
            let operator = t.operator.as_deref().unwrap_or("Equal");
            assert!(matches!(operator, "Equal" | "Exists"), "{path}: {t:?}");
            assert!(t.key.is_some() || operator == "Exists", "{path}: no key needs Exists: {t:?}");
            assert!(operator != "Exists" || t.value.is_none(), "{path}: Exists takes no value: {t:?}");
            assert!(t.toleration_seconds.is_none() || t.effect == Some(TaintEffect::NoExecute), "{path}: {t:?}");
        }
    }
    flavors
}

fn cluster_queues() -> Vec<ClusterQueue> {
    let queues: Vec<ClusterQueue> = read_objects("jobs/kueue/clusterqueues.yaml");
    for q in &queues {
        let spec = &q.spec;
        let name = &q.metadata.name;
        assert!(spec.resource_groups.len() <= 16, "{name}");
        assert!(spec.admission_checks.is_empty() || spec.admission_checks_strategy.is_none(), "{name}");
        assert!(spec.exclude_resource_prefixes.len() <= 64, "{name}");
        for group in &spec.resource_groups {
            assert!((1..=64).contains(&group.covered_resources.len()), "{name}");
            assert!((1..=64).contains(&group.flavors.len()), "{name}");
            for flavor in &group.flavors {
                // "flavors must have the same number of resources as the coveredResources",
                // in the same order.
                let listed: Vec<&str> = flavor.resources.iter().map(|r| r.name.as_str()).collect();
                assert_eq!(listed, group.covered_resources, "{name}: flavor {}", flavor.name);
                for r in &flavor.resources {
                    r.nominal_quota.value();
                    // "borrowingLimit must be nil when cohort is empty" (lendingLimit too).
                    if spec.cohort.is_none() {
                        assert!(r.borrowing_limit.is_none() && r.lending_limit.is_none(), "{name}: {r:?}");
                    }
                    if let Some(lend) = &r.lending_limit {
                        assert!(lend.value() <= r.nominal_quota.value(), "{name}: lends more than it has: {r:?}");
                    }
                }
            }
        }
        if let Some(p) = &spec.preemption {
            let reclaim_never = p.reclaim_within_cohort.as_ref().is_none_or(|r| *r == PreemptionPolicy::Never);
            let borrow_preempts = p
                .borrow_within_cohort
                .as_ref()
                .and_then(|b| b.policy.as_ref())
                .is_some_and(|b| *b != BorrowWithinCohortPolicy::Never);
            assert!(
                !(reclaim_never && borrow_preempts),
                "{name}: reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never"
            );
        }
    }
    queues
}

fn local_queues() -> Vec<LocalQueue> {
    read_objects("jobs/kueue/tenant/localqueue.yaml")
}

fn example_config() -> DispatchConfig {
    let raw = DispatchConfig::read_file(Path::new("jobs/overlays/example-kueue/ladder.toml")).unwrap();
    DispatchConfig::resolve(raw, RawConfig::default()).unwrap()
}

fn example_job() -> Job {
    let text = std::fs::read_to_string("jobs/overlays/example-kueue/job.yaml").unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

#[test]
fn every_kueue_object_parses_into_the_v1beta1_types() {
    assert_eq!(flavors().len(), 1);
    assert!(cluster_queues().len() >= 2, "a ClusterQueue per tier");
    assert_eq!(local_queues().len(), 1);
}

#[test]
fn a_misspelt_field_or_value_is_refused() {
    let good = std::fs::read_to_string("jobs/kueue/tenant/localqueue.yaml").unwrap();
    assert!(serde_saphyr::from_str::<LocalQueue>(&good).is_ok());
    let misspelt = good.replace("clusterQueue:", "clusterQeue:");
    let err = serde_saphyr::from_str::<LocalQueue>(&misspelt).unwrap_err().to_string();
    assert!(err.contains("clusterQeue"), "{err}");
    let cq = std::fs::read_to_string("jobs/kueue/clusterqueues.yaml").unwrap();
    for (from, to) in [
        ("nominalQuota:", "nominalQuotas:"),
        ("queueingStrategy: BestEffortFIFO", "queueingStrategy: BestEffortFifo"),
        ("cohort:", "cohorts:"),
    ] {
        let bad = cq.replacen(from, to, 1);
        assert!(serde_saphyr::from_multiple::<ClusterQueue>(&bad).is_err(), "{from} → {to} must not parse");
    }
}

#[test]
fn the_flavor_is_the_tainted_transcode_pool_the_jobs_tolerate() {
    let config = example_config();
    let flavor = &flavors()[0];
    assert_eq!(flavor.spec.node_labels, config.node_selector, "the flavor's nodes are the Job's node affinity");
    let taint = &flavor.spec.node_taints[0];
    assert_eq!(
        (taint.key.as_str(), taint.value.as_deref(), taint.effect),
        (config.taint_key.as_str(), Some(config.taint_value.as_str()), TaintEffect::NoSchedule)
    );
    // Kueue assigns a flavor only to pods that tolerate its taints.
    let pod = example_job().spec.unwrap().template.spec.unwrap();
    for taint in &flavor.spec.node_taints {
        let tolerated = pod.tolerations.iter().flatten().any(|t| {
            t.key.as_deref() == Some(taint.key.as_str())
                && t.value.as_deref() == taint.value.as_deref()
                && t.effect.as_deref().is_none_or(|e| e == taint.effect.as_str())
        });
        assert!(tolerated, "the Job does not tolerate {taint:?}");
    }
    let added = &flavor.spec.tolerations[0];
    assert_eq!((added.key.as_deref(), added.value.as_deref()), (Some(taint.key.as_str()), taint.value.as_deref()));
}

#[test]
fn every_tier_covers_what_a_job_requests_and_shares_one_cohort() {
    let flavor_names: Vec<String> = flavors().into_iter().map(|f| f.metadata.name).collect();
    let queues = cluster_queues();
    let cohort = queues[0].spec.cohort.clone().expect("the tiers borrow from each other through a cohort");
    let job = example_job();
    let requests = job.spec.unwrap().template.spec.unwrap().containers[0].resources.clone().unwrap().requests.unwrap();
    for q in &queues {
        assert_eq!(q.spec.cohort.as_ref(), Some(&cohort), "{}", q.metadata.name);
        assert!(q.spec.namespace_selector.is_some(), "{}: a null selector admits no namespace", q.metadata.name);
        let group = &q.spec.resource_groups[0];
        // Kueue cannot admit a workload asking for a resource its ClusterQueue does not cover.
        for resource in requests.keys() {
            assert!(group.covered_resources.contains(resource), "{}: {resource} not covered", q.metadata.name);
        }
        for flavor in &group.flavors {
            assert!(flavor_names.contains(&flavor.name), "{}: no ResourceFlavor {}", q.metadata.name, flavor.name);
        }
    }
}

#[test]
fn the_largest_preset_fits_every_tier() {
    let mut largest = BTreeMap::<&str, f64>::new();
    for name in ladder::preset::builtin_names() {
        let p = ladder::preset::resolve(name, None).unwrap();
        for (resource, quantity) in
            [("cpu", &p.resources.cpu), ("memory", &p.resources.memory), ("ephemeral-storage", &p.resources.scratch)]
        {
            let value = parse_quantity(quantity).unwrap();
            let entry = largest.entry(resource).or_default();
            *entry = entry.max(value);
        }
    }
    for q in cluster_queues() {
        for flavor in &q.spec.resource_groups[0].flavors {
            for r in &flavor.resources {
                let need = largest[r.name.as_str()];
                assert!(
                    r.nominal_quota.value() >= need,
                    "{}: {} quota {:?} is below the largest preset's {need}: such a Job would wait forever",
                    q.metadata.name,
                    r.name,
                    r.nominal_quota
                );
            }
        }
    }
}

#[test]
fn the_tenant_template_lands_in_the_standard_tier_through_its_local_queue() {
    let template: Namespace =
        serde_saphyr::from_str(&std::fs::read_to_string("jobs/tenant/namespace.yaml").unwrap()).unwrap();
    let labels = template.metadata.labels.unwrap();
    let queues = cluster_queues();
    let selecting: Vec<&str> = queues
        .iter()
        .filter(|q| q.spec.namespace_selector.as_ref().unwrap().matches(&labels))
        .map(|q| q.metadata.name.as_str())
        .collect();
    let local = &local_queues()[0];
    assert_eq!(
        selecting,
        [local.spec.cluster_queue.as_str()],
        "exactly the LocalQueue's ClusterQueue admits the tenant"
    );
    assert_eq!(
        local.metadata.namespace.as_deref(),
        Some("ladder-tenant"),
        "the template's namespace, renamed per tenant"
    );
    assert_eq!(example_config().queue_for("acme"), Some(local.metadata.name.as_str()));
}

#[test]
fn the_example_job_waits_suspended_in_the_tenants_queue() {
    let job = example_job();
    let local = &local_queues()[0];
    assert_eq!(job.metadata.labels.unwrap()[KUEUE_QUEUE_LABEL], local.metadata.name);
    let spec = job.spec.unwrap();
    assert_eq!(spec.suspend, Some(true), "created suspended: no pod before Kueue admits it");
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
}
