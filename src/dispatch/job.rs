//! The transcode Job: one `batch/v1` Job per (tenant, input, preset), built from
//! `k8s-openapi` types. Every field here is part of the contract in design.md ("Dispatch
//! and intake"); `tests/dispatch.rs` pins them and `jobs/overlays/example/job.yaml` is this
//! output for the example inputs.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource, NodeAffinity,
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::{DispatchConfig, DispatchError};
use crate::exit::Outcome;
use crate::preset::Preset;
use crate::trim::Trim;

/// Prefix of ladder's own labels and annotations.
pub const LABEL_PREFIX: &str = "ladder.dev";
/// The container's name, which `podFailurePolicy` rules refer to.
pub const CONTAINER: &str = "ladder";
/// Where the scratch `emptyDir` is mounted (also `TMPDIR`).
pub const SCRATCH_DIR: &str = "/scratch";
/// The user and group of the image (`container/Dockerfile`).
pub const RUN_AS: i64 = 10001;
/// Most shards one Job may have: more gains nothing for a single recording.
pub const MAX_SHARDS: u32 = 64;
/// The label that hands a Job to Kueue: the LocalQueue (in the Job's namespace) it waits in.
pub const KUEUE_QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// Kueue's partial admission: an Indexed Job may start with fewer pods than it has shards
/// when the quota has room for only some; the other indexes run as those finish.
pub const KUEUE_MIN_PARALLELISM: &str = "kueue.x-k8s.io/job-min-parallelism";
/// Pod annotations that keep node consolidation (Karpenter, the cluster autoscaler) from
/// evicting a running transcode to save a node. Preemption by priority is unaffected.
pub const DO_NOT_DISRUPT: [(&str, &str); 2] =
    [("karpenter.sh/do-not-disrupt", "true"), ("cluster-autoscaler.kubernetes.io/safe-to-evict", "false")];

/// What to transcode, for whom. The preset is already validated (it gives the resources).
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    pub tenant: String,
    /// The recording's location (`s3://bucket/key` or a path the pod can see).
    pub input: String,
    /// Where the outputs go.
    pub output: String,
    pub preset: &'a Preset,
    /// `Some(n)`: an Indexed Job of `n` completions, each doing its share of chunks.
    pub shards: Option<u32>,
    /// When the recording ended (from the webhook or `--recording-ended`): the Job
    /// reports time-to-VOD from it.
    pub recording_ended: Option<jiff::Timestamp>,
    /// The part of the recording to keep (`--start`/`--end` of `ladder run`).
    pub trim: Trim,
    /// Subtitle files for the run (`--subtitles LANG=LOCATION`), in order.
    pub subtitles: Vec<crate::subtitles::Sidecar>,
}

/// The Job's name: a hash of (tenant, input, preset name and settings hash, and the run's
/// `options` when there are any: a cut, subtitle files), so a repeated event names the same
/// Job and creating it again is a no-op, while another cut of the same recording, or the
/// recording sent again with subtitles, is another Job.
pub fn job_name(tenant: &str, input: &str, preset: &Preset, options: &[String]) -> String {
    let mut h = Sha256::new();
    let parts = [tenant, input, &preset.name, &preset.hash].into_iter().chain(options.iter().map(String::as_str));
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]); // a separator no part contains, so ("ab","c") ≠ ("a","bc")
    }
    let hex: String = h.finalize().iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("ladder-{hex}")
}

