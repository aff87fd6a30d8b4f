//! A smart wallet driven by an owner key: the client side that tests and the demo need to
//! create accounts through initCode and sign user operations, permits and vouchers.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use tora_core::UserOperation;
use tora_core::contracts::{SimpleAccount, ToraAccountFactory};

/// A SimpleAccount-style wallet (SimpleAccount or ToraAccount) behind a factory.
pub struct SmartWallet {
    /// The owner key: signs the wallet's user operations and its ERC-1271 digests.
    pub owner: PrivateKeySigner,
    /// The account factory that creates the wallet through `initCode`.
    pub factory: Address,
    /// The salt given to the factory's `createAccount`; with the owner it fixes the address.
    pub salt: U256,
    /// The wallet's counterfactual address, deployed or not.
    pub address: Address,
}

impl SmartWallet {
    /// The wallet's counterfactual address, as the factory computes it (deployed or not).
    pub async fn at(
        provider: &DynProvider,
        factory: Address,
        owner: PrivateKeySigner,
        salt: U256,
    ) -> Result<Self, alloy::contract::Error> {
        let address =
            ToraAccountFactory::new(factory, provider).getAddress(owner.address(), salt).call().await?;
        Ok(Self { owner, factory, salt, address })
    }

    /// `factoryData` for the first operation: `createAccount(owner, salt)`.
    pub fn factory_data(&self) -> Bytes {
        ToraAccountFactory::createAccountCall { owner: self.owner.address(), salt: self.salt }
            .abi_encode()
            .into()
    }

    /// `callData` that makes the wallet call `target`.
    pub fn execute(target: Address, value: U256, data: Bytes) -> Bytes {
        SimpleAccount::executeCall { dest: target, value, func: data }.abi_encode().into()
    }

    /// Signs `op` as SimpleAccount checks it: EIP-191 over the userOpHash.
    pub fn sign_user_op(&self, op: &mut UserOperation, entry_point: Address, chain_id: u64) {
        let hash = op.hash(entry_point, chain_id);
        let signature = self.owner.sign_message_sync(hash.as_slice()).expect("local signing");
        op.signature = signature.as_bytes().to_vec().into();
    }

    /// A raw ECDSA signature over `digest`, which ToraAccount's ERC-1271 accepts.
    pub fn sign_digest(&self, digest: B256) -> [u8; 65] {
        self.owner.sign_hash_sync(&digest).expect("local signing").as_bytes()
    }
}
