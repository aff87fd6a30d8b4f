//! Where the TORA price comes from: the trait the paymaster prices through, so an on-chain feed,
//! a cross-checked pair of feeds or a test source are interchangeable.

use crate::money::ExchangeRate;
use std::future::Future;

/// A rate with the time it was observed at its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricePoint {
    /// TORA base units per 1e18 wei.
    pub rate: ExchangeRate,
    /// Unix seconds of the source's last update.
    pub updated_at: u64,
}

/// Why a price source has no rate to quote with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The feed answered zero or a negative price.
    #[error("price feed answer is {answer}: only a positive price can be used")]
    NotPositive {
        /// The feed's raw answer, in decimal.
        answer: String,
    },
    /// The feed's last update is older than its heartbeat allows, or dated in the future.
    #[error("price feed is stale: updated at {updated_at}, heartbeat {heartbeat_secs} s, now {now}")]
    Stale {
        /// Unix seconds of the feed's last update.
        updated_at: u64,
        /// The longest the feed may go without an update, in seconds.
        heartbeat_secs: u64,
        /// Unix seconds when the answer was checked.
        now: u64,
    },
    /// The feed's latest round was answered in an earlier round (AggregatorV3 `answeredInRound`).
    #[error("price feed round {round} is incomplete (answered in round {answered_in_round})")]
    IncompleteRound {
        /// The latest round id, in decimal.
        round: String,
        /// The round the answer comes from, in decimal.
        answered_in_round: String,
    },
    /// Two cross-checked sources differ by more than the allowed deviation.
    #[error("price sources disagree: {primary:?} vs {secondary:?} is over the allowed deviation")]
    Deviation {
        /// The primary source's rate.
        primary: ExchangeRate,
        /// The secondary source's rate.
        secondary: ExchangeRate,
    },
    /// The source could not be read (node error, unusable feed); the reason.
    #[error("price feed unavailable: {0}")]
    Unavailable(String),
}

/// The TORA per native coin rate now, or why there is none to use.
pub trait PriceSource: Send + Sync {
    /// The current rate and when the source last updated it.
    fn price(&self) -> impl Future<Output = Result<PricePoint, PriceError>> + Send;
}
