//! `ladder dispatch`: build the Job, then print it (`--dry-run`) or create it and, with
//! `--wait`, watch it to the end.

use std::io::Write;

use anyhow::Context as _;
use k8s_openapi::api::batch::v1::Job;

use crate::dispatch::{self, Created, DispatchError, Finished};
use crate::exit::Outcome;
use crate::preset;

use super::args::DispatchArgs;

/// Builds the Job for the recording and prints or creates it.
pub(crate) fn execute(out: &mut impl Write, args: &DispatchArgs) -> anyhow::Result<Outcome> {
    let config = args.dispatcher.resolve()?;
    let preset_name = args.preset.as_deref().unwrap_or(&config.default_preset);
    let preset = preset::resolve(preset_name, Some(&args.presets_dir.presets_dir))?;
    let request = dispatch::JobRequest {
        tenant: args.tenant.clone(),
        input: args.input.clone(),
        output: args.out.clone(),
        preset: &preset,
        shards: args.shards,
        recording_ended: args.recording_ended,
        trim: args.trim.trim()?,
        subtitles: args.subtitles.sidecars()?,
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
    runtime.block_on(create(out, args, &job))
}

/// Creates the Job (or finds it made already), says which, and with `--wait` watches it.
async fn create(out: &mut impl Write, args: &DispatchArgs, job: &Job) -> anyhow::Result<Outcome> {
    let client = dispatch::client::client().await?;
    let created = dispatch::client::create(&client, job).await?;
    let metadata = &created.job().metadata;
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let name = metadata.name.clone().unwrap_or_default();
    let state = dispatch::client::finished(created.job());
    if args.json {
        writeln!(out, "{}", serde_json::json!({"outcome": created.word(), "namespace": namespace, "name": name}))?;
    } else {
        write_created(out, &created, state.as_ref(), &format!("{namespace}/{name}"))?;
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
        let Finished { reason, message, .. } = finished;
        return Err(DispatchError::JobFailed { namespace, name, reason, message }.into());
    }
    if args.json {
        writeln!(out, "{}", serde_json::json!({"outcome": "complete", "namespace": namespace, "name": name}))?;
    } else {
        writeln!(out, "job {namespace}/{name} complete")?;
    }
    Ok(Outcome::Done)
}

/// `job` is `namespace/name`.
fn write_created(out: &mut impl Write, created: &Created, state: Option<&Finished>, job: &str) -> std::io::Result<()> {
    match (created, state) {
        (Created::New(_), _) => writeln!(out, "created job {job}"),
        (Created::Existing(_), Some(f)) => writeln!(
            out,
            "job {job} exists already and has {} ({})",
            if f.succeeded { "completed" } else { "failed" },
            f.reason
        ),
        (Created::Existing(_), None) => writeln!(out, "job {job} exists already and is still running"),
    }
}
