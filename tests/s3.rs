//! S3 in and out against a real S3 protocol server in this process (`s3s` + `s3s-fs`,
//! SigV4), with a fault-injecting proxy between `ladder` and the server. Outputs are read
//! back from the server's disk and judged by ffprobe and the playlist parser; headers are
//! read through the S3 API; the input object's checksum is compared after every run.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use ladder::exit::ExitClass;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::playlist;
use common::s3::{Fault, Proxy, Rule, Server};

const INPUT_BUCKET: &str = "media";
const INPUT_KEY: &str = "events/2026/rec.mp4";
const OUT_BUCKET: &str = "ladder";

/// The `small` preset cut to 2 s segments in chunks of 2: an 8 s input makes 2 chunks.
fn preset() -> PathBuf {
    let text = std::fs::read_to_string(common::repo("presets/small.toml")).unwrap();
    let text = text
        .replace("segment_seconds = 6", "segment_seconds = 2")
        .replace("chunk_segments = 5", "chunk_segments = 2")
        .replace("name = \"small\"", "name = \"small-s3\"");
    let path = common::media_dir().join("small-s3.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// 8 s of 426x240 (the small preset's 240p rung, so one rung) with a tone.
fn source() -> PathBuf {
    common::pattern("s3-source.mp4", "426x240", "25", "8", &[])
}

/// A server with the input uploaded (with a SHA-256 checksum) and an empty output bucket.
fn server_with_input() -> (Server, String) {
    let server = Server::start();
    server.create_bucket(INPUT_BUCKET);
    server.create_bucket(OUT_BUCKET);
    let bytes = std::fs::read(source()).unwrap();
    server.put(INPUT_BUCKET, INPUT_KEY, &bytes);
    (server, common::s3::sha256_hex(&bytes))
}

/// Runs `ladder run INPUT --out OUT` with the S3 environment for `endpoint`.
fn ladder(endpoint: &str, input: &str, out: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = common::ladder();
    cmd.args(["run", input, "--out", out, "--preset", preset().to_str().unwrap(), "--progress", "off"]);
    cmd.args(["--log", "ladder=info", "--log-format", "text"]);
    cmd.env_remove("AWS_PROFILE").env_remove("AWS_ENDPOINT_URL").env_remove("AWS_SESSION_TOKEN");
    for (k, v) in common::s3::env(endpoint) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.timeout(Duration::from_secs(120)).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn input_url() -> String {
    format!("s3://{INPUT_BUCKET}/{INPUT_KEY}")
}

/// The input bucket holds exactly the input, with the checksum it had before.
fn assert_input_untouched(server: &Server, sha256: &str) {
    assert_eq!(server.keys(INPUT_BUCKET, ""), [INPUT_KEY], "the input bucket changed");
    let bytes = server.read(INPUT_BUCKET, INPUT_KEY).unwrap();
    assert_eq!(common::s3::sha256_hex(&bytes), sha256, "the input object changed");
}

/// A stored text file, from the server's disk.
fn text(server: &Server, bucket: &str, key: &str) -> String {
    String::from_utf8(server.read(bucket, key).unwrap_or_else(|| panic!("{bucket}/{key} is missing"))).unwrap()
}

/// The master, then each media playlist, of a published ladder under `prefix`.
fn playlists(server: &Server, prefix: &str) -> Vec<(String, String)> {
    let master = text(server, OUT_BUCKET, &format!("{prefix}/master.m3u8"));
    let parsed = playlist::parse_master(&master).unwrap();
    let mut all = vec![("master.m3u8".to_owned(), master)];
    let uris =
        parsed.variants.iter().map(|v| v.uri.clone()).chain(parsed.media.iter().map(|m| m.req("URI").to_owned()));
    for uri in uris {
        all.push((uri.clone(), text(server, OUT_BUCKET, &format!("{prefix}/{uri}"))));
    }
    all.push(("manifest.mpd".to_owned(), text(server, OUT_BUCKET, &format!("{prefix}/manifest.mpd"))));
    all
}

/// Every segment of every playlist decodes after its init segment, read from `root`.
fn assert_segments_decode(root: &std::path::Path, lists: &[(String, String)]) {
    let mut segments = 0;
    for (uri, body) in lists.iter().filter(|(u, _)| u.ends_with("/index.m3u8")) {
        let dir = uri.trim_end_matches("/index.m3u8");
        let media = playlist::parse_media(body).unwrap();
        assert!(media.end_list && !media.segments.is_empty(), "{uri}");
        for s in &media.segments {
            let mut bytes = std::fs::read(root.join(dir).join("init.mp4")).unwrap();
            bytes.extend(std::fs::read(root.join(dir).join(&s.uri)).unwrap());
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), bytes).unwrap();
            let out = Command::new("ffprobe")
                .args(["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
                .arg(file.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && stderr.trim().is_empty(), "{dir}/{}: {stderr}", s.uri);
            let frames: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            assert!(frames > 0, "{dir}/{} decodes to no frames", s.uri);
            segments += 1;
        }
    }
    assert!(segments >= 8, "only {segments} segments decoded");
}

#[test]
fn s3_to_s3_publishes_a_complete_ladder_with_the_right_headers() {
    let (server, input_sha) = server_with_input();
    let (code, stdout, stderr) = ladder(&server.endpoint(), &input_url(), "s3://ladder/vod/rec", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("s3://ladder/vod/rec/master.m3u8"), "{stdout}");
    assert!(stderr.contains("reading the input in place"), "{stderr}");

    let lists = playlists(&server, "vod/rec");
    let master = playlist::parse_master(&lists[0].1).unwrap();
    assert_eq!(master.variants.len(), 1);
    assert_eq!(master.variants[0].attributes.req("RESOLUTION"), "426x240");
    assert_segments_decode(&server.path(OUT_BUCKET, "vod/rec"), &lists);

    // Headers a CDN and players rely on, read back through the S3 API.
    let immutable = "public, max-age=31536000, immutable";
    let short = "public, max-age=60";
    for (key, content_type, cache) in [
        ("master.m3u8", "application/vnd.apple.mpegurl", short),
        ("v0/index.m3u8", "application/vnd.apple.mpegurl", short),
        ("v0/iframes.m3u8", "application/vnd.apple.mpegurl", short),
        ("manifest.mpd", "application/dash+xml", short),
        ("report.json", "application/json", short),
        ("v0/init.mp4", "video/mp4", immutable),
        ("v0/seg_0.m4s", "video/iso.segment", immutable),
        ("a0/init.mp4", "audio/mp4", immutable),
        ("a0/seg_3.m4s", "video/iso.segment", immutable),
        ("thumbs/poster.jpg", "image/jpeg", immutable),
        ("thumbs/thumbs.vtt", "text/vtt", short),
        (".ladder/chunks/0.json", "application/json", "no-store"),
        (".ladder/plan.json", "application/json", "no-store"),
    ] {
        let (ct, cc, sha) = server.head(OUT_BUCKET, &format!("vod/rec/{key}"));
        assert_eq!((ct.as_str(), cc.as_str()), (content_type, cache), "{key}");
        // Every PUT carried a SHA-256 the server verified and kept.
        let bytes = server.read(OUT_BUCKET, &format!("vod/rec/{key}")).unwrap();
        assert_eq!(sha.as_deref(), Some(common::s3::sha256_b64(&bytes).as_str()), "{key}");
    }
    // Records name what is stored, with the stored bytes' checksums.
    let record: serde_json::Value =
        serde_json::from_str(&text(&server, OUT_BUCKET, "vod/rec/.ladder/chunks/1.json")).unwrap();
    for s in record["tracks"][0]["segments"].as_array().unwrap() {
        let bytes = server.read(OUT_BUCKET, &format!("vod/rec/v0/seg_{}.m4s", s["index"])).unwrap();
        assert_eq!(s["sha256"].as_str().unwrap(), common::s3::sha256_hex(&bytes));
    }
    // The report names the object by what the store says of it (no full-file hash), and
    // says how much of it was read: every reader's first block is the one shared block.
    let report: serde_json::Value = serde_json::from_str(&text(&server, OUT_BUCKET, "vod/rec/report.json")).unwrap();
    let input = &report["input"];
    let bytes = server.read(INPUT_BUCKET, INPUT_KEY).unwrap();
    assert_eq!(input["object"]["checksum"], format!("SHA256:{}", common::s3::sha256_b64(&bytes)), "{input}");
    assert_eq!(input["object"]["size_bytes"], bytes.len());
    assert!(input["object"]["etag"].as_str().is_some_and(|e| !e.is_empty()), "{input}");
    // The 1 MB input is one block: fetched once for every reader, and once more, whole, by
    // the check against its stored checksum (which never takes a shared block).
    assert_eq!(input["bytes_read"], 2 * bytes.len());
    assert_eq!(input["verified"], "SHA256 of the whole object", "{input}");
    assert!(input.get("sha256").is_none(), "{input}");
    assert!(stderr.contains(&format!("input read in place bytes_read={} of={}", 2 * bytes.len(), bytes.len())));
    assert_input_untouched(&server, &input_sha);
}

#[test]
fn faults_between_ladder_and_the_server_are_retried_and_change_nothing() {
    let (server, input_sha) = server_with_input();
    let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), "s3://ladder/clean", &[]);
    assert_eq!(code, 0, "{stderr}");

    let proxy = Proxy::start(server.addr);
    let stall = Duration::from_secs(3); // the tests' read timeout is 1 s
    for rule in [
        // Throttling and server errors on uploads of segments, records and manifests.
        Rule::new(Fault::Status(503, "SlowDown"), Some("PUT"), Some("seg_"), 2),
        Rule::new(Fault::Status(500, "InternalError"), Some("PUT"), Some(".ladder/chunks/"), 2),
        Rule::new(Fault::Status(429, "TooManyRequests"), Some("PUT"), Some("index.m3u8"), 2),
        Rule::new(Fault::Stall(stall), Some("PUT"), Some("init.mp4"), 1),
        Rule::new(Fault::DropRequest, Some("PUT"), Some("master.m3u8"), 1),
        // The same on the input: its HEAD and its ranged GET.
        Rule::new(Fault::Status(503, "SlowDown"), Some("HEAD"), Some("rec.mp4"), 1),
        Rule::new(Fault::Status(500, "InternalError"), Some("GET"), Some("rec.mp4"), 1),
        Rule::new(Fault::Stall(stall), Some("GET"), Some("rec.mp4"), 1),
        Rule::new(Fault::StallBody(stall), Some("GET"), Some("rec.mp4"), 1),
        Rule::new(Fault::DropResponse, Some("GET"), Some("rec.mp4"), 1),
        // And on reading back records (a rerun's check) and the bucket check.
        Rule::new(Fault::Status(503, "SlowDown"), Some("GET"), Some(".ladder/chunks/"), 1),
        Rule::new(Fault::Status(503, "SlowDown"), Some("HEAD"), Some("/ladder"), 1),
    ] {
        proxy.add(rule);
    }
    let (code, _, stderr) = ladder(&proxy.endpoint(), &input_url(), "s3://ladder/faulty", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(proxy.unused().is_empty(), "faults never injected: {:?}", proxy.unused());
    assert!(proxy.injected().len() >= 15, "{:?}", proxy.injected());
    // On the wire: the input bucket was only read, each GET a range pinned to the ETag.
    let input_requests: Vec<_> =
        proxy.requests().into_iter().filter(|r| r.target.starts_with(&format!("/{INPUT_BUCKET}"))).collect();
    assert!(input_requests.len() >= 6, "{input_requests:?}");
    for r in &input_requests {
        assert!(r.method == "HEAD" || r.method == "GET", "{} {} on the input bucket", r.method, r.target);
        if r.method == "GET" {
            assert!(r.header("range").is_some_and(|v| v.starts_with("bytes=")), "{r:?}");
            assert!(r.header("if-match").is_some_and(|v| !v.is_empty()), "{r:?}");
        }
    }
    // Every PUT carried a SHA-256 of its body.
    let puts: Vec<_> = proxy.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert!(puts.len() > 20 && puts.iter().all(|r| r.header("x-amz-checksum-sha256").is_some()), "{puts:?}");

    // Nothing lost: the same files, the same playlists and MPD, byte for byte.
    let names = |prefix: &str| -> Vec<String> {
        server
            .keys(OUT_BUCKET, prefix)
            .into_iter()
            .map(|k| k.trim_start_matches(&format!("{prefix}/")).to_owned())
            .filter(|k| k != "report.json")
            .collect()
    };
    assert_eq!(names("faulty"), names("clean"));
    let lists = playlists(&server, "faulty");
    assert_eq!(lists, playlists(&server, "clean"));
    assert_segments_decode(&server.path(OUT_BUCKET, "faulty"), &lists);
    assert_input_untouched(&server, &input_sha);
}

#[test]
fn faults_that_outlast_the_retries_exit_4_and_publish_nothing() {
    let (server, input_sha) = server_with_input();
    let proxy = Proxy::start(server.addr);
    proxy.add(Rule::new(Fault::Status(503, "SlowDown"), Some("PUT"), Some("/v0/seg_"), 1000));
    let env = [("LADDER_S3_ATTEMPTS", "3")];
    let (code, _, stderr) = ladder(&proxy.endpoint(), &input_url(), "s3://ladder/x", &env);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("storing v0/seg_") && stderr.contains("SlowDown"), "{stderr}");
    let injected = proxy.injected();
    assert!(injected.len() >= 3, "each request was tried 3 times: {injected:?}");
    let keys = server.keys(OUT_BUCKET, "x");
    assert!(!keys.iter().any(|k| k.ends_with("master.m3u8") || k.ends_with("chunks/0.json")), "{keys:?}");
    assert_input_untouched(&server, &input_sha);
}

#[test]
fn wrong_credentials_exit_2_and_say_what_to_check() {
    let (server, input_sha) = server_with_input();
    for (name, value, problem) in [
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret", "the secret key does not match the access key"),
        ("AWS_ACCESS_KEY_ID", "UNKNOWNKEY", "the access key is not known"),
    ] {
        let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), "s3://ladder/x", &[(name, value)]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(problem) && stderr.contains("bucket \"ladder\""), "{name}: {stderr}");
        assert!(stderr.contains("check the credentials"), "{name}: {stderr}");
    }
    // Local output, S3 input: the input side says the same.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = [("AWS_SECRET_ACCESS_KEY", "not-the-secret")];
    let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), out.to_str().unwrap(), &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bucket \"media\"") && stderr.contains("credentials"), "{stderr}");
    assert!(!out.join("master.m3u8").exists());
    assert!(server.keys(OUT_BUCKET, "").is_empty(), "nothing is published");
    assert_input_untouched(&server, &input_sha);
}

