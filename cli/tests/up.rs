//! `tora up` as a user runs it: the chain, the bundler, the gateway and the paymaster come up,
//! the deployment file is written, and each service answers on the address it printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Stops `tora up` even when an assertion fails first.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tora_up_serves_the_paymaster_and_writes_the_deployment() {
    let out = std::env::temp_dir().join(format!("tora-up-test-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .args(["up", "--port", "0", "--paymaster-listen", "127.0.0.1:0", "--bundler-listen", "127.0.0.1:0"])
        .args(["--gateway-listen", "127.0.0.1:0", "--model-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/models/all-minilm-l6-v2"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Each service prints `<name>  http://<address> ...`; the paymaster's line comes last.
    let mut services = std::collections::HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        if let (Some(name), Some(url)) = (words.next(), words.next())
            && let Some(addr) = url.strip_prefix("http://")
        {
            services.insert(name.to_owned(), addr.to_owned());
        }
        if services.contains_key("paymaster") {
            break;
        }
        assert!(Instant::now() < deadline, "tora up did not print the paymaster's address");
    }
    let health = http_get(&services["paymaster"], "/health");
    let bundler =
        http_post(&services["bundler"], r#"{"jsonrpc":"2.0","id":1,"method":"eth_supportedEntryPoints"}"#);
    let gateway = http_get(&services["gateway"], "/v1/models");
    let deployment = std::fs::read_to_string(&out).unwrap();
    drop(child);
    let _ = std::fs::remove_file(&out);
    assert!(health.contains("200 OK") && health.contains("\"ok\""), "{health}");
    assert!(bundler.contains("0x0000000071727de22e5e9d8baf0edac6f37da032"), "{bundler}");
    assert!(gateway.contains("all-MiniLM-L6-v2"), "{gateway}");
    let deployment: serde_json::Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(deployment["contracts"]["entryPoint"], "0x0000000071727de22e5e9d8baf0edac6f37da032");
    assert_eq!(deployment["chainId"], 31337);
}

/// Bare HTTP/1.1, so the test needs no client library.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn http_get(addr: &str, path: &str) -> String {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
}

fn http_post(addr: &str, body: &str) -> String {
    let head = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n");
    http(addr, &format!("{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
}
