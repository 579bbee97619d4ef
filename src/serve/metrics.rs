//! `serve`'s metrics for `/metrics`, in the Prometheus text format (0.0.4): webhook
//! requests by hook, tenant and outcome, verification failures by reason, Jobs by result,
//! the API server's refusals (a full quota, throttling) and request latency. The names and
//! labels are documented in `docs/observability.md`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::dispatch::DispatchError;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    hook: String,
    /// Empty while the request's tenant is unknown (refused before its body was parsed).
    tenant: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    hook: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    tenant: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    hook: String,
}

type Histograms = Family<HookLabels, Histogram, fn() -> Histogram>;

/// The dispatcher's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    verification_failures: Family<FailureLabels, Counter>,
    jobs: Family<TenantLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    latency: Histograms,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let events = Family::default();
        registry.register(
            "ladder_webhook_events",
            "Webhook requests by hook, tenant and outcome (created, existing, duplicate, ignored, unauthorized, replay, malformed, too_large, timeout, unknown_route, dispatch_failed)",
            events.clone(),
        );
        let verification_failures = Family::default();
        registry.register(
            "ladder_webhook_verification_failures",
            "Webhook requests that failed authentication, by hook and reason",
            verification_failures.clone(),
        );
        let jobs = Family::default();
        registry.register(
            "ladder_dispatch_jobs",
            "Jobs asked for, by tenant and result: created, existing (the API server had it), duplicate (dispatched recently, answered from memory), refused (for now: quota, throttling, API down), failed",
            jobs.clone(),
        );
        let refusals = Family::default();
        registry.register(
            "ladder_dispatch_refusals",
            "Jobs the API server refused for now, by tenant and reason (quota, throttled, server_error, unreachable); the sender got 503",
            refusals.clone(),
        );
        let latency: Histograms = Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 12)));
        registry.register(
            "ladder_webhook_request_duration_seconds",
            "Time to answer a webhook request, by hook (verification, parsing and creating the Jobs)",
            latency.clone(),
        );
        Self { registry, events, verification_failures, jobs, refusals, latency }
    }
}

impl Metrics {
    /// Counts one webhook request whose tenant is not known (refused before its body was
    /// parsed). `hook` is the last part of its path (`s3`, `livekit`, `generic`, …).
    pub fn event(&self, hook: &str, outcome: &'static str) {
        self.event_for(hook, "", outcome);
    }

    /// Counts one webhook request of `tenant`.
    pub fn event_for(&self, hook: &str, tenant: &str, outcome: &'static str) {
        self.events.get_or_create(&EventLabels { hook: hook.to_owned(), tenant: tenant.to_owned(), outcome }).inc();
    }

    /// Counts a request that failed authentication (`reason` from [`super::verify::VerifyError::reason`]).
    pub fn verification_failed(&self, hook: &str, reason: &'static str) {
        self.verification_failures.get_or_create(&FailureLabels { hook: hook.to_owned(), reason }).inc();
    }

    /// Counts one Job asked of the API server, or answered from memory.
    pub fn job(&self, tenant: &str, result: &'static str) {
        self.jobs.get_or_create(&TenantLabels { tenant: tenant.to_owned(), result }).inc();
    }

    /// Counts a failed Job creation: `refused` (with the reason) when it passes, else `failed`.
    pub fn job_failed(&self, tenant: &str, error: &DispatchError) {
        match refusal(error) {
            Some(reason) => {
                self.job(tenant, "refused");
                self.refusals.get_or_create(&RefusalLabels { tenant: tenant.to_owned(), reason }).inc();
            }
            None => self.job(tenant, "failed"),
        }
    }

    /// Records how long a request to `hook` took.
    pub fn observe(&self, hook: &str, seconds: f64) {
        self.latency.get_or_create(&HookLabels { hook: hook.to_owned() }).observe(seconds);
    }

    /// The value of one event counter (for tests and logs).
    pub fn events(&self, hook: &str, tenant: &str, outcome: &'static str) -> u64 {
        self.events.get_or_create(&EventLabels { hook: hook.to_owned(), tenant: tenant.to_owned(), outcome }).get()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Why the API server refused a Job for now, if it did: the cases the sender should retry.
fn refusal(error: &DispatchError) -> Option<&'static str> {
    match error {
        DispatchError::Api { code: 403, message, .. } if message.contains("exceeded quota") => Some("quota"),
        DispatchError::Api { code: 429, .. } => Some("throttled"),
        DispatchError::Api { code, .. } if *code >= 500 => Some("server_error"),
        DispatchError::Connect { .. } => Some("unreachable"),
        _ => None,
    }
}

/// The content type of [`Metrics::render`].
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_their_labels() {
        let m = Metrics::default();
        m.event_for("s3", "acme", "created");
        m.event("generic", "unauthorized");
        m.verification_failed("generic", "stale");
        m.job("acme", "created");
        let quota = DispatchError::Api {
            namespace: "ladder-acme".into(),
            name: "j".into(),
            code: 403,
            reason: "Forbidden".into(),
            message: "exceeded quota: ladder-quota".into(),
        };
        m.job_failed("acme", &quota);
        m.observe("s3", 0.012);
        let text = m.render();
        for line in [
            "ladder_webhook_events_total{hook=\"s3\",tenant=\"acme\",outcome=\"created\"} 1",
            "ladder_webhook_events_total{hook=\"generic\",tenant=\"\",outcome=\"unauthorized\"} 1",
            "ladder_webhook_verification_failures_total{hook=\"generic\",reason=\"stale\"} 1",
            "ladder_dispatch_jobs_total{tenant=\"acme\",result=\"created\"} 1",
            "ladder_dispatch_jobs_total{tenant=\"acme\",result=\"refused\"} 1",
            "ladder_dispatch_refusals_total{tenant=\"acme\",reason=\"quota\"} 1",
            "ladder_webhook_request_duration_seconds_bucket{hook=\"s3\",le=\"0.02\"} 1",
            "ladder_webhook_request_duration_seconds_count{hook=\"s3\"} 1",
            "# TYPE ladder_webhook_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
