//! The chain's head as validations pin it. At hundreds of operations a second, asking the node
//! for its latest block before each one would cost a node call per operation for a block that
//! changes once a second (or four times, on opBNB); so the head is either pushed by the node
//! as each block comes (`eth_subscribe("newHeads")` over WebSocket, see [`ChainHead::follow`])
//! or, without a feed, fetched at most once per `max_age`.
//!
//! A cached head is safe for accepting operations: the bundle-time validation pins a fresh
//! block, and a validation that fails on a cached head is retried on a fresh one (see
//! `Validator::validate`), so a wallet never sees a rejection for state it already sees.

use super::state::PinnedBlock;
use alloy::providers::{DynProvider, Provider, ProviderBuilder, WsConnect};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a head stays trusted while the feed is up, with no newer push: an idle devnet
/// mines no block for minutes, but a live chain pushes one every few seconds at most, so a
/// quiet spell this long on a feed that claims to be up (a node that stopped pushing but
/// kept the socket) falls back to asking.
pub const PUSHED_HEAD_TRUST: Duration = Duration::from_secs(10);

/// The first wait before following the feed again after it failed; doubled per failure.
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between two tries to follow the feed.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// How the head was obtained: a rejection on a cached head is worth a second try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched from the node just now.
    Fetched,
    /// Taken from the cache: pushed by the feed, or fetched up to `max_age` ago.
    Cached,
}

/// The node's latest block, pushed by the node or cached for `max_age`, and fetched by one
/// caller at a time.
pub struct ChainHead {
    provider: DynProvider,
    max_age: Duration,
    latest: Mutex<Option<(Instant, PinnedBlock)>>,
    /// One fetch at a time: callers that find the head stale while a fetch is in flight wait
    /// for it instead of each asking the node.
    fetching: tokio::sync::Mutex<()>,
    /// Whether the node is pushing its heads to us right now (see [`ChainHead::follow`]).
    followed: AtomicBool,
}

impl ChainHead {
    /// A head read through `provider`, fetched again once the cached one is `max_age` old.
    pub fn new(provider: DynProvider, max_age: Duration) -> Self {
        Self {
            provider,
            max_age,
            latest: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            followed: AtomicBool::new(false),
        }
    }

    /// The newest head pushed or fetched within its trust (see [`ChainHead::trust`]), else a
    /// fetched one.
    pub async fn latest(&self) -> Result<(PinnedBlock, Freshness), String> {
        if let Some(block) = self.cached() {
            return Ok((block, Freshness::Cached));
        }
        let _turn = self.fetching.lock().await;
        // Fetched by the caller we waited for.
        if let Some(block) = self.cached() {
            return Ok((block, Freshness::Cached));
        }
        self.fetch().await.map(|block| (block, Freshness::Fetched))
    }

    /// The node's latest block now, remembered for the callers that follow.
    pub async fn fetch(&self) -> Result<PinnedBlock, String> {
        let block = PinnedBlock::latest(&self.provider).await?;
        let mut slot = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        // A slower concurrent fetch must not replace a newer head with an older one.
        if slot.is_none_or(|(_, held)| held.number <= block.number) {
            *slot = Some((Instant::now(), block));
        }
        Ok(block)
    }

    /// Whether the node's feed is up: every new block reaches the cache as it comes.
    pub fn is_followed(&self) -> bool {
        self.followed.load(Ordering::Relaxed)
    }

    /// Follows the node's heads over the WebSocket endpoint `ws_url` for as long as the task
    /// runs: each pushed head replaces the cached one, so validations pin the newest block
    /// without asking for it. A feed that fails or ends is followed again after a pause that
    /// doubles up to [`RECONNECT_MAX`]; meanwhile the head is fetched by `max_age` as without one.
    pub async fn follow(&self, ws_url: &str) {
        let mut pause = RECONNECT_FIRST;
        loop {
            let error = self.follow_once(ws_url, &mut pause).await;
            self.set_followed(false);
            tracing::warn!(%error, retry_in = ?pause, "not following the node's heads; fetching them instead");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_MAX);
        }
    }

    /// Subscribes, then caches every head pushed until the feed fails; returns why it did.
    async fn follow_once(&self, ws_url: &str, pause: &mut Duration) -> String {
        let provider = match ProviderBuilder::new().connect_ws(WsConnect::new(ws_url)).await {
            Ok(provider) => provider,
            Err(e) => return format!("connecting to {ws_url}: {e}"),
        };
        let mut heads = match provider.subscribe_blocks().await {
            Ok(heads) => heads,
            Err(e) => return format!("eth_subscribe newHeads on {ws_url}: {e}"),
        };
        // Blocks mined before the subscription took hold are never pushed: read the head once
        // now, and from here on every newer one comes by the feed.
        if let Err(e) = self.fetch().await {
            return format!("reading the head after subscribing: {e}");
        }
        self.set_followed(true);
        *pause = RECONNECT_FIRST;
        tracing::info!(ws_url, "following the node's heads");
        loop {
            match heads.recv().await {
                Ok(header) => self.pushed(PinnedBlock::from_header(&header)),
                // Heads came faster than they were read: the next one is newer anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return format!("the head feed on {ws_url} closed");
                }
            }
        }
    }

    /// A head the node pushed: the newest by the node's word, even at a lower height (a reorg).
    fn pushed(&self, block: PinnedBlock) {
        crate::metrics::head_pushed();
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), block));
    }

    fn set_followed(&self, followed: bool) {
        self.followed.store(followed, Ordering::Relaxed);
        crate::metrics::head_followed(followed);
    }

    /// How long a cached head is trusted: while the node pushes every new one, until it goes
    /// quiet for [`PUSHED_HEAD_TRUST`]; otherwise `max_age`.
    fn trust(&self) -> Duration {
        if self.is_followed() { PUSHED_HEAD_TRUST.max(self.max_age) } else { self.max_age }
    }

    fn cached(&self) -> Option<PinnedBlock> {
        let trust = self.trust();
        let slot = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        slot.filter(|(at, _)| at.elapsed() < trust).map(|(_, block)| block)
    }
}