#[test]
fn a_missing_bucket_exits_2_and_a_missing_input_exits_3() {
    let (server, input_sha) = server_with_input();
    let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), "s3://no-such-bucket/x", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bucket \"no-such-bucket\" does not exist"), "{stderr}");

    let (code, _, stderr) = ladder(&server.endpoint(), "s3://no-such-bucket/rec.mp4", "s3://ladder/x", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bucket \"no-such-bucket\" does not exist"), "{stderr}");

    let (code, _, stderr) = ladder(&server.endpoint(), "s3://media/events/2026/nope.mp4", "s3://ladder/x", &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("the input events/2026/nope.mp4 does not exist"), "{stderr}");
    assert!(
        !server.keys(OUT_BUCKET, "").iter().any(|k| k.ends_with("master.m3u8") || k.contains("/v0/")),
        "nothing is published: {:?}",
        server.keys(OUT_BUCKET, "")
    );
    assert_input_untouched(&server, &input_sha);
}

#[test]
fn local_input_to_s3_and_s3_input_to_local_both_work() {
    let (server, input_sha) = server_with_input();
    // The endpoint as the AWS SDKs take it (AWS_ENDPOINT_URL) also turns on path-style.
    let env = [("LADDER_S3_ENDPOINT", ""), ("AWS_ENDPOINT_URL", &server.endpoint())];
    let (code, _, stderr) = ladder("", source().to_str().unwrap(), "s3://ladder/from-local", &env);
    assert_eq!(code, 0, "{stderr}");
    let lists = playlists(&server, "from-local");
    assert_segments_decode(&server.path(OUT_BUCKET, "from-local"), &lists);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), out.to_str().unwrap(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let local: Vec<(String, String)> =
        lists.iter().map(|(uri, _)| (uri.clone(), std::fs::read_to_string(out.join(uri)).unwrap())).collect();
    assert_eq!(local, lists, "the same input makes the same playlists wherever it is read from or written to");
    assert_segments_decode(&out, &local);
    assert_input_untouched(&server, &input_sha);
}

