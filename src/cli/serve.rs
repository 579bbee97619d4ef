//! `ladder serve`: listen for webhooks until SIGINT/SIGTERM.

use std::io::Write;

use anyhow::Context as _;

use crate::exit::{Outcome, UsageError};
use crate::{dispatch, serve};

use super::args::ServeArgs;

/// Binds the address, says where it listens, and serves until a signal.
pub(crate) fn execute(out: &mut impl Write, args: ServeArgs) -> anyhow::Result<Outcome> {
    let config = args.dispatcher.resolve()?;
    let limits = serve::Limits {
        max_body_bytes: args.max_body_bytes,
        max_concurrent_creates: args.max_concurrent_creates,
        dispatch_deadline: std::time::Duration::from_secs(args.dispatch_deadline_seconds),
        ..serve::Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async {
        let client = dispatch::client::client().await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr()?;
        let presets_dir = args.presets_dir.presets_dir;
        let state = serve::AppState::new(config, serve::Secrets::from_env(), client, presets_dir, limits);
        tracing::info!(%addr, "listening");
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        serve::serve(listener, state, serve::shutdown_signal()).await.context("serving webhooks")?;
        Ok(Outcome::Done)
    })
}
