//! anvil's well-known test accounts (from its default mnemonic), one per devnet role. They are
//! public knowledge: a deployment file carries them only for throwaway chains.

use alloy::primitives::{B256, b256};
use alloy::signers::local::PrivateKeySigner;
use tora_core::deployment::DevKeys;

/// anvil account 0: deploys and owns every contract and holds the TORA supply.
pub const DEPLOYER: B256 = b256!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
/// anvil account 1: the bundler's key, which signs `handleOps` transactions.
pub const BUNDLER: B256 = b256!("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
/// anvil account 2: signs paymaster quotes (the ToraPaymaster's `signer`).
pub const PAYMASTER_SIGNER: B256 = b256!("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
/// anvil account 3: writes the TORA/BNB price to ToraPriceFeed.
pub const PRICE_UPDATER: B256 = b256!("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");
/// anvil account 4: owns the demo and test smart wallets.
pub const WALLET_OWNER: B256 = b256!("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a");
/// anvil account 5: the inference gateway's provider, which vouchers name and which redeems them.
pub const INFERENCE_PROVIDER: B256 =
    b256!("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba");

/// anvil accounts 6, 7 and 8: more bundler lanes beside [`BUNDLER`] for `tora up`, so that
/// four bundles go out per tick and inclusion keeps up with a few hundred operations a second
/// (one lane carries one bundle, about 140 operations, per tick).
pub const MORE_BUNDLER_LANES: [B256; 3] = [
    b256!("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"),
    b256!("4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"),
    b256!("dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"),
];

/// The keys above as the deployment file's `devKeys`.
pub fn dev_keys() -> DevKeys {
    DevKeys {
        deployer: DEPLOYER,
        bundler: BUNDLER,
        paymaster_signer: PAYMASTER_SIGNER,
        price_updater: PRICE_UPDATER,
        wallet_owner: WALLET_OWNER,
        inference_provider: INFERENCE_PROVIDER,
    }
}

/// A signer for one of the keys above.
pub fn signer(key: B256) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&key).expect("well-known keys are valid")
}