/// Builds the Job for a request. Fails only on a request that cannot be valid (bad tenant,
/// empty or flag-like locations, shard count out of range).
pub fn build_job(config: &DispatchConfig, req: &JobRequest<'_>) -> Result<Job, DispatchError> {
    let namespace = config.namespace(&req.tenant)?;
    let sidecars: Vec<String> = req.subtitles.iter().map(|s| s.location.to_string()).collect();
    let locations = [("input", &req.input), ("output", &req.output)].into_iter();
    for (what, value) in locations.chain(sidecars.iter().map(|s| ("subtitle", s))) {
        if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_control) {
            return Err(DispatchError::Request {
                message: format!("{what} location {value:?} is empty, starts with '-' or has control characters"),
            });
        }
    }
    if let Some(n) = req.shards
        && !(1..=MAX_SHARDS).contains(&n)
    {
        return Err(DispatchError::Request { message: format!("--shards {n} is out of range (1 to {MAX_SHARDS})") });
    }
    let name = job_name(&req.tenant, &req.input, req.preset, &run_options(req));
    let labels = labels(&name, &req.tenant, &req.preset.name);
    let annotations = BTreeMap::from([
        (format!("{LABEL_PREFIX}/input"), req.input.clone()),
        (format!("{LABEL_PREFIX}/output"), req.output.clone()),
        (format!("{LABEL_PREFIX}/preset-hash"), req.preset.hash.clone()),
    ]);
    let mut pod_annotations = annotations.clone();
    pod_annotations.extend(DO_NOT_DISRUPT.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let (mut job_labels, mut job_annotations) = (labels.clone(), annotations);
    // Kueue mode: the Job waits suspended in the tenant's LocalQueue until Kueue admits it
    // within the ClusterQueue's quota, instead of being refused by a full ResourceQuota.
    let queue = config.queue_for(&req.tenant);
    if let Some(queue) = queue {
        job_labels.insert(KUEUE_QUEUE_LABEL.to_owned(), queue.to_owned());
        if req.shards.is_some_and(|n| n > 1) {
            job_annotations.insert(KUEUE_MIN_PARALLELISM.to_owned(), "1".to_owned());
        }
    }
    let shards = req.shards.map(|n| i32::try_from(n).expect("shards are at most MAX_SHARDS"));
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(job_labels),
            annotations: Some(job_annotations),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            // Created suspended, so no pod starts before Kueue admits the Job (its webhook
            // would suspend it too; this leaves no window).
            suspend: queue.map(|_| true),
            backoff_limit: Some(config.backoff_limit),
            active_deadline_seconds: Some(config.active_deadline_seconds),
            ttl_seconds_after_finished: Some(config.ttl_seconds_after_finished),
            completions: Some(shards.unwrap_or(1)),
            parallelism: Some(shards.unwrap_or(1)),
            completion_mode: Some(if shards.is_some() { "Indexed" } else { "NonIndexed" }.to_owned()),
            pod_failure_policy: Some(pod_failure_policy()),
            // A pod is replaced only once it has really stopped, so two never write the
            // same chunk at once and a terminating pod's quota is not counted twice.
            pod_replacement_policy: Some("Failed".to_owned()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(config, req)),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// `ladder run`'s arguments. `--opt=value` and `--` keep a location from ever being read
/// as a flag.
fn run_args(req: &JobRequest<'_>) -> Vec<String> {
    let mut args = vec!["run".to_owned(), format!("--out={}", req.output), format!("--preset={}", req.preset.name)];
    args.extend(run_options(req));
    args.extend(["--".to_owned(), req.input.clone()]);
    args
}

/// The run's options beyond its input, output and preset: the cut and the subtitle files.
fn run_options(req: &JobRequest<'_>) -> Vec<String> {
    let subtitles = req.subtitles.iter().map(|s| format!("--subtitles={}={}", s.language, s.location));
    trim_args(&req.trim).into_iter().chain(subtitles).collect()
}

/// Preemption and node drains (`DisruptionTarget`) do not use up retries; a recording
/// that can never be transcoded (exit 3) or a bad preset (exit 2) fails the Job at once.
fn pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "Ignore".to_owned(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".to_owned(),
                    status: "True".to_owned(),
                }]),
                on_exit_codes: None,
            },
            PodFailurePolicyRule {
                action: "FailJob".to_owned(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER.to_owned()),
                    operator: "In".to_owned(),
                    values: vec![Outcome::Usage as i32, Outcome::BadInput as i32],
                }),
                on_pod_conditions: None,
            },
        ],
    }
}

fn pod_spec(config: &DispatchConfig, req: &JobRequest<'_>) -> PodSpec {
    PodSpec {
        restart_policy: Some("Never".to_owned()),
        priority_class_name: Some(config.priority_class.clone()),
        service_account_name: Some(config.service_account.clone()),
        // The pod never talks to the API server.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(config.termination_grace_seconds),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
            ..PodSecurityContext::default()
        }),
        tolerations: Some(vec![Toleration {
            key: Some(config.taint_key.clone()),
            operator: Some("Equal".to_owned()),
            value: Some(config.taint_value.clone()),
            effect: Some("NoSchedule".to_owned()),
            toleration_seconds: None,
        }]),
        affinity: Some(node_affinity(config)),
        containers: vec![container(config, req)],
        volumes: Some(vec![Volume {
            name: "scratch".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity(req.preset.resources.scratch.clone())),
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    }
}

/// `--start=…`/`--end=…` for `ladder run`, in seconds (exact: Rust prints the shortest
/// text that reads back as the same number).
fn trim_args(trim: &Trim) -> Vec<String> {
    let start = trim.start.map(|s| format!("--start={s}"));
    let end = trim.end.map(|e| format!("--end={e}"));
    start.into_iter().chain(end).collect()
}

