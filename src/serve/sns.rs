//! Amazon SNS HTTP(S) deliveries: how a real S3 bucket reaches `serve` (S3 cannot call a
//! webhook; it notifies an SNS topic, and the topic posts to `/hooks/sns`).
//!
//! A delivery is a JSON envelope signed by SNS (RSA PKCS#1 v1.5 over SHA-1 for
//! `SignatureVersion` 1, SHA-256 for 2) with the key of an X.509 certificate that SNS
//! serves at `SigningCertURL`. Before anything in it is acted on: the topic must be one
//! the config allows, the certificate URL must be `https://sns.<region>.amazonaws.com/….pem`
//! (so the certificate is fetched over TLS from SNS itself, which is what makes it
//! trustworthy), and the signature must verify over the canonical string of the message
//! type. Certificates are cached by URL. Raw message delivery must stay off on the
//! subscription: a raw body carries no signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm};
use serde::Deserialize;

/// The header SNS sets to the message type.
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";
/// Most bytes read from SNS for a certificate or a subscription confirmation.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long one request to SNS may take.
const SNS_TIMEOUT: Duration = Duration::from_secs(10);
/// Certificates cached at most; SNS uses a handful, so more means something is odd.
const MAX_CACHED_CERTIFICATES: usize = 64;

/// Why an SNS delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("SNS topic {0:?} is not allowed (list it under sns_topics in the dispatcher config)")]
    TopicNotAllowed(String),
    #[error("{what} {url:?} is not an https://sns.<region>.amazonaws.com URL")]
    UntrustedUrl { what: &'static str, url: String },
    #[error("SignatureVersion {0:?} is not supported (only 1 and 2 are)")]
    SignatureVersion(String),
    #[error("signature does not match the message")]
    BadSignature,
    #[error("signing certificate {url}: {why}")]
    Certificate { url: String, why: String },
    /// SNS could not be reached or answered an error: worth a retry.
    #[error("request to {url} failed: {why}")]
    Unreachable { url: String, why: String },
}

impl SnsError {
    /// Whether the same delivery may succeed later (SNS itself was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// The kinds of message SNS posts to an HTTP(S) subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageKind {
    /// The `Type` value (and `x-amz-sns-message-type` header) of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// The envelope as SNS sends it. Unknown fields (`UnsubscribeURL`, `MessageAttributes`, …)
/// are accepted: they are not signed and ladder does not use them.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    signature_version: String,
    #[serde(rename = "Signature")]
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "Subject", default)]
    subject: Option<String>,
    #[serde(rename = "SubscribeURL", default)]
    subscribe_url: Option<String>,
    #[serde(rename = "Token", default)]
    token: Option<String>,
}

/// An SNS message, parsed but not yet verified ([`Sns::verify`]).
#[derive(Debug, Clone)]
pub struct SnsMessage {
    pub kind: MessageKind,
    pub message_id: String,
    pub topic_arn: String,
    /// The payload: for S3 notifications, the S3 event JSON.
    pub message: String,
    pub timestamp: String,
    pub subject: Option<String>,
    /// Where to confirm a subscription (confirmations only), checked to be an SNS URL.
    pub subscribe_url: Option<SnsUrl>,
    pub token: Option<String>,
    signature_version: String,
    signature: String,
    signing_cert_url: String,
}

impl SnsMessage {
    /// Parses an envelope. Fails on a body that is not one, or whose URLs point anywhere
    /// but SNS.
    pub fn parse(body: &[u8]) -> Result<Self, SnsError> {
        let e: Envelope = serde_json::from_slice(body).map_err(|e| SnsError::Malformed(e.to_string()))?;
        let kind = match e.kind.as_str() {
            "Notification" => MessageKind::Notification,
            "SubscriptionConfirmation" => MessageKind::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => MessageKind::UnsubscribeConfirmation,
            other => return Err(SnsError::Malformed(format!("unknown Type {other:?}"))),
        };
        let subscribe_url = match (kind, e.subscribe_url) {
            (MessageKind::Notification, _) => None,
            (_, Some(url)) => Some(SnsUrl::parse(&url, "SubscribeURL")?),
            (_, None) => return Err(SnsError::Malformed(format!("{} without SubscribeURL", kind.as_str()))),
        };
        if kind != MessageKind::Notification && e.token.is_none() {
            return Err(SnsError::Malformed(format!("{} without Token", kind.as_str())));
        }
        Ok(Self {
            kind,
            message_id: e.message_id,
            topic_arn: e.topic_arn,
            message: e.message,
            timestamp: e.timestamp,
            subject: e.subject,
            subscribe_url,
            token: e.token,
            signature_version: e.signature_version,
            signature: e.signature,
            signing_cert_url: e.signing_cert_url,
        })
    }

