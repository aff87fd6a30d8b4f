//! The HTTP server loop every service runs: serve a router until asked to stop, then close the
//! listener and let requests in flight run to their end (a stream to its last chunk), so a
//! SIGTERM from Kubernetes loses no answer and no charge.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Asks a server started by [`serve`] to stop taking connections and drain.
#[derive(Debug)]
pub struct Drain(watch::Sender<()>);

impl Drain {
    /// Stops accepting; requests in flight carry on.
    pub fn start(&self) {
        let _ = self.0.send(());
    }
}

/// Serves `router` on `listener` (with each connection's peer address, which rate limits key
/// on) until [`Drain::start`], then until its requests in flight end; `name` labels its log.
pub fn serve(listener: TcpListener, router: axum::Router, name: &'static str) -> (JoinHandle<()>, Drain) {
    let (stop, mut stopped) = watch::channel(());
    stopped.mark_unchanged();
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let drained = async move {
            // A dropped Drain is no request to stop: the server runs until its task is aborted,
            // as before anyone could ask.
            if stopped.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(drained).await {
            tracing::error!(error = %e, server = name, "HTTP server stopped");
        }
    });
    (task, Drain(stop))
}

/// How long a stopping service waits for its requests in flight: inside Kubernetes' default
/// 30 s grace period, long enough for a text generation to finish.
pub const DRAIN_WAIT: Duration = Duration::from_secs(25);

/// Drains the server behind `http` and waits for it (at most [`DRAIN_WAIT`]), then aborts
/// `others` (loops that need no goodbye); whether every request in flight ended in time.
pub async fn stop_serving(drain: &Drain, http: JoinHandle<()>, others: &[JoinHandle<()>]) -> bool {
    drain.start();
    let drained = tokio::time::timeout(DRAIN_WAIT, http).await.is_ok();
    for task in others {
        task.abort();
    }
    if !drained {
        tracing::warn!("requests still in flight after the drain wait; stopping anyway");
    }
    drained
}
