//! Finding and running anvil. It ships inside the npm package
//! `@foundry-rs/anvil-linux-amd64` (pinned in contracts/package.json), so `npm ci` in
//! contracts/ is the only install step.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where anvil sits inside contracts/ after `npm ci`.
const ANVIL_IN_NODE_MODULES: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
/// anvil prints this once its RPC server accepts connections.
const READY_LINE: &str = "Listening on ";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start anvil: which binary, port, chain id and block interval.
#[derive(Clone, Debug)]
pub struct AnvilConfig {
    /// The anvil binary; found with [`locate_anvil`] when `None`.
    pub binary: Option<PathBuf>,
    /// 0 picks a free port (what tests want).
    pub port: u16,
    /// The chain id anvil reports (31337 by default).
    pub chain_id: u64,
    /// Also mine a block every this many seconds. Each transaction is still mined as it arrives
    /// (anvil's mixed mining): deployment stays instant, and a transaction anvil's automine
    /// leaves waiting (a same-nonce replacement, as a bundler's fee bump or cancellation sends)
    /// still lands within the interval. `None`: only a block per transaction.
    pub block_time: Option<u64>,
}

impl Default for AnvilConfig {
    fn default() -> Self {
        Self { binary: None, port: 0, chain_id: 31337, block_time: None }
    }
}

/// Why anvil could not be found, installed or started.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// No anvil binary in contracts/node_modules nor on PATH.
    #[error(
        "anvil not found (looked for {looked_for}); install it with `npm ci` in {contracts_dir}, \
         or point TORA_ANVIL at an anvil binary"
    )]
    NotFound {
        /// The node_modules path where the bundled anvil was expected.
        looked_for: String,
        /// The contracts/ folder where `npm ci` would install it.
        contracts_dir: String,
    },
    /// The process (anvil, or npm while installing it) could not be spawned.
    #[error("cannot start anvil at {binary}: {source}")]
    Spawn {
        /// The program that failed to start.
        binary: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// anvil exited before listening, or `npm ci` failed.
    #[error("anvil exited before it was ready: {output}")]
    Exited {
        /// What the process printed (stdout then stderr), or npm's exit status.
        output: String,
    },
    /// anvil did not start listening within 30 seconds.
    #[error("anvil did not report \"{READY_LINE}\" within {START_TIMEOUT:?}")]
    Timeout,
}

/// The contracts/ folder of this checkout (or TORA_CONTRACTS_DIR).
pub fn contracts_dir() -> PathBuf {
    std::env::var_os("TORA_CONTRACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts"))
}

/// TORA_ANVIL, else contracts/node_modules, else `anvil` on PATH.
pub fn locate_anvil() -> Result<PathBuf, AnvilError> {
    if let Some(path) = std::env::var_os("TORA_ANVIL") {
        return Ok(PathBuf::from(path));
    }
    locate_anvil_in(&contracts_dir(), std::env::var_os("PATH"))
}

/// anvil inside `contracts_dir`'s node_modules, else on `path_var`.
fn locate_anvil_in(contracts_dir: &Path, path_var: Option<OsString>) -> Result<PathBuf, AnvilError> {
    let bundled = contracts_dir.join(ANVIL_IN_NODE_MODULES);
    if bundled.is_file() {
        return Ok(bundled);
    }
    let on_path =
        path_var.iter().flat_map(std::env::split_paths).map(|dir| dir.join("anvil")).find(|p| p.is_file());
    on_path.ok_or_else(|| AnvilError::NotFound {
        looked_for: bundled.display().to_string(),
        contracts_dir: contracts_dir.display().to_string(),
    })
}

/// Runs `npm ci` in contracts/ (where package-lock.json pins anvil), for a first run on a new
/// machine; a clear error when npm itself is missing.
pub async fn install_anvil() -> Result<PathBuf, AnvilError> {
    let dir = contracts_dir();
    tracing::info!(dir = %dir.display(), "anvil is not installed yet: running `npm ci`");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|source| AnvilError::Spawn { binary: "npm (is Node.js installed?)".into(), source })?;
    if !status.success() {
        return Err(AnvilError::Exited { output: format!("`npm ci` in {} failed: {status}", dir.display()) });
    }
    locate_anvil()
}

/// A running anvil; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// Where anvil listens (`127.0.0.1:<port>`), for HTTP and WebSocket alike.
    addr: String,
    chain_id: u64,
}

impl Anvil {
    /// Starts anvil with the Prague hardfork on 127.0.0.1 and waits until its RPC server listens.
    pub async fn spawn(config: AnvilConfig) -> Result<Self, AnvilError> {
        let binary = match config.binary {
            Some(path) => path,
            None => locate_anvil()?,
        };
        let mut command = Command::new(&binary);
        command
            .args(["--host", "127.0.0.1", "--port", &config.port.to_string()])
            .args(["--chain-id", &config.chain_id.to_string(), "--hardfork", "prague"])
            // Old states stay in memory, the newest 256 only (reorg checks reach 64 back), and
            // none is written to disk: by default anvil persists every older state, and a load
            // test's thousands of blocks filled 21 GB of ~/.foundry in minutes.
            .args(["--prune-history", "256"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(seconds) = config.block_time {
            command.args(["--block-time", &seconds.to_string(), "--mixed-mining"]);
        }
        let mut child = command
            .spawn()
            .map_err(|source| AnvilError::Spawn { binary: binary.display().to_string(), source })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = String::new();
        let wait_ready = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.trim().strip_prefix(READY_LINE) {
                    return Some(addr.to_owned());
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            None
        };
        let addr = match tokio::time::timeout(START_TIMEOUT, wait_ready).await {
            Err(_) => return Err(AnvilError::Timeout),
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut stderr).await;
                }
                return Err(AnvilError::Exited { output: format!("{seen}{stderr}") });
            }
        };
        // Keep draining anvil's output so a full pipe never blocks it.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::trace!(target: "anvil", "{line}");
            }
        });
        Ok(Self { child, addr, chain_id: config.chain_id })
    }

    /// The HTTP JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The WebSocket endpoint: anvil serves it on the HTTP port, `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The anvil process's id, for tests that freeze the node (SIGSTOP) or kill it.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The chain id anvil was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Stops anvil now rather than at drop.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_anvil_says_how_to_install_it() {
        let empty = std::env::temp_dir().join(format!("tora-no-anvil-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = locate_anvil_in(&empty, Some(empty.clone().into_os_string())).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, AnvilError::NotFound { .. }));
        assert!(message.contains("npm ci") && message.contains("TORA_ANVIL"), "{message}");
        std::fs::remove_dir_all(empty).unwrap();
    }

    #[test]
    fn the_npm_packaged_anvil_is_found_in_contracts() {
        let found = locate_anvil_in(&contracts_dir(), None).unwrap();
        assert!(found.ends_with("bin/anvil"), "{}", found.display());
    }

    #[tokio::test]
    async fn an_unstartable_binary_is_an_error_not_a_panic() {
        let config = AnvilConfig { binary: Some("/nonexistent/anvil".into()), ..Default::default() };
        let err = Anvil::spawn(config).await.expect_err("cannot start");
        assert!(matches!(err, AnvilError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/anvil"), "{err}");
    }

    #[tokio::test]
    async fn a_binary_that_exits_early_is_reported_with_its_output() {
        let config = AnvilConfig { binary: Some("/bin/false".into()), ..Default::default() };
        let err = Anvil::spawn(config).await.expect_err("exits at once");
        assert!(matches!(err, AnvilError::Exited { .. }), "{err}");
    }
}
