//! Authenticated webhook bodies → the recordings to transcode. Nothing here is called
//! before the request has been verified.

use jiff::Timestamp;
use serde::Deserialize;

use crate::dispatch::DispatchConfig;
use crate::dispatch::config::is_dns_label;
use crate::trim::Trim;

/// One recording to dispatch, with its route resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recording {
    pub tenant: String,
    pub input: String,
    pub output: String,
    /// A preset name (never a path); the tenant's or the dispatcher's default when `None`.
    pub preset: Option<String>,
    /// When the recording ended, as the event says: time-to-VOD is measured from it.
    pub recording_ended: Option<Timestamp>,
    /// The part to keep (a generic event's `start`/`end`).
    pub trim: Trim,
    /// Subtitle files to add (generic events only).
    pub subtitles: Vec<crate::subtitles::Sidecar>,
}

/// Why an authentic event cannot be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EventError {
    #[error("body is not a valid {kind} event: {why}")]
    Malformed { kind: &'static str, why: String },
    #[error("bucket {0:?} is not mapped to a tenant (add it under [buckets] in the dispatcher config)")]
    UnknownBucket(String),
    #[error("tenant {0:?} is not configured (add [tenants.{0}] to the dispatcher config)")]
    UnknownTenant(String),
    #[error("preset {0:?} is not a preset name")]
    BadPreset(String),
    #[error("bucket {bucket:?} belongs to tenant {owner:?}, not {tenant:?}")]
    ForeignBucket { bucket: String, owner: String, tenant: String },
}

/// File extensions of recordings. Other objects (ladder's own outputs written back to a
/// watched bucket, sidecar JSON) are ignored rather than transcoded.
const RECORDING_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "ts", "flv", "ogg", "mp3", "m4a"];

/// S3 / MinIO bucket notification (the AWS event structure both send).
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    event_name: String,
    /// When the object was written (RFC 3339): the recording is complete from then on.
    #[serde(default)]
    event_time: Option<String>,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    /// URL-encoded (`+` for space), as S3 sends it.
    key: String,
}

/// The recordings an S3 notification announces. Every bucket must be mapped before any
/// is dispatched, so a half-known event dispatches nothing.
pub(crate) fn s3(body: &[u8], config: &DispatchConfig) -> Result<Vec<Recording>, EventError> {
    let event: S3Notification = serde_json::from_slice(body)
        .map_err(|e| EventError::Malformed { kind: "S3 notification", why: e.to_string() })?;
    let mut out = Vec::new();
    for record in event.records {
        if !record.event_name.contains("ObjectCreated") {
            continue;
        }
        let bucket = record.s3.bucket.name;
        let key = url_decode(&record.s3.object.key).ok_or_else(|| EventError::Malformed {
            kind: "S3 notification",
            why: "object key is not URL-encoded UTF-8".into(),
        })?;
        let tenant = config.buckets.get(&bucket).ok_or_else(|| EventError::UnknownBucket(bucket.clone()))?;
        if !is_recording(&key) {
            continue;
        }
        let mut rec = route(config, tenant, &bucket, &key, None)?;
        rec.recording_ended = record.event_time.as_deref().and_then(|t| t.parse().ok());
        out.push(rec);
    }
    Ok(out)
}

/// LiveKit `WebhookEvent`, the parts ladder reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveKitEvent {
    event: String,
    #[serde(default)]
    egress_info: Option<EgressInfo>,
    /// When the event was sent (Unix seconds).
    #[serde(default)]
    created_at: Option<ProtoInt>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EgressInfo {
    #[serde(default)]
    status: String,
    #[serde(default)]
    file_results: Vec<FileInfo>,
    /// When the egress ended, and when it last changed (Unix nanoseconds).
    #[serde(default)]
    ended_at: Option<ProtoInt>,
    #[serde(default)]
    updated_at: Option<ProtoInt>,
}

/// A protobuf `int64` in JSON: a string by the proto3 mapping, a number from some senders.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "serde_json::Value")]
struct ProtoInt(i64);