/// The one container: `ladder run` on the recording, unprivileged, on a read-only root
/// with the scratch volume.
fn container(config: &DispatchConfig, req: &JobRequest<'_>) -> Container {
    Container {
        name: CONTAINER.to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some(config.image_pull_policy.clone()),
        args: Some(run_args(req)),
        env: Some(container_env(config, req)),
        // Credentials only by reference: the Secret's keys become environment variables.
        env_from: config.storage_secret.as_ref().map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource { name: name.clone(), optional: Some(false) }),
                ..EnvFromSource::default()
            }]
        }),
        resources: Some(resources(req.preset, &req.input)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "scratch".to_owned(),
            mount_path: SCRATCH_DIR.to_owned(),
            ..VolumeMount::default()
        }]),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

/// JSON logs, the scratch folder, the shard count, the S3 endpoint and the metrics' settings.
fn container_env(config: &DispatchConfig, req: &JobRequest<'_>) -> Vec<EnvVar> {
    let mut env = vec![
        env_var("LADDER_LOG_FORMAT", "json"),
        env_var("LADDER_LOG", "info"),
        env_var("TMPDIR", SCRATCH_DIR),
        env_var("LADDER_SCRATCH", SCRATCH_DIR),
    ];
    if let Some(n) = req.shards {
        // With JOB_COMPLETION_INDEX (set by Kubernetes), this gives each pod its `--shard i/N`.
        env.push(env_var("LADDER_SHARDS", &n.to_string()));
    }
    if let Some(endpoint) = &config.s3_endpoint {
        env.push(env_var("LADDER_S3_ENDPOINT", endpoint));
    }
    env.extend(metrics_env(config, req));
    env
}

/// Requests equal limits for CPU and memory: the pod is Guaranteed (evicted last under node
/// pressure) and the CPU quota that sizes the encoder pool is exact.
/// The preset's CPUs and scratch; its memory, raised to what the chunks its CPUs run at
/// once need when that is more ([`crate::memory::Estimate::of_preset`]), so the pod is not
/// killed for memory (exit 137) and retried into the same death.
fn resources(preset: &Preset, input: &str) -> ResourceRequirements {
    let res = &preset.resources;
    let memory = job_memory(preset);
    let scratch = scratch_request(preset, input);
    let quantities = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned()))).collect()
    };
    ResourceRequirements {
        requests: Some(quantities(&[("cpu", &res.cpu), ("memory", &memory), ("ephemeral-storage", &scratch)])),
        limits: Some(quantities(&[("cpu", &res.cpu), ("memory", &memory)])),
        ..ResourceRequirements::default()
    }
}

/// The Job's memory: the preset's, a floor, or the estimate for the chunks its CPUs run at
/// once (as `--jobs` auto picks them), rounded up to whole MiB.
fn job_memory(preset: &Preset) -> String {
    use crate::memory::{Estimate, quantity_bytes, quantity_cpus};
    let res = &preset.resources;
    let cpus = quantity_cpus(&res.cpu).unwrap_or(1.0).ceil() as usize;
    let needed = Estimate::of_preset(preset).for_jobs(cpus.div_ceil(2).max(1));
    match quantity_bytes(&res.memory) {
        Some(floor) if floor >= needed => res.memory.clone(),
        _ => format!("{}Mi", needed.div_ceil(1 << 20)),
    }
}

/// The scratch the pod asks for. An S3 recording in a container with an index (MP4, MOV,
/// Matroska, WebM) is read in place: scratch holds only the chunks being muxed, so the
/// request is what its CPUs' chunks need, 1 GiB at least. Anything else (MPEG-TS, FLV, an
/// HLS playlist, a path) is copied whole: the preset's `scratch`. The volume's size limit
/// stays the preset's either way.
fn scratch_request(preset: &Preset, input: &str) -> String {
    use crate::memory::{quantity_bytes, quantity_cpus};
    let res = &preset.resources;
    let extension = input.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let in_place = input.starts_with("s3://") && matches!(extension.as_str(), "mp4" | "mov" | "m4v" | "mkv" | "webm");
    if !in_place {
        return res.scratch.clone();
    }
    let jobs = quantity_cpus(&res.cpu).unwrap_or(1.0).ceil() as u64;
    let chunk_seconds = preset.segments.segment_seconds * f64::from(preset.segments.chunk_segments);
    // Each rung's chunk at its peak rate, muxed once and cut into segments: twice over.
    let chunk: f64 = preset.rungs.iter().map(|r| f64::from(r.maxrate_kbps) * 125.0 * chunk_seconds * 2.0).sum();
    let needed = ((chunk * jobs as f64) as u64).max(1 << 30);
    match quantity_bytes(&res.scratch) {
        Some(preset_bytes) if preset_bytes <= needed => res.scratch.clone(),
        _ => format!("{}Gi", needed.div_ceil(1 << 30)),
    }
}

