//! The output's owner. An output holds the ladder of one (recording, preset) at a time:
//! a run claims it with a conditional create of `.ladder/lease.json` (`O_EXCL` locally,
//! `If-None-Match: *` on S3), shards and reruns of the same job share the claim, and a run
//! for anything else refuses (exit 2) unless told to overwrite. A claim is renewed while
//! its run stores chunks and expires [`TTL`] after the last renewal, so the lease of a
//! crashed run does not block an `--overwrite` for long, while a live one always does.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::RunError;
use crate::layout;
use crate::location::Output;
use crate::plan::Plan;

/// How long a claim lasts without renewal.
pub(super) const TTL: Duration = Duration::from_secs(10 * 60);

/// What an output holds: the recording's location and the preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub(crate) input: String,
    pub(crate) preset: String,
    pub(crate) preset_hash: String,
}

/// `.ladder/lease.json`.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    owner: Owner,
    /// Takeovers of this output so far: its media lies under [`layout::Media::of`] this.
    #[serde(default)]
    generation: u32,
    /// Left by a run that stored nothing (see [`Lease::withdraw`]): the output is free.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    withdrawn: bool,
    /// The claimant has not yet removed the previous owner's files ([`Lease::take_over`]):
    /// other processes of its job must not store anything yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    taking_over: bool,
    /// The process that last renewed it (`host:pid`), for messages.
    holder: String,
    /// Unix seconds.
    renewed_at: u64,
    expires_at: u64,
}

/// This run's claim on its output.
pub(super) struct Lease {
    owner: Owner,
    generation: u32,
    renewed: Instant,
    /// With `--overwrite`, the owner whose files are still there until [`Lease::take_over`]
    /// removes them (once the input is known to be good), or [`Lease::restore`] gives the
    /// output back.
    previous: Option<LeaseRecord>,
}

impl Lease {
    /// Claims `out` for `owner`. Another owner's output is refused, or with `overwrite`
    /// taken over (emptied by [`Lease::take_over`]); one being written right now (an
    /// unexpired lease) is always refused.
    pub(super) fn claim(out: &dyn Output, owner: Owner, overwrite: bool) -> Result<Self, RunError> {
        for _ in 0..3 {
            let (generation, previous) = match LeaseRecord::read(out)? {
                Some(current) if current.owner == owner && current.taking_over && current.expires_at > unix_now() => {
                    return Err(RunError::Inconsistent(format!(
                        "{}: another process of this job is taking the output over from another recording right now; \
                         run again in a moment",
                        out.describe()
                    )));
                }
                Some(current) if current.owner == owner => {
                    out.put(layout::LEASE, &LeaseRecord::now(&owner, current.generation).to_json())?;
                    let generation = current.generation;
                    return Ok(Self { owner, generation, renewed: Instant::now(), previous: None });
                }
                // Left by a run that stored nothing: free, but its media names stay retired.
                Some(current) if current.withdrawn => (current.generation + 1, None),
                Some(current) => {
                    refuse_unless_free(out, &current, overwrite)?;
                    out.delete(layout::LEASE)?;
                    // Names the CDN may still hold with the old bytes are never used again.
                    (current.generation + 1, Some(current))
                }
                None => (0, None),
            };
            // Two runs that both found the output free: only one creates the lease.
            let mut record = LeaseRecord::now(&owner, generation);
            record.taking_over = previous.is_some();
            if out.create(layout::LEASE, &record.to_json())? {
                return Ok(Self { owner, generation, renewed: Instant::now(), previous });
            }
        }
        Err(RunError::Inconsistent(format!(
            "{}: another run keeps claiming this output at the same time; try again",
            out.describe()
        )))
    }

    /// Renews the claim when a third of its time has passed.
    pub(super) fn renew_if_due(&mut self, out: &dyn Output) -> Result<(), RunError> {
        if self.renewed.elapsed() >= TTL / 3 {
            out.put(layout::LEASE, &LeaseRecord::now(&self.owner, self.generation).to_json())?;
            self.renewed = Instant::now();
        }
        Ok(())
    }
}

impl Lease {
    /// Withdraws a claim under which nothing was stored (the run failed before its plan was
    /// written): the output is as free as before. Best effort, like [`Lease::release`].
    pub(super) fn withdraw(self, out: &dyn Output) {
        // After a takeover the output's earlier media names stay retired: a record of the
        // generation stays, marked free.
        let withdrawn = match self.generation {
            0 => out.delete(layout::LEASE),
            generation => {
                let mut record = LeaseRecord::now(&self.owner, generation);
                (record.withdrawn, record.expires_at) = (true, record.renewed_at);
                out.put(layout::LEASE, &record.to_json())
            }
        };
        if let Err(e) = withdrawn {
            tracing::warn!(error = %e, "withdrawing the output's lease: it expires by itself");
        }
    }