    /// What SNS signed: `name\nvalue\n` for each signed field of the message type, in byte
    /// order of the names (`Subject` only when the message has one).
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind {
            MessageKind::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            MessageKind::SubscriptionConfirmation | MessageKind::UnsubscribeConfirmation => {
                let url = self.subscribe_url.as_ref().map_or("", SnsUrl::as_str);
                fields.extend([
                    ("SubscribeURL", url),
                    ("Timestamp", &self.timestamp),
                    ("Token", self.token.as_deref().unwrap_or_default()),
                ]);
            }
        }
        fields.extend([("TopicArn", self.topic_arn.as_str()), ("Type", self.kind.as_str())]);
        fields.iter().map(|(name, value)| format!("{name}\n{value}\n")).collect()
    }
}

/// A URL of SNS itself: `https://sns.<region>.amazonaws.com[.cn]/…`, no port, no user.
/// Only these are ever fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsUrl(String);

impl SnsUrl {
    /// Checks that `url` points at SNS; `what` names the field for the error.
    pub fn parse(url: &str, what: &'static str) -> Result<Self, SnsError> {
        let untrusted = || SnsError::UntrustedUrl { what, url: url.to_owned() };
        let rest = url.strip_prefix("https://").ok_or_else(untrusted)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let region = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
            .and_then(|h| h.strip_prefix("sns."))
            .ok_or_else(untrusted)?;
        let region_ok = !region.is_empty()
            && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !region.starts_with('-');
        if !region_ok || url.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'\\') {
            return Err(untrusted());
        }
        Ok(Self(url.to_owned()))
    }

    /// A signing certificate's URL: an SNS URL whose path is a `.pem` file.
    pub fn certificate(url: &str) -> Result<Self, SnsError> {
        let parsed = Self::parse(url, "SigningCertURL")?;
        let path = url.trim_start_matches("https://").split_once('/').map_or("", |(_, p)| p);
        if !path.ends_with(".pem") || path.contains(['?', '#']) {
            return Err(SnsError::UntrustedUrl { what: "SigningCertURL", url: url.to_owned() });
        }
        Ok(parsed)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path and query, e.g. `/?Action=ConfirmSubscription&…`.
    pub fn path_and_query(&self) -> &str {
        let rest = self.0.trim_start_matches("https://");
        rest.find(['/', '?']).map_or("/", |i| &rest[i..])
    }
}

/// Fetches a signing certificate (PEM) from SNS. Injectable so tests can serve their own.
pub trait CertificateFetcher: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<Vec<u8>, SnsError>>;
}

/// Confirms a subscription by GETting its `SubscribeURL`. Injectable like the fetcher.
pub trait SubscriptionConfirmer: Send + Sync {
    fn confirm<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<(), SnsError>>;
}

type CachedCertificate = Arc<tokio::sync::OnceCell<Arc<CertificateDer<'static>>>>;

/// SNS verification for `serve`: the certificate fetcher (behind a cache) and the
/// subscription confirmer.
pub struct Sns {
    fetcher: Arc<dyn CertificateFetcher>,
    confirmer: Arc<dyn SubscriptionConfirmer>,
    /// URL → certificate, fetched once even when many deliveries need it at the same time.
    cache: Mutex<HashMap<String, CachedCertificate>>,
}

impl Sns {
    /// Verification with these clients.
    pub fn new(fetcher: Arc<dyn CertificateFetcher>, confirmer: Arc<dyn SubscriptionConfirmer>) -> Self {
        Self { fetcher, confirmer, cache: Mutex::new(HashMap::new()) }
    }

