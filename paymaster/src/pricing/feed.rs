//! An AggregatorV3 feed (our ToraPriceFeed, or Chainlink's) quoting the native coin per TORA.

use alloy::primitives::{I256, U256};
use alloy::providers::DynProvider;
use std::time::Duration;
use tokio::sync::OnceCell;
use tora_core::contracts::ToraPriceFeed;
use tora_core::money::{ExchangeRate, ONE_COIN};
use tora_core::price::{PriceError, PricePoint, PriceSource};

/// Feeds with more decimals than this are not price feeds we understand.
const MAX_FEED_DECIMALS: u8 = 36;

/// An AggregatorV3 feed read over RPC; its decimals are read once.
pub struct ChainlinkFeed {
    feed: ToraPriceFeed::ToraPriceFeedInstance<DynProvider>,
    heartbeat: Duration,
    decimals: OnceCell<u8>,
}

impl ChainlinkFeed {
    /// `heartbeat`: the longest the feed may go without an update before its answer is refused.
    pub fn new(provider: DynProvider, address: alloy::primitives::Address, heartbeat: Duration) -> Self {
        Self { feed: ToraPriceFeed::new(address, provider), heartbeat, decimals: OnceCell::new() }
    }
}

fn unavailable(e: impl std::fmt::Display) -> PriceError {
    PriceError::Unavailable(e.to_string())
}

/// TORA base units per 1e18 wei from an answer in native coin per TORA with `decimals`:
/// `1e18 × 10^decimals / answer`, rounded up (more TORA per wei is the paymaster's side).
pub fn rate_from_answer(answer: I256, decimals: u8) -> Result<ExchangeRate, PriceError> {
    if answer <= I256::ZERO {
        return Err(PriceError::NotPositive { answer: answer.to_string() });
    }
    if decimals > MAX_FEED_DECIMALS {
        return Err(unavailable(format!("feed has {decimals} decimals")));
    }
    let numerator = U256::from(ONE_COIN) * U256::from(10u8).pow(U256::from(decimals));
    Ok(ExchangeRate(numerator.div_ceil(answer.into_raw())))
}

/// Refuses an answer older than the heartbeat (or dated in the future).
pub fn check_fresh(updated_at: u64, heartbeat: Duration, now: u64) -> Result<(), PriceError> {
    let stale = PriceError::Stale { updated_at, heartbeat_secs: heartbeat.as_secs(), now };
    match now.checked_sub(updated_at) {
        Some(age) if age <= heartbeat.as_secs() => Ok(()),
        _ => Err(stale),
    }
}

pub(crate) use tora_core::clock::unix_now;

impl PriceSource for ChainlinkFeed {
    async fn price(&self) -> Result<PricePoint, PriceError> {
        let decimals = *self
            .decimals
            .get_or_try_init(|| async { self.feed.decimals().call().await.map_err(unavailable) })
            .await?;
        let round = self.feed.latestRoundData().call().await.map_err(unavailable)?;
        if round.answeredInRound < round.roundId {
            return Err(PriceError::IncompleteRound {
                round: round.roundId.to_string(),
                answered_in_round: round.answeredInRound.to_string(),
            });
        }
        let rate = rate_from_answer(round.answer, decimals)?;
        let updated_at = u64::try_from(round.updatedAt).map_err(unavailable)?;
        check_fresh(updated_at, self.heartbeat, unix_now())?;
        Ok(PricePoint { rate, updated_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(answer: i128, decimals: u8) -> U256 {
        rate_from_answer(I256::try_from(answer).unwrap(), decimals).unwrap().0
    }

    #[test]
    fn rates_from_18_and_8_decimal_feeds() {
        // 1 TORA = 0.0002 BNB -> 5,000 TORA per BNB, exact in both scales.
        assert_eq!(rate(200_000_000_000_000, 18), U256::from(5_000u128 * ONE_COIN));
        assert_eq!(rate(20_000, 8), U256::from(5_000u128 * ONE_COIN));
        // 1 TORA = 3 BNB (8 decimals): 1/3 TORA per BNB rounds up in the last unit.
        assert_eq!(rate(300_000_000, 8), U256::from(333_333_333_333_333_334u128));
        // The smallest possible answer: 1e-18 BNB per TORA.
        assert_eq!(rate(1, 18), U256::from(ONE_COIN) * U256::from(ONE_COIN));
    }

    #[test]
    fn zero_and_negative_answers_are_refused() {
        for answer in [0i64, -1, -200_000_000_000_000] {
            let err = rate_from_answer(I256::try_from(answer).unwrap(), 18).unwrap_err();
            assert!(matches!(err, PriceError::NotPositive { .. }), "{err}");
        }
        assert!(matches!(rate_from_answer(I256::ONE, 77), Err(PriceError::Unavailable(_))));
    }

    #[test]
    fn staleness_is_measured_against_the_heartbeat() {
        let hour = Duration::from_secs(3_600);
        assert!(check_fresh(1_000, hour, 4_600).is_ok(), "exactly one heartbeat old is fresh");
        assert!(matches!(check_fresh(1_000, hour, 4_601), Err(PriceError::Stale { .. })));
        assert!(matches!(check_fresh(5_000, hour, 4_601), Err(PriceError::Stale { .. })), "future");
    }
}
