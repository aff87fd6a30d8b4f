//! `tora up` as a child process for the CLI's tests: started on free ports with the fetched
//! models, and stopped with SIGTERM (SIGKILL only if it does not stop in time) even when an
//! assertion fails first, so that its anvil does not outlive the test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `tora up`.
pub(crate) struct Running(std::process::Child);

impl Running {
    /// SIGTERM, as Kubernetes sends it; the exit status, or `None` if it had to be killed.
    pub(crate) fn terminate(&mut self) -> Option<ExitStatus> {
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

/// `tora up` on free ports with the fetched models, writing its deployment to `out`; the URL
/// of each service it printed (`<name>  http://<address> ...`), by name.
pub(crate) fn tora_up(out: &Path) -> (Running, HashMap<String, String>) {
    let (running, lines) = tora_up_with(out, &[]);
    let urls = service_urls(&lines);
    assert!(urls.contains_key("gateway"), "tora up did not start its gateway: {lines:?}");
    (running, urls)
}

/// The URL of each service in what `tora up` printed, by name.
pub(crate) fn service_urls(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, url) = (words.next()?, words.next()?);
            url.starts_with("http://").then(|| (name.to_owned(), url.to_owned()))
        })
        .collect()
}

/// [`tora_up`] with `env` set, and every line it printed up to the paymaster's (which comes
/// last, after the gateway's).
pub(crate) fn tora_up_with(out: &Path, env: &[(&str, &str)]) -> (Running, Vec<String>) {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/models");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .envs(env.iter().copied())
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line.trim_start().starts_with("paymaster");
        printed.push(line);
        if last {
            break;
        }
        assert!(Instant::now() < deadline, "tora up did not print the paymaster's address");
    }
    // Keep reading, as a terminal would: a closed pipe would fail tora's later prints.
    std::thread::spawn(move || lines.for_each(drop));
    (running, printed)
}
