//! Why the builder let go of an operation, kept for `tora_getUserOperationStatus` so a wallet
//! learns "dropped: AA25 ..." instead of "unknown". Bounded: the oldest reasons are forgotten
//! first, so a flood of bad operations cannot grow it.

use alloy::primitives::{B256, map::HashMap};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Reasons kept at most.
pub const DROP_RECORD_CAPACITY: usize = 10_000;

/// The builder's recent drop reasons by userOpHash, at most [`DROP_RECORD_CAPACITY`] of them.
#[derive(Default)]
pub struct DropRecord {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    reasons: HashMap<B256, String>,
    order: VecDeque<B256>,
}

impl DropRecord {
    /// Remembers why the operation `hash` was dropped, replacing an earlier reason, and forgets the
    /// oldest reasons past the capacity.
    pub fn record(&self, hash: B256, reason: impl Into<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.reasons.insert(hash, reason.into()).is_none() {
            inner.order.push_back(hash);
        }
        while inner.order.len() > DROP_RECORD_CAPACITY {
            if let Some(oldest) = inner.order.pop_front() {
                inner.reasons.remove(&oldest);
            }
        }
    }

    /// Why the operation `hash` was dropped, while it is remembered.
    pub fn reason(&self, hash: &B256) -> Option<String> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).reasons.get(hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_reasons_up_to_its_capacity() {
        let record = DropRecord::default();
        let hash = |i: usize| B256::from(alloy::primitives::U256::from(i));
        for i in 0..DROP_RECORD_CAPACITY + 5 {
            record.record(hash(i), format!("reason {i}"));
        }
        assert_eq!(record.reason(&hash(4)), None, "the oldest were forgotten");
        assert_eq!(record.reason(&hash(5)).as_deref(), Some("reason 5"));
        // A second reason for the same operation replaces the first without taking a place.
        record.record(hash(5), "again");
        assert_eq!(record.reason(&hash(5)).as_deref(), Some("again"));
        assert_eq!(record.reason(&hash(DROP_RECORD_CAPACITY + 4)).as_deref(), Some("reason 10004"));
    }
}
