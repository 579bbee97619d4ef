//! The input fetch against the checksums S3 stores objects with, on two S3
//! implementations: `s3s-fs` in this process and moto (`scripts/moto.sh`). Each object is
//! uploaded as an AWS SDK transfer manager uploads it (5 MiB parts, the SDK computing the
//! part checksums), then fetched; then fetched again through a proxy that flips one bit of
//! part 2 on every GET, as a store serving a damaged object would. Where the store kept a
//! checksum that covers the bytes, that fetch must fail as a damaged input (exit 3); where
//! it kept none, there is nothing to check the bytes against and it succeeds.
//!
//! Each test prints a table row per store (`--nocapture`): what the store's HEAD reported
//! (checksum mode on) and the outcome.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]
#![allow(clippy::print_stderr, reason = "each case prints its row of the table of stores and outcomes")]

mod common;

use std::time::Duration;

use aws_sdk_s3::types::{ChecksumAlgorithm as A, ChecksumType as T};
use common::s3::{Fault, Proxy, Rule, Server, Upload};
use ladder::exit::{ExitClass, Outcome};
use ladder::location::{self, Location, StorageConfig, StorageError};

/// Where the test's objects live.
enum Store {
    S3s(Server),
    Moto(&'static common::moto::Moto),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Self::S3s(_) => "s3s-fs",
            Self::Moto(_) => "moto",
        }
    }

    fn endpoint(&self) -> String {
        match self {
            Self::S3s(s) => s.endpoint(),
            Self::Moto(m) => m.endpoint(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Self::S3s(s) => s.addr,
            Self::Moto(m) => ([127, 0, 0, 1], m.port).into(),
        }
    }
}

/// The in-process server, and moto unless it is not installed (outside CI).
fn stores() -> Vec<Store> {
    let mut stores = vec![Store::S3s(Server::start())];
    stores.extend(common::moto::server().map(Store::Moto));
    stores
}

/// Runs `f` to completion on a small runtime of its own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// `bucket` on `store`, made empty for this test (moto is shared by the tests).
fn bucket(store: &Store, bucket: &str) {
    match store {
        Store::S3s(s) => s.create_bucket(bucket),
        Store::Moto(m) => {
            let client = common::s3::client(&m.endpoint(), Default::default());
            block_on(client.create_bucket().bucket(bucket).send()).unwrap();
        }
    }
}

/// The config `ladder` builds from the test environment, against `endpoint`, with time for
/// a loaded machine and 1 MiB GETs.
fn config(endpoint: &str) -> StorageConfig {
    StorageConfig {
        read_timeout: Duration::from_secs(5),
        fetch_range: 1024 * 1024,
        ..common::s3::storage_config(endpoint)
    }
}

/// Deterministic bytes that do not compress: two full parts and a short third.
fn object(seed: u64) -> Vec<u8> {
    common::s3::noise(2 * common::s3::MIN_PART + 1000, seed | 1)
}

/// A byte in part 2.
const DAMAGED: u64 = common::s3::MIN_PART as u64 + 4321;

/// What the store's HEAD says about the object's checksum, for the log.
fn reported(store: &Store, bucket: &str, key: &str) -> String {
    let client = common::s3::client(&store.endpoint(), Default::default());
    let head = block_on(
        client.head_object().bucket(bucket).key(key).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled).send(),
    )
    .unwrap();
    let checksums = [
        ("CRC32", head.checksum_crc32()),
        ("CRC32C", head.checksum_crc32_c()),
        ("CRC64NVME", head.checksum_crc64_nvme()),
        ("SHA1", head.checksum_sha1()),
        ("SHA256", head.checksum_sha256()),
    ];
    let stored: Vec<String> = checksums.iter().filter_map(|(n, v)| v.map(|v| format!("{n} {v}"))).collect();
    format!(
        "ETag {}, checksum {}, type {}",
        head.e_tag().unwrap_or("-"),
        if stored.is_empty() { "none".to_owned() } else { stored.join(" ") },
        head.checksum_type().map_or("not said", |t| t.as_str())
    )
}

/// Whether a damaged copy is caught on a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Fails as a damaged input whose message names the algorithm.
    Caught(&'static str),
    /// The store kept no checksum covering the bytes: nothing to check them against.
    Unseen,
}

