//! A redis-server of a test's own on a free loopback port, stopped on drop: the stores' tests
//! run against real Redis over a real connection, never a mock.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server child process, killed on drop.
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:<port>`
    pub url: String,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections. Panics (this is test support) when
    /// redis-server is not installed: scripts/test.sh installs it.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
