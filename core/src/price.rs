//! Where the TORA price comes from: the trait the paymaster prices through, so an on-chain feed,
//! a cross-checked pair of feeds or a test source are interchangeable.

use crate::money::ExchangeRate;
use std::future::Future;

/// A rate with the time it was observed at its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricePoint {
    pub rate: ExchangeRate,
    /// Unix seconds of the source's last update.
    pub updated_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("price feed answer is {answer}: only a positive price can be used")]
    NotPositive { answer: String },
    #[error("price feed is stale: updated at {updated_at}, heartbeat {heartbeat_secs} s, now {now}")]
    Stale { updated_at: u64, heartbeat_secs: u64, now: u64 },
    #[error("price feed round {round} is incomplete (answered in round {answered_in_round})")]
    IncompleteRound { round: String, answered_in_round: String },
    #[error("price sources disagree: {primary:?} vs {secondary:?} is over the allowed deviation")]
    Deviation { primary: ExchangeRate, secondary: ExchangeRate },
    #[error("price feed unavailable: {0}")]
    Unavailable(String),
}

/// The TORA per native coin rate now, or why there is none to use.
pub trait PriceSource: Send + Sync {
    fn price(&self) -> impl Future<Output = Result<PricePoint, PriceError>> + Send;
}