/// Uploads an object `how` on every store, checks the fetch returns it, then that a copy
/// damaged in part 2 is caught or not as `expect(store)` says.
fn case(name: &str, how: Upload, kms_key: Option<&str>, expect: impl Fn(&Store) -> Damage) {
    let bytes = object(name.len() as u64 * 7919);
    for store in stores() {
        let b = name.to_ascii_lowercase().replace('_', "-");
        bucket(&store, &b);
        block_on(common::s3::upload_as(&store.endpoint(), &b, "rec.mp4", &bytes, &how, kms_key));
        let head = reported(&store, &b, "rec.mp4");
        let input = Location::parse(&format!("s3://{b}/rec.mp4")).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let fetched = location::fetch_input(&input, scratch.path(), &config(&store.endpoint()))
            .unwrap_or_else(|e| panic!("{name} on {}: a good object fails: {e} ({head})", store.name()));
        assert!(std::fs::read(&fetched).unwrap() == bytes, "{name} on {}: the fetched bytes differ", store.name());

        let proxy = Proxy::start(store.addr());
        proxy.add(Rule::new(Fault::FlipByte(DAMAGED), Some("GET"), Some("rec.mp4"), 1000));
        let scratch = tempfile::tempdir().unwrap();
        let damaged = location::fetch_input(&input, scratch.path(), &config(&proxy.endpoint()));
        let outcome = match (&damaged, expect(&store)) {
            (Err(e @ StorageError::InputCorrupt { .. }), Damage::Caught(algorithm)) => {
                assert!(e.outcome() == Outcome::BadInput, "{e}");
                let text = e.to_string();
                assert!(text.contains(algorithm) && text.contains("the stored object is damaged"), "{text}");
                assert!(!text.contains('\n') && text.ends_with("upload the recording again"), "{text}");
                format!("damage caught: {text}")
            }
            (Ok(_), Damage::Unseen) => "damage unseen: no checksum covers the bytes".to_owned(),
            (got, expected) => panic!("{name} on {}: expected {expected:?}, got {got:?} ({head})", store.name()),
        };
        eprintln!("| {name} | {} | {head} | {outcome} |", store.name());
    }
}

/// s3s-fs 0.14.1 stores no checksum for a multipart object (it neither checks nor keeps
/// the parts' checksums), so only its moto half can catch damage.
fn moto_only(algorithm: &'static str) -> impl Fn(&Store) -> Damage {
    move |store| match store {
        Store::S3s(_) => Damage::Unseen,
        Store::Moto(_) => Damage::Caught(algorithm),
    }
}

#[test]
fn composite_crc32() {
    case("COMPOSITE_CRC32", Upload::Multipart(A::Crc32, T::Composite), None, moto_only("CRC32"));
}

#[test]
fn composite_crc32c() {
    case("COMPOSITE_CRC32C", Upload::Multipart(A::Crc32C, T::Composite), None, moto_only("CRC32C"));
}

#[test]
fn composite_sha1() {
    case("COMPOSITE_SHA1", Upload::Multipart(A::Sha1, T::Composite), None, moto_only("SHA1"));
}

#[test]
fn composite_sha256() {
    case("COMPOSITE_SHA256", Upload::Multipart(A::Sha256, T::Composite), None, moto_only("SHA256"));
}

#[test]
fn full_object_crc32() {
    case("FULL_OBJECT_CRC32", Upload::Multipart(A::Crc32, T::FullObject), None, moto_only("CRC32"));
}

#[test]
fn full_object_crc32c() {
    case("FULL_OBJECT_CRC32C", Upload::Multipart(A::Crc32C, T::FullObject), None, moto_only("CRC32C"));
}

#[test]
fn full_object_crc64nvme() {
    case("FULL_OBJECT_CRC64NVME", Upload::Multipart(A::Crc64Nvme, T::FullObject), None, moto_only("CRC64NVME"));
}

#[test]
fn multipart_without_checksum() {
    case("MULTIPART_NO_CHECKSUM", Upload::MultipartWithoutChecksum, None, |_| Damage::Unseen);
}

#[test]
fn single_part_with_the_sdk_default_crc32() {
    case("SINGLE_PART", Upload::Single, None, |_| Damage::Caught("CRC32"));
}

#[test]
fn sse_kms_multipart_composite_crc32() {
    case("SSE_KMS", Upload::Multipart(A::Crc32, T::Composite), Some("alias/recordings"), moto_only("CRC32"));
}

