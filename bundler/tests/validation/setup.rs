//! Connecting the validator: it refuses a node that is not the chain it was configured for.

use tora_bundler::{ValidationError, ValidationSettings, Validator};
use tora_core::ChainSpec;
use tora_devnet::harness::Harness;

#[tokio::test]
async fn validator_refuses_a_node_of_another_chain() {
    let h = Harness::start().await;
    // opBNB's spec says 204; the devnet is 31337: every userOpHash would be wrong.
    let opbnb = ChainSpec::load("opbnb").unwrap();
    match Validator::new(&h.devnet.deployment.rpc_url, &opbnb, ValidationSettings::default()).await {
        Err(ValidationError::ChainIdMismatch { node, spec }) => {
            assert_eq!((node, spec), (h.chain_id, 204));
        }
        Err(other) => panic!("expected a chain id mismatch, got {other}"),
        Ok(_) => panic!("expected a chain id mismatch"),
    }
}

#[tokio::test]
async fn validator_rejects_a_malformed_url_without_panicking() {
    let dev = ChainSpec::load("dev").unwrap();
    match Validator::new("not a url", &dev, ValidationSettings::default()).await {
        Err(ValidationError::Url(url)) => assert_eq!(url, "not a url"),
        Err(other) => panic!("expected an URL error, got {other}"),
        Ok(_) => panic!("expected an URL error"),
    }
}
