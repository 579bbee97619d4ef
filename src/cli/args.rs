//! The command line as clap types: every command, flag, default and environment fallback.
//! A flag several commands take is declared once, in a group they flatten in. Doc comments
//! on fields and commands are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::location::StorageConfig;
use crate::run::Shard;
use crate::{preset, probe, serve};

/// Batch transcoder for recordings of live events: one decode, an ABR ladder in CMAF with
/// HLS and DASH, thumbnails and a report.
#[derive(Debug, Parser)]
#[command(name = "ladder", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format: text on a terminal, JSON otherwise (for pods).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "LADDER_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    /// Log filter: a level for ladder's own log (`info`), and `crate=level` for a
    /// dependency's, which otherwise logs errors only (`info,aws_smithy_runtime=debug`).
    #[arg(long, global = true, default_value = "warn", env = "LADDER_LOG")]
    pub(crate) log: String,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Auto,
    Text,
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Describe a recording: container, duration, streams, frame rate, rotation, interlacing.
    ///
    /// Exits 3 with one sentence when ladder cannot transcode it.
    Probe(ProbeArgs),
    /// Show the work for a recording: rungs that apply, frame rate, segments, chunks, thumbnails.
    Plan(PlanArgs),
    /// Transcode a recording into an ABR ladder: CMAF segments, HLS and DASH manifests,
    /// thumbnails and report.json.
    ///
    /// The master playlist is written last: its presence means the output is complete. A
    /// rerun with the same input, preset and output reuses the chunks already finished.
    /// SIGINT/SIGTERM stop within seconds with exit code 5; a second signal exits at once.
    Run(RunArgs),
    /// List, show, check and describe presets.
    #[command(subcommand)]
    Presets(PresetsCommand),
    /// Create the Kubernetes Job that transcodes a recording (or print it with --dry-run).
    ///
    /// The Job is named from a hash of tenant, input and preset: dispatching the same
    /// recording again reports the existing Job instead of making another.
    Dispatch(DispatchArgs),
    /// Receive webhooks (S3/MinIO, AWS S3 via SNS, LiveKit, generic HMAC) and dispatch a Job
    /// per recording.
    ///
    /// Secrets come from the environment only: LADDER_S3_TOKENS, LADDER_LIVEKIT_API_KEY,
    /// LADDER_LIVEKIT_API_SECRET, LADDER_WEBHOOK_SECRETS (comma-separated lists rotate).
    Serve(ServeArgs),
}

/// `ladder probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The recording (a local path).
    pub(crate) input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

/// `ladder plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The recording (a local path).
    pub(crate) input: PathBuf,
    #[command(flatten)]
    pub(crate) preset: PresetArgs,
    #[command(flatten)]
    pub(crate) trim: TrimArgs,
    /// Print the whole plan as JSON instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) subtitles: SubtitleArgs,
}

/// Subtitle files to add to the recording's own.
#[derive(Debug, Args)]
pub(crate) struct SubtitleArgs {
    /// A WebVTT or SubRip file (local path or s3://bucket/key) in BCP 47 language LANG,
    /// to become a WebVTT subtitle rendition; repeatable.
    #[arg(long = "subtitles", value_name = "LANG=PATH")]
    pub(crate) subtitles: Vec<String>,
}

/// `ladder run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The recording: a local path or s3://bucket/key (only ever read).
    pub(crate) input: String,
    /// Output folder or s3://bucket/prefix.
    #[arg(long, short, env = "LADDER_OUT")]
    pub(crate) out: String,
    #[command(flatten)]
    pub(crate) preset: PresetArgs,
    #[command(flatten)]
    pub(crate) trim: TrimArgs,
    #[command(flatten)]
    pub(crate) subtitles: SubtitleArgs,
    /// Chunks encoded at once [default: one per two CPUs this process may use, rounded up
    /// (cgroup quota included), and no more than the cgroup's memory limit holds (`ladder
    /// plan` prints the estimate per chunk): each chunk encodes its rungs on threads of their
    /// own].
    #[arg(long, short, env = "LADDER_JOBS", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: Option<u16>,
    /// Folder for intermediate files [default: a temporary folder, removed afterwards].
    #[arg(long, env = "LADDER_SCRATCH")]
    pub(crate) scratch: Option<PathBuf>,
    /// Also measure PSNR and SSIM of every rung against the source, in the same pass.
    #[arg(long)]
    pub(crate) quality: bool,
    /// Replace what the output holds when it is another recording's (or another preset's)
    /// ladder: its files are removed first. Never while another run is writing it.
    #[arg(long, env = "LADDER_OVERWRITE")]
    pub(crate) overwrite: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Do only shard i of N (chunk c belongs to shard c mod N); the last shard to finish
    /// publishes. In an Indexed Job: `JOB_COMPLETION_INDEX` with `LADDER_SHARDS=N`.
    #[arg(long, env = "LADDER_SHARD", value_parser = Shard::parse)]
    pub(crate) shard: Option<Shard>,
    /// Progress display: bars on a terminal that gets text logs, otherwise `progress`
    /// events in the log (JSON objects in a JSON log) every 5 s and at the end.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto, env = "LADDER_PROGRESS")]
    pub(crate) progress: ProgressArg,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) s3: S3Args,
    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,
}