    /// Verification that talks to SNS over HTTPS (the system's root certificates).
    pub fn https() -> Self {
        let client = Arc::new(HttpsSns::default());
        Self::new(client.clone(), client)
    }

    /// Checks a message's signature against its (cached) signing certificate.
    pub async fn verify(&self, msg: &SnsMessage) -> Result<(), SnsError> {
        let algorithm: &dyn SignatureVerificationAlgorithm = match msg.signature_version.as_str() {
            "1" => &RSA_PKCS1_SHA1,
            "2" => &RSA_PKCS1_SHA256,
            other => return Err(SnsError::SignatureVersion(other.to_owned())),
        };
        let url = SnsUrl::certificate(&msg.signing_cert_url)?;
        let signature = STANDARD.decode(msg.signature.trim()).map_err(|_| SnsError::BadSignature)?;
        let certificate = self.certificate(&url).await?;
        let cert = webpki::EndEntityCert::try_from(certificate.as_ref())
            .map_err(|e| SnsError::Certificate { url: url.as_str().to_owned(), why: format!("{e:?}") })?;
        cert.verify_signature(algorithm, msg.string_to_sign().as_bytes(), &signature)
            .map_err(|_| SnsError::BadSignature)
    }

    /// Confirms a subscription (GET of its `SubscribeURL`).
    pub async fn confirm(&self, url: &SnsUrl) -> Result<(), SnsError> {
        self.confirmer.confirm(url).await
    }

    async fn certificate(&self, url: &SnsUrl) -> Result<Arc<CertificateDer<'static>>, SnsError> {
        let cell = {
            let mut cache = self.cache.lock().expect("nothing panics while holding the cache");
            if cache.len() >= MAX_CACHED_CERTIFICATES && !cache.contains_key(url.as_str()) {
                cache.clear();
            }
            cache.entry(url.as_str().to_owned()).or_default().clone()
        };
        let certificate = cell
            .get_or_try_init(|| async {
                let pem = self.fetcher.fetch(url).await?;
                let der = CertificateDer::from_pem_slice(&pem).map_err(|e| SnsError::Certificate {
                    url: url.as_str().to_owned(),
                    why: format!("not a PEM certificate: {e}"),
                })?;
                tracing::info!(url = url.as_str(), "fetched an SNS signing certificate");
                Ok::<_, SnsError>(Arc::new(der))
            })
            .await?;
        Ok(certificate.clone())
    }
}

/// `sha1WithRSAEncryption` (SignatureVersion 1), which SNS still uses by default. ring
/// keeps SHA-1 signatures for verification of legacy data only, which this is.
#[derive(Debug)]
struct RsaPkcs1 {
    verification: &'static ring::signature::RsaParameters,
    id: AlgorithmIdentifier,
}

/// OID 1.2.840.113549.1.1.5 and NULL parameters, DER (the content of AlgorithmIdentifier).
const SHA1_WITH_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00];

static RSA_PKCS1_SHA1: RsaPkcs1 = RsaPkcs1 {
    verification: &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    id: AlgorithmIdentifier::from_slice(SHA1_WITH_RSA),
};

static RSA_PKCS1_SHA256: RsaPkcs1 = RsaPkcs1 {
    verification: &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    id: rustls::pki_types::alg_id::RSA_PKCS1_SHA256,
};

impl SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(self.verification, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        rustls::pki_types::alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.id
    }
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<Bytes>,
>;

/// The real fetcher and confirmer: HTTPS GETs to SNS (only ever an [`SnsUrl`]), verified
/// against the system's root certificates. The client is built on first use.
#[derive(Default)]
pub struct HttpsSns {
    client: OnceLock<Result<HttpsClient, String>>,
}

