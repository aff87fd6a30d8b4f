use super::common::*;
use alloy::primitives::{I256, U256, aliases::U80};
use tora_core::contracts::ToraPriceFeed;
use tora_devnet::keys::{self, signer};
use tora_devnet::{DevnetPrices, confirm, provider_for};

#[tokio::test]
async fn feed_reports_rounds_and_only_the_updater_writes() {
    let h = Harness::start().await;
    let feed = ToraPriceFeed::new(h.contracts().price_feed, h.deployer.clone());
    assert_eq!(feed.decimals().call().await.unwrap(), DevnetPrices::FEED_DECIMALS);
    assert_eq!(feed.description().call().await.unwrap(), "TORA / BNB");
    assert_eq!(feed.updater().call().await.unwrap(), signer(keys::PRICE_UPDATER).address());

    let first = feed.latestRoundData().call().await.unwrap();
    assert_eq!(first.roundId, U80::from(1));
    assert_eq!(first.answer, I256::try_from(DevnetPrices::TORA_IN_BNB).unwrap());
    assert_eq!(first.answeredInRound, U80::from(1));
    assert_eq!(first.updatedAt, first.startedAt);
    assert!(first.updatedAt > U256::ZERO);

    // The owner is not the updater.
    let err = feed.updateAnswer(I256::ONE).send().await.unwrap_err();
    assert!(err.to_string().contains("revert"), "{err}");

    let updater = provider_for(&h.devnet.deployment.rpc_url, keys::PRICE_UPDATER).unwrap();
    let as_updater = ToraPriceFeed::new(h.contracts().price_feed, updater.clone());
    let pending = as_updater.updateAnswer(I256::try_from(123_456_789u64).unwrap()).send().await.unwrap();
    confirm(&updater, "update", pending).await.unwrap();

    let second = feed.latestRoundData().call().await.unwrap();
    assert_eq!(second.roundId, U80::from(2));
    assert_eq!(second.answer, I256::try_from(123_456_789u64).unwrap());
    let old = feed.getRoundData(U80::from(1)).call().await.unwrap();
    assert_eq!(old.answer, first.answer);
    let data = revert_data(feed.getRoundData(U80::from(99)).call().await);
    assert_eq!(&data[..4], &<ToraPriceFeed::NoDataPresent as alloy::sol_types::SolError>::SELECTOR[..]);
}