impl TryFrom<serde_json::Value> for ProtoInt {
    type Error = String;

    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        match &v {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .map(Self)
        .ok_or_else(|| format!("{v} is not an integer"))
    }
}

impl ProtoInt {
    /// The time of a Unix timestamp in seconds, milliseconds or nanoseconds (by magnitude:
    /// LiveKit's egress times are nanoseconds, its event time seconds); zero is unset.
    fn time(self) -> Option<Timestamp> {
        let v = self.0;
        let t = match v.unsigned_abs() {
            0 => return None,
            n if n >= 100_000_000_000_000_000 => Timestamp::from_nanosecond(i128::from(v)),
            n if n >= 100_000_000_000 => Timestamp::from_millisecond(v),
            _ => Timestamp::from_second(v),
        };
        t.ok()
    }
}

#[derive(Debug, Deserialize)]
struct FileInfo {
    #[serde(default)]
    location: String,
}

/// The recordings a LiveKit `egress_ended` event announces (none for other events or for
/// egresses that did not complete).
pub(crate) fn livekit(body: &[u8], config: &DispatchConfig) -> Result<Vec<Recording>, EventError> {
    let event: LiveKitEvent = serde_json::from_slice(body)
        .map_err(|e| EventError::Malformed { kind: "LiveKit webhook", why: e.to_string() })?;
    let Some(info) = event.egress_info.filter(|_| event.event == "egress_ended") else {
        return Ok(Vec::new());
    };
    if info.status != "EGRESS_COMPLETE" {
        return Ok(Vec::new());
    }
    let ended = [info.ended_at, info.updated_at, event.created_at].into_iter().flatten().find_map(ProtoInt::time);
    let mut out = Vec::new();
    for file in info.file_results {
        let (bucket, key) = locate(&file.location, config)?;
        let tenant = config.buckets.get(&bucket).ok_or_else(|| EventError::UnknownBucket(bucket.clone()))?;
        let mut rec = route(config, tenant, &bucket, &key, None)?;
        rec.recording_ended = ended;
        out.push(rec);
    }
    Ok(out)
}

/// Finds the bucket and key of an egress file location: `s3://bucket/key`, virtual-hosted
/// `https://bucket.s3….amazonaws.com/key`, or path-style `https://endpoint/bucket/key`.
/// Only configured buckets are recognised in URLs, since a host alone is ambiguous.
fn locate(location: &str, config: &DispatchConfig) -> Result<(String, String), EventError> {
    let malformed = || EventError::Malformed {
        kind: "LiveKit webhook",
        why: format!("file location {location:?} is not an S3 object"),
    };
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').ok_or_else(malformed)?;
        return Ok((bucket.to_owned(), key.to_owned()));
    }
    let rest = location.strip_prefix("https://").or_else(|| location.strip_prefix("http://")).ok_or_else(malformed)?;
    let (host, path) = rest.split_once('/').ok_or_else(malformed)?;
    let path = url_decode(path).ok_or_else(malformed)?;
    for bucket in config.buckets.keys() {
        if host.starts_with(&format!("{bucket}.")) {
            return Ok((bucket.clone(), path));
        }
        if let Some(key) = path.strip_prefix(&format!("{bucket}/")) {
            return Ok((bucket.clone(), key.to_owned()));
        }
    }
    Err(EventError::UnknownBucket(host.split('.').next().unwrap_or(host).to_owned()))
}

/// A subtitle file of a generic event: `{"language": "en", "location": "s3://…/talk.en.vtt"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericSubtitles {
    language: String,
    location: String,
}

/// A generic event: `{"tenant", "input", "output"?, "preset"?, "recording_ended"?, "start"?,
/// "end"?, "subtitles"?: [{"language", "location"}]}`; `start` and `end` are seconds or
/// `HH:MM:SS.mmm` strings, as `ladder run` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericEvent {
    tenant: String,
    input: String,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    preset: Option<String>,
    /// When the recording ended (RFC 3339).
    #[serde(default)]
    recording_ended: Option<String>,
    #[serde(default)]
    start: Option<EventTime>,
    #[serde(default)]
    end: Option<EventTime>,
    #[serde(default)]
    subtitles: Vec<GenericSubtitles>,
    /// The sender's own event id; accepted and unused (de-duplication is by recording).
    #[serde(default)]
    #[expect(dead_code, reason = "accepted so senders may include it")]
    id: Option<String>,
}