/// Only the transcode nodes (`node_selector`), required.
fn node_affinity(config: &DispatchConfig) -> Affinity {
    let match_expressions = config
        .node_selector
        .iter()
        .map(|(k, v)| NodeSelectorRequirement {
            key: k.clone(),
            operator: "In".to_owned(),
            values: Some(vec![v.clone()]),
        })
        .collect();
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(match_expressions),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Affinity::default()
    }
}

/// The Job as YAML, the form `--dry-run` prints and `jobs/` checks in.
pub fn to_yaml(job: &Job) -> String {
    serde_saphyr::to_string(job).expect("a Job of plain strings and numbers always serialises")
}

/// What the Job's metrics need: where to push, the labels (the Job's name comes from the
/// pod's own label, so a Job copied by hand reports its own name) and the recording's end.
fn metrics_env(config: &DispatchConfig, req: &JobRequest<'_>) -> Vec<EnvVar> {
    let mut env = vec![
        env_var("LADDER_TENANT", &req.tenant),
        EnvVar {
            name: "LADDER_JOB_NAME".to_owned(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: "metadata.labels['batch.kubernetes.io/job-name']".to_owned(),
                }),
                ..EnvVarSource::default()
            }),
        },
    ];
    if let Some(url) = &config.metrics_url {
        env.push(env_var("LADDER_METRICS_URL", url));
    }
    if let Some(ended) = req.recording_ended {
        env.push(env_var("LADDER_RECORDING_ENDED", &ended.to_string()));
    }
    env
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.to_owned()), value_from: None }
}

fn labels(name: &str, tenant: &str, preset: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "ladder".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
        ("app.kubernetes.io/component".to_owned(), "transcode".to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), "ladder".to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "ladder-dispatch".to_owned()),
        (format!("{LABEL_PREFIX}/tenant"), tenant.to_owned()),
        (format!("{LABEL_PREFIX}/preset"), label_value(preset)),
    ])
}

/// A label value (at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends) from any text.
fn label_value(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(63)
        .collect();
    mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_always_valid() {
        assert_eq!(label_value("small"), "small");
        assert_eq!(label_value("my preset/v2!"), "my-preset-v2");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(label_value("--"), "");
    }

    #[test]
    fn the_name_separates_its_parts() {
        let p = crate::preset::resolve("small", None).unwrap();
        assert_ne!(job_name("ab", "c", &p, &[]), job_name("a", "bc", &p, &[]));
        assert_eq!(job_name("a", "b", &p, &[]), job_name("a", "b", &p, &[]));
        assert!(job_name("a", "b", &p, &[]).len() <= 63);
        assert_ne!(job_name("a", "b", &p, &[]), job_name("a", "b", &p, &["--subtitles=en=s3://b/t.en.vtt".into()]));
    }

    #[test]
    fn a_cut_is_passed_to_the_run_and_names_a_job_of_its_own() {
        let p = crate::preset::resolve("small", None).unwrap();
        let cut = Trim::new(Some(90.5), Some(3600.0)).unwrap();
        assert_ne!(job_name("a", "b", &p, &trim_args(&cut)), job_name("a", "b", &p, &[]));
        assert_eq!(trim_args(&cut), ["--start=90.5", "--end=3600"]);
        assert_eq!(trim_args(&Trim::new(None, Some(0.1)).unwrap()), ["--end=0.1"]);
        assert!(trim_args(&Trim::default()).is_empty());
    }

    #[test]
    fn scratch_is_requested_for_what_the_input_needs() {
        let p = crate::preset::resolve("default", None).unwrap();
        // Read in place: the chunks its CPUs mux (default: 4 CPUs, 9 rungs, 30 s chunks).
        let in_place = scratch_request(&p, "s3://rec/keynote.MP4");
        assert_eq!(in_place, "2Gi");
        assert_eq!(scratch_request(&p, "s3://rec/room.webm"), in_place);
        // Copied whole: the preset's.
        for input in ["s3://rec/stream.ts", "s3://rec/talk/index.m3u8", "/mnt/rec/keynote.mp4", "s3://rec/x"] {
            assert_eq!(scratch_request(&p, input), p.resources.scratch, "{input}");
        }
    }
}
