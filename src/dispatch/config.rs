//! Dispatcher configuration, resolved in one place: built-in defaults, then the config file
//! (TOML), then flags and their environment fallbacks (clap gives both as one value).
//! Secret values never pass through here: the Job refers to a Secret by name, and the
//! webhook secrets are read from the environment by [`crate::serve`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DispatchError;

/// The config file, as written. Every field is optional; see [`DispatchConfig`] for the
/// defaults and meaning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub priority_class: Option<String>,
    pub namespace_pattern: Option<String>,
    pub service_account: Option<String>,
    pub storage_secret: Option<String>,
    pub s3_endpoint: Option<String>,
    pub default_preset: Option<String>,
    pub backoff_limit: Option<i32>,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    pub termination_grace_seconds: Option<i64>,
    pub metrics_url: Option<String>,
    pub pool: Option<RawPool>,
    /// Kueue LocalQueue (in each tenant namespace) for every tenant without its own.
    pub queue: Option<String>,
    /// SNS topics whose deliveries `/hooks/sns` accepts (and whose subscriptions it confirms).
    #[serde(default)]
    pub sns_topics: Vec<String>,
    /// Tenant name → where its webhook-triggered outputs go.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantRoute>,
    /// Input bucket → tenant name.
    #[serde(default)]
    pub buckets: BTreeMap<String, String>,
}

/// The transcode node pool, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub taint_key: Option<String>,
    pub taint_value: Option<String>,
    pub node_selector: Option<BTreeMap<String, String>>,
}

/// Where a tenant's webhook-triggered work goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRoute {
    /// Output location template: `{tenant}`, `{bucket}`, `{key}` and `{stem}` (the key
    /// without its extension) are replaced, e.g. `s3://acme-vod/{stem}`.
    pub output: String,
    /// Preset for this tenant's events; the dispatcher's default when absent.
    pub preset: Option<String>,
    /// Kueue LocalQueue in the tenant's namespace; the dispatcher-wide `queue` when absent.
    #[serde(default)]
    pub queue: Option<String>,
}

/// Validated dispatcher settings: what [`super::build_job`] and `serve` trust.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchConfig {
    /// The ladder image the Job runs (pin a digest in production).
    pub image: String,
    pub image_pull_policy: String,
    /// A low, non-preempting PriorityClass (`jobs/base/priorityclass.yaml`).
    pub priority_class: String,
    /// Namespace of a tenant's Jobs; `{tenant}` is replaced.
    pub namespace_pattern: String,
    /// The Job pods' ServiceAccount in the tenant namespace (e.g. bound to a cloud role).
    pub service_account: String,
    /// A Secret in the tenant namespace whose keys become the Job's environment (S3 keys).
    pub storage_secret: Option<String>,
    /// S3 endpoint for MinIO-style servers, passed to the Job as `LADDER_S3_ENDPOINT`.
    pub s3_endpoint: Option<String>,
    pub default_preset: String,
    pub backoff_limit: i32,
    pub active_deadline_seconds: i64,
    pub ttl_seconds_after_finished: i32,
    pub termination_grace_seconds: i64,
    /// Where the Jobs push their metrics, passed to the Job as `LADDER_METRICS_URL`.
    pub metrics_url: Option<String>,
    /// Taint of the transcode pool, tolerated with effect `NoSchedule`.
    pub taint_key: String,
    pub taint_value: String,
    /// Node labels the Job's pods require (node affinity).
    pub node_selector: BTreeMap<String, String>,
    /// Kueue mode: the LocalQueue of tenants that name none. Without any queue, Jobs start
    /// at once and a full ResourceQuota refuses them (plain-quota mode, `docs/queueing.md`).
    pub queue: Option<String>,
    /// SNS topic ARNs `/hooks/sns` accepts.
    pub sns_topics: Vec<String>,
    pub tenants: BTreeMap<String, TenantRoute>,
    pub buckets: BTreeMap<String, String>,
}

