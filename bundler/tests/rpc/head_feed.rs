//! The node's head feed (eth_subscribe newHeads over WebSocket): validations pin the block the
//! node pushed last without asking for it, and a bundler whose feed is down fetches heads as
//! before.

use crate::common::{HEAD_CALLS, Stack};
use alloy::providers::Provider;
use std::time::{Duration, Instant};

const PUSHED: &str = "bundler_heads_pushed_total";
const FEED_UP: &str = "bundler_head_feed_up";

/// A bundler that follows the devnet's heads and ticks its builder only at start, so that every
/// head request it makes afterwards is a validation's.
async fn following(ws_url: Option<String>) -> Stack {
    Stack::start_on_harness(|h, settings| {
        settings.ws_url = ws_url.or_else(|| h.devnet.deployment.ws_url.clone());
        settings.options.bundle_interval = Duration::from_secs(3_600);
    })
    .await
}

/// Waits until `done` holds, polling; panics after 10 s with `what`.
async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_followed_head_serves_validations_without_asking_the_node() {
    // The stack's head_max_age is zero: without the feed, every validation would ask.
    let s = following(None).await;
    until("the feed to be up", || async { s.metric(FEED_UP).await == 1.0 }).await;
    let (first_block, first_pushes) =
        (s.h.deployer.get_block_number().await.unwrap(), s.metric(PUSHED).await);

    // Funding the wallet mines blocks: the operation is valid only on the newest of them, so
    // a validation on any older head would be refused, then retried on a fetched one.
    let wallet = s.funded_wallet(s.h.contracts().simple_account_factory, 41).await;
    let op = s.first_op(&wallet).await;
    let mined = s.h.deployer.get_block_number().await.unwrap() - first_block;
    assert!(mined > 0, "funding mined no block");
    until("every new block to be pushed", || async { s.metric(PUSHED).await - first_pushes >= mined as f64 })
        .await;

    let before = s.metric(HEAD_CALLS).await;
    s.send(&op).await;
    assert_eq!(s.metric(HEAD_CALLS).await - before, 0.0, "a validation asked the node for its head");
}

#[tokio::test]
async fn a_bundler_whose_feed_is_down_fetches_heads() {
    // Nothing listens on port 9 of this machine.
    let s = following(Some("ws://127.0.0.1:9".into())).await;
    let wallet = s.funded_wallet(s.h.contracts().simple_account_factory, 42).await;
    let op = s.first_op(&wallet).await;
    let before = s.metric(HEAD_CALLS).await;
    s.send(&op).await;
    assert_eq!(s.metric(FEED_UP).await, 0.0);
    // The send's fee checks and its validation each ask, at this stack's head_max_age of zero.
    assert_eq!(s.metric(HEAD_CALLS).await - before, 2.0, "the send fetched its heads");
}
