//! Turning an oracle answer into the exchange rate a quote signs: the Chainlink-style feed,
//! a cross-check against a second source, a short cache, and the markup. Integer and
//! rust_decimal math only, always rounded in the paymaster's favour.

pub mod cache;
pub mod cross_check;
pub mod feed;
pub mod markup;

pub use cache::CachedPrice;
pub use cross_check::CrossChecked;
pub use feed::ChainlinkFeed;
pub use markup::Markup;

use tora_core::price::{PriceError, PricePoint, PriceSource};

/// The oracle a deployment prices from: one feed, or two (a second feed, e.g. Chainlink's next
/// to our own) that must agree within a deviation.
pub enum Oracle {
    /// One feed.
    Single(ChainlinkFeed),
    /// Two feeds that must agree.
    CrossChecked(CrossChecked<ChainlinkFeed, ChainlinkFeed>),
}

impl PriceSource for Oracle {
    async fn price(&self) -> Result<PricePoint, PriceError> {
        match self {
            Oracle::Single(feed) => feed.price().await,
            Oracle::CrossChecked(checked) => checked.price().await,
        }
    }
}
