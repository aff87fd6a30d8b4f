//! `tora up` as a user runs it: the chain, the bundler, the gateway and the paymaster come up,
//! the deployment file is written, and each service answers on the address it printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Stops `tora up` even when an assertion fails first: SIGTERM as Kubernetes sends it, and
/// SIGKILL only if it does not stop in time (which would leave its anvil behind).
struct Running(std::process::Child);

impl Running {
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.terminate();
        }
    }
}

#[test]
fn tora_up_serves_the_paymaster_and_writes_the_deployment() {
    let out = std::env::temp_dir().join(format!("tora-up-test-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .args(["up", "--port", "0", "--paymaster-listen", "127.0.0.1:0", "--bundler-listen", "127.0.0.1:0"])
        .args(["--gateway-listen", "127.0.0.1:0", "--model-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/models/all-minilm-l6-v2"))
        .arg("--text-model")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
        ))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Each service prints `<name>  http://<address> ...`; the paymaster's line comes last.
    let mut services = std::collections::HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
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
    // Keep reading, as a terminal would: a closed pipe would fail tora's later prints.
    std::thread::spawn(move || lines.for_each(drop));
    let health = http_get(&services["paymaster"], "/health");
    let bundler =
        http_post(&services["bundler"], r#"{"jsonrpc":"2.0","id":1,"method":"eth_supportedEntryPoints"}"#);
    let gateway = http_get(&services["gateway"], "/v1/models");
    let deployment = std::fs::read_to_string(&out).unwrap();
    let stopped = child.terminate();
    let _ = std::fs::remove_file(&out);
    assert!(health.contains("200 OK") && health.contains("\"ok\""), "{health}");
    assert!(bundler.contains("0x0000000071727De22E5E9d8BAf0edAc6f37da032"), "{bundler}");
    assert!(gateway.contains("all-MiniLM-L6-v2") && gateway.contains("SmolLM2-135M-Instruct"), "{gateway}");
    let deployment: serde_json::Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(deployment["contracts"]["entryPoint"], "0x0000000071727de22e5e9d8baf0edac6f37da032");
    assert_eq!(deployment["chainId"], 31337);
    // SIGTERM is a clean stop: exit 0, and the chain it started is gone with it.
    assert!(
        stopped.is_some_and(|status| status.success()),
        "tora up did not exit cleanly on SIGTERM: {stopped:?}"
    );
    let chain = deployment["rpcUrl"].as_str().unwrap().trim_start_matches("http://");
    let chain: std::net::SocketAddr = chain.trim_end_matches('/').parse().unwrap();
    assert!(
        std::net::TcpStream::connect(chain).is_err(),
        "anvil still listens on {chain} after tora up stopped"
    );
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
