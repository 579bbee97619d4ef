//! `POST /hooks/sns`: AWS S3 events delivered by SNS. The test is SNS: it makes an RSA key
//! pair and a certificate, serves the certificate through the injectable fetcher, signs
//! messages the way the AWS documentation describes (its own canonical strings, not the
//! library's), and records subscription confirmations on a loopback server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use ladder::dispatch::DispatchConfig;
use ladder::serve::sns::{CertificateFetcher, Sns, SnsError, SnsUrl, SubscriptionConfirmer};
use ladder::serve::{self, AppState, Limits};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::dispatch_fake::FakeApi;
use super::{config, s3_event, secrets, send};

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:acme-recordings";
const CERT_URL: &str = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem";

/// SNS's key and certificate, made once per test run.
struct SnsKey {
    key: rsa::PrivateKey,
    certificate_pem: String,
}

fn sns_key() -> &'static SnsKey {
    static KEY: OnceLock<SnsKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::Generate as _;
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::PrivateKey::generate();
        let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let key_pair = rcgen::KeyPair::from_pem(&pem).unwrap();
        let params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]).unwrap();
        let certificate_pem = params.self_signed(&key_pair).unwrap().pem();
        SnsKey { key, certificate_pem }
    })
}

/// The string SNS signs, per the AWS documentation ("Verifying the signatures of Amazon SNS
/// messages"): these names in this order, each as `name\nvalue\n`, absent ones left out.
fn canonical(msg: &Value) -> String {
    let names: &[&str] = if msg["Type"] == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    names.iter().filter_map(|n| msg[*n].as_str().map(|v| format!("{n}\n{v}\n"))).collect()
}

/// Signs `msg` with SNS's key: SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA.
fn signed(mut msg: Value) -> Vec<u8> {
    let key = sns_key().key.clone();
    let text = canonical(&msg);
    let signature = match msg["SignatureVersion"].as_str().unwrap() {
        "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(text.as_bytes()).to_bytes(),
        _ => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key).sign(text.as_bytes()).to_bytes(),
    };
    msg["Signature"] = STANDARD.encode(signature).into();
    serde_json::to_vec_pretty(&msg).unwrap()
}

fn notification(id: &str, version: &str, message: &[u8]) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": TOPIC,
        "Subject": "Amazon S3 Notification",
        "Message": String::from_utf8(message.to_vec()).unwrap(),
        "Timestamp": "2026-11-25T05:00:00.123Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": format!("https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1"),
    })
}

fn confirmation(topic: &str, subscribe_url: &str) -> Value {
    json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": format!("confirm-{topic}"),
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92",
        "TopicArn": topic,
        "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-25T05:00:00.000Z",
        "SignatureVersion": "1",
        "SigningCertURL": CERT_URL,
    })
}

/// Serves SNS's certificate at [`CERT_URL`], counting fetches; any other URL is a 404.
#[derive(Default)]
struct Certificates {
    fetched: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl CertificateFetcher for Certificates {
    fn fetch<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<Vec<u8>, SnsError>> {
        Box::pin(async move {
            self.fetched.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) || url.as_str() != CERT_URL {
                return Err(SnsError::Unreachable { url: url.as_str().to_owned(), why: "HTTP 404".into() });
            }
            Ok(sns_key().certificate_pem.clone().into_bytes())
        })
    }
}

/// Confirms by GETting the SubscribeURL's path and query from a loopback server that
/// plays SNS and records what it was asked.
struct Loopback {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Loopback {
    async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let record = requests.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(uri.to_string());
                "<ConfirmSubscriptionResponse/>"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, requests }
    }
}

impl SubscriptionConfirmer for Loopback {
    fn confirm<'a>(&'a self, url: &'a SnsUrl) -> BoxFuture<'a, Result<(), SnsError>> {
        Box::pin(async move {
            let mut conn = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let request = format!("GET {} HTTP/1.1\r\nHost: sns\r\nConnection: close\r\n\r\n", url.path_and_query());
            conn.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            conn.read_to_string(&mut response).await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            Ok(())
        })
    }
}