/// The 8 s source as an HLS recording (MPEG-TS segments of 2 s), uploaded under `prefix`
/// the way a recorder leaves it; returns the playlist's key and the segments' keys.
fn upload_hls(server: &Server, prefix: &str) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(source())
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(dir.path().join("seg_%03d.ts"))
        .arg(dir.path().join("index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        server.put(INPUT_BUCKET, &format!("{prefix}/{name}"), &std::fs::read(&path).unwrap());
        if name.ends_with(".ts") {
            segments.push(format!("{prefix}/{name}"));
        }
    }
    segments.sort();
    (format!("{prefix}/index.m3u8"), segments)
}

#[test]
fn an_hls_recording_in_s3_is_read_with_every_segment_it_names() {
    let (server, _) = server_with_input();
    let (playlist_key, segments) = upload_hls(&server, "events/hls");
    assert!(segments.len() >= 4, "{segments:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = format!("s3://{INPUT_BUCKET}/{playlist_key}");
    let (code, _, stderr) = ladder(&server.endpoint(), &input, out.to_str().unwrap(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    let parsed = playlist::parse_master(&master).unwrap();
    let mut lists = vec![("master.m3u8".to_owned(), master.clone())];
    for uri in parsed.variants.iter().map(|v| v.uri.clone()).chain(parsed.media.iter().map(|m| m.req("URI").to_owned()))
    {
        lists.push((uri.clone(), std::fs::read_to_string(out.join(&uri)).unwrap()));
    }
    let v0 = playlist::parse_media(&lists[1].1).unwrap();
    let seconds: f64 = v0.segments.iter().map(|s| s.duration).sum();
    assert!((seconds - 8.0).abs() < 0.1, "all 8 s of the recording, not its first segment: {seconds}");
    assert_segments_decode(&out, &lists);

    // A segment missing from the bucket: exit 3, naming it.
    std::fs::remove_file(server.path(INPUT_BUCKET, &segments[2])).unwrap();
    let (code, _, stderr) = ladder(&server.endpoint(), &input, dir.path().join("out2").to_str().unwrap(), &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(&segments[2]), "names the missing segment: {stderr}");
}

/// 40 s of the 240p rung: 20 segments of 2 s in 10 chunks, long enough to stop mid-way.
fn long_source() -> PathBuf {
    common::pattern("s3-source40.mp4", "426x240", "25", "40", &[])
}

/// A `ladder run` of the long source from S3 to `s3://ladder/<prefix>`, not waited for.
fn spawn_ladder(server: &Server, prefix: &str, env: &[(&str, &str)]) -> std::process::Child {
    spawn_ladder_at(&server.endpoint(), prefix, env)
}

/// [`spawn_ladder`] through `endpoint` (a proxy), its stderr kept.
fn spawn_ladder_at(endpoint: &str, prefix: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ladder"));
    cmd.args(["run", "s3://media/long.mp4", "--out", &format!("s3://{OUT_BUCKET}/{prefix}")]);
    cmd.args(["--preset", preset().to_str().unwrap(), "--progress", "off", "--jobs", "1", "--json"]);
    cmd.args(["--log", "ladder=info", "--log-format", "text"]);
    cmd.stderr(std::process::Stdio::piped());
    cmd.env_remove("AWS_PROFILE").env_remove("AWS_ENDPOINT_URL").env_remove("AWS_SESSION_TOKEN");
    for (k, v) in common::s3::env(endpoint) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped()).spawn().unwrap()
}

fn chunk_list(report: &serde_json::Value, key: &str) -> Vec<u64> {
    report["run"][key].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect()
}

/// A server with the long input, and its ladder made by one uninterrupted run under `clean`.
fn server_with_clean_run() -> (Server, String) {
    let server = Server::start();
    server.create_bucket(INPUT_BUCKET);
    server.create_bucket(OUT_BUCKET);
    let bytes = std::fs::read(long_source()).unwrap();
    server.put(INPUT_BUCKET, "long.mp4", &bytes);
    let clean = spawn_ladder(&server, "clean", &[]).wait_with_output().unwrap();
    assert!(clean.status.success());
    (server, common::s3::sha256_hex(&bytes))
}

#[test]
fn a_run_killed_mid_way_is_finished_by_a_rerun_that_redoes_only_the_missing_chunks() {
    let (server, input_sha) = server_with_clean_run();
    let mut child = spawn_ladder(&server, "resumed", &[]);
    let first = server.path(OUT_BUCKET, "resumed/.ladder/chunks/0.json");
    while !first.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL, as when a node disappears.
    child.wait().unwrap();
    assert!(server.read(OUT_BUCKET, "resumed/master.m3u8").is_none(), "no master for an incomplete set");
    let recorded: Vec<u64> =
        (0..10).filter(|c| server.read(OUT_BUCKET, &format!("resumed/.ladder/chunks/{c}.json")).is_some()).collect();
    assert!(!recorded.is_empty() && recorded.len() < 10, "recorded {recorded:?}");

    let rerun = spawn_ladder(&server, "resumed", &[]).wait_with_output().unwrap();
    assert!(rerun.status.success());
    let report: serde_json::Value = serde_json::from_str(&text(&server, OUT_BUCKET, "resumed/report.json")).unwrap();
    assert_eq!(chunk_list(&report, "chunks_reused"), recorded, "finished chunks are not encoded again");
    let mut all = [chunk_list(&report, "chunks_encoded"), recorded].concat();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<u64>>(), "every other chunk is encoded by the rerun");
    let lists = playlists(&server, "resumed");
    assert_eq!(lists, playlists(&server, "clean"), "the same ladder as an uninterrupted run");
    assert_segments_decode(&server.path(OUT_BUCKET, "resumed"), &lists);
    assert_eq!(server.keys(INPUT_BUCKET, ""), ["long.mp4"]);
    assert_eq!(common::s3::sha256_hex(&server.read(INPUT_BUCKET, "long.mp4").unwrap()), input_sha);
}

#[test]
fn two_shards_as_two_processes_publish_what_one_run_does() {
    let (server, input_sha) = server_with_clean_run();
    let shards: Vec<_> =
        ["0/2", "1/2"].iter().map(|s| spawn_ladder(&server, "sharded", &[("LADDER_SHARD", s)])).collect();
    let summaries: Vec<serde_json::Value> = shards
        .into_iter()
        .map(|c| {
            let done = c.wait_with_output().unwrap();
            assert!(done.status.success());
            serde_json::from_slice(&done.stdout).unwrap()
        })
        .collect();
    assert_eq!(summaries[0]["chunks_encoded"], serde_json::json!([0, 2, 4, 6, 8]));
    assert_eq!(summaries[1]["chunks_encoded"], serde_json::json!([1, 3, 5, 7, 9]));
    assert!(summaries.iter().any(|s| s["published"].is_string()), "{summaries:?}");
    assert_eq!(playlists(&server, "sharded"), playlists(&server, "clean"));
    assert_eq!(common::s3::sha256_hex(&server.read(INPUT_BUCKET, "long.mp4").unwrap()), input_sha);
}

/// A server with the long input (40 s, 10 chunks) and an empty output bucket.
fn server_with_long_input() -> (Server, Vec<u8>) {
    let server = Server::start();
    server.create_bucket(INPUT_BUCKET);
    server.create_bucket(OUT_BUCKET);
    let bytes = std::fs::read(long_source()).unwrap();
    server.put(INPUT_BUCKET, "long.mp4", &bytes);
    (server, bytes)
}

#[test]
fn an_input_replaced_mid_run_exits_4_and_publishes_nothing() {
    let (server, _) = server_with_long_input();
    // Through the proxy, which answers 412 to a GET whose If-Match is no longer the
    // object's ETag, as S3 does; 16 KiB blocks, so later chunks read blocks of their own.
    let proxy = Proxy::start(server.addr);
    let mut child = spawn_ladder_at(&proxy.endpoint(), "replaced", &[("LADDER_S3_READ_BLOCK_KIB", "16")]);
    let first = server.path(OUT_BUCKET, "replaced/.ladder/chunks/0.json");
    while !first.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the input could be replaced");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Another version of the same size (a byte changed), so that every range the run asks
    // for still exists: only If-Match tells the versions apart.
    let mut other = std::fs::read(long_source()).unwrap();
    other[1000] ^= 0xff;
    server.put(INPUT_BUCKET, "long.mp4", &other);
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("the object changed while it was read"), "{stderr}");
    assert!(proxy.injected().iter().any(|l| l.starts_with("412 (If-Match) GET")), "{:?}", proxy.injected());
    assert!(server.read(OUT_BUCKET, "replaced/master.m3u8").is_none(), "nothing is published");
    assert!(server.read(OUT_BUCKET, "replaced/manifest.mpd").is_none(), "nothing is published");
}