/// The recording a generic event names.
pub(crate) fn generic(body: &[u8], config: &DispatchConfig) -> Result<Recording, EventError> {
    let event: GenericEvent =
        serde_json::from_slice(body).map_err(|e| EventError::Malformed { kind: "generic", why: e.to_string() })?;
    if let Some(p) = &event.preset
        && !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EventError::BadPreset(p.clone()));
    }
    let (bucket, key) = match event.input.strip_prefix("s3://").and_then(|r| r.split_once('/')) {
        Some((b, k)) => (b.to_owned(), k.to_owned()),
        None => (String::new(), event.input.clone()),
    };
    // One tenant's signed event must not transcode another tenant's recordings.
    if let Some(owner) = config.buckets.get(&bucket)
        && *owner != event.tenant
    {
        return Err(EventError::ForeignBucket { bucket, owner: owner.clone(), tenant: event.tenant });
    }
    let recording_ended = match &event.recording_ended {
        Some(t) => Some(t.parse::<Timestamp>().map_err(|e| EventError::Malformed {
            kind: "generic",
            why: format!("recording_ended {t:?} is not an RFC 3339 time: {e}"),
        })?),
        None => None,
    };
    let malformed = |why: String| EventError::Malformed { kind: "generic", why };
    let start = event.start.as_ref().map(|t| t.seconds("start")).transpose().map_err(malformed)?;
    let end = event.end.as_ref().map(|t| t.seconds("end")).transpose().map_err(malformed)?;
    let trim = Trim::new(start, end).map_err(malformed)?;
    let subtitles = event.subtitles.iter().map(|s| sidecar(s, &event.tenant, config)).collect::<Result<_, _>>()?;
    let mut rec = route(config, &event.tenant, &bucket, &key, event.preset)?;
    rec.recording_ended = recording_ended;
    rec.trim = trim;
    rec.subtitles = subtitles;
    rec.input = event.input;
    if let Some(output) = event.output {
        rec.output = output;
    }
    Ok(rec)
}

/// A time in an event: a number of seconds or a `parse_time` string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EventTime {
    Seconds(f64),
    Text(String),
}

impl EventTime {
    fn seconds(&self, field: &str) -> Result<f64, String> {
        match self {
            Self::Seconds(s) if s.is_finite() && *s >= 0.0 => Ok(*s),
            Self::Seconds(s) => Err(format!("{field} {s} is not a time of the recording")),
            Self::Text(t) => crate::trim::parse_time(t).map_err(|e| format!("{field}: {e}")),
        }
    }
}

/// A generic event's subtitle file, checked as its input is: a language tag, a location,
/// and no other tenant's bucket.
fn sidecar(
    s: &GenericSubtitles,
    tenant: &str,
    config: &DispatchConfig,
) -> Result<crate::subtitles::Sidecar, EventError> {
    let malformed = |why: String| EventError::Malformed { kind: "generic", why };
    let language = crate::language::bcp47(&s.language)
        .ok_or_else(|| malformed(format!("subtitles language {:?} is not a language tag", s.language)))?;
    let location = crate::location::Location::parse(&s.location)
        .map_err(|e| malformed(format!("subtitles location {:?}: {e}", s.location)))?;
    if let crate::location::Location::S3 { bucket, .. } = &location
        && let Some(owner) = config.buckets.get(bucket)
        && owner != tenant
    {
        return Err(EventError::ForeignBucket {
            bucket: bucket.clone(),
            owner: owner.clone(),
            tenant: tenant.to_owned(),
        });
    }
    Ok(crate::subtitles::Sidecar { language, location })
}

