//! The eth-infinitism `debug_bundler_` methods, for the bundler spec tests and local work.

use super::{Acknowledged, method};
use crate::UserOperation;
use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// An entity's ERC-7562 reputation status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReputationStatus {
    /// No limit from reputation.
    Ok,
    /// Limited to a few operations in the mempool and in each bundle.
    Throttled,
    /// Its operations are refused.
    Banned,
}

/// One entity's record, in the shape debug_bundler_dumpReputation / setReputation use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReputationEntry {
    /// The entity.
    pub address: Address,
    /// opsSeen: operations naming it that the pool accepted (after the hourly decay).
    #[serde(with = "alloy::serde::quantity")]
    pub ops_seen: u64,
    /// opsIncluded: its operations seen on chain, in any bundler's bundle (after the hourly decay).
    #[serde(with = "alloy::serde::quantity")]
    pub ops_included: u64,
    /// Derived from the counters; ignored on input.
    #[serde(default, skip_deserializing)]
    pub status: Option<ReputationStatus>,
}

/// auto: bundle on an interval; manual: only on debug_bundler_sendBundleNow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundlingMode {
    /// Tries a bundle on every free key each `bundle_interval`.
    Auto,
    /// Bundles only when debug_bundler_sendBundleNow asks.
    Manual,
}

/// What debug_bundler_sendBundleNow answers: the bundle sent, or `"ok"` when there was none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SendBundleNowResult {
    /// A bundle was sent and landed.
    #[serde(rename_all = "camelCase")]
    Sent {
        /// The bundle transaction.
        transaction_hash: B256,
        /// The operations it included.
        user_op_hashes: Vec<B256>,
    },
    /// The pool had nothing to bundle.
    Nothing(Acknowledged),
}

/// An entity's stake in the EntryPoint, the eth-infinitism shape (decimal strings: a stake
/// need not fit a JSON number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StakeInfo {
    /// The entity.
    pub addr: Address,
    /// Its stake, in wei, as a decimal string.
    pub stake: String,
    /// Its unstake delay, in seconds, as a decimal string.
    pub unstake_delay_sec: String,
}

/// debug_bundler_getStakeStatus's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StakeStatus {
    /// What the EntryPoint holds.
    pub stake_info: StakeInfo,
    /// Staked by ERC-7562's rule with this bundler's minimums.
    pub is_staked: bool,
}

method!(
    /// Empties the pool and forgets every reputation.
    ClearState, "debug_bundler_clearState", () -> Acknowledged
);
method!(
    /// Empties the pool.
    ClearMempool, "debug_bundler_clearMempool", () -> Acknowledged
);
method!(
    /// Forgets every reputation.
    ClearReputation, "debug_bundler_clearReputation", () -> Acknowledged
);
method!(
    /// The pooled operations, in the order they arrived.
    DumpMempool, "debug_bundler_dumpMempool", (Option<Address>) -> Vec<UserOperation>
);
method!(
    /// Every entity's reputation record.
    DumpReputation, "debug_bundler_dumpReputation", (Option<Address>) -> Vec<ReputationEntry>
);
method!(
    /// Replaces reputation records.
    SetReputation, "debug_bundler_setReputation", (Vec<ReputationEntry>, Option<Address>) -> Acknowledged
);
method!(
    /// Switches between auto and manual bundling.
    SetBundlingMode, "debug_bundler_setBundlingMode", (BundlingMode) -> Acknowledged
);
method!(
    /// Builds and sends a bundle now, waiting for it to land.
    SendBundleNow, "debug_bundler_sendBundleNow", () -> SendBundleNowResult
);
method!(
    /// An entity's stake and whether it counts as staked.
    GetStakeStatus, "debug_bundler_getStakeStatus", (Address, Option<Address>) -> StakeStatus
);