/// `(pts seconds, byte position, size)` of every packet of `path`, from ffprobe.
fn packet_positions(path: &std::path::Path) -> Vec<(f64, u64, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pts_time,pos,size", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // ffprobe prints a section's fields in its own order: time, size, position.
            let mut f = l.split(',');
            let (time, size, pos) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            Some((time, pos, size))
        })
        .collect()
}

#[test]
fn a_recording_damaged_in_the_store_is_not_published_when_read_in_place() {
    let (server, _) = server_with_input();
    // A byte of the media changes on the server's disk behind its back: the object no
    // longer has the SHA-256 it was stored with, though it may still decode.
    let path = server.path(INPUT_BUCKET, INPUT_KEY);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (code, _, stderr) = ladder(&server.endpoint(), &input_url(), "s3://ladder/damaged", &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("the stored object is damaged") && stderr.contains("SHA256"), "{stderr}");
    assert!(server.read(OUT_BUCKET, "damaged/master.m3u8").is_none(), "nothing is published");
    assert!(server.read(OUT_BUCKET, "damaged/.ladder/chunks/audio_0.json").is_none(), "the audio waits for the check");
}

#[test]
fn a_shard_reads_only_its_share_of_an_input_read_in_place() {
    // 80 s with a key frame every 2 s (what streaming platforms ask encoders for): 20
    // chunks of 4 s. Shard 1 of 10 owns chunks 1 and 11; the audio, read whole, goes to
    // shard 0, whose first chunk has no warm-up frames to encode.
    let path = common::pattern("s3-share.mp4", "426x240", "25", "80", &["-g", "50"]);
    let bytes = std::fs::read(&path).unwrap();
    let server = Server::start();
    server.create_bucket(INPUT_BUCKET);
    server.create_bucket(OUT_BUCKET);
    server.put(INPUT_BUCKET, "long.mp4", &bytes);
    let block = 64 * 1024;
    let env = [("LADDER_SHARD", "1/10"), ("LADDER_S3_READ_BLOCK_KIB", "64")];
    let done = spawn_ladder(&server, "share", &env).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(summary["chunks_encoded"], serde_json::json!([1, 11]));
    let (read, size) = (summary["input_bytes_read"].as_u64().unwrap(), bytes.len() as u64);
    assert_eq!(summary["input_bytes"], size);
    assert!(stderr.contains(&format!("input read in place bytes_read={read} of={size}")), "{stderr}");

    // What it may read: the header and index, the probe's first pictures (3 s), and each
    // chunk with a key frame interval of lead-in; plus, per reader, a partial block at
    // each end of a run and a block read ahead.
    let packets = packet_positions(&path);
    let bytes_between =
        |from: f64, to: f64| -> u64 { packets.iter().filter(|p| p.0 >= from && p.0 < to).map(|p| p.2).sum() };
    let media: u64 = packets.iter().map(|p| p.2).sum();
    let index = size - media;
    let chunks = bytes_between(2.0, 8.5) + bytes_between(42.0, 48.5);
    let allowed = index + bytes_between(0.0, 3.0) + chunks + 3 * 3 * block;
    let share = read as f64 / size as f64;
    eprintln!("shard 1/10 read {read} of {size} bytes ({share:.3}); allowed {allowed}");
    assert!(read <= allowed, "read {read} of {size} bytes ({share:.3}), more than {allowed}");
    assert!(read >= bytes_between(4.0, 8.0) + bytes_between(44.0, 48.0), "its chunks were read: {read}");
    assert!(share < 0.1 + 0.1, "read {read} of {size} bytes ({share:.3})");
}