struct Setup {
    fake: FakeApi,
    app: axum::Router,
    certificates: Arc<Certificates>,
    loopback: Arc<Loopback>,
}

async fn setup() -> Setup {
    let fake = FakeApi::start();
    let certificates = Arc::new(Certificates::default());
    let loopback = Arc::new(Loopback::start().await);
    let config = DispatchConfig { sns_topics: vec![TOPIC.to_owned()], ..config() };
    let sns = Sns::new(certificates.clone(), loopback.clone());
    let state = AppState::with_sns(config, secrets(), fake.client(), "presets".into(), Limits::default(), sns);
    Setup { fake, app: serve::router(state), certificates, loopback }
}

async fn deliver(app: &axum::Router, body: Vec<u8>, kind: &str) -> (StatusCode, Value) {
    let headers = [("x-amz-sns-message-type", kind.to_owned()), ("x-amz-sns-topic-arn", TOPIC.to_owned())];
    send(app, "/hooks/sns", &headers, body).await
}

#[tokio::test]
async fn an_s3_event_through_sns_makes_one_job_under_either_signature_version() {
    let s = setup().await;
    for (id, version, key) in [("m-1", "1", "rooms/standup.mp4"), ("m-2", "2", "rooms/all+hands.mkv")] {
        let body = signed(notification(id, version, &s3_event("acme-recordings", key)));
        let (status, answer) = deliver(&s.app, body, "Notification").await;
        assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("created")), "v{version}: {answer}");
    }
    let mut inputs: Vec<String> = s
        .fake
        .jobs()
        .iter()
        .map(|j| j["metadata"]["annotations"]["ladder.dev/input"].as_str().unwrap().to_owned())
        .collect();
    inputs.sort();
    assert_eq!(inputs, ["s3://acme-recordings/rooms/all hands.mkv", "s3://acme-recordings/rooms/standup.mp4"]);
    assert_eq!(s.certificates.fetched.load(Ordering::SeqCst), 1, "the certificate is fetched once, then cached");
}

#[tokio::test]
async fn a_redelivered_message_is_acknowledged_not_redone() {
    let s = setup().await;
    let body = signed(notification("m-1", "2", &s3_event("acme-recordings", "a.mp4")));
    assert_eq!(deliver(&s.app, body.clone(), "Notification").await.1["outcome"], "created");
    let (status, answer) = deliver(&s.app, body, "Notification").await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("duplicate")), "{answer}");
    // Another message about the same object (S3 sent the event twice) is still one Job.
    let again = signed(notification("m-2", "2", &s3_event("acme-recordings", "a.mp4")));
    assert_eq!(deliver(&s.app, again, "Notification").await.1["outcome"], "duplicate");
    assert_eq!(s.fake.jobs().len(), 1);
}

