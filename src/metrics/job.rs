//! The metric set of one push, in the Prometheus text format (0.0.4). Every value is a
//! gauge: a push states what this run of a Job measured, and series differ by their labels
//! (tenant, preset, job, shard, outcome), so queries take the last value of each series
//! over a window (`last_over_time`) and aggregate across series.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::exit::Outcome;
use crate::progress::Counters;
use crate::run::RunSummary;

/// The `outcome` of the pushes made while a run works.
pub(crate) const RUNNING: &str = "running";

/// Every metric a Job pushes, with its help text: `(name, extra labels, help)`. Each also
/// has the labels of [`JobLabels`] and `outcome`.
pub(crate) const METRICS: &[(&str, &str, &str)] = &[
    ("ladder_job_push_timestamp_seconds", "", "When this push was made (Unix seconds); every push has it."),
    ("ladder_job_start_timestamp_seconds", "", "When the run started (Unix seconds)."),
    ("ladder_job_wall_seconds", "", "Wall seconds the run has taken so far."),
    ("ladder_job_cpu_seconds", "", "CPU seconds (user + system, every thread) the run has used so far."),
    ("ladder_job_shards", "", "How many shards the Job has."),
    ("ladder_job_media_seconds", "", "Duration of the recording's output (the plan's), once planned."),
    (
        "ladder_job_encoded_media_seconds",
        "",
        "Media seconds this process encoded (reused chunks and other shards' excluded): while running, the slowest rung's frames; at the end, the chunks it stored.",
    ),
    ("ladder_job_speed_ratio", "", "Encoded media seconds per wall second (× realtime)."),
    ("ladder_job_progress_ratio", "", "Share of the recording's frames done (reused chunks included), 0 to 1."),
    ("ladder_job_chunks_encoded", "", "Chunks this process encoded and stored."),
    (
        "ladder_job_chunks_reused",
        "",
        "Chunks found finished by an earlier run (after a preemption) and not encoded again.",
    ),
    ("ladder_job_input_bytes", "", "Size of the input recording."),
    (
        "ladder_job_input_bytes_read",
        "",
        "Bytes of an S3 input this process fetched, reading it in place (absent when it was fetched whole or is local).",
    ),
    ("ladder_job_published", "", "1 when this process published the master playlist, else 0."),
    ("ladder_job_recording_ended_timestamp_seconds", "", "When the recording ended (Unix seconds), when known."),
    (
        "ladder_job_time_to_vod_seconds",
        "",
        "Seconds from the recording's end to the publication of its master playlist.",
    ),
    (
        "ladder_job_stage_seconds",
        "stage",
        "Wall seconds of a stage (fetch, probe, plan, encoder setup, encode, assemble).",
    ),
    ("ladder_job_stage_cpu_seconds", "stage", "CPU seconds of the process during a stage."),
    ("ladder_job_rung_bytes", "rung, rung_name", "Bytes of a video rung's media segments."),
    ("ladder_job_rung_average_bitrate_bps", "rung, rung_name", "Measured average bitrate of a rung, bit/s."),
    ("ladder_job_rung_peak_bitrate_bps", "rung, rung_name", "Measured peak segment bitrate of a rung, bit/s."),
    ("ladder_job_rung_target_bitrate_bps", "rung, rung_name", "The preset's target average bitrate of a rung, bit/s."),
    ("ladder_job_rung_maxrate_bps", "rung, rung_name", "The preset's peak bitrate (maxrate) of a rung, bit/s."),
    (
        "ladder_job_rung_psnr_db",
        "rung, rung_name",
        "PSNR of a rung against the source (Y, U, V weighted 4:1:1), dB; with --quality.",
    ),
    ("ladder_job_rung_ssim", "rung, rung_name", "SSIM of a rung against the source (all planes); with --quality."),
];

/// The labels every series of a Job has (besides `outcome`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobLabels {
    pub tenant: String,
    /// The preset's name.
    pub preset: String,
    /// The Kubernetes Job's name; empty for a run outside Kubernetes.
    pub job: String,
    /// This process's shard index (`0` for a job that is not sharded).
    pub shard: String,
}

