//! The command line: argument types (clap) and one handler per command. Handlers use
//! `anyhow` and print results; everything they call returns typed errors.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::{Outcome, UsageError};
use crate::location::{Location, StorageConfig};
use crate::plan::Plan;
use crate::preset::{self, Diagnostic, PresetError};
use crate::probe::{self, Probe};
use crate::progress::ProgressMode;
use crate::run::{RunRequest, Shard};
use crate::{dispatch, serve};

/// Batch transcoder for recordings of live events: one decode, an ABR ladder in CMAF with
/// HLS and DASH, thumbnails and a report.
#[derive(Debug, Parser)]
#[command(name = "ladder", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format: text on a terminal, JSON otherwise (for pods).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "LADDER_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `ladder=debug`.
    #[arg(long, global = true, default_value = "warn", env = "LADDER_LOG")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Receive webhooks (S3/MinIO, LiveKit, generic HMAC) and dispatch a Job per recording.
    ///
    /// Secrets come from the environment only: LADDER_S3_TOKENS, LADDER_LIVEKIT_API_KEY,
    /// LADDER_LIVEKIT_API_SECRET, LADDER_WEBHOOK_SECRETS (comma-separated lists rotate).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// The recording: `s3://bucket/key` (or a path the Job's pod can read).
    pub input: String,
    /// Where the outputs go: `s3://bucket/prefix`.
    #[arg(long)]
    pub out: String,
    /// The tenant: its Jobs run in its own namespace.
    #[arg(long, env = "LADDER_TENANT")]
    pub tenant: String,
    /// A built-in preset or one in --presets-dir (the image ships the same presets).
    #[arg(long, short, env = "LADDER_PRESET")]
    pub preset: Option<String>,
    /// Folder of `<name>.toml` presets.
    #[arg(long, default_value = "presets", env = "LADDER_PRESETS_DIR")]
    pub presets_dir: PathBuf,
    /// Split the chunks over N pods of an Indexed Job.
    #[arg(long)]
    pub shards: Option<u32>,
    /// Print the Job as YAML instead of creating it.
    #[arg(long)]
    pub dry_run: bool,
    /// After creating it, watch the Job until it completes or fails.
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// Print JSON instead of text (with --dry-run: the Job as JSON).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

/// Dispatcher settings; each overrides the config file, which overrides the defaults.
#[derive(Debug, Args)]
pub struct DispatcherArgs {
    /// Dispatcher config file (TOML; see jobs/overlays/example/ladder.toml).
    #[arg(long, env = "LADDER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Image of the transcode Job.
    #[arg(long, env = "LADDER_IMAGE")]
    pub image: Option<String>,
    /// PriorityClass of the transcode pods (low, non-preempting).
    #[arg(long, env = "LADDER_PRIORITY_CLASS")]
    pub priority_class: Option<String>,
    /// Namespace of a tenant's Jobs; `{tenant}` is replaced.
    #[arg(long, env = "LADDER_NAMESPACE_PATTERN")]
    pub namespace_pattern: Option<String>,
    /// ServiceAccount of the transcode pods, in the tenant namespace.
    #[arg(long, env = "LADDER_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
    /// Secret (in the tenant namespace) whose keys the Job gets as environment (S3 keys).
    #[arg(long, env = "LADDER_STORAGE_SECRET")]
    pub storage_secret: Option<String>,
    /// S3 endpoint for MinIO-style servers, passed on to the Job.
    #[arg(long, env = "LADDER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Taint of the transcode node pool, `key=value` (tolerated with NoSchedule).
    #[arg(long, env = "LADDER_POOL_TAINT")]
    pub pool_taint: Option<String>,
    /// Node labels the Job requires, `key=value,…`.
    #[arg(long, env = "LADDER_NODE_SELECTOR", value_delimiter = ',')]
    pub node_selector: Vec<String>,
    /// Retries of a failed pod (preemption does not count).
    #[arg(long, env = "LADDER_BACKOFF_LIMIT")]
    pub backoff_limit: Option<i32>,
    /// Seconds after which a Job is stopped whatever its state.
    #[arg(long, env = "LADDER_ACTIVE_DEADLINE_SECONDS")]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds a finished Job is kept before Kubernetes deletes it.
    #[arg(long, env = "LADDER_TTL_SECONDS_AFTER_FINISHED")]
    pub ttl_seconds_after_finished: Option<i32>,
}

