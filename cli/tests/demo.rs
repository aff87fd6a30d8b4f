//! `tora demo` against `tora up`, as a user runs them: each step of the story (a sponsored
//! first operation, the next one paid in TORA with a permit, inference paid with vouchers and
//! redeemed) lands and adds up, and a second run, with a new wallet, does too.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `tora up`, stopped with SIGTERM (SIGKILL if it does not stop in time) even when an
/// assertion fails first, so that its anvil does not outlive the test.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tora up` on free ports with the fetched models, writing its deployment to `out`; the URL
/// of each service it printed (`<name>  http://<address> ...`), by name.
fn tora_up(out: &Path) -> (Running, HashMap<String, String>) {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/models");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .args(["up", "--port", "0", "--paymaster-listen", "127.0.0.1:0", "--bundler-listen", "127.0.0.1:0"])
        .args(["--gateway-listen", "127.0.0.1:0", "--model-dir"])
        .arg(format!("{models}/all-minilm-l6-v2"))
        .arg("--text-model")
        .arg(format!("{models}/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut urls = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    // The paymaster's line comes last, after the gateway's.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        if let (Some(name), Some(url)) = (words.next(), words.next())
            && url.starts_with("http://")
        {
            urls.insert(name.to_owned(), url.to_owned());
        }
        if urls.contains_key("paymaster") {
            break;
        }
    }
    assert!(urls.contains_key("gateway"), "tora up did not start its gateway: {urls:?}");
    // Keep reading, as a terminal would: a closed pipe would fail tora's later prints.
    std::thread::spawn(move || lines.for_each(drop));
    (running, urls)
}

/// The transaction hash a line names after `tx `, checked to be 32 bytes of hex.
fn tx_in(line: &str) -> &str {
    let at = line.find("tx 0x").unwrap_or_else(|| panic!("no transaction in {line:?}")) + 3;
    let hash = &line[at..at + 66.min(line.len() - at)];
    assert!(hash.len() == 66 && hash[2..].chars().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    hash
}

/// Checks one run: it exited 0, and each step printed its result with its transaction.
/// Returns the new wallet's address the run told the story of.
fn told(run: &Output) -> String {
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "tora demo failed ({}):\n{stdout}\n{stderr}", run.status);
    let txs: std::collections::BTreeSet<&str> = (1..=3)
        .map(|step| {
            let prefix = format!("  => step {step} ok");
            let line = stdout.lines().find(|l| l.starts_with(&prefix));
            tx_in(line.unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}")))
        })
        .collect();
    assert_eq!(txs.len(), 3, "each step lands in a transaction of its own: {txs:?}");
    assert!(stdout.contains("\nEvery step added up, to the wei"), "{stdout}");
    let setup = stdout.lines().find_map(|l| l.strip_prefix("Setup: a new ToraAccount "));
    setup.and_then(|rest| rest.split_whitespace().next()).expect("the run names its wallet").to_owned()
}

#[test]
fn tora_demo_tells_the_whole_story_on_tora_up_and_again_with_a_new_wallet() {
    let out = std::env::temp_dir().join(format!("tora-demo-test-{}.json", std::process::id()));
    let (up, urls) = tora_up(&out);
    let demo = || {
        Command::new(env!("CARGO_BIN_EXE_tora"))
            .arg("demo")
            .arg("--deployment")
            .arg(&out)
            .args(["--bundler-url", &urls["bundler"], "--paymaster-url", &urls["paymaster"]])
            .args(["--gateway-url", &urls["gateway"]])
            .output()
            .unwrap()
    };
    let (first, second) = (demo(), demo());
    drop(up);
    let _ = std::fs::remove_file(&out);
    assert_ne!(told(&first), told(&second), "each run makes a new wallet");
}
