//! When to stop: Ctrl-C in a terminal, SIGTERM from Kubernetes (or systemd, or `kill`). Both
//! get the same clean stop, so a pod being replaced flushes its traces and stops its children.
//! The handlers are installed before anything starts: a signal that arrives during start-up
//! is kept and honoured once the services are up, instead of killing the process half-way
//! (which would leave a devnet's anvil running).

use tokio::signal::unix::{Signal, SignalKind, signal};

pub(crate) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Waits for SIGINT or SIGTERM and names the one that came.
    pub(crate) async fn requested(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
