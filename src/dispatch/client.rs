//! Talking to the API server: create a Job (a repeat finds the existing one), and watch a
//! Job until it finishes.

use futures_util::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

use super::DispatchError;

/// What creating a Job did.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new Job.
    New(Box<Job>),
    /// The Job already existed (the same tenant, input and preset): nothing new was made.
    Existing(Box<Job>),
}

impl Created {
    /// The Job as the API server returned it.
    pub fn job(&self) -> &Job {
        match self {
            Self::New(j) | Self::Existing(j) => j,
        }
    }

    /// `created` or `existing`, for output and metrics.
    pub fn word(&self) -> &'static str {
        match self {
            Self::New(_) => "created",
            Self::Existing(_) => "existing",
        }
    }
}

/// How a watched Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub succeeded: bool,
    /// The condition's reason, e.g. `BackoffLimitExceeded`, `PodFailurePolicy`.
    pub reason: String,
    pub message: String,
}

/// A client from the usual places: in-cluster service account, else `KUBECONFIG` or
/// `~/.kube/config`.
pub(crate) async fn client() -> Result<kube::Client, DispatchError> {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube::Client::try_default().await.map_err(|e| DispatchError::Connect { message: format!("{e:#}") })
}

/// Creates the Job; if a Job of that name exists, returns it instead.
#[tracing::instrument(skip_all, fields(namespace = tracing::field::Empty, job = tracing::field::Empty))]
pub(crate) async fn create(client: &kube::Client, job: &Job) -> Result<Created, DispatchError> {
    let namespace = job.metadata.namespace.clone().expect("build_job sets the namespace");
    let name = job.metadata.name.clone().expect("build_job sets the name");
    tracing::Span::current().record("namespace", namespace.as_str()).record("job", name.as_str());
    let api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    match api.create(&PostParams::default(), job).await {
        Ok(created) => {
            tracing::info!("created Job");
            Ok(Created::New(Box::new(created)))
        }
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "AlreadyExists" => {
            tracing::info!("Job exists already");
            let existing = api.get(&name).await.map_err(|e| api_error(e, &namespace, &name))?;
            Ok(Created::Existing(Box::new(existing)))
        }
        Err(e) => Err(api_error(e, &namespace, &name)),
    }
}

/// Watches a Job until it is Complete or Failed. Re-watches when the server ends a watch,
/// and starts over from a fresh read when the resource version has expired (410).
#[tracing::instrument(skip(client))]
pub(crate) async fn wait(client: &kube::Client, namespace: &str, name: &str) -> Result<Finished, DispatchError> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    'fresh: loop {
        let job = api.get(name).await.map_err(|e| api_error(e, namespace, name))?;
        if let Some(done) = finished(&job) {
            return Ok(done);
        }
        let mut version = job.metadata.resource_version.clone().unwrap_or_else(|| "0".to_owned());
        loop {
            let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(290);
            let stream = api.watch(&params, &version).await.map_err(|e| api_error(e, namespace, name))?;
            let mut stream = stream.boxed();
            while let Some(event) = stream.try_next().await.map_err(|e| api_error(e, namespace, name))? {
                match event {
                    WatchEvent::Added(job) | WatchEvent::Modified(job) => {
                        if let Some(done) = finished(&job) {
                            return Ok(done);
                        }
                        if let Some(v) = job.metadata.resource_version {
                            version = v;
                        }
                    }
                    WatchEvent::Deleted(_) => {
                        return Err(DispatchError::Api {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                            code: 404,
                            reason: "Deleted".to_owned(),
                            message: "the Job was deleted before it finished".to_owned(),
                        });
                    }
                    WatchEvent::Bookmark(b) => version = b.metadata.resource_version,
                    WatchEvent::Error(status) if status.code == 410 => {
                        tracing::debug!("watch expired, reading the Job again");
                        continue 'fresh;
                    }
                    WatchEvent::Error(status) => return Err(api_error(kube::Error::Api(status), namespace, name)),
                }
            }
            tracing::debug!(version, "watch ended, watching again");
        }
    }
}

/// The Job's final state, if it has one.
pub(crate) fn finished(job: &Job) -> Option<Finished> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed")).map(|c| Finished {
        succeeded: c.type_ == "Complete",
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
    })
}

fn api_error(e: kube::Error, namespace: &str, name: &str) -> DispatchError {
    match e {
        kube::Error::Api(status) => DispatchError::Api {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            code: status.code,
            reason: status.reason,
            message: status.message,
        },
        other => DispatchError::Connect { message: format!("{other:#}") },
    }
}
