//! What happened to accepted operations after the bundler said yes: when each one's
//! UserOperationEvent appeared on chain and how many shared a bundle. Read from the node's
//! logs, not from the bundler, so watching adds no load to the service under test.

use alloy::primitives::{B256, map::HashMap};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tora_core::contracts::EntryPoint::UserOperationEvent;

/// When an operation's event was first seen, and in which transaction.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// When the watcher first saw the event.
    pub at: Instant,
    /// The hash of the bundle transaction that included the operation.
    pub transaction: B256,
    /// UserOperationEvent's `success`: false when the operation's call reverted.
    pub success: bool,
}

/// Polls the node for the EntryPoint's UserOperationEvents from `from_block` on.
pub struct InclusionWatcher {
    seen: Arc<Mutex<HashMap<B256, Seen>>>,
    task: JoinHandle<()>,
}

const POLL: Duration = Duration::from_millis(50);

impl InclusionWatcher {
    /// Starts polling `entry_point`'s logs in a background task; [`Self::settle`] stops it.
    pub fn spawn(provider: DynProvider, entry_point: alloy::primitives::Address, from_block: u64) -> Self {
        let seen = Arc::new(Mutex::new(HashMap::default()));
        let task = tokio::spawn(watch(provider, entry_point, from_block, seen.clone()));
        Self { seen, task }
    }

    /// Operations seen so far.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits until `expected` operations were seen or `patience` passes without a new one.
    pub async fn settle(self, expected: usize, patience: Duration) -> HashMap<B256, Seen> {
        let (mut last_count, mut last_change) = (self.count(), Instant::now());
        while last_count < expected && last_change.elapsed() < patience {
            tokio::time::sleep(POLL).await;
            let count = self.count();
            if count != last_count {
                (last_count, last_change) = (count, Instant::now());
            }
        }
        self.task.abort();
        Arc::try_unwrap(self.seen)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|a| a.lock().unwrap().clone())
    }
}

async fn watch(
    provider: DynProvider,
    entry_point: alloy::primitives::Address,
    mut next: u64,
    seen: Arc<Mutex<HashMap<B256, Seen>>>,
) {
    loop {
        if let Ok(latest) = provider.get_block_number().await
            && latest >= next
        {
            let filter = Filter::new()
                .address(entry_point)
                .event_signature(UserOperationEvent::SIGNATURE_HASH)
                .from_block(next)
                .to_block(latest);
            if let Ok(logs) = provider.get_logs(&filter).await {
                let at = Instant::now();
                let mut seen = seen.lock().unwrap();
                for log in logs {
                    let (Some(transaction), Ok(event)) =
                        (log.transaction_hash, log.log_decode::<UserOperationEvent>())
                    else {
                        continue;
                    };
                    let event = event.inner.data;
                    seen.entry(event.userOpHash).or_insert(Seen { at, transaction, success: event.success });
                }
                next = latest + 1;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Time to inclusion and bundle sizes, for the report.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InclusionSummary {
    /// Operations the bundler accepted.
    pub accepted: u64,
    /// Accepted operations whose UserOperationEvent was seen.
    pub included: u64,
    /// Included but UserOperationEvent.success was false (the call reverted).
    pub included_failed: u64,
    /// Distinct bundle transactions that included them.
    pub bundles: u64,
    /// Included operations per bundle, on average.
    pub ops_per_bundle_mean: f64,
    /// The most operations in one bundle.
    pub ops_per_bundle_max: u64,
    /// Median time from sending an operation to seeing its event, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile time to inclusion, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile time to inclusion, in milliseconds.
    pub p99_ms: f64,
    /// The longest time to inclusion, in milliseconds.
    pub max_ms: f64,
}

/// Joins the accepted operations (hash, when it was sent) with what the watcher saw.
pub fn summarise(accepted: &[(B256, Instant)], seen: &HashMap<B256, Seen>) -> InclusionSummary {
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    let mut per_bundle: HashMap<B256, u64> = HashMap::default();
    let mut failed = 0;
    for (hash, sent) in accepted {
        if let Some(s) = seen.get(hash) {
            latencies.saturating_record((s.at.saturating_duration_since(*sent).as_micros() as u64).max(1));
            *per_bundle.entry(s.transaction).or_default() += 1;
            failed += u64::from(!s.success);
        }
    }
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1_000.0;
    let bundles = per_bundle.len() as u64;
    InclusionSummary {
        accepted: accepted.len() as u64,
        included: latencies.len(),
        included_failed: failed,
        bundles,
        ops_per_bundle_mean: if bundles == 0 { 0.0 } else { latencies.len() as f64 / bundles as f64 },
        ops_per_bundle_max: per_bundle.values().copied().max().unwrap_or(0),
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: latencies.max() as f64 / 1_000.0,
    }
}

impl InclusionSummary {
    /// The summary as two lines for the terminal.
    pub fn text(&self) -> String {
        format!(
            "included {}/{} ({} reverted) in {} bundles, ops/bundle mean {:.1} max {}\n\
             time to inclusion ms  p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}\n",
            self.included,
            self.accepted,
            self.included_failed,
            self.bundles,
            self.ops_per_bundle_mean,
            self.ops_per_bundle_max,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_accepted_operations_with_their_bundles() {
        let start = Instant::now();
        let hash = |i: u8| B256::repeat_byte(i);
        let accepted: Vec<_> = (1..=4).map(|i| (hash(i), start)).collect();
        let seen = HashMap::from_iter([
            (
                hash(1),
                Seen { at: start + Duration::from_millis(100), transaction: hash(0xa1), success: true },
            ),
            (
                hash(2),
                Seen { at: start + Duration::from_millis(100), transaction: hash(0xa1), success: false },
            ),
            (
                hash(3),
                Seen { at: start + Duration::from_millis(300), transaction: hash(0xa2), success: true },
            ),
            // Seen but never accepted by this run: not counted.
            (hash(9), Seen { at: start, transaction: hash(0xa3), success: true }),
        ]);
        let s = summarise(&accepted, &seen);
        assert_eq!((s.accepted, s.included, s.included_failed, s.bundles), (4, 3, 1, 2));
        assert_eq!((s.ops_per_bundle_mean, s.ops_per_bundle_max), (1.5, 2));
        assert!((s.p50_ms - 100.0).abs() < 0.1 && (s.max_ms - 300.0).abs() < 0.3, "{s:?}");
    }
}