/// What the AWS CLI does with a recording over its 8 MiB threshold (its transfer manager,
/// s3transfer, with boto3's default checksum settings), here with a 5 MiB threshold: the
/// issue's first report, where every such recording failed with exit 4.
#[test]
fn uploaded_like_the_aws_cli() {
    // boto3 comes with moto's venv.
    if common::moto::server().is_none() {
        return;
    }
    let bytes = object(42);
    for store in stores() {
        bucket(&store, "aws-cli");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let script = "import sys, boto3; from boto3.s3.transfer import TransferConfig\n\
                      s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                      aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n\
                      mib = 5 * 1024 * 1024\n\
                      s3.upload_file(sys.argv[4], 'aws-cli', 'rec.mp4',\n\
                      Config=TransferConfig(multipart_threshold=mib, multipart_chunksize=mib))\n";
        let upload = assert_cmd::Command::new(common::moto::python())
            .args(["-c", script, &store.endpoint(), common::s3::ACCESS_KEY, common::s3::SECRET_KEY])
            .arg(file.path())
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&upload.stderr);
        assert!(upload.status.success(), "boto3's upload_file to {}: {stderr}", store.name());
        let head = reported(&store, "aws-cli", "rec.mp4");
        let scratch = tempfile::tempdir().unwrap();
        let input = Location::parse("s3://aws-cli/rec.mp4").unwrap();
        let fetched = location::fetch_input(&input, scratch.path(), &config(&store.endpoint()))
            .unwrap_or_else(|e| panic!("on {}: a good object fails: {e} ({head})", store.name()));
        assert!(std::fs::read(&fetched).unwrap() == bytes);
        eprintln!("| AWS CLI (boto3 upload_file) | {} | {head} | fetched |", store.name());
    }
}

/// `ladder run` on a damaged object: exit 3 (a rerun reads the same bytes) and one sentence
/// that says so, before anything is probed or published.
#[test]
fn a_damaged_object_exits_3_and_says_so_in_one_sentence() {
    let bytes = object(3);
    for store in stores() {
        bucket(&store, "damaged");
        block_on(common::s3::upload_as(&store.endpoint(), "damaged", "rec.mp4", &bytes, &Upload::Single, None));
        let proxy = Proxy::start(store.addr());
        proxy.add(Rule::new(Fault::FlipByte(DAMAGED), Some("GET"), Some("rec.mp4"), 1000));
        let out = tempfile::tempdir().unwrap();
        let mut cmd = common::ladder();
        cmd.args(["run", "s3://damaged/rec.mp4", "--out", out.path().to_str().unwrap(), "--progress", "off"]);
        cmd.env_remove("AWS_PROFILE").env_remove("AWS_ENDPOINT_URL").env_remove("AWS_SESSION_TOKEN");
        for (k, v) in common::s3::env(&proxy.endpoint()) {
            cmd.env(k, v);
        }
        let run = cmd.timeout(Duration::from_secs(120)).output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(3), "{}: {stderr}", store.name());
        let error =
            stderr.lines().find(|l| l.contains("the stored object is damaged")).unwrap_or_else(|| panic!("{stderr}"));
        assert!(error.contains("s3://damaged/rec.mp4") && error.contains("CRC32"), "{error}");
        assert!(!out.path().join("master.m3u8").exists());
        eprintln!("| damaged object, `ladder run` | {} | exit 3: {error} |", store.name());
    }
}

/// Bytes damaged on their way are fetched again; damage that differs on every fetch is
/// not the object's and ends as a transient failure (exit 4) once the attempts run out.
#[test]
fn damage_on_the_way_is_fetched_again_and_never_called_the_objects() {
    let bytes = object(5);
    for store in stores() {
        bucket(&store, "in-flight");
        let how = Upload::Multipart(A::Sha256, T::Composite);
        block_on(common::s3::upload_as(&store.endpoint(), "in-flight", "rec.mp4", &bytes, &how, None));
        block_on(common::s3::upload_as(&store.endpoint(), "in-flight", "single.mp4", &bytes, &Upload::Single, None));
        for key in ["rec.mp4", "single.mp4"] {
            let input = Location::parse(&format!("s3://in-flight/{key}")).unwrap();
            let proxy = Proxy::start(store.addr());
            // One GET for the whole object, so the one fault lands on the damaged byte.
            let get = format!("{key}?x-id=GetObject");
            proxy.add(Rule::new(Fault::GarbleByte(DAMAGED), Some("GET"), Some(&get), 1));
            let mut cfg = config(&proxy.endpoint());
            cfg.fetch_range = bytes.len() as u64;
            let scratch = tempfile::tempdir().unwrap();
            let fetched = location::fetch_input(&input, scratch.path(), &cfg);
            let fetched = fetched.unwrap_or_else(|e| panic!("{key} on {}: {e}", store.name()));
            assert!(proxy.unused().is_empty(), "{key} on {}: {:?}", store.name(), proxy.requests());
            // s3s-fs keeps no checksum of a multipart object: nothing to see the damage by.
            let verified = key == "single.mp4" || matches!(store, Store::Moto(_));
            assert_eq!(std::fs::read(&fetched).unwrap() == bytes, verified, "{key} on {}", store.name());
            let gets = proxy.requests().iter().filter(|r| r.target.contains(&get)).count();
            assert_eq!(gets, if verified { 2 } else { 1 }, "{key} on {}: fetched again once", store.name());

            proxy.add(Rule::new(Fault::GarbleByte(DAMAGED), Some("GET"), Some(&get), 1000));
            cfg.max_attempts = 3;
            let scratch = tempfile::tempdir().unwrap();
            match location::fetch_input(&input, scratch.path(), &cfg) {
                Err(e @ StorageError::Remote { .. }) if verified => {
                    assert!(e.outcome() == Outcome::Transient, "{e}");
                    assert!(e.to_string().contains("different on each of 3 fetches"), "{e}");
                }
                Ok(_) if !verified => {}
                other => panic!("{key} on {}: {other:?}", store.name()),
            }
        }
    }
}

