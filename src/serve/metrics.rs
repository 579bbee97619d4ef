//! Counters for `/metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Webhook events by hook and outcome, and Jobs by result.
#[derive(Debug, Default)]
pub struct Metrics {
    events: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    jobs: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one webhook request: `hook` is `s3`, `livekit` or `generic`; `outcome` is
    /// `created`, `existing`, `duplicate`, `ignored`, `unauthorized`, `replay`, `malformed`,
    /// `too_large`, `timeout`, `unknown_route` or `dispatch_failed`.
    pub fn event(&self, hook: &'static str, outcome: &'static str) {
        *self.events.lock().expect("no panics while counting").entry((hook, outcome)).or_default() += 1;
    }

    /// Counts one Job: `created`, `existing` or `failed`.
    pub fn job(&self, result: &'static str) {
        *self.jobs.lock().expect("no panics while counting").entry(result).or_default() += 1;
    }

    /// The value of one event counter (for tests and logs).
    pub fn events(&self, hook: &str, outcome: &str) -> u64 {
        let events = self.events.lock().expect("no panics while counting");
        events.iter().filter(|((h, o), _)| *h == hook && *o == outcome).map(|(_, n)| *n).sum()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP ladder_webhook_events_total Webhook requests by hook and outcome.\n");
        out.push_str("# TYPE ladder_webhook_events_total counter\n");
        for ((hook, outcome), n) in self.events.lock().expect("no panics while counting").iter() {
            let _ = writeln!(out, "ladder_webhook_events_total{{hook=\"{hook}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP ladder_jobs_total Jobs asked of the API server, by result.\n");
        out.push_str("# TYPE ladder_jobs_total counter\n");
        let jobs = self.jobs.lock().expect("no panics while counting");
        for result in ["created", "existing", "failed"] {
            let _ =
                writeln!(out, "ladder_jobs_total{{result=\"{result}\"}} {}", jobs.get(result).copied().unwrap_or(0));
        }
        out
    }
}