/// Where a run pushes its metrics, and their labels (see docs/observability.md).
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Push the run's metrics, at its end and every --metrics-interval while it works, to this
    /// Prometheus text import endpoint, e.g. `http://victoria-metrics:8428/api/v1/import/prometheus`,
    /// or a Pushgateway group `http://pushgateway:9091/metrics/job/{job}/shard/{shard}`. A failed push
    /// never changes the exit code and delays the exit by 4 s at most.
    #[arg(long, env = "LADDER_METRICS_URL")]
    pub(crate) metrics_url: Option<String>,
    /// Seconds between pushes while the run works (0: only at the end).
    #[arg(long, env = "LADDER_METRICS_INTERVAL", default_value_t = 60)]
    pub(crate) metrics_interval: u64,
    /// The `tenant` label of the metrics (`ladder dispatch` sets it in the Job).
    #[arg(long, env = "LADDER_TENANT", default_value = "")]
    pub(crate) tenant: String,
    /// The `job` label: the Kubernetes Job's name (the Job sets it from its pod's labels).
    #[arg(long, env = "LADDER_JOB_NAME", default_value = "")]
    pub(crate) job_name: String,
    /// When the recording ended (RFC 3339, e.g. 2026-11-25T05:00:00Z): time-to-VOD is measured
    /// from it to the publication of the master playlist.
    #[arg(long, env = "LADDER_RECORDING_ENDED", value_parser = parse_timestamp)]
    pub(crate) recording_ended: Option<jiff::Timestamp>,
}

/// An RFC 3339 time, as flags and webhooks give the end of a recording.
pub(super) fn parse_timestamp(text: &str) -> Result<jiff::Timestamp, String> {
    text.trim().parse().map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-25T05:00:00Z: {e}"))
}

/// `--progress`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ProgressArg {
    Auto,
    Bars,
    Lines,
    Off,
}

/// `ladder presets …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PresetsCommand {
    /// List the built-in presets and those in --presets-dir.
    List(ListArgs),
    /// Print a preset with every default written out: a preset file that loads back.
    Show(ShowArgs),
    /// Check preset files; print every problem as `file:line:col: message — fix`, exit 2 if any.
    Check(CheckArgs),
    /// Print the JSON Schema of the preset format (for editors).
    Schema,
}

/// `ladder presets list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) dir: PresetsDirArg,
    #[arg(long)]
    pub(crate) json: bool,
}

/// `ladder presets show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) preset: PresetArgs,
    /// JSON instead of TOML.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `ladder presets check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Preset files to check.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Print the problems as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `ladder dispatch`.
#[derive(Debug, Args)]
pub(crate) struct DispatchArgs {
    /// The recording: `s3://bucket/key` (or a path the Job's pod can read).
    pub(crate) input: String,
    /// Where the outputs go: `s3://bucket/prefix`.
    #[arg(long)]
    pub(crate) out: String,
    /// The tenant: its Jobs run in its own namespace.
    #[arg(long, env = "LADDER_TENANT")]
    pub(crate) tenant: String,
    /// A built-in preset or one in --presets-dir (the image ships the same presets).
    #[arg(long, short, env = "LADDER_PRESET")]
    pub(crate) preset: Option<String>,
    #[command(flatten)]
    pub(crate) presets_dir: PresetsDirArg,
    /// Split the chunks over N pods of an Indexed Job.
    #[arg(long)]
    pub(crate) shards: Option<u32>,
    /// The part of the recording the Job keeps (passed to `ladder run`).
    #[command(flatten)]
    pub(crate) trim: TrimArgs,
    #[command(flatten)]
    pub(crate) subtitles: SubtitleArgs,
    /// When the recording ended (RFC 3339): the Job reports time-to-VOD from it.
    #[arg(long, value_parser = parse_timestamp)]
    pub(crate) recording_ended: Option<jiff::Timestamp>,
    /// Print the Job as YAML instead of creating it.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// After creating it, watch the Job until it completes or fails.
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) wait: bool,
    /// Print JSON instead of text (with --dry-run: the Job as JSON).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) dispatcher: DispatcherArgs,
}

