//! Authenticating webhook requests from the raw bytes, before anything parses the body.
//! Every comparison of secret-derived bytes is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

type HmacSha256 = Hmac<Sha256>;

/// How far a generic webhook's timestamp may be from now, either way.
pub const GENERIC_WINDOW_SECONDS: i64 = 300;
/// Clock skew allowed on a LiveKit token's `exp` and `nbf`.
pub const JWT_LEEWAY_SECONDS: i64 = 60;

/// Why a request is not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {header} header: {why}")]
    MalformedHeader { header: &'static str, why: String },
    #[error("timestamp {timestamp} is {age} s away from now (allowed: {GENERIC_WINDOW_SECONDS} s)")]
    Stale { timestamp: i64, age: i64 },
    #[error("signature does not match the body")]
    BadSignature,
    #[error("token is invalid: {0}")]
    BadToken(String),
    #[error("no webhook secret is configured for this hook")]
    NotConfigured,
}

impl VerifyError {
    /// A short name of the failure, the `reason` label of the verification failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::Stale { .. } => "stale",
            Self::BadSignature => "bad_signature",
            Self::BadToken(_) => "bad_token",
            Self::NotConfigured => "not_configured",
        }
    }
}

/// Checks a bearer token (`Authorization: Bearer T` or just `T`, as MinIO sends it) against
/// every accepted token, so rotation can overlap.
pub fn token(header: Option<&str>, accepted: &[String]) -> Result<(), VerifyError> {
    if accepted.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    let header = header.ok_or(VerifyError::MissingHeader("Authorization"))?;
    let given = header.strip_prefix("Bearer ").unwrap_or(header).trim();
    // Fold over every candidate rather than stopping at the first match.
    let ok = accepted.iter().fold(subtle::Choice::from(0), |acc, t| acc | given.as_bytes().ct_eq(t.as_bytes()));
    if bool::from(ok) {
        Ok(())
    } else {
        Err(VerifyError::BadToken("the token is not one of the accepted tokens".into()))
    }
}

/// Checks a generic webhook: `X-Ladder-Signature: v1=<hex HMAC-SHA256 of "timestamp.body">`
/// (several comma-separated signatures allowed) under any of `secrets`, with the
/// timestamp within [`GENERIC_WINDOW_SECONDS`] of `now`. Returns the matching signature,
/// the key for replay detection.
pub fn generic(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<Vec<u8>, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("X-Ladder-Timestamp"))?;
    let signature = signature.ok_or(VerifyError::MissingHeader("X-Ladder-Signature"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::MalformedHeader {
        header: "X-Ladder-Timestamp",
        why: "expected Unix seconds".into(),
    })?;
    let age = now.saturating_sub(ts);
    if age.abs() > GENERIC_WINDOW_SECONDS {
        return Err(VerifyError::Stale { timestamp: ts, age });
    }
    let given: Vec<Vec<u8>> = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex| decode_hex(hex.trim()))
        .collect();
    if given.is_empty() {
        return Err(VerifyError::MalformedHeader { header: "X-Ladder-Signature", why: "expected v1=<hex>".into() });
    }
    for secret in secrets {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
        mac.update(timestamp.trim().as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        for sig in &given {
            if bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
                return Ok(sig.clone());
            }
        }
    }
    Err(VerifyError::BadSignature)
}

/// The claims ladder reads from a LiveKit webhook token.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LiveKitClaims {
    /// The API key that signed the token.
    pub iss: String,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Base64 SHA-256 of the body.
    pub sha256: String,
}

