//! Dispatch: a recording and a preset → a low-priority transcode Job on the tainted pool.
//!
//! [`DispatchConfig`] resolves the settings once ([`config`]); [`build_job`] turns a
//! `JobRequest` into a `batch/v1` Job (`job`); `client` creates it (a repeat finds
//! the existing Job) and watches it to the end.

pub(crate) mod client;
pub mod config;
pub mod job;

use std::path::PathBuf;

pub use client::{Created, Finished};
pub use config::{DispatchConfig, RawConfig, TenantRoute};
pub use job::{JobRequest, build_job, job_name};

use crate::exit::{ExitClass, Outcome};

/// Why a dispatch failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot read dispatcher config {path}: {source}")]
    ConfigRead { path: PathBuf, source: std::io::Error },
    #[error("dispatcher config: {message} — {fix}")]
    Config { message: String, fix: String },
    #[error("tenant {tenant:?} is invalid: {why}")]
    Tenant { tenant: String, why: String },
    #[error("{message}")]
    Request { message: String },
    #[error("cannot reach the Kubernetes API server: {message}")]
    Connect { message: String },
    #[error("Job {namespace}/{name}: the API server answered {code} {reason}: {message}{}", hint(*.code, .reason, .message, .namespace))]
    Api { namespace: String, name: String, code: u16, reason: String, message: String },
    #[error("Job {namespace}/{name} failed ({reason}): {message}")]
    JobFailed { namespace: String, name: String, reason: String, message: String },
}

fn hint(code: u16, reason: &str, message: &str, namespace: &str) -> String {
    if code == 403 && message.contains("exceeded quota") {
        format!(" — the tenant's ResourceQuota in {namespace} is full; retry when running Jobs finish, or raise it")
    } else if code == 403 {
        format!(" — the dispatcher's ServiceAccount needs the Role from jobs/ in {namespace}")
    } else if code == 404 && reason == "NotFound" && message.contains("namespaces") {
        format!(" — namespace {namespace} may not exist: onboard the tenant with jobs/tenant")
    } else {
        String::new()
    }
}

impl ExitClass for DispatchError {
    /// The exit code this failure maps to. A full quota, throttling and server errors pass;
    /// a Job failed by its pod failure policy (bad input or preset) does not.
    fn outcome(&self) -> Outcome {
        match self {
            Self::ConfigRead { .. } | Self::Config { .. } | Self::Tenant { .. } | Self::Request { .. } => {
                Outcome::Usage
            }
            Self::Connect { .. } => Outcome::Transient,
            Self::Api { code, message, .. } => {
                if *code == 429 || *code >= 500 || (*code == 403 && message.contains("exceeded quota")) {
                    Outcome::Transient
                } else {
                    Outcome::Usage
                }
            }
            Self::JobFailed { reason, .. } if reason == "PodFailurePolicy" => Outcome::BadInput,
            Self::JobFailed { .. } => Outcome::Transient,
        }
    }
}