    /// With `--overwrite`, removes the previous owner's files: called once the input has
    /// been fetched, probed and planned, so a bad input never costs the ladder it replaces.
    pub(super) fn take_over(&mut self, out: &dyn Output) -> Result<(), RunError> {
        if let Some(previous) = self.previous.take() {
            tracing::warn!(
                output = out.describe(),
                input = previous.owner.input,
                "--overwrite: removing another recording's ladder"
            );
            empty(out)?;
            out.put(layout::LEASE, &LeaseRecord::now(&self.owner, self.generation).to_json())?;
            self.renewed = Instant::now();
        }
        Ok(())
    }

    /// Whether the previous owner's files are still there ([`Lease::take_over`] not done).
    pub(super) fn taking_over(&self) -> bool {
        self.previous.is_some()
    }

    /// Gives the output back to its previous owner, untouched: the run failed before taking
    /// it over. Best effort, like [`Lease::release`].
    pub(super) fn restore(self, out: &dyn Output) {
        if let Some(previous) = &self.previous
            && let Err(e) = out.put(layout::LEASE, &previous.to_json())
        {
            tracing::warn!(error = %e, "giving the output back to its previous owner: its lease expires by itself");
        }
    }

    /// Where this output's media lies.
    pub(super) fn media(&self) -> layout::Media {
        layout::Media::of(self.generation)
    }

    /// Ends the claim (expires it now): the run published, or failed for good. Best effort:
    /// a lease left behind expires by itself.
    pub(super) fn release(self, out: &dyn Output) {
        let mut record = LeaseRecord::now(&self.owner, self.generation);
        record.expires_at = record.renewed_at;
        if let Err(e) = out.put(layout::LEASE, &record.to_json()) {
            tracing::warn!(error = %e, "releasing the output's lease: it expires by itself");
        }
    }
}

/// Refuses another owner's output unless `overwrite`, and a live one in any case.
fn refuse_unless_free(out: &dyn Output, current: &LeaseRecord, overwrite: bool) -> Result<(), RunError> {
    let live = current.expires_at > unix_now();
    if overwrite && !live {
        return Ok(());
    }
    Err(RunError::Owned {
        output: out.describe(),
        input: current.owner.input.clone(),
        preset: current.owner.preset.clone(),
        writer: live.then(|| current.holder.clone()),
    })
}

/// Removes everything under the output but the lease, the published markers first so that
/// no master ever names a half-removed set.
fn empty(out: &dyn Output) -> Result<(), RunError> {
    for key in layout::PUBLISHED {
        out.delete(key)?;
    }
    for key in out.list()?.into_iter().filter(|k| k != layout::LEASE) {
        out.delete(&key)?;
    }
    Ok(())
}

impl LeaseRecord {
    fn now(owner: &Owner, generation: u32) -> Self {
        let now = unix_now();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        Self {
            owner: owner.clone(),
            generation,
            withdrawn: false,
            taking_over: false,
            holder: format!("{host}:{}", std::process::id()),
            renewed_at: now,
            expires_at: now + TTL.as_secs(),
        }
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a lease is plain data and always serialises")
    }

    /// The lease of the output; for an output an older ladder wrote (no lease), its plan's
    /// recording and preset, expired.
    fn read(out: &dyn Output) -> Result<Option<Self>, RunError> {
        if let Some(bytes) = out.get(layout::LEASE)? {
            return Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| Self::unknown())));
        }
        let Some(bytes) = out.get(layout::PLAN)? else { return Ok(None) };
        let owner = serde_json::from_slice::<Plan>(&bytes).map(|plan| Owner {
            input: plan.source.path,
            preset: plan.preset.name,
            preset_hash: plan.preset.hash,
        });
        Ok(Some(match owner {
            Ok(owner) => Self::expired(owner),
            Err(_) => Self::unknown(),
        }))
    }

    /// A lease that cannot be read: another, unknown owner, expired.
    fn unknown() -> Self {
        let owner = Owner { input: "an unknown recording".into(), preset: "?".into(), preset_hash: String::new() };
        Self::expired(owner)
    }

    /// An expired lease of `owner`, of an output's first generation.
    fn expired(owner: Owner) -> Self {
        let (withdrawn, taking_over, holder) = (false, false, String::new());
        Self { owner, generation: 0, withdrawn, taking_over, holder, renewed_at: 0, expires_at: 0 }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
