//! From parsed flag groups to the library's settings types, each checked once here: what
//! clap cannot check is a [`UsageError`] (exit 2).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::dispatch::{DispatchConfig, RawConfig, config::RawPool};
use crate::exit::UsageError;
use crate::location::StorageConfig;
use crate::preset::{self, Preset, TrackLabel};
use crate::probe;
use crate::progress::ProgressMode;
use crate::trim::Trim;

use super::args::{DispatcherArgs, LimitArgs, MetricsArgs, PresetArgs, ProgressArg, S3Args, SubtitleArgs, TrimArgs};
use crate::run::Shard;

impl PresetArgs {
    /// The preset named by `--preset`: a file, a built-in, or one in `--presets-dir`.
    pub(crate) fn load(&self) -> anyhow::Result<Preset> {
        let preset = preset::resolve(&self.preset, Some(&self.dir.presets_dir))?;
        let preset = match &self.audio {
            Some(tracks) => preset.with_audio_tracks(tracks.clone()),
            None => preset,
        };
        let (labels, default_language) = self.audio_labels()?;
        Ok(if labels.is_empty() && default_language.is_none() {
            preset
        } else {
            preset.with_audio_labels(labels, default_language)
        })
    }

    /// `--audio-title`, `--audio-language` and `--default-audio-language`, checked.
    fn audio_labels(&self) -> anyhow::Result<(BTreeMap<u32, TrackLabel>, Option<String>)> {
        let mut labels: BTreeMap<u32, TrackLabel> = BTreeMap::new();
        let position = |n: &str, flag: &str| {
            n.parse::<u32>()
                .map_err(|_| UsageError(format!("{flag} {n}=…: {n} is not a position among the audio tracks")))
        };
        for entry in &self.audio_title {
            let (n, title) = key_value(entry, "--audio-title")?;
            labels.entry(position(&n, "--audio-title")?).or_default().title = Some(title);
        }
        for entry in &self.audio_language {
            let (n, language) = key_value(entry, "--audio-language")?;
            labels.entry(position(&n, "--audio-language")?).or_default().language = Some(bcp47(&language)?);
        }
        let default_language = self.default_audio_language.as_deref().map(bcp47).transpose()?;
        Ok((labels, default_language))
    }
}

impl TrimArgs {
    /// `--start`/`--end`, with an end after the start.
    pub(crate) fn trim(&self) -> anyhow::Result<Trim> {
        Ok(Trim::new(self.start, self.end).map_err(UsageError)?)
    }
}

impl LimitArgs {
    /// The input size limits the probe enforces.
    pub(crate) fn limits(&self) -> probe::Limits {
        probe::Limits { max_side: self.max_side, max_pixels: self.max_pixels }
    }
}

impl ProgressArg {
    /// `auto` is bars on a terminal that gets text logs, progress events in the log otherwise.
    pub(crate) fn mode(self) -> ProgressMode {
        match self {
            Self::Auto => ProgressMode::auto(),
            Self::Lines => ProgressMode::Lines,
            Self::Bars => ProgressMode::Bars,
            Self::Off => ProgressMode::Off,
        }
    }
}

impl S3Args {
    /// The storage settings; a read timeout that is not a positive number of seconds is a
    /// usage error.
    pub(crate) fn config(&self) -> anyhow::Result<StorageConfig> {
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
            stream_input: self.s3_input == super::args::InputMode::Stream,
            read_block: u64::from(self.s3_read_block_kib) * 1024,
            ..StorageConfig::default()
        })
    }
}

impl DispatcherArgs {
    /// The one place dispatcher settings are resolved: defaults, file, then these.
    pub(crate) fn resolve(&self) -> anyhow::Result<DispatchConfig> {
        let file = match &self.config {
            Some(path) => DispatchConfig::read_file(path)?,
            None => RawConfig::default(),
        };
        let flags = RawConfig {
            image: self.image.clone(),
            priority_class: self.priority_class.clone(),
            namespace_pattern: self.namespace_pattern.clone(),
            service_account: self.service_account.clone(),
            storage_secret: self.storage_secret.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            backoff_limit: self.backoff_limit,
            active_deadline_seconds: self.active_deadline_seconds,
            ttl_seconds_after_finished: self.ttl_seconds_after_finished,
            metrics_url: self.metrics_url.clone(),
            queue: self.queue.clone(),
            pool: Some(self.pool()?),
            ..RawConfig::default()
        };
        Ok(DispatchConfig::resolve(file, flags)?)
    }

    /// `--pool-taint` and `--node-selector`.
    fn pool(&self) -> anyhow::Result<RawPool> {
        let mut pool = RawPool::default();
        if let Some(taint) = &self.pool_taint {
            let (key, value) = key_value(taint, "--pool-taint")?;
            pool.taint_key = Some(key);
            pool.taint_value = Some(value);
        }
        if !self.node_selector.is_empty() {
            pool.node_selector = Some(
                self.node_selector.iter().map(|s| key_value(s, "--node-selector")).collect::<anyhow::Result<_>>()?,
            );
        }
        Ok(pool)
    }
}

/// A language given on the command line, as BCP 47.
fn bcp47(tag: &str) -> anyhow::Result<String> {
    crate::language::bcp47(tag)
        .ok_or_else(|| UsageError(format!("{tag:?} is not a language tag: use one such as en, de or pt-BR")).into())
}

impl SubtitleArgs {
    /// `--subtitles LANG=PATH`, each with a BCP 47 tag and a location (the files are read
    /// when the run plans).
    pub(crate) fn sidecars(&self) -> anyhow::Result<Vec<crate::subtitles::Sidecar>> {
        self.subtitles
            .iter()
            .map(|entry| {
                let (language, path) = key_value(entry, "--subtitles")?;
                if path.is_empty() {
                    return Err(UsageError(format!("--subtitles {entry:?}: no file after `=`")).into());
                }
                let language = bcp47(&language).map_err(|e| UsageError(format!("--subtitles {entry:?}: {e}")))?;
                Ok(crate::subtitles::Sidecar { language, location: crate::location::Location::parse(&path)? })
            })
            .collect()
    }
}

/// `key=value`, both sides trimmed.
fn key_value(s: &str, flag: &str) -> anyhow::Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| UsageError(format!("{flag} {s:?} must be key=value")).into())
}

impl MetricsArgs {
    /// The run's metrics pusher (idle without `--metrics-url`).
    pub(crate) fn pusher(&self, preset: &str, shard: Shard) -> crate::metrics::Pusher {
        // The preset's name: a path names it by its file.
        let preset =
            std::path::Path::new(preset).file_stem().map_or_else(|| preset.to_owned(), |s| s.to_string_lossy().into());
        crate::metrics::Pusher::start(crate::metrics::PushSettings {
            url: self.metrics_url.clone(),
            interval: Duration::from_secs(self.metrics_interval),
            labels: crate::metrics::JobLabels {
                tenant: self.tenant.clone(),
                preset,
                job: self.job_name.clone(),
                shard: shard.index.to_string(),
            },
            shards: shard.count,
            recording_ended: self.recording_ended,
        })
    }
}
