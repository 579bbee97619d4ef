//! A local S3 protocol server for the benchmark (`make bench` compares S3 → S3 runs with
//! local ones): `s3s` + `s3s-fs` over a folder, SigV4 with a fixed key, on a loopback port.
//! Bucket `b`, object `k` is the file `<root>/b/k`. Not part of the product.
//!
//! `cargo run --release --example s3_server -- <root> <port>`; prints `ready <endpoint>`.

#![allow(clippy::print_stdout, reason = "a tool for the benchmark script: its one line of output")]

use std::io::Write as _;

const ACCESS_KEY: &str = "LADDERBENCHKEY";
const SECRET_KEY: &str = "ladder-bench-secret-key-0123456789";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: s3_server <root> <port>")?;
    let port: u16 = args.next().ok_or("usage: s3_server <root> <port>")?.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("serving {root}: {e:?}"))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("ready http://{} {ACCESS_KEY} {SECRET_KEY}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone()).into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