impl DispatcherArgs {
    /// The one place dispatcher settings are resolved: defaults, file, then these.
    pub fn resolve(&self) -> anyhow::Result<dispatch::DispatchConfig> {
        let file = match &self.config {
            Some(path) => dispatch::DispatchConfig::read_file(path)?,
            None => dispatch::RawConfig::default(),
        };
        let pair = |s: &str, what: &str| -> anyhow::Result<(String, String)> {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| UsageError(format!("{what} {s:?} must be key=value")).into())
        };
        let mut pool = dispatch::config::RawPool::default();
        if let Some(t) = &self.pool_taint {
            let (k, v) = pair(t, "--pool-taint")?;
            pool.taint_key = Some(k);
            pool.taint_value = Some(v);
        }
        if !self.node_selector.is_empty() {
            pool.node_selector =
                Some(self.node_selector.iter().map(|s| pair(s, "--node-selector")).collect::<anyhow::Result<_>>()?);
        }
        let flags = dispatch::RawConfig {
            image: self.image.clone(),
            priority_class: self.priority_class.clone(),
            namespace_pattern: self.namespace_pattern.clone(),
            service_account: self.service_account.clone(),
            storage_secret: self.storage_secret.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            backoff_limit: self.backoff_limit,
            active_deadline_seconds: self.active_deadline_seconds,
            ttl_seconds_after_finished: self.ttl_seconds_after_finished,
            pool: Some(pool),
            ..dispatch::RawConfig::default()
        };
        Ok(dispatch::DispatchConfig::resolve(file, flags)?)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080", env = "LADDER_LISTEN")]
    pub listen: String,
    /// Largest webhook body accepted, in bytes (413 above).
    #[arg(long, default_value_t = serve::Limits::default().max_body_bytes, env = "LADDER_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Folder of `<name>.toml` presets.
    #[arg(long, default_value = "presets", env = "LADDER_PRESETS_DIR")]
    pub presets_dir: PathBuf,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The recording: a local path or s3://bucket/key (only ever read).
    pub input: String,
    /// Output folder or s3://bucket/prefix.
    #[arg(long, short, env = "LADDER_OUT")]
    pub out: String,
    #[command(flatten)]
    pub preset: PresetArgs,
    /// Chunks encoded at once [default: half the CPUs this process may use (cgroup quota included):
    /// each chunk encodes its rungs on threads of their own].
    #[arg(long, short, env = "LADDER_JOBS", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Folder for intermediate files [default: a temporary folder, removed afterwards].
    #[arg(long, env = "LADDER_SCRATCH")]
    pub scratch: Option<PathBuf>,
    /// Also measure PSNR and SSIM of every rung against the source, in the same pass.
    #[arg(long)]
    pub quality: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do only shard i of N (chunk c belongs to shard c mod N); the last shard to finish
    /// publishes. In an Indexed Job: `JOB_COMPLETION_INDEX` with `LADDER_SHARDS=N`.
    #[arg(long, env = "LADDER_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Progress display: bars on a terminal, periodic lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto, env = "LADDER_PROGRESS")]
    pub progress: ProgressArg,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

/// How to reach S3. Credentials come from the standard AWS chain (env, profile, web
/// identity/IRSA, instance metadata); the region from `AWS_REGION`/profile, else us-east-1.
#[derive(Debug, Args)]
pub struct S3Args {
    /// An S3-compatible endpoint (MinIO, Ceph…), e.g. `http://minio:9000`; without it, the
    /// SDK's `AWS_ENDPOINT_URL`, else AWS.
    #[arg(long, env = "LADDER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) [default: on with an endpoint, off for AWS].
    #[arg(long, env = "LADDER_S3_PATH_STYLE", num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: Option<bool>,
    /// Attempts per S3 request before the run fails with exit 4 (jittered exponential backoff between them).
    #[arg(long, env = "LADDER_S3_ATTEMPTS", default_value_t = StorageConfig::default().max_attempts, value_parser = clap::value_parser!(u32).range(1..))]
    pub s3_attempts: u32,
    /// First backoff before a retry, in milliseconds (tests make it small).
    #[arg(long, env = "LADDER_S3_BACKOFF_MS", default_value_t = StorageConfig::default().initial_backoff.as_millis() as u64)]
    pub s3_backoff_ms: u64,
    /// Seconds without response bytes before an S3 request is abandoned and retried.
    #[arg(long, env = "LADDER_S3_READ_TIMEOUT", default_value_t = StorageConfig::default().read_timeout.as_secs_f64())]
    pub s3_read_timeout: f64,
    /// Objects larger than this many MiB are uploaded in parts of this size (at least 5).
    #[arg(long, env = "LADDER_S3_PART_MIB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(5..=5120))]
    pub s3_part_mib: u32,
}

impl S3Args {
    fn config(&self) -> anyhow::Result<StorageConfig> {
        let read_timeout =
            Duration::try_from_secs_f64(self.s3_read_timeout).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                UsageError(format!("--s3-read-timeout {} must be a positive number of seconds", self.s3_read_timeout))
            })?;
        Ok(StorageConfig {
            // The SDK reads AWS_ENDPOINT_URL itself when no endpoint is given here.
            endpoint: self.s3_endpoint.clone().filter(|e| !e.is_empty()),
            path_style: self.s3_path_style,
            max_attempts: self.s3_attempts,
            initial_backoff: Duration::from_millis(self.s3_backoff_ms),
            read_timeout,
            part_size: self.s3_part_mib as usize * 1024 * 1024,
            ..StorageConfig::default()
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bars,
    Lines,
    Off,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The recording (a local path).
    pub input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Input size limits, enforced before anything is decoded.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Largest width or height accepted.
    #[arg(long, default_value_t = probe::Limits::default().max_side, env = "LADDER_MAX_SIDE")]
    pub max_side: u32,
    /// Largest picture (width × height) accepted.
    #[arg(long, default_value_t = probe::Limits::default().max_pixels, env = "LADDER_MAX_PIXELS")]
    pub max_pixels: u64,
}

impl LimitArgs {
    fn limits(&self) -> probe::Limits {
        probe::Limits { max_side: self.max_side, max_pixels: self.max_pixels }
    }
}

/// Where to find a preset by name.
#[derive(Debug, Args)]
pub struct PresetArgs {
    /// A preset file, or the name of a built-in preset or of one in --presets-dir.
    #[arg(long, short, default_value = preset::DEFAULT, env = "LADDER_PRESET")]
    pub preset: String,
    /// Folder of `<name>.toml` presets.
    #[arg(long, default_value = "presets", env = "LADDER_PRESETS_DIR")]
    pub presets_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The recording (a local path).
    pub input: PathBuf,
    #[command(flatten)]
    pub preset: PresetArgs,
    /// Print the whole plan as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Subcommand)]
pub enum PresetsCommand {
    /// List the built-in presets and those in --presets-dir.
    List {
        #[arg(long, default_value = "presets", env = "LADDER_PRESETS_DIR")]
        presets_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print a preset with every default written out: a preset file that loads back.
    Show {
        #[command(flatten)]
        preset: PresetArgs,
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Check preset files; print every problem as `file:line:col: message — fix`, exit 2 if any.
    Check {
        /// Preset files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the problems as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the preset format (for editors).
    Schema,
}

/// Sets up `tracing` on stderr.
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let json = match global.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Probe(args) => {
            let probe = probe::probe(&args.input, &args.limits.limits())?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&probe)?)?;
            } else {
                write_probe(&mut out, &probe)?;
            }
        }
        Command::Plan(args) => {
            let preset = load_preset(&args.preset)?;
            let probe = probe::probe(&args.input, &args.limits.limits())?;
            let plan = crate::plan::plan(&probe, &preset)?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
            } else {
                write_plan(&mut out, &plan)?;
            }
        }
        Command::Run(args) => return run_ladder(&mut out, &args),
        Command::Presets(PresetsCommand::List { presets_dir, json }) => list_presets(&mut out, &presets_dir, json)?,
        Command::Presets(PresetsCommand::Show { preset, json }) => {
            let preset = load_preset(&preset)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&preset)?)?;
            } else {
                write!(out, "{}", preset.to_toml().context("formatting the preset as TOML")?)?;
            }
        }
        Command::Presets(PresetsCommand::Check { files, json }) => {
            return check_presets(&mut out, &files, json);
        }
        Command::Presets(PresetsCommand::Schema) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&preset::schema())?)?;
        }
        Command::Dispatch(args) => return run_dispatch(&mut out, &args),
        Command::Serve(args) => return run_serve(&mut out, args),
    }
    Ok(Outcome::Done)
}