/// The pool label and taint that `jobs/` and `docs/node-pool.md` use.
pub const DEFAULT_POOL_KEY: &str = "ladder.dev/pool";
/// The value of [`DEFAULT_POOL_KEY`] on transcode nodes.
pub const DEFAULT_POOL_VALUE: &str = "transcode";
/// The PriorityClass in `jobs/base/priorityclass.yaml`.
pub const DEFAULT_PRIORITY_CLASS: &str = "ladder-batch";

impl DispatchConfig {
    /// Resolves the layers: `file` over the defaults, then `overrides` (flags and env) over both.
    pub fn resolve(file: RawConfig, overrides: RawConfig) -> Result<Self, DispatchError> {
        let pick = |a: Option<String>, b: Option<String>, default: &str| a.or(b).unwrap_or_else(|| default.to_owned());
        let pool = overrides.pool.clone().unwrap_or_default();
        let file_pool = file.pool.clone().unwrap_or_default();
        let taint_key = pick(pool.taint_key, file_pool.taint_key, DEFAULT_POOL_KEY);
        let taint_value = pick(pool.taint_value, file_pool.taint_value, DEFAULT_POOL_VALUE);
        let node_selector = pool
            .node_selector
            .or(file_pool.node_selector)
            .unwrap_or_else(|| BTreeMap::from([(taint_key.clone(), taint_value.clone())]));
        let mut tenants = file.tenants;
        tenants.extend(overrides.tenants);
        let mut buckets = file.buckets;
        buckets.extend(overrides.buckets);
        let mut sns_topics = file.sns_topics;
        sns_topics.extend(overrides.sns_topics);
        let config = Self {
            image: pick(overrides.image, file.image, concat!("ladder:", env!("CARGO_PKG_VERSION"))),
            image_pull_policy: pick(overrides.image_pull_policy, file.image_pull_policy, "IfNotPresent"),
            priority_class: pick(overrides.priority_class, file.priority_class, DEFAULT_PRIORITY_CLASS),
            namespace_pattern: pick(overrides.namespace_pattern, file.namespace_pattern, "ladder-{tenant}"),
            service_account: pick(overrides.service_account, file.service_account, "ladder-transcode"),
            storage_secret: overrides.storage_secret.or(file.storage_secret).filter(|s| !s.is_empty()),
            s3_endpoint: overrides.s3_endpoint.or(file.s3_endpoint).filter(|s| !s.is_empty()),
            default_preset: pick(overrides.default_preset, file.default_preset, crate::preset::DEFAULT),
            backoff_limit: overrides.backoff_limit.or(file.backoff_limit).unwrap_or(4),
            active_deadline_seconds: overrides
                .active_deadline_seconds
                .or(file.active_deadline_seconds)
                .unwrap_or(6 * 3600),
            ttl_seconds_after_finished: overrides
                .ttl_seconds_after_finished
                .or(file.ttl_seconds_after_finished)
                .unwrap_or(24 * 3600),
            termination_grace_seconds: overrides
                .termination_grace_seconds
                .or(file.termination_grace_seconds)
                .unwrap_or(60),
            metrics_url: overrides.metrics_url.or(file.metrics_url).filter(|s| !s.is_empty()),
            taint_key,
            taint_value,
            node_selector,
            queue: overrides.queue.or(file.queue).filter(|q| !q.is_empty()),
            sns_topics,
            tenants,
            buckets,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads a config file.
    pub fn read_file(path: &Path) -> Result<RawConfig, DispatchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| DispatchError::ConfigRead { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| DispatchError::Config {
            message: format!("{}: {}", path.display(), e.message().trim()),
            fix: "see the example in jobs/overlays/example/ladder.toml".into(),
        })
    }

    fn validate(&self) -> Result<(), DispatchError> {
        let bad = |message: String, fix: &str| Err(DispatchError::Config { message, fix: fix.to_owned() });
        if !self.namespace_pattern.contains("{tenant}") {
            return bad(
                format!("namespace pattern {:?} does not contain {{tenant}}", self.namespace_pattern),
                "use e.g. \"ladder-{tenant}\" so each tenant gets its own namespace",
            );
        }
        for (name, value) in [("priority class", &self.priority_class), ("service account", &self.service_account)] {
            if !is_dns_subdomain(value) {
                return bad(
                    format!("{name} {value:?} is not a valid Kubernetes name"),
                    "use lower-case letters, digits, '-' and '.'",
                );
            }
        }
        if !matches!(self.image_pull_policy.as_str(), "Always" | "IfNotPresent" | "Never") {
            return bad(
                format!("image pull policy {:?} is unknown", self.image_pull_policy),
                "use Always, IfNotPresent or Never",
            );
        }
        if self.backoff_limit < 0 || self.active_deadline_seconds <= 0 || self.ttl_seconds_after_finished < 0 {
            return bad(
                format!(
                    "backoff_limit {}, active_deadline_seconds {} and ttl_seconds_after_finished {} must not be negative (the deadline must be positive)",
                    self.backoff_limit, self.active_deadline_seconds, self.ttl_seconds_after_finished
                ),
                "fix the numbers in the config file or flags",
            );
        }
        if let Some(url) = &self.metrics_url {
            crate::metrics::Endpoint::parse(url, &crate::metrics::JobLabels::default())
                .map_err(|e| DispatchError::Config { message: e.to_string(), fix: "use http://host:port/path, e.g. http://victoria-metrics.monitoring:8428/api/v1/import/prometheus".into() })?;
        }
        for queue in self.queue.iter().chain(self.tenants.values().filter_map(|t| t.queue.as_ref())) {
            // The name is a label value on the Job as well as the LocalQueue's name.
            if !is_dns_subdomain(queue) || queue.len() > 63 {
                return bad(
                    format!("queue {queue:?} is not a valid LocalQueue name"),
                    "use lower-case letters, digits, '-' and '.', at most 63 characters (the LocalQueue in jobs/kueue/tenant is \"ladder\")",
                );
            }
        }
        for topic in &self.sns_topics {
            let parts: Vec<&str> = topic.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts.iter().any(|p| p.is_empty()) {
                return bad(
                    format!("SNS topic {topic:?} is not a topic ARN"),
                    "use the topic's ARN, e.g. \"arn:aws:sns:eu-west-1:123456789012:recordings\"",
                );
            }
        }
        for (tenant, route) in &self.tenants {
            self.namespace(tenant)?;
            if route.output.is_empty() {
                return bad(
                    format!("tenant {tenant:?} has an empty output template"),
                    "set output = \"s3://bucket/{stem}\"",
                );
            }
        }
        for (bucket, tenant) in &self.buckets {
            if !self.tenants.contains_key(tenant) {
                return bad(
                    format!("bucket {bucket:?} maps to tenant {tenant:?}, which has no [tenants.{tenant}] entry"),
                    "add the tenant with its output template, or fix the mapping",
                );
            }
        }
        Ok(())
    }

    /// The Kueue LocalQueue a tenant's Jobs go to, if any: its own, else the dispatcher's.
    pub fn queue_for(&self, tenant: &str) -> Option<&str> {
        self.tenants.get(tenant).and_then(|t| t.queue.as_deref()).or(self.queue.as_deref())
    }

    /// The namespace of a tenant's Jobs; fails if the tenant cannot make a valid namespace.
    pub fn namespace(&self, tenant: &str) -> Result<String, DispatchError> {
        if !is_dns_label(tenant) {
            return Err(DispatchError::Tenant {
                tenant: tenant.to_owned(),
                why: "must be lower-case letters, digits and '-', starting and ending with a letter or digit".into(),
            });
        }
        let namespace = self.namespace_pattern.replace("{tenant}", tenant);
        if !is_dns_label(&namespace) {
            return Err(DispatchError::Tenant {
                tenant: tenant.to_owned(),
                why: format!("namespace {namespace:?} would not be a valid namespace name (at most 63 characters)"),
            });
        }
        Ok(namespace)
    }
}

/// RFC 1123 label: what namespaces and label-like names must be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let file: RawConfig = toml::from_str(
            r#"
            image = "registry.example/ladder:1"
            priority_class = "file-class"
            [pool]
            taint_key = "pool"
            taint_value = "cheap"
            "#,
        )
        .unwrap();
        let flags = RawConfig { priority_class: Some("flag-class".into()), ..RawConfig::default() };
        let c = DispatchConfig::resolve(file, flags).unwrap();
        assert_eq!(c.image, "registry.example/ladder:1");
        assert_eq!(c.priority_class, "flag-class");
        assert_eq!(c.node_selector, BTreeMap::from([("pool".to_owned(), "cheap".to_owned())]));
        assert_eq!(c.namespace_pattern, "ladder-{tenant}");
        assert_eq!(c.backoff_limit, 4);
    }

    #[test]
    fn bad_settings_say_how_to_fix_them() {
        let raw = RawConfig { namespace_pattern: Some("ladder".into()), ..RawConfig::default() };
        let err = DispatchConfig::resolve(raw, RawConfig::default()).unwrap_err().to_string();
        assert!(err.contains("{tenant}"), "{err}");
        let raw = RawConfig { buckets: BTreeMap::from([("b".into(), "ghost".into())]), ..RawConfig::default() };
        let err = DispatchConfig::resolve(raw, RawConfig::default()).unwrap_err().to_string();
        assert!(err.contains("[tenants.ghost]"), "{err}");
        let raw =
            RawConfig { metrics_url: Some("https://vm:8428/api/v1/import/prometheus".into()), ..RawConfig::default() };
        let err = DispatchConfig::resolve(raw, RawConfig::default()).unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        let unknown = toml::from_str::<RawConfig>("imagee = \"x\"").unwrap_err().to_string();
        assert!(unknown.contains("imagee"), "{unknown}");
    }

    #[test]
    fn a_tenants_own_queue_beats_the_dispatchers() {
        let file: RawConfig = toml::from_str(
            r#"
            queue = "ladder"
            sns_topics = ["arn:aws:sns:eu-west-1:123456789012:recordings"]
            [tenants.acme]
            output = "s3://acme-vod/{stem}"
            queue = "ladder-premium"
            [tenants.globex]
            output = "s3://globex-vod/{stem}"
            "#,
        )
        .unwrap();
        let c = DispatchConfig::resolve(file, RawConfig::default()).unwrap();
        assert_eq!(c.queue_for("acme"), Some("ladder-premium"));
        assert_eq!(c.queue_for("globex"), Some("ladder"));
        assert_eq!(c.queue_for("unconfigured"), Some("ladder"));
        let plain = DispatchConfig::resolve(RawConfig::default(), RawConfig::default()).unwrap();
        assert_eq!(plain.queue_for("acme"), None, "no queue: plain-quota mode");
        for bad in [
            RawConfig { queue: Some("Not A Queue".into()), ..RawConfig::default() },
            RawConfig { sns_topics: vec!["recordings".into()], ..RawConfig::default() },
        ] {
            let err = DispatchConfig::resolve(bad, RawConfig::default()).unwrap_err().to_string();
            assert!(err.contains("queue") || err.contains("SNS"), "{err}");
        }
    }

    #[test]
    fn tenants_must_make_valid_namespaces() {
        let c = DispatchConfig::resolve(RawConfig::default(), RawConfig::default()).unwrap();
        assert_eq!(c.namespace("acme").unwrap(), "ladder-acme");
        assert!(c.namespace("Acme").is_err());
        assert!(c.namespace("a/b").is_err());
        assert!(c.namespace(&"a".repeat(60)).is_err());
    }
}