/// Checks a LiveKit webhook: the `Authorization` header is an HS256 JWT signed with the API
/// secret of its issuer (the API key), not expired, whose `sha256` claim is the body's
/// SHA-256. Returns the claims and the token's signature (the replay key).
pub fn livekit(
    header: Option<&str>,
    body: &[u8],
    api_key: &str,
    api_secret: &str,
    now: i64,
) -> Result<(LiveKitClaims, Vec<u8>), VerifyError> {
    if api_key.is_empty() || api_secret.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    let header = header.ok_or(VerifyError::MissingHeader("Authorization"))?;
    let token = header.strip_prefix("Bearer ").unwrap_or(header).trim();
    let bad = |why: &str| VerifyError::BadToken(why.to_owned());
    let mut parts = token.split('.');
    let (Some(head_b64), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT (expected three dot-separated parts)"));
    };
    let head: serde_json::Value = URL_SAFE_NO_PAD
        .decode(head_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("undecodable header"))?;
    // Only HS256: never `none`, never an algorithm the token picks for itself.
    if head.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(bad("algorithm must be HS256"));
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| bad("undecodable signature"))?;
    let mut mac = HmacSha256::new_from_slice(api_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(head_b64.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).map_err(|_| VerifyError::BadSignature)?;
    let claims: LiveKitClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("claims must include iss, exp and sha256"))?;
    if !bool::from(claims.iss.as_bytes().ct_eq(api_key.as_bytes())) {
        return Err(bad("issued for another API key"));
    }
    if claims.exp + JWT_LEEWAY_SECONDS < now {
        return Err(bad("expired"));
    }
    if claims.nbf.is_some_and(|nbf| nbf - JWT_LEEWAY_SECONDS > now) {
        return Err(bad("not valid yet"));
    }
    let digest = Sha256::digest(body);
    let claimed = STANDARD.decode(claims.sha256.trim()).map_err(|_| bad("sha256 claim is not base64"))?;
    if !bool::from(claimed.as_slice().ct_eq(digest.as_slice())) {
        return Err(VerifyError::BadSignature);
    }
    Ok((claims, sig))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Signs a generic webhook body the way [`generic`] checks it (for senders and tests).
pub fn sign_generic(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Makes a LiveKit-style webhook token for `body` (for tests and local senders).
pub fn sign_livekit(api_key: &str, api_secret: &str, body: &[u8], now: i64, ttl: i64) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": api_key, "nbf": now, "exp": now + ttl, "sha256": STANDARD.encode(Sha256::digest(body)),
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = HmacSha256::new_from_slice(api_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{head}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{payload}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn generic_signatures_rotate_and_expire() {
        let body = br#"{"tenant":"acme"}"#;
        let sig = sign_generic("old", NOW, body);
        let secrets = vec!["new".to_owned(), "old".to_owned()];
        assert!(generic(Some(&NOW.to_string()), Some(&sig), body, &secrets, NOW + 10).is_ok());
        let two = format!("v1=00, {sig}");
        assert!(generic(Some(&NOW.to_string()), Some(&two), body, &secrets, NOW).is_ok());
        assert!(matches!(
            generic(Some(&NOW.to_string()), Some(&sig), body, &secrets, NOW + 301),
            Err(VerifyError::Stale { .. })
        ));
        assert_eq!(generic(Some(&NOW.to_string()), Some(&sig), b"{}", &secrets, NOW), Err(VerifyError::BadSignature));
        assert_eq!(
            generic(Some(&(NOW + 1).to_string()), Some(&sig), body, &secrets, NOW),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn livekit_tokens_bind_the_body() {
        let body = br#"{"event":"egress_ended"}"#;
        let token = sign_livekit("key", "secret", body, NOW, 600);
        assert!(livekit(Some(&token), body, "key", "secret", NOW).is_ok());
        assert_eq!(livekit(Some(&token), b"{}", "key", "secret", NOW).unwrap_err(), VerifyError::BadSignature);
        assert_eq!(livekit(Some(&token), body, "key", "other", NOW).unwrap_err(), VerifyError::BadSignature);
        assert!(matches!(livekit(Some(&token), body, "key", "secret", NOW + 700), Err(VerifyError::BadToken(_))));
        assert!(matches!(livekit(Some(&token), body, "key2", "secret", NOW), Err(VerifyError::BadToken(_))));
    }

    #[test]
    fn livekit_refuses_unsigned_tokens() {
        let body = b"{}";
        let token = sign_livekit("key", "secret", body, NOW, 600);
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
        assert!(matches!(livekit(Some(&none), body, "key", "secret", NOW), Err(VerifyError::BadToken(_))));
    }

    #[test]
    fn tokens_compare_against_every_accepted_one() {
        let accepted = vec!["a".repeat(32), "b".repeat(32)];
        assert!(token(Some(&format!("Bearer {}", "b".repeat(32))), &accepted).is_ok());
        assert!(token(Some(&"b".repeat(32)), &accepted).is_ok());
        assert!(token(Some("Bearer nope"), &accepted).is_err());
        assert_eq!(token(None, &accepted), Err(VerifyError::MissingHeader("Authorization")));
    }
}