fn run_dispatch(out: &mut impl Write, args: &DispatchArgs) -> anyhow::Result<Outcome> {
    let config = args.dispatcher.resolve()?;
    let preset_name = args.preset.clone().unwrap_or_else(|| config.default_preset.clone());
    let preset = preset::resolve(&preset_name, Some(&args.presets_dir))?;
    let request = dispatch::JobRequest {
        tenant: args.tenant.clone(),
        input: args.input.clone(),
        output: args.out.clone(),
        preset: &preset,
        shards: args.shards,
    };
    let job = dispatch::build_job(&config, &request)?;
    if args.dry_run {
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&job)?)?;
        } else {
            write!(out, "{}", dispatch::job::to_yaml(&job))?;
        }
        return Ok(Outcome::Done);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async {
        let client = dispatch::client::client().await?;
        let created = dispatch::client::create(&client, &job).await?;
        let (namespace, name) = (
            created.job().metadata.namespace.clone().unwrap_or_default(),
            created.job().metadata.name.clone().unwrap_or_default(),
        );
        let state = dispatch::client::finished(created.job());
        if args.json {
            writeln!(out, "{}", serde_json::json!({"outcome": created.word(), "namespace": namespace, "name": name}))?;
        } else {
            match (&created, &state) {
                (dispatch::Created::New(_), _) => writeln!(out, "created job {namespace}/{name}")?,
                (dispatch::Created::Existing(_), Some(f)) => writeln!(
                    out,
                    "job {namespace}/{name} exists already and has {} ({})",
                    if f.succeeded { "completed" } else { "failed" },
                    f.reason
                )?,
                (dispatch::Created::Existing(_), None) => {
                    writeln!(out, "job {namespace}/{name} exists already and is still running")?;
                }
            }
        }
        out.flush()?;
        if !args.wait {
            return Ok(Outcome::Done);
        }
        let finished = match state {
            Some(f) => f,
            None => dispatch::client::wait(&client, &namespace, &name).await?,
        };
        if !finished.succeeded {
            return Err(dispatch::DispatchError::JobFailed {
                namespace,
                name,
                reason: finished.reason,
                message: finished.message,
            }
            .into());
        }
        if args.json {
            writeln!(out, "{}", serde_json::json!({"outcome": "complete", "namespace": namespace, "name": name}))?;
        } else {
            writeln!(out, "job {namespace}/{name} complete")?;
        }
        Ok(Outcome::Done)
    })
}

