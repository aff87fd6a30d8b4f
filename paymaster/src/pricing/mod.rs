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