/// The top-level boxes of an MP4, in order.
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += size.max(8);
    }
    boxes
}

#[test]
fn moov_at_end_mp4_webm_and_mpeg_ts_from_s3_make_what_the_same_file_makes_locally() {
    let server = Server::start();
    server.create_bucket(INPUT_BUCKET);
    server.create_bucket(OUT_BUCKET);
    let vp8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus"];
    let recordings = [
        // ffmpeg's MP4 muxer writes the index last, as a recorder that cannot seek back would.
        ("end.mp4", common::pattern("s3-end.mp4", "426x240", "25", "8", &[]), "reading the input in place"),
        // LiveKit's egress: VP8 and Opus in WebM, with cues at the end.
        ("room.webm", common::pattern("s3-room.webm", "426x240", "25", "8", &vp8), "reading the input in place"),
        // No index to seek by: read through once, whole, rather than twice in place.
        ("restream.ts", common::pattern("s3-restream.ts", "426x240", "25", "8", &[]), "fetching it whole"),
    ];
    let mp4 = std::fs::read(&recordings[0].1).unwrap();
    let boxes = top_level_boxes(&mp4);
    let position = |name: &str| boxes.iter().position(|b| b == name).unwrap();
    assert!(position("mdat") < position("moov"), "{boxes:?}");
    let block = [("LADDER_S3_READ_BLOCK_KIB", "32")];
    for (key, path, how) in &recordings {
        server.put(INPUT_BUCKET, key, &std::fs::read(path).unwrap());
        let (code, _, stderr) =
            ladder(&server.endpoint(), &format!("s3://media/{key}"), &format!("s3://ladder/s3-{key}"), &block);
        assert_eq!(code, 0, "{key}: {stderr}");
        assert!(stderr.contains(how), "{key}: {stderr}");
        let (code, _, stderr) =
            ladder(&server.endpoint(), path.to_str().unwrap(), &format!("s3://ladder/local-{key}"), &[]);
        assert_eq!(code, 0, "{key}: {stderr}");
        let lists = playlists(&server, &format!("s3-{key}"));
        assert_eq!(lists, playlists(&server, &format!("local-{key}")), "{key}");
        assert_segments_decode(&server.path(OUT_BUCKET, &format!("s3-{key}")), &lists);
    }
}

