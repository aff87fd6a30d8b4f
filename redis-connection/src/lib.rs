//! Connections to the Redis that replicas share (the bundler's mempool and signer leases, the
//! paymaster's budgets, the gateway's ledgers): one server or a Redis Cluster behind one type,
//! reconnecting by itself, every command bounded in time.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::time::Duration;

/// Every Redis command is bounded: a frozen Redis is an error, not a hung request.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the shared state lives: one Redis server, or the seed nodes of a Redis Cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://host:port`
    Server(String),
    /// Seed nodes of a cluster; the client finds the rest.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// `redis://…` is one server; several URLs separated by commas, or a `redis+cluster://`
    /// scheme, name a cluster.
    pub fn parse(url: &str) -> Self {
        let urls: Vec<String> =
            url.split(',').map(|u| u.trim().replace("redis+cluster://", "redis://")).collect();
        if urls.len() > 1 || url.starts_with("redis+cluster://") {
            Self::Cluster(urls)
        } else {
            Self::Server(urls[0].clone())
        }
    }
}

/// A connection to one server or to a cluster, cheap to clone (both multiplex, and both
/// reconnect by themselves). Commands go through [`ConnectionLike`], so every `redis` command,
/// script and pipeline works on it.
#[derive(Clone)]
pub struct Connection(Link);

#[derive(Clone)]
enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Link::Server(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Link::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Link::Server(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// Connects to the server or the cluster `target` names.
pub async fn connect(target: &RedisTarget) -> redis::RedisResult<Connection> {
    match target {
        RedisTarget::Server(url) => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT));
            let client = redis::Client::open(url.as_str())?;
            Ok(Connection(Link::Server(ConnectionManager::new_with_config(client, config).await?)))
        }
        RedisTarget::Cluster(urls) => {
            let client = ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(REDIS_TIMEOUT)
                .response_timeout(REDIS_TIMEOUT)
                .build()?;
            Ok(Connection(Link::Cluster(client.get_async_connection().await?)))
        }
    }
}

/// A name for this process on its claims and leases, unique per start: host name, process id and the start
/// time, so two replicas (or one restarted) never share one.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "bundler".to_owned());
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{host}/{}/{}", std::process::id(), started.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_a_server_or_a_cluster() {
        assert_eq!(RedisTarget::parse("redis://r:6379"), RedisTarget::Server("redis://r:6379".into()));
        assert_eq!(
            RedisTarget::parse("redis+cluster://r:6379"),
            RedisTarget::Cluster(vec!["redis://r:6379".into()])
        );
        assert_eq!(
            RedisTarget::parse("redis://a:1, redis://b:2"),
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
    }
}