#[tokio::test]
async fn sns_rejections() {
    let s = setup().await;
    let good = notification("m-1", "1", &s3_event("acme-recordings", "a.mp4"));
    let tamper = |field: &str, value: Value| {
        let mut v: Value = serde_json::from_slice(&signed(good.clone())).unwrap();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let resigned = |field: &str, value: Value| {
        let mut v = good.clone();
        v[field] = value;
        signed(v)
    };
    let mut bad_signature: Value = serde_json::from_slice(&signed(good.clone())).unwrap();
    let mut sig = STANDARD.decode(bad_signature["Signature"].as_str().unwrap()).unwrap();
    sig[10] ^= 1;
    bad_signature["Signature"] = STANDARD.encode(sig).into();
    let cases: Vec<(&str, Vec<u8>, &str, StatusCode)> = vec![
        (
            "message changed after signing",
            tamper("Message", String::from_utf8(s3_event("acme-recordings", "b.mp4")).unwrap().into()),
            "Notification",
            StatusCode::UNAUTHORIZED,
        ),
        ("subject removed after signing", tamper("Subject", Value::Null), "Notification", StatusCode::UNAUTHORIZED),
        ("signature altered", serde_json::to_vec(&bad_signature).unwrap(), "Notification", StatusCode::UNAUTHORIZED),
        ("v1 signature called v2", tamper("SignatureVersion", "2".into()), "Notification", StatusCode::UNAUTHORIZED),
        (
            "unknown signature version",
            resigned("SignatureVersion", "3".into()),
            "Notification",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "certificate from elsewhere",
            resigned("SigningCertURL", "https://attacker.example/SimpleNotificationService-x.pem".into()),
            "Notification",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "topic not allowed",
            resigned("TopicArn", "arn:aws:sns:eu-west-1:999999999999:other".into()),
            "Notification",
            StatusCode::UNAUTHORIZED,
        ),
        ("header disagrees with body", signed(good.clone()), "SubscriptionConfirmation", StatusCode::BAD_REQUEST),
        ("not an SNS message", b"{\"Records\": []}".to_vec(), "Notification", StatusCode::BAD_REQUEST),
        (
            "unknown bucket",
            signed(notification("m-9", "1", &s3_event("someone-elses", "a.mp4"))),
            "Notification",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, body, kind, expected) in cases {
        let (status, answer) = deliver(&s.app, body, kind).await;
        assert_eq!(status, expected, "{what}: {answer}");
    }
    assert!(s.fake.jobs().is_empty(), "no refused message made a Job");
    assert_eq!(s.certificates.fetched.load(Ordering::SeqCst), 1, "no certificate fetched but SNS's (and that once)");
    // The genuine message still goes through: nothing above was taken for it.
    let (status, answer) = deliver(&s.app, signed(good), "Notification").await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("created")), "{answer}");
}

#[tokio::test]
async fn subscriptions_are_confirmed_for_allowed_topics_only() {
    let s = setup().await;
    let url = format!("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336");
    let (status, answer) = deliver(&s.app, signed(confirmation(TOPIC, &url)), "SubscriptionConfirmation").await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("confirmed")), "{answer}");
    assert_eq!(
        *s.loopback.requests.lock().unwrap(),
        [format!("/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336")]
    );

    let other = "arn:aws:sns:eu-west-1:999999999999:someone-elses";
    let url = format!("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={other}&Token=1");
    let (status, _) = deliver(&s.app, signed(confirmation(other, &url)), "SubscriptionConfirmation").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let elsewhere = signed(confirmation(TOPIC, "https://attacker.example/?Action=ConfirmSubscription"));
    let (status, _) = deliver(&s.app, elsewhere, "SubscriptionConfirmation").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a SubscribeURL off SNS is never visited");
    assert_eq!(s.loopback.requests.lock().unwrap().len(), 1, "only the allowed topic was confirmed");
}

#[tokio::test]
async fn s3_test_events_and_unreachable_sns_are_handled() {
    let s = setup().await;
    // S3 sends this when the notification is configured.
    let test_event = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T05:00:00.000Z","Bucket":"acme-recordings","RequestId":"1","HostId":"2"}"#;
    let (status, answer) = deliver(&s.app, signed(notification("t-1", "2", test_event)), "Notification").await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("ignored")), "{answer}");

    // SNS down: the fresh certificate cannot be fetched, so the delivery is retried later.
    let fresh = setup().await;
    fresh.certificates.down.store(true, Ordering::SeqCst);
    let body = signed(notification("m-1", "1", &s3_event("acme-recordings", "a.mp4")));
    let (status, answer) = deliver(&fresh.app, body.clone(), "Notification").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    fresh.certificates.down.store(false, Ordering::SeqCst);
    let (status, answer) = deliver(&fresh.app, body, "Notification").await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("created")), "{answer}");
}