/// `ladder serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080", env = "LADDER_LISTEN")]
    pub(crate) listen: String,
    /// Largest webhook body accepted, in bytes (413 above).
    #[arg(long, default_value_t = serve::Limits::default().max_body_bytes, env = "LADDER_MAX_BODY_BYTES")]
    pub(crate) max_body_bytes: usize,
    /// Job creates in flight at once against the API server (more wait their turn).
    #[arg(long, default_value_t = serve::Limits::default().max_concurrent_creates, env = "LADDER_MAX_CONCURRENT_CREATES")]
    pub(crate) max_concurrent_creates: usize,
    /// Seconds an event may wait for its Job before the answer is 503 with Retry-After.
    #[arg(long, default_value_t = serve::Limits::default().dispatch_deadline.as_secs(), env = "LADDER_DISPATCH_DEADLINE_SECONDS")]
    pub(crate) dispatch_deadline_seconds: u64,
    #[command(flatten)]
    pub(crate) presets_dir: PresetsDirArg,
    #[command(flatten)]
    pub(crate) dispatcher: DispatcherArgs,
}

/// Where to find a preset by name.
#[derive(Debug, Args)]
pub(crate) struct PresetArgs {
    /// A preset file, or the name of a built-in preset or of one in --presets-dir.
    #[arg(long, short, default_value = preset::DEFAULT, env = "LADDER_PRESET")]
    pub(crate) preset: String,
    #[command(flatten)]
    pub(crate) dir: PresetsDirArg,
    /// Which audio tracks become renditions, instead of the preset's `[audio] tracks`:
    /// `all`, `first`, or positions among the audio tracks such as `0,2`.
    #[arg(long, value_name = "all|first|0,2")]
    pub(crate) audio: Option<preset::AudioTracks>,
    /// The name players show for source audio track N (its position among the audio
    /// tracks), instead of its title tag; repeatable.
    #[arg(long, value_name = "N=TITLE")]
    pub(crate) audio_title: Vec<String>,
    /// The BCP 47 language of source audio track N, instead of its tag; repeatable.
    #[arg(long, value_name = "N=LANGUAGE")]
    pub(crate) audio_language: Vec<String>,
    /// The default audio rendition's language, instead of the preset's
    /// `[audio] default_language`.
    #[arg(long, value_name = "LANGUAGE")]
    pub(crate) default_audio_language: Option<String>,
}

/// The part of the recording to keep.
#[derive(Debug, Args)]
pub(crate) struct TrimArgs {
    /// Start the output at this time of the recording (seconds, or HH:MM:SS.mmm), frame
    /// accurately: its first frame is the recording's frame at that time.
    #[arg(long, value_name = "TIME", env = "LADDER_START", value_parser = crate::trim::parse_time)]
    pub(crate) start: Option<f64>,
    /// End the output at this time of the recording (seconds, or HH:MM:SS.mmm; not a
    /// duration).
    #[arg(long, value_name = "TIME", env = "LADDER_END", value_parser = crate::trim::parse_time)]
    pub(crate) end: Option<f64>,
}

/// The folder of user presets.
#[derive(Debug, Args)]
pub(crate) struct PresetsDirArg {
    /// Folder of `<name>.toml` presets.
    #[arg(long, default_value = "presets", env = "LADDER_PRESETS_DIR")]
    pub(crate) presets_dir: PathBuf,
}

/// Input size limits, enforced before anything is decoded.
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Largest width or height accepted.
    #[arg(long, default_value_t = probe::Limits::default().max_side, env = "LADDER_MAX_SIDE")]
    pub(crate) max_side: u32,
    /// Largest picture (width × height) accepted.
    #[arg(long, default_value_t = probe::Limits::default().max_pixels, env = "LADDER_MAX_PIXELS")]
    pub(crate) max_pixels: u64,
}

