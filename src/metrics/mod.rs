//! Job metrics: what a `ladder run` tells VictoriaMetrics (or any endpoint that imports the
//! Prometheus text format) about itself, at its end and every few minutes while it works.
//!
//! A Job exits, so nothing could scrape it: it pushes instead. [`job`] builds the metric set
//! of one push from the run's counters, its summary or its failure's exit class; [`push`]
//! sends it (a short timeout, a few retries, an overall deadline); [`Pusher`] owns the
//! thread that pushes periodically and makes the final push. A push that fails is logged,
//! never fatal: the run's exit code is the transcode's own, and an unreachable endpoint
//! delays the exit by at most [`push::Policy::FINAL`]'s deadline.
//!
//! The metric names, labels and meanings are in `docs/observability.md`.

pub(crate) mod job;
pub(crate) mod push;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;

use crate::exit::Outcome;
use crate::progress::Watch;
use crate::run::RunSummary;
pub(crate) use job::JobLabels;
pub(crate) use push::{Endpoint, PushError};

/// What a run needs to report its metrics.
#[derive(Debug, Clone)]
pub(crate) struct PushSettings {
    /// Where to push (`None`: nowhere; the run reports nothing).
    pub url: Option<String>,
    /// Time between pushes while the run works; zero: only the final push.
    pub interval: Duration,
    pub labels: JobLabels,
    /// How many shards the job has.
    pub shards: u32,
    /// When the recording ended: time-to-VOD is measured from it.
    pub recording_ended: Option<Timestamp>,
}

/// What every push of one run shares.
#[derive(Debug)]
struct Run {
    labels: JobLabels,
    /// Labels the endpoint sets itself (a Pushgateway's grouping key): left out of the body.
    omitted: Vec<String>,
    shards: u32,
    started: SystemTime,
    /// Process CPU seconds when the run started.
    cpu_at_start: f64,
    recording_ended: Option<Timestamp>,
    watch: Watch,
}

impl Run {
    fn push(&self) -> job::Push<'_> {
        job::Push {
            labels: &self.labels,
            omitted: &self.omitted,
            shards: self.shards,
            started: self.started,
            now: SystemTime::now(),
            cpu_seconds: crate::report::cpu_seconds() - self.cpu_at_start,
            recording_ended: self.recording_ended,
            counters: self.watch.counters(),
            outcome: job::RUNNING,
            summary: None,
        }
    }
}

/// Pushes a run's metrics: periodically on its own thread while the run works, and once
/// at the end ([`Pusher::finish`]). Without a URL it only hands out the [`Watch`].
pub(crate) struct Pusher {
    watch: Watch,
    running: Option<(Arc<Run>, push::Worker)>,
}

impl Pusher {
    /// Starts pushing (when `settings` has a URL). A URL that cannot be used is logged and
    /// ignored: metrics never stop a transcode.
    pub(crate) fn start(settings: PushSettings) -> Self {
        let watch = Watch::default();
        let Some(url) = settings.url.filter(|u| !u.trim().is_empty()) else {
            return Self { watch, running: None };
        };
        let endpoint = match Endpoint::parse(&url, &settings.labels) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "not pushing metrics");
                return Self { watch, running: None };
            }
        };
        let run = Arc::new(Run {
            omitted: endpoint.grouping_labels().to_vec(),
            labels: settings.labels,
            shards: settings.shards,
            started: SystemTime::now(),
            cpu_at_start: crate::report::cpu_seconds(),
            recording_ended: settings.recording_ended,
            watch: watch.clone(),
        });
        let snapshot = {
            let run = run.clone();
            move || run.push().encode()
        };
        match push::Worker::start(endpoint, settings.interval, snapshot) {
            Ok(worker) => Self { watch, running: Some((run, worker)) },
            Err(e) => {
                tracing::error!(error = %e, "not pushing metrics: cannot start the pushing thread");
                Self { watch, running: None }
            }
        }
    }

    /// The handle the run fills with its counters ([`crate::run::RunRequest::watch`]).
    pub(crate) fn watch(&self) -> Watch {
        self.watch.clone()
    }

    /// Makes the final push: the summary of a run that ended well, or the exit class of
    /// its failure. Returns when the push is done or its deadline has passed.
    pub(crate) fn finish(self, result: Result<&RunSummary, Outcome>) {
        let Some((run, worker)) = self.running else {
            return;
        };
        let outcome = match result {
            Ok(_) => Outcome::Done,
            Err(outcome) => outcome,
        };
        let mut push = run.push();
        push.outcome = job::outcome_label(outcome);
        push.summary = result.ok();
        worker.finish(push.encode());
    }
}
