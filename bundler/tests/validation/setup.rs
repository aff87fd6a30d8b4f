//! Connecting the validator: it refuses a node that is not the chain it was configured for.

use crate::common::Harness;
use tora_bundler::{ValidationError, ValidationSettings, Validator};
use tora_core::ChainSpec;

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

/// The rule-breaking contracts' artifacts are committed; `scripts/test.sh` only checks
/// `contracts/artifacts`, so this keeps `contracts/test/artifacts` honest the same way
/// (solc-js from contracts/node_modules, which the test script installs).
#[test]
fn test_contract_artifacts_are_fresh() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/test");
    let output = std::process::Command::new("node")
        .args(["build.mjs", "--check"])
        .current_dir(&dir)
        .output()
        .expect("node runs (scripts/test.sh installs Node.js and contracts/node_modules)");
    assert!(
        output.status.success(),
        "stale test artifacts; run `node contracts/test/build.mjs`:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