fn route(
    config: &DispatchConfig,
    tenant: &str,
    bucket: &str,
    key: &str,
    preset: Option<String>,
) -> Result<Recording, EventError> {
    if !is_dns_label(tenant) {
        return Err(EventError::UnknownTenant(tenant.to_owned()));
    }
    let route = config.tenants.get(tenant).ok_or_else(|| EventError::UnknownTenant(tenant.to_owned()))?;
    let stem = key.rsplit_once('.').map_or(key, |(s, _)| s);
    let output = route
        .output
        .replace("{tenant}", tenant)
        .replace("{bucket}", bucket)
        .replace("{key}", key)
        .replace("{stem}", stem);
    Ok(Recording {
        tenant: tenant.to_owned(),
        input: format!("s3://{bucket}/{key}"),
        output,
        preset: preset.or_else(|| route.preset.clone()),
        recording_ended: None,
        trim: Trim::default(),
        subtitles: Vec::new(),
    })
}

fn is_recording(key: &str) -> bool {
    key.rsplit_once('.').is_some_and(|(_, ext)| RECORDING_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Decodes `%XX` and `+` (S3 event keys use form encoding).
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dispatch::{RawConfig, TenantRoute};

    fn config() -> DispatchConfig {
        let raw = RawConfig {
            tenants: BTreeMap::from([(
                "acme".to_owned(),
                TenantRoute { output: "s3://acme-vod/{stem}".into(), preset: Some("small".into()), queue: None },
            )]),
            buckets: BTreeMap::from([("acme-rec".to_owned(), "acme".to_owned())]),
            ..RawConfig::default()
        };
        DispatchConfig::resolve(raw, RawConfig::default()).unwrap()
    }

    #[test]
    fn s3_keys_are_decoded_and_routed() {
        let body = br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"acme-rec"},"object":{"key":"room+1/take%202.mp4"}}}]}"#;
        let recs = s3(body, &config()).unwrap();
        assert_eq!(
            recs,
            [Recording {
                tenant: "acme".into(),
                input: "s3://acme-rec/room 1/take 2.mp4".into(),
                output: "s3://acme-vod/room 1/take 2".into(),
                preset: Some("small".into()),
                recording_ended: None,
                trim: Trim::default(),
                subtitles: Vec::new(),
            }]
        );
    }

    #[test]
    fn s3_ignores_deletes_and_non_recordings() {
        let body = br#"{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"acme-rec"},"object":{"key":"a.mp4"}}},{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"acme-rec"},"object":{"key":"out/v0/seg_1.m4s"}}}]}"#;
        assert_eq!(s3(body, &config()).unwrap(), []);
    }

    #[test]
    fn livekit_locations_in_every_form() {
        let c = config();
        for loc in [
            "s3://acme-rec/r/a.mp4",
            "https://acme-rec.s3.eu-west-1.amazonaws.com/r/a.mp4",
            "http://minio:9000/acme-rec/r/a.mp4",
        ] {
            assert_eq!(locate(loc, &c).unwrap(), ("acme-rec".to_owned(), "r/a.mp4".to_owned()), "{loc}");
        }
        assert_eq!(locate("https://other.s3.amazonaws.com/a.mp4", &c), Err(EventError::UnknownBucket("other".into())));
    }

    #[test]
    fn generic_events_stay_in_their_tenants_buckets() {
        let mut c = config();
        c.tenants.insert(
            "globex".into(),
            TenantRoute { output: "s3://globex-vod/{stem}".into(), preset: None, queue: None },
        );
        let body = br#"{"tenant":"globex","input":"s3://acme-rec/secret.mp4"}"#;
        assert!(matches!(generic(body, &c), Err(EventError::ForeignBucket { .. })));
        let body = br#"{"tenant":"globex","input":"s3://shared/talk.mp4"}"#;
        assert_eq!(generic(body, &c).unwrap().output, "s3://globex-vod/talk");
    }

    #[test]
    fn generic_events_may_cut_the_recording() {
        let c = config();
        let body = br#"{"tenant":"acme","input":"s3://acme-rec/a.mp4","start":"00:01:30.500","end":600}"#;
        assert_eq!(generic(body, &c).unwrap().trim, Trim::new(Some(90.5), Some(600.0)).unwrap());
        for bad in [r#""start":"soon""#, r#""start":-1"#, r#""start":9,"end":3"#] {
            let body = format!(r#"{{"tenant":"acme","input":"s3://acme-rec/a.mp4",{bad}}}"#);
            assert!(matches!(generic(body.as_bytes(), &c), Err(EventError::Malformed { .. })), "{bad}");
        }
    }

    #[test]
    fn each_hook_carries_the_recordings_end() {
        let c = config();
        let body = br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","eventTime":"2026-11-25T05:00:00.250Z","s3":{"bucket":{"name":"acme-rec"},"object":{"key":"a.mp4"}}}]}"#;
        assert_eq!(s3(body, &c).unwrap()[0].recording_ended, Some("2026-11-25T05:00:00.25Z".parse().unwrap()));
        // LiveKit: the egress's end in nanoseconds (a string, as protobuf JSON has it), else
        // its last update, else the event's own time in seconds.
        let egress = |times: &str| {
            format!(
                r#"{{"event":"egress_ended","createdAt":1764046900,"egressInfo":{{"status":"EGRESS_COMPLETE",{times}"fileResults":[{{"location":"s3://acme-rec/r.mp4"}}]}}}}"#
            )
        };
        let ended = |times: &str| livekit(egress(times).as_bytes(), &c).unwrap()[0].recording_ended.unwrap();
        assert_eq!(ended(r#""endedAt":"1764046800500000000","#).to_string(), "2025-11-25T05:00:00.5Z");
        assert_eq!(ended(r#""updatedAt":1764046810000000000,"#).to_string(), "2025-11-25T05:00:10Z");
        assert_eq!(ended(r#""endedAt":"0","#).to_string(), "2025-11-25T05:01:40Z");
        let body = br#"{"tenant":"acme","input":"s3://acme-rec/a.mp4","recording_ended":"2026-11-25T06:00:00+01:00"}"#;
        assert_eq!(generic(body, &c).unwrap().recording_ended, Some("2026-11-25T05:00:00Z".parse().unwrap()));
        let body = br#"{"tenant":"acme","input":"s3://acme-rec/a.mp4","recording_ended":"yesterday"}"#;
        assert!(matches!(generic(body, &c), Err(EventError::Malformed { .. })));
    }

    #[test]
    fn generic_events_carry_subtitles_from_their_tenants_buckets() {
        let c = config();
        let body = br#"{"tenant":"acme","input":"s3://acme-rec/a.mp4","subtitles":[{"language":"ger","location":"s3://acme-rec/a.de.srt"}]}"#;
        let rec = generic(body, &c).unwrap();
        assert_eq!(rec.subtitles.len(), 1);
        assert_eq!(
            (rec.subtitles[0].language.as_str(), rec.subtitles[0].location.to_string()),
            ("de", "s3://acme-rec/a.de.srt".into())
        );
        let mut c = config();
        c.tenants.insert(
            "globex".into(),
            TenantRoute { output: "s3://globex-vod/{stem}".into(), preset: None, queue: None },
        );
        let body = br#"{"tenant":"globex","input":"s3://shared/a.mp4","subtitles":[{"language":"en","location":"s3://acme-rec/a.en.vtt"}]}"#;
        assert!(matches!(generic(body, &c), Err(EventError::ForeignBucket { .. })));
        let body = br#"{"tenant":"acme","input":"s3://acme-rec/a.mp4","subtitles":[{"language":"english","location":"x.vtt"}]}"#;
        assert!(matches!(generic(body, &config()), Err(EventError::Malformed { .. })));
    }

    #[test]
    fn generic_presets_are_names_not_paths() {
        let body = br#"{"tenant":"acme","input":"s3://x/y.mp4","preset":"../../etc/passwd"}"#;
        assert!(matches!(generic(body, &config()), Err(EventError::BadPreset(_))));
    }
}