/// Where the store lists each part's checksum (`GetObjectAttributes` with `ObjectParts`,
/// which AWS answers and neither moto nor s3s-fs does: a proxy answers it here, as S3
/// documents it), each part is checked on its own: a damaged part is named, and only its
/// bytes are fetched again.
#[test]
fn per_part_checksums_name_the_damaged_part_and_fetch_only_it_again() {
    let Some(moto) = common::moto::server() else { return };
    let store = Store::Moto(moto);
    let bytes = object(11);
    bucket(&store, "per-part");
    let how = Upload::Multipart(A::Sha256, T::Composite);
    block_on(common::s3::upload_as(&store.endpoint(), "per-part", "rec.mp4", &bytes, &how, None));
    let sha = |b: &[u8]| common::s3::sha256_b64(b);
    let parts: String = bytes
        .chunks(common::s3::MIN_PART)
        .enumerate()
        .map(|(i, p)| {
            format!(
                "<Part><PartNumber>{}</PartNumber><Size>{}</Size><ChecksumSHA256>{}</ChecksumSHA256></Part>",
                i + 1,
                p.len(),
                sha(p)
            )
        })
        .collect();
    let attributes: &'static str = Box::leak(
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Checksum><ChecksumType>COMPOSITE</ChecksumType></Checksum>\
             <ObjectParts><TotalPartsCount>3</TotalPartsCount><PartNumberMarker>0</PartNumberMarker>\
             <NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>\
             {parts}</ObjectParts><ObjectSize>{}</ObjectSize></GetObjectAttributesResponse>",
            bytes.len()
        )
        .into_boxed_str(),
    );
    let input = Location::parse("s3://per-part/rec.mp4").unwrap();
    let part2 = format!("bytes={}-{}", common::s3::MIN_PART, 2 * common::s3::MIN_PART - 1);

    // Damaged once on the way: part 2 alone is fetched again.
    let proxy = Proxy::start(store.addr());
    proxy.add(Rule::new(Fault::Reply(attributes), Some("GET"), Some("rec.mp4?attributes"), 1000));
    proxy.add(Rule::new(Fault::GarbleByte(DAMAGED), Some("GET"), Some("rec.mp4?x-id=GetObject"), 1));
    let mut cfg = config(&proxy.endpoint());
    cfg.fetch_range = common::s3::MIN_PART as u64;
    let scratch = tempfile::tempdir().unwrap();
    let fetched = location::fetch_input(&input, scratch.path(), &cfg).unwrap();
    assert!(std::fs::read(&fetched).unwrap() == bytes);
    let gets: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.target.contains("x-id=GetObject"))
        .map(|r| r.header("range").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(gets.len(), 4, "three parts, then part 2 again: {gets:?}");
    assert_eq!(gets.iter().filter(|r| **r == part2).count(), 2, "{gets:?}");

    // Damaged as served: the error names part 2 and its bytes.
    let proxy = Proxy::start(store.addr());
    proxy.add(Rule::new(Fault::Reply(attributes), Some("GET"), Some("rec.mp4?attributes"), 1000));
    proxy.add(Rule::new(Fault::FlipByte(DAMAGED), Some("GET"), Some("rec.mp4?x-id=GetObject"), 1000));
    let mut cfg = config(&proxy.endpoint());
    cfg.fetch_range = common::s3::MIN_PART as u64;
    let scratch = tempfile::tempdir().unwrap();
    let err = location::fetch_input(&input, scratch.path(), &cfg).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StorageError::InputCorrupt { .. }), "{text}");
    let part = format!("part 2 of 3 (bytes {}–{}) has SHA256 ", common::s3::MIN_PART, 2 * common::s3::MIN_PART - 1);
    assert!(
        text.contains(&part) && text.contains(&sha(&bytes[common::s3::MIN_PART..2 * common::s3::MIN_PART])),
        "{text}"
    );
    eprintln!("| per-part SHA256 (ObjectParts answered by the proxy) | moto | damage caught: {text} |");
}