/// The storage layer directly: settings the CLI does not expose small enough for a test.
mod storage {
    use super::*;
    use ladder::location::{self, Location, StorageConfig, StorageError};

    fn config(endpoint: &str) -> StorageConfig {
        common::s3::storage_config(endpoint)
    }

    /// Deterministic bytes that do not compress.
    fn noise(len: usize) -> Vec<u8> {
        common::s3::noise(len, 0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn multipart_uploads_survive_faults_and_abort_on_failure() {
        let server = Server::start();
        server.create_bucket(OUT_BUCKET);
        let proxy = Proxy::start(server.addr);
        let mut cfg = config(&proxy.endpoint());
        cfg.part_size = 5 * 1024 * 1024;
        let out = location::open_output(&Location::parse("s3://ladder/big").unwrap(), &cfg).unwrap();
        let blob = noise(12 * 1024 * 1024 + 17);
        proxy.add(Rule::new(Fault::Status(503, "SlowDown"), Some("PUT"), Some("partNumber=2"), 2));
        proxy.add(Rule::new(Fault::DropRequest, Some("PUT"), Some("partNumber=3"), 1));
        out.put("v0/seg_0.m4s", &blob).unwrap();
        assert!(proxy.unused().is_empty(), "{:?}", proxy.unused());
        assert_eq!(server.read(OUT_BUCKET, "big/v0/seg_0.m4s").unwrap(), blob);
        assert_eq!(out.size("v0/seg_0.m4s").unwrap(), Some(blob.len() as u64));
        assert_eq!(out.get("v0/seg_0.m4s").unwrap().unwrap(), blob);
        let (content_type, cache, _) = server.head(OUT_BUCKET, "big/v0/seg_0.m4s");
        assert_eq!(
            (content_type.as_str(), cache.as_str()),
            ("video/iso.segment", "public, max-age=31536000, immutable")
        );

        // A part that keeps failing: the upload is aborted, nothing half-made is left.
        cfg.max_attempts = 2;
        let out = location::open_output(&Location::parse("s3://ladder/big").unwrap(), &cfg).unwrap();
        proxy.add(Rule::new(Fault::Status(500, "InternalError"), Some("PUT"), Some("partNumber=2"), 2));
        let err = out.put("v0/seg_1.m4s", &blob).unwrap_err();
        assert!(matches!(err, StorageError::Remote { .. }), "{err}");
        assert!(err.outcome() == ladder::exit::Outcome::Transient);
        assert_eq!(out.size("v0/seg_1.m4s").unwrap(), None);
        assert_eq!(server.pending_parts(), 0, "the failed upload was aborted");
        assert_eq!(out.get("missing.json").unwrap(), None);
        out.delete("v0/seg_0.m4s").unwrap();
        out.delete("v0/seg_0.m4s").unwrap();
        assert_eq!(server.read(OUT_BUCKET, "big/v0/seg_0.m4s"), None);
    }

    #[test]
    fn the_input_is_fetched_in_verified_ranges_through_faults() {
        let server = Server::start();
        server.create_bucket(INPUT_BUCKET);
        let blob = noise(1024 * 1024 + 5);
        server.put(INPUT_BUCKET, "rec.bin", &blob);
        let proxy = Proxy::start(server.addr);
        let mut cfg = config(&proxy.endpoint());
        cfg.fetch_range = 64 * 1024; // 17 ranges
        cfg.fetch_concurrency = 4;
        for fault in [
            Fault::Status(503, "SlowDown"),
            Fault::Status(429, "TooManyRequests"),
            Fault::Status(500, "InternalError"),
            Fault::Stall(Duration::from_secs(3)),
            Fault::StallBody(Duration::from_secs(3)),
            Fault::DropResponse,
            Fault::DropRequest,
        ] {
            proxy.add(Rule::new(fault, Some("GET"), Some("rec.bin"), 1));
        }
        let scratch = tempfile::tempdir().unwrap();
        let input = Location::parse("s3://media/rec.bin").unwrap();
        let path = location::fetch_input(&input, scratch.path(), &cfg).unwrap();
        assert!(proxy.unused().is_empty(), "{:?}", proxy.unused());
        assert_eq!(std::fs::read(&path).unwrap(), blob);
        assert_eq!(server.read(INPUT_BUCKET, "rec.bin").unwrap(), blob, "the input is never written");

        // A local input is used where it is.
        let local = Location::parse("/tmp/x.mp4").unwrap();
        assert_eq!(location::fetch_input(&local, scratch.path(), &cfg).unwrap(), PathBuf::from("/tmp/x.mp4"));
    }

    #[test]
    fn an_input_replaced_during_the_fetch_fails_cleanly() {
        let server = Server::start();
        server.create_bucket(INPUT_BUCKET);
        server.put(INPUT_BUCKET, "rec.bin", &noise(200 * 1024));
        let proxy = Proxy::start(server.addr);
        // What S3 answers a GET whose If-Match no longer holds (s3s-fs ignores If-Match).
        proxy.add(Rule::new(Fault::Status(412, "PreconditionFailed"), Some("GET"), Some("rec.bin"), 1));
        let mut cfg = config(&proxy.endpoint());
        cfg.fetch_range = 64 * 1024;
        let scratch = tempfile::tempdir().unwrap();
        let err =
            location::fetch_input(&Location::parse("s3://media/rec.bin").unwrap(), scratch.path(), &cfg).unwrap_err();
        assert!(err.to_string().contains("changed while it was read"), "{err}");
        assert!(err.outcome() == ladder::exit::Outcome::Transient, "a rerun fetches the new version: {err}");
    }

    #[test]
    fn an_object_damaged_in_the_store_is_bad_input_not_a_retry() {
        let server = Server::start();
        server.create_bucket(INPUT_BUCKET);
        let blob = noise(300 * 1024);
        server.put(INPUT_BUCKET, "rec.bin", &blob);
        // The file changes on disk behind the server's back (same size): its stored
        // SHA-256 no longer matches what is served.
        let mut other = blob.clone();
        other[1000] ^= 0xff;
        std::fs::write(server.path(INPUT_BUCKET, "rec.bin"), &other).unwrap();
        let mut cfg = config(&server.endpoint());
        cfg.fetch_range = 64 * 1024;
        let scratch = tempfile::tempdir().unwrap();
        let err =
            location::fetch_input(&Location::parse("s3://media/rec.bin").unwrap(), scratch.path(), &cfg).unwrap_err();
        assert!(matches!(err, StorageError::InputCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("SHA256") && err.to_string().contains("same on two fetches"), "{err}");
        assert!(err.outcome() == ladder::exit::Outcome::BadInput, "a rerun would read the same bytes: {err}");
    }
}