/// How to reach S3. Credentials come from the standard AWS chain (env, profile, web
/// identity/IRSA, instance metadata); the region from `AWS_REGION`/profile, else us-east-1.
#[derive(Debug, Args)]
pub(crate) struct S3Args {
    /// An S3-compatible endpoint (MinIO, Ceph…), e.g. `http://minio:9000`; without it, the
    /// SDK's `AWS_ENDPOINT_URL`, else AWS.
    #[arg(long, env = "LADDER_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) [default: on with an endpoint, off for AWS].
    #[arg(long, env = "LADDER_S3_PATH_STYLE", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) s3_path_style: Option<bool>,
    /// Attempts per S3 request before the run fails with exit 4 (jittered exponential backoff between them).
    #[arg(long, env = "LADDER_S3_ATTEMPTS", default_value_t = StorageConfig::default().max_attempts, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) s3_attempts: u32,
    /// First backoff before a retry, in milliseconds (tests make it small).
    #[arg(long, env = "LADDER_S3_BACKOFF_MS", default_value_t = StorageConfig::default().initial_backoff.as_millis() as u64)]
    pub(crate) s3_backoff_ms: u64,
    /// Seconds without response bytes before an S3 request is abandoned and retried.
    #[arg(long, env = "LADDER_S3_READ_TIMEOUT", default_value_t = StorageConfig::default().read_timeout.as_secs_f64())]
    pub(crate) s3_read_timeout: f64,
    /// Objects larger than this many MiB are uploaded in parts of this size (at least 5).
    #[arg(long, env = "LADDER_S3_PART_MIB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(5..=5120))]
    pub(crate) s3_part_mib: u32,
    /// How an S3 input is read: `stream` decodes it in place through ranged GETs (a shard
    /// reads only its share); `fetch` copies it whole to scratch first.
    #[arg(long, env = "LADDER_S3_INPUT", value_enum, default_value_t = InputMode::Stream)]
    pub(crate) s3_input: InputMode,
    /// KiB per ranged GET when an S3 input is streamed (one block is read ahead).
    #[arg(long, env = "LADDER_S3_READ_BLOCK_KIB", default_value_t = (StorageConfig::default().read_block / 1024) as u32, value_parser = clap::value_parser!(u32).range(4..=262_144))]
    pub(crate) s3_read_block_kib: u32,
}

/// How an S3 input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InputMode {
    Stream,
    Fetch,
}

/// Dispatcher settings; each overrides the config file, which overrides the defaults.
#[derive(Debug, Args)]
pub(crate) struct DispatcherArgs {
    /// Dispatcher config file (TOML; see jobs/overlays/example/ladder.toml).
    #[arg(long, env = "LADDER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Image of the transcode Job.
    #[arg(long, env = "LADDER_IMAGE")]
    pub(crate) image: Option<String>,
    /// PriorityClass of the transcode pods (low, non-preempting).
    #[arg(long, env = "LADDER_PRIORITY_CLASS")]
    pub(crate) priority_class: Option<String>,
    /// Namespace of a tenant's Jobs; `{tenant}` is replaced.
    #[arg(long, env = "LADDER_NAMESPACE_PATTERN")]
    pub(crate) namespace_pattern: Option<String>,
    /// ServiceAccount of the transcode pods, in the tenant namespace.
    #[arg(long, env = "LADDER_SERVICE_ACCOUNT")]
    pub(crate) service_account: Option<String>,
    /// Secret (in the tenant namespace) whose keys the Job gets as environment (S3 keys).
    #[arg(long, env = "LADDER_STORAGE_SECRET")]
    pub(crate) storage_secret: Option<String>,
    /// S3 endpoint for MinIO-style servers, passed on to the Job.
    #[arg(long, env = "LADDER_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// Taint of the transcode node pool, `key=value` (tolerated with NoSchedule).
    #[arg(long, env = "LADDER_POOL_TAINT")]
    pub(crate) pool_taint: Option<String>,
    /// Node labels the Job requires, `key=value,…`.
    #[arg(long, env = "LADDER_NODE_SELECTOR", value_delimiter = ',')]
    pub(crate) node_selector: Vec<String>,
    /// Retries of a failed pod (preemption does not count).
    #[arg(long, env = "LADDER_BACKOFF_LIMIT")]
    pub(crate) backoff_limit: Option<i32>,
    /// Seconds after which a Job is stopped whatever its state.
    #[arg(long, env = "LADDER_ACTIVE_DEADLINE_SECONDS")]
    pub(crate) active_deadline_seconds: Option<i64>,
    /// Seconds a finished Job is kept before Kubernetes deletes it.
    #[arg(long, env = "LADDER_TTL_SECONDS_AFTER_FINISHED")]
    pub(crate) ttl_seconds_after_finished: Option<i32>,
    /// Where the Jobs push their metrics (`LADDER_METRICS_URL` in the Job; see `ladder run --metrics-url`).
    #[arg(long, env = "LADDER_METRICS_URL")]
    pub(crate) metrics_url: Option<String>,
    /// Kueue LocalQueue of the Jobs: they are created suspended and admitted by quota (a
    /// tenant's own `queue` in the config wins over this).
    #[arg(long, env = "LADDER_QUEUE")]
    pub(crate) queue: Option<String>,
}