fn run_serve(out: &mut impl Write, args: ServeArgs) -> anyhow::Result<Outcome> {
    let config = args.dispatcher.resolve()?;
    let limits = serve::Limits { max_body_bytes: args.max_body_bytes, ..serve::Limits::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async {
        let client = dispatch::client::client().await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr()?;
        let state = serve::AppState::new(config, serve::Secrets::from_env(), client, args.presets_dir, limits);
        tracing::info!(%addr, "listening");
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        serve::serve(listener, state, serve::shutdown_signal()).await.context("serving webhooks")?;
        Ok(Outcome::Done)
    })
}

fn load_preset(args: &PresetArgs) -> anyhow::Result<preset::Preset> {
    Ok(preset::resolve(&args.preset, Some(&args.presets_dir))?)
}

fn check_presets(out: &mut impl Write, files: &[PathBuf], json: bool) -> anyhow::Result<Outcome> {
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut bad_files = 0;
    for file in files {
        let found = match preset::load_file(file) {
            Ok(_) => Vec::new(),
            Err(PresetError::Invalid { diagnostics, .. }) => diagnostics,
            Err(e) => vec![Diagnostic {
                file: file.display().to_string(),
                line: 1,
                column: 1,
                key: String::new(),
                message: e.to_string(),
                fix: "check the path".to_owned(),
            }],
        };
        bad_files += usize::from(!found.is_empty());
        all.extend(found);
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        for d in &all {
            writeln!(out, "{d}")?;
        }
        let ok = files.len() - bad_files;
        writeln!(
            out,
            "{} preset(s) checked: {ok} valid, {bad_files} with problems ({} problem(s))",
            files.len(),
            all.len()
        )?;
    }
    Ok(if all.is_empty() { Outcome::Done } else { Outcome::Usage })
}