impl HttpsSns {
    fn client(&self) -> Result<&HttpsClient, String> {
        self.client
            .get_or_init(|| {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| format!("no root certificates to check SNS with: {e}"))?
                    .https_only()
                    .enable_http1()
                    .build();
                Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn get(&self, url: &SnsUrl) -> Result<Bytes, SnsError> {
        use http_body_util::BodyExt as _;
        let failed = |why: String| SnsError::Unreachable { url: url.as_str().to_owned(), why };
        let client = self.client().map_err(failed)?;
        let request = axum::http::Request::get(url.as_str())
            .body(http_body_util::Empty::new())
            .map_err(|e| failed(e.to_string()))?;
        let exchange = async {
            let response = client.request(request).await.map_err(|e| failed(format!("{e:#}")))?;
            if !response.status().is_success() {
                return Err(failed(format!("HTTP {}", response.status())));
            }
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES);
            body.collect().await.map(|b| b.to_bytes()).map_err(|e| failed(e.to_string()))
        };
        tokio::time::timeout(SNS_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {} s", SNS_TIMEOUT.as_secs())))?
    }
}

impl CertificateFetcher for HttpsSns {
    fn fetch<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<Vec<u8>, SnsError>> {
        Box::pin(async move { self.get(url).await.map(|b| b.to_vec()) })
    }
}

impl SubscriptionConfirmer for HttpsSns {
    fn confirm<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<(), SnsError>> {
        Box::pin(async move { self.get(url).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_urls_are_trusted() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-010a507c1833636cd94bdb98bd93083a.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        ] {
            assert!(SnsUrl::certificate(good).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sqs.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem?a=b",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://sns.US-EAST-1.amazonaws.com/x.pem",
        ] {
            assert!(SnsUrl::certificate(bad).is_err(), "{bad}");
        }
        let confirm =
            SnsUrl::parse("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1", "x").unwrap();
        assert_eq!(confirm.path_and_query(), "/?Action=ConfirmSubscription&Token=1");
    }

    /// The canonical strings of the AWS documentation's examples, byte for byte.
    #[test]
    fn strings_to_sign_follow_the_message_type() {
        let notification = br#"{"Type":"Notification","MessageId":"4d4dc071-ddbf-465d-bba8-08f81c89da64","TopicArn":"arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P","Subject":"My subject","Message":"My Test Message","Timestamp":"2019-01-31T04:37:04.321Z","SignatureVersion":"1","Signature":"x","SigningCertURL":"https://sns.us-east-2.amazonaws.com/x.pem","UnsubscribeURL":"https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe"}"#;
        assert_eq!(
            SnsMessage::parse(notification).unwrap().string_to_sign(),
            "Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\nSubject\nMy subject\nTimestamp\n2019-01-31T04:37:04.321Z\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nNotification\n"
        );
        let confirmation = br#"{"Type":"SubscriptionConfirmation","MessageId":"3d891288-136d-417f-bc05-901c108273ee","Token":"233","TopicArn":"arn:aws:sns:us-east-2:123456789012:t","Message":"My Test Message","SubscribeURL":"https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233","Timestamp":"2019-01-31T19:25:13.719Z","SignatureVersion":"1","Signature":"x","SigningCertURL":"https://sns.us-east-2.amazonaws.com/x.pem"}"#;
        assert_eq!(
            SnsMessage::parse(confirmation).unwrap().string_to_sign(),
            "Message\nMy Test Message\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\nSubscribeURL\nhttps://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233\nTimestamp\n2019-01-31T19:25:13.719Z\nToken\n233\nTopicArn\narn:aws:sns:us-east-2:123456789012:t\nType\nSubscriptionConfirmation\n"
        );
        let no_subject = String::from_utf8_lossy(notification).replace(r#""Subject":"My subject","#, "");
        assert!(!SnsMessage::parse(no_subject.as_bytes()).unwrap().string_to_sign().contains("Subject"));
    }

    #[test]
    fn confirmations_must_point_at_sns() {
        let evil = br#"{"Type":"SubscriptionConfirmation","MessageId":"1","Token":"2","TopicArn":"t","Message":"m","SubscribeURL":"https://evil.example/?Action=ConfirmSubscription","Timestamp":"t","SignatureVersion":"1","Signature":"x","SigningCertURL":"https://sns.us-east-2.amazonaws.com/x.pem"}"#;
        assert!(matches!(SnsMessage::parse(evil), Err(SnsError::UntrustedUrl { what: "SubscribeURL", .. })));
        assert!(matches!(SnsMessage::parse(br#"{"Type":"Other"}"#), Err(SnsError::Malformed(_))));
    }
}
