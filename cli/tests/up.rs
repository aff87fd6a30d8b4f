//! `tora up` as a user runs it: the chain, the bundler, the gateway and the paymaster come up,
//! the deployment file is written, and each service answers on the address it printed.

mod common;

use common::tora_up;

#[test]
fn tora_up_serves_the_paymaster_and_writes_the_deployment() {
    let out = std::env::temp_dir().join(format!("tora-up-test-{}.json", std::process::id()));
    let (mut child, urls) = tora_up(&out);
    let services: std::collections::HashMap<_, _> =
        urls.iter().map(|(name, url)| (name.clone(), url.trim_start_matches("http://").to_owned())).collect();
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

/// A machine without a Vulkan driver (none found: the loader is pointed at no ICD): the gateway
/// says what to install, and the chain, the bundler and the paymaster still come up and answer.
#[test]
fn without_a_vulkan_driver_tora_up_says_what_to_install_and_runs_the_rest() {
    let out = std::env::temp_dir().join(format!("tora-up-novk-{}.json", std::process::id()));
    let (mut child, printed) = common::tora_up_with(
        &out,
        &[("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")],
    );
    let gateway = printed.iter().find(|l| l.trim_start().starts_with("gateway")).expect("a gateway line");
    assert!(gateway.contains("not started") && gateway.contains("mesa-vulkan-drivers"), "{gateway}");
    let urls = common::service_urls(&printed);
    let paymaster = urls["paymaster"].trim_start_matches("http://").to_owned();
    let bundler = urls["bundler"].trim_start_matches("http://").to_owned();
    let health = http_get(&paymaster, "/health");
    let entry_points = http_post(&bundler, r#"{"jsonrpc":"2.0","id":1,"method":"eth_supportedEntryPoints"}"#);
    let stopped = child.terminate();
    let _ = std::fs::remove_file(&out);
    assert!(health.contains("200 OK"), "{health}");
    assert!(entry_points.contains("0x0000000071727De22E5E9d8BAf0edAc6f37da032"), "{entry_points}");
    assert!(stopped.is_some_and(|status| status.success()), "{stopped:?}");
}
