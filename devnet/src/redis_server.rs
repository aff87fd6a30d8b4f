//! A redis-server of a test's own on a free loopback port, stopped on drop: the stores' tests
//! run against real Redis over a real connection, never a mock. Also a persistent one that can
//! be killed and restarted on its data, and a three-master Redis Cluster.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server child process, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    /// Where an append-only file is kept, for a persistent server.
    dir: Option<PathBuf>,
    /// `redis://127.0.0.1:<port>`
    pub url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test.sh installs it)")
}

/// A server syncing its append-only file in `dir` before each answer; waits until it listens.
fn spawn_persistent(port: u16, dir: &std::path::Path) -> Child {
    let dir = dir.display().to_string();
    let child = spawn(port, &["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir]);
    wait_for(port);
    child
}

/// A fresh directory under the system temp dir for one server's files.
fn scratch_dir(label: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tora-redis-{label}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl RedisServer {
    /// Starts it and waits until it accepts connections. Panics (this is test support) when
    /// redis-server is not installed: scripts/test.sh installs it.
    pub fn start() -> Self {
        let port = free_port();
        let child = spawn(port, &["--appendonly", "no"]);
        wait_for(port);
        Self { child, port, dir: None, url: format!("redis://127.0.0.1:{port}") }
    }

    /// A server that writes every change to an append-only file and syncs it before it
    /// answers (`appendfsync always`, as the chart runs it): a kill loses no acknowledged write.
    pub fn start_persistent() -> Self {
        let port = free_port();
        let dir = scratch_dir("aof", port);
        let child = spawn_persistent(port, &dir);
        Self { child, port, dir: Some(dir), url: format!("redis://127.0.0.1:{port}") }
    }

    /// Kills the server with SIGKILL (no shutdown save) and starts it again on the same port
    /// and data.
    pub fn crash_and_restart(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let dir = self.dir.as_ref().expect("only a persistent server restarts");
        self.child = spawn_persistent(self.port, dir);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A Redis Cluster of three masters on loopback (redis-server --cluster-enabled, joined with
/// redis-cli --cluster create), stopped on drop.
pub struct RedisCluster {
    nodes: Vec<Child>,
    dir: PathBuf,
    /// `redis://127.0.0.1:<port>` of every master.
    pub urls: Vec<String>,
}

impl RedisCluster {
    /// Starts the three masters, assigns the slots and waits until the cluster is ok.
    pub fn start() -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = scratch_dir("cluster", ports[0]);
        let nodes = ports
            .iter()
            .map(|port| {
                let conf = dir.join(format!("nodes-{port}.conf")).display().to_string();
                spawn(
                    *port,
                    &["--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", &conf],
                )
            })
            .collect();
        for port in &ports {
            wait_for(*port);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli must be installed (scripts/test.sh installs it)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes, dir, urls: addresses.iter().map(|a| format!("redis://{a}")).collect() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ports.iter().all(|port| cluster_ok(*port)) {
            assert!(Instant::now() < deadline, "the Redis Cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