fn list_presets(out: &mut impl Write, dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for name in preset::builtin_names() {
        let text = preset::builtin_text(name).expect("a listed built-in has text");
        let p = preset::load_str(text, name)?;
        rows.push(serde_json::json!({"name": name, "source": "built-in", "description": p.description, "rungs": p.rungs.len(), "codec": p.video.codec}));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if preset::builtin_names().any(|n| preset::builtin_text(n) == Some(text.as_str())) {
                continue; // the shipped copy of a built-in
            }
            let row = match preset::load_file(&path) {
                Ok(p) => {
                    serde_json::json!({"name": p.name, "source": path.display().to_string(), "description": p.description, "rungs": p.rungs.len(), "codec": p.video.codec})
                }
                Err(_) => {
                    serde_json::json!({"name": path.file_stem().map(|s| s.to_string_lossy().into_owned()), "source": path.display().to_string(), "description": "INVALID: run `ladder presets check` on it", "rungs": 0, "codec": null})
                }
            };
            rows.push(row);
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    for r in rows {
        writeln!(
            out,
            "{:<10} {:<6} {:>2} rungs  {:<24} {}",
            r["name"].as_str().unwrap_or("?"),
            r["codec"].as_str().unwrap_or("-"),
            r["rungs"],
            r["source"].as_str().unwrap_or("?"),
            r["description"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

fn write_probe(out: &mut impl Write, p: &Probe) -> std::io::Result<()> {
    let v = &p.video;
    let rate = |r: Option<crate::rate::FrameRate>| {
        r.map_or_else(|| "unknown".to_owned(), |r| format!("{r} ({:.3})", r.as_f64()))
    };
    writeln!(out, "{}", p.path)?;
    writeln!(out, "  container   {} ({}), {} bytes", p.container, p.container_long_name, p.size_bytes)?;
    writeln!(out, "  duration    {:.3} s", p.duration_seconds)?;
    writeln!(
        out,
        "  video       #{} {}{} {}x{} (displayed {}x{}{}), {} {}-bit",
        v.index,
        v.codec,
        v.profile.as_deref().map(|x| format!(" {x}")).unwrap_or_default(),
        v.width,
        v.height,
        v.display_width,
        v.display_height,
        if v.rotation != 0 { format!(", rotated {}°", v.rotation) } else { String::new() },
        v.pixel_format,
        v.bit_depth
    )?;
    writeln!(
        out,
        "  frame rate  nominal {}, average {}, {}",
        rate(v.nominal_fps),
        rate(v.average_fps),
        if v.variable_frame_rate { "variable" } else { "constant" }
    )?;
    writeln!(
        out,
        "  scan        {}",
        if v.interlaced { format!("interlaced ({})", v.field_order) } else { v.field_order.clone() }
    )?;
    match &p.audio {
        Some(a) => writeln!(
            out,
            "  audio       #{} {} {} Hz {} ({} ch), {}",
            a.index, a.codec, a.sample_rate, a.layout, a.channels, a.sample_format
        )?,
        None => writeln!(out, "  audio       none")?,
    }
    for s in &p.streams {
        writeln!(out, "  stream #{}   {} {}", s.index, s.kind, s.codec)?;
    }
    for d in &p.discontinuities {
        writeln!(
            out,
            "  jump        at {:.3} s the timestamps jump {:+.3} s: taken out",
            d.at_seconds, d.jump_seconds
        )?;
    }
    if let Some(why) = &p.remux {
        writeln!(out, "  transcoded  from a re-based Matroska copy: {why}")?;
    }
    Ok(())
}

fn write_plan(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    let s = &plan.source;
    writeln!(out, "{} with preset {} ({})", s.path, plan.preset.name, &plan.preset.hash[..12])?;
    writeln!(
        out,
        "  source   {}x{} displayed {}x{}, {:.3} s{}{}{}",
        s.width,
        s.height,
        s.display_width,
        s.display_height,
        s.duration_seconds,
        if s.rotation != 0 { format!(", rotated {}°", s.rotation) } else { String::new() },
        if s.interlaced { ", interlaced → deinterlace" } else { "" },
        if s.variable_frame_rate { ", variable frame rate" } else { "" }
    )?;
    writeln!(
        out,
        "  output   {} fps ({}), {} frames = {:.3} s",
        plan.fps, plan.fps_reason, plan.total_frames, plan.duration_seconds
    )?;
    writeln!(
        out,
        "  grid     GOP {} frames, segment {} frames ({:.3} s), {} segments in {} chunks",
        plan.gop_frames,
        plan.segment_frames,
        f64::from(plan.segment_frames) / plan.fps.as_f64(),
        plan.segments.len(),
        plan.chunks.len()
    )?;
    for r in &plan.rungs {
        writeln!(
            out,
            "  v{:<3}     {:<10} {:>4}x{:<4} {:>6} kbit/s (max {}, buffer {} kbit)",
            r.index, r.name, r.width, r.height, r.bitrate_kbps, r.maxrate_kbps, r.bufsize_kbit
        )?;
    }
    for r in &plan.skipped_rungs {
        writeln!(out, "  skipped  {:<10} {}", r.name, r.reason)?;
    }
    match &plan.audio {
        Some(a) => writeln!(
            out,
            "  a0       AAC-LC {} Hz {} ch {} kbit/s from stream #{}",
            a.sample_rate, a.channels, a.bitrate_kbps, a.source_stream
        )?,
        None => writeln!(out, "  audio    none (video-only ladder)")?,
    }
    if let Some(t) = &plan.thumbnails {
        writeln!(
            out,
            "  thumbs   {} stills {}x{} every {} s in {} sprite(s) of {}x{}; poster {}x{}",
            t.still_frames.len(),
            t.width,
            t.height,
            t.interval_seconds,
            t.sprite_count,
            t.sprite_columns,
            t.sprite_rows,
            t.poster_width,
            t.poster_height
        )?;
    }
    Ok(())
}

fn run_ladder(out: &mut impl Write, args: &RunArgs) -> anyhow::Result<Outcome> {
    let preset = load_preset(&args.preset)?;
    let progress = match args.progress {
        ProgressArg::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
        ProgressArg::Auto | ProgressArg::Lines => ProgressMode::Lines,
        ProgressArg::Bars => ProgressMode::Bars,
        ProgressArg::Off => ProgressMode::Off,
    };
    let request = RunRequest {
        input: Location::parse(&args.input)?,
        out: Location::parse(&args.out)?,
        preset,
        jobs: args.jobs.map(usize::from),
        scratch: args.scratch.clone(),
        quality: args.quality,
        limits: args.limits.limits(),
        progress,
        shard: match args.shard {
            Some(shard) => shard,
            None => shard_from_job_env()?,
        },
        storage: args.s3.config()?,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal exits at once; the first asks the workers to stop.
        signal_hook::flag::register_conditional_shutdown(signal, Outcome::Interrupted as i32, cancel.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, cancel.clone()).context("installing signal handlers")?;
    }
    let summary = crate::run::run(&request, &cancel)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else if summary.published.is_none() {
        writeln!(
            out,
            "shard {} done ({} chunks encoded); chunks {:?} are left to other shards, the last to finish publishes",
            request.shard,
            summary.chunks_encoded.len(),
            summary.waiting_for
        )?;
    } else {
        writeln!(
            out,
            "done: {} ({} rungs, {:.1} s of media in {:.1} s, {:.2}× realtime, {:.1} CPU s)",
            summary.published.as_deref().unwrap_or_default(),
            summary.rungs.len(),
            summary.duration_seconds,
            summary.wall_seconds,
            summary.speed,
            summary.cpu_seconds
        )?;
        for r in &summary.rungs {
            let quality = match (r.psnr_db, r.ssim) {
                (Some(p), Some(s)) => format!(", PSNR {p:.2} dB, SSIM {s:.4}"),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {} {}x{} {}: {:.0} kbit/s average, {:.0} peak, {} segments{quality}",
                r.dir, r.width, r.height, r.codec, r.average_kbps, r.peak_kbps, r.segments
            )?;
        }
    }
    Ok(Outcome::Done)
}

/// The shard of a pod in an Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes) of
/// `LADDER_SHARDS` (set by `ladder dispatch`); the whole job otherwise.
fn shard_from_job_env() -> anyhow::Result<Shard> {
    let (Ok(index), Ok(count)) = (std::env::var("JOB_COMPLETION_INDEX"), std::env::var("LADDER_SHARDS")) else {
        return Ok(Shard::ALL);
    };
    Shard::parse(&format!("{index}/{count}"))
        .map_err(|e| UsageError(format!("JOB_COMPLETION_INDEX / LADDER_SHARDS: {e}")).into())
}