impl JobLabels {
    /// `(name, value)` pairs in a fixed order.
    pub(crate) fn pairs(&self) -> [(&'static str, &str); 4] {
        [("tenant", &self.tenant), ("preset", &self.preset), ("job", &self.job), ("shard", &self.shard)]
    }
}

/// The exit class as the `outcome` label says it.
pub(crate) fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "done",
        Outcome::Usage => "usage",
        Outcome::BadInput => "bad_input",
        Outcome::Transient => "transient",
        Outcome::Interrupted => "interrupted",
    }
}

/// What one push says.
#[derive(Debug, Clone)]
pub(crate) struct Push<'a> {
    pub labels: &'a JobLabels,
    /// Label names left out of the body (the endpoint's grouping key sets them).
    pub omitted: &'a [String],
    pub shards: u32,
    pub started: SystemTime,
    pub now: SystemTime,
    /// Process CPU seconds since the run started.
    pub cpu_seconds: f64,
    pub recording_ended: Option<Timestamp>,
    /// The run's counters, once it has planned.
    pub counters: Option<&'a Counters>,
    /// [`RUNNING`] or an exit class from [`outcome_label`].
    pub outcome: &'static str,
    /// The run's summary, when it ended well.
    pub summary: Option<&'a RunSummary>,
}

impl Push<'_> {
    /// The push's body in the Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut set = MetricSet::new(self);
        let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let now = unix(self.now);
        set.gauge("ladder_job_push_timestamp_seconds", &[], now);
        set.gauge("ladder_job_start_timestamp_seconds", &[], unix(self.started));
        set.gauge("ladder_job_shards", &[], f64::from(self.shards));
        let wall = self
            .summary
            .map_or_else(|| self.now.duration_since(self.started).map_or(0.0, |d| d.as_secs_f64()), |s| s.wall_seconds);
        set.gauge("ladder_job_wall_seconds", &[], wall);
        set.gauge("ladder_job_cpu_seconds", &[], self.summary.map_or(self.cpu_seconds, |s| s.cpu_seconds));
        if let Some(ended) = self.recording_ended {
            set.gauge("ladder_job_recording_ended_timestamp_seconds", &[], seconds(ended));
        }
        if let Some(c) = self.counters {
            let fps = c.fps.max(1e-9);
            set.gauge("ladder_job_media_seconds", &[], c.duration_seconds);
            let encoded_frames = if self.outcome == RUNNING {
                c.slowest_rung_frames().saturating_sub(c.reused_frames)
            } else {
                c.frames_stored.load(Ordering::Relaxed)
            };
            let encoded = encoded_frames as f64 / fps;
            set.gauge("ladder_job_encoded_media_seconds", &[], encoded);
            set.gauge("ladder_job_speed_ratio", &[], encoded / wall.max(1e-9));
            let progress = c.slowest_rung_frames() as f64 / c.total_frames.max(1) as f64;
            set.gauge("ladder_job_progress_ratio", &[], progress.min(1.0));
            set.gauge("ladder_job_chunks_encoded", &[], c.chunks_stored.load(Ordering::Relaxed) as f64);
        }
        if let Some(s) = self.summary {
            self.summary_metrics(&mut set, s, now);
        }
        set.encode()
    }

    fn summary_metrics(&self, set: &mut MetricSet, s: &RunSummary, now: f64) {
        set.gauge("ladder_job_chunks_encoded", &[], s.chunks_encoded.len() as f64);
        set.gauge("ladder_job_chunks_reused", &[], s.chunks_reused.len() as f64);
        set.gauge("ladder_job_input_bytes", &[], s.input_bytes as f64);
        if let Some(bytes) = s.input_bytes_read {
            set.gauge("ladder_job_input_bytes_read", &[], bytes as f64);
        }
        set.gauge("ladder_job_published", &[], if s.published.is_some() { 1.0 } else { 0.0 });
        if s.published.is_some()
            && let Some(ended) = self.recording_ended
        {
            set.gauge("ladder_job_time_to_vod_seconds", &[], now - seconds(ended));
        }
        for stage in &s.stages {
            set.gauge("ladder_job_stage_seconds", &[("stage", stage.name)], stage.wall_seconds);
            set.gauge("ladder_job_stage_cpu_seconds", &[("stage", stage.name)], stage.cpu_seconds);
        }
        for r in &s.rungs {
            let rung: &[(&str, &str)] = &[("rung", &r.dir), ("rung_name", &r.name)];
            set.gauge("ladder_job_rung_bytes", rung, r.bytes as f64);
            set.gauge("ladder_job_rung_average_bitrate_bps", rung, r.average_kbps * 1000.0);
            set.gauge("ladder_job_rung_peak_bitrate_bps", rung, r.peak_kbps * 1000.0);
            set.gauge("ladder_job_rung_target_bitrate_bps", rung, f64::from(r.target_kbps) * 1000.0);
            set.gauge("ladder_job_rung_maxrate_bps", rung, f64::from(r.maxrate_kbps) * 1000.0);
            if let Some(psnr) = r.psnr_db {
                set.gauge("ladder_job_rung_psnr_db", rung, psnr);
            }
            if let Some(ssim) = r.ssim {
                set.gauge("ladder_job_rung_ssim", rung, ssim);
            }
        }
    }
}

fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

type Labels = Vec<(String, String)>;

/// The gauges of one push, registered on first use.
struct MetricSet {
    registry: Registry,
    families: BTreeMap<&'static str, Family<Labels, Gauge<f64, AtomicU64>>>,
    /// The labels of every series: the job's and the outcome, less the omitted ones.
    base: Labels,
}

impl MetricSet {
    fn new(push: &Push<'_>) -> Self {
        let base = push
            .labels
            .pairs()
            .into_iter()
            .chain([("outcome", push.outcome)])
            .filter(|(name, _)| !push.omitted.iter().any(|o| o == name))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { registry: Registry::default(), families: BTreeMap::new(), base }
    }

    /// Sets one series of `name` (one of [`METRICS`]) with `extra` labels.
    fn gauge(&mut self, name: &'static str, extra: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let registry = &mut self.registry;
        let family = self.families.entry(name).or_insert_with(|| {
            let help = METRICS.iter().find(|m| m.0 == name).map_or("", |m| m.2);
            debug_assert!(!help.is_empty(), "{name} is listed in METRICS");
            let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
            registry.register(name, help, family.clone());
            family
        });
        let mut labels = self.base.clone();
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        family.get_or_create(&labels).set(value);
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> JobLabels {
        JobLabels { tenant: "acme".into(), preset: "small".into(), job: "ladder-0123".into(), shard: "0".into() }
    }

    fn push<'a>(labels: &'a JobLabels, omitted: &'a [String]) -> Push<'a> {
        let started = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        Push {
            labels,
            omitted,
            shards: 1,
            started,
            now: started + std::time::Duration::from_secs(90),
            cpu_seconds: 150.0,
            recording_ended: Some("2027-01-15T08:00:00Z".parse().unwrap()),
            counters: None,
            outcome: "bad_input",
            summary: None,
        }
    }

    #[test]
    fn a_failed_run_reports_its_class_times_and_recording_end() {
        let labels = labels();
        let text = push(&labels, &[]).encode();
        let series = r#"{tenant="acme",preset="small",job="ladder-0123",shard="0",outcome="bad_input"}"#;
        for line in [
            format!("ladder_job_wall_seconds{series} 90.0"),
            format!("ladder_job_cpu_seconds{series} 150.0"),
            format!("ladder_job_start_timestamp_seconds{series} 1800000000.0"),
            format!("ladder_job_recording_ended_timestamp_seconds{series} 1800000000.0"),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("# TYPE ladder_job_wall_seconds gauge"), "{text}");
        // Nothing was planned, nothing published: no media figures, no time-to-VOD.
        assert!(!text.contains("ladder_job_media_seconds"), "{text}");
        assert!(!text.contains("time_to_vod"), "{text}");
    }

    #[test]
    fn grouping_labels_of_the_endpoint_are_left_out() {
        let labels = labels();
        let omitted = ["job".to_owned(), "shard".to_owned()];
        let text = push(&labels, &omitted).encode();
        assert!(
            text.lines()
                .any(|l| l == r#"ladder_job_wall_seconds{tenant="acme",preset="small",outcome="bad_input"} 90.0"#),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let labels = JobLabels { tenant: "a\"b\\c\nd".into(), ..JobLabels::default() };
        let text = push(&labels, &[]).encode();
        assert!(text.contains(r#"tenant="a\"b\\c\nd""#), "{text}");
    }

    #[test]
    fn every_exit_class_has_its_label() {
        let all = [Outcome::Done, Outcome::Usage, Outcome::BadInput, Outcome::Transient, Outcome::Interrupted];
        let names: Vec<&str> = all.into_iter().map(outcome_label).collect();
        assert_eq!(names, ["done", "usage", "bad_input", "transient", "interrupted"]);
    }
}
