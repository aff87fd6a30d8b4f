//! `tora up` as a user runs it: the chain and the paymaster come up, the deployment file is
//! written, and the paymaster answers on the printed address.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn tora_up_serves_the_paymaster_and_writes_the_deployment() {
    let out = std::env::temp_dir().join(format!("tora-up-test-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .args(["up", "--port", "0", "--paymaster-listen", "127.0.0.1:0", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut paymaster_url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("paymaster  ") {
            paymaster_url = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
        assert!(Instant::now() < deadline, "tora up did not print the paymaster's address");
    }
    let url = paymaster_url.expect("tora up printed the paymaster's address");
    let addr = url.trim_start_matches("http://");
    let health = http_get(addr, "/health");
    let deployment = std::fs::read_to_string(&out).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&out);
    assert!(health.contains("200 OK") && health.contains("\"ok\""), "{health}");
    let deployment: serde_json::Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(deployment["contracts"]["entryPoint"], "0x0000000071727de22e5e9d8baf0edac6f37da032");
    assert_eq!(deployment["chainId"], 31337);
}

/// A bare HTTP/1.1 GET, so the test needs no client library.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
