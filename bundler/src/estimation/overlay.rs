//! The caller's `eth_estimateUserOperationGas` state overrides (the third parameter, geth's
//! `eth_call` override set) as a revm database over the node's state: what `eth_call` with
//! overrides would see, without sending the simulation to the node.

use super::error::EstimationError;
use crate::evm::StateError;
use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::state::StateOverride;
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::{StorageKey, StorageValue};
use revm::state::AccountInfo;
use std::collections::HashMap;

/// `base` with the caller's overrides on top; code overrides are hashed once, up front.
pub struct Overlay<'a, D> {
    base: &'a D,
    overrides: &'a StateOverride,
    codes: HashMap<Address, (B256, Bytecode)>,
}

impl<'a, D: DatabaseRef<Error = StateError>> Overlay<'a, D> {
    /// Refuses overrides this overlay cannot honour (moving precompiles) with -32602.
    pub fn new(base: &'a D, overrides: &'a StateOverride) -> Result<Self, EstimationError> {
        let mut codes = HashMap::new();
        for (address, account) in overrides {
            if account.move_precompile_to.is_some() {
                return Err(EstimationError::InvalidOverride(
                    "movePrecompileToAddress overrides are not supported".to_owned(),
                ));
            }
            if account.state.is_some() && account.state_diff.is_some() {
                return Err(EstimationError::InvalidOverride(format!(
                    "override of {address} sets both state and stateDiff"
                )));
            }
            if let Some(code) = &account.code {
                // Malformed EIP-7702 code stays plain legacy code rather than panicking revm.
                let bytecode = Bytecode::new_raw_checked(code.clone())
                    .unwrap_or_else(|_| Bytecode::new_legacy(code.clone()));
                codes.insert(*address, (bytecode.hash_slow(), bytecode));
            }
        }
        Ok(Self { base, overrides, codes })
    }
}

impl<D: DatabaseRef<Error = StateError>> DatabaseRef for Overlay<'_, D> {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let chain = self.base.basic_ref(address)?;
        let Some(over) = self.overrides.get(&address) else {
            return Ok(chain);
        };
        let mut info = chain.unwrap_or_default();
        if let Some(balance) = over.balance {
            info.balance = balance;
        }
        if let Some(nonce) = over.nonce {
            info.nonce = nonce;
        }
        if let Some((hash, code)) = self.codes.get(&address) {
            info.code_hash = *hash;
            info.code = Some(code.clone());
        }
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        match self.codes.values().find(|(hash, _)| *hash == code_hash) {
            Some((_, code)) => Ok(code.clone()),
            None => self.base.code_by_hash_ref(code_hash),
        }
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, StateError> {
        let over = self.overrides.get(&address);
        let key = B256::from(index);
        // `state` replaces the whole storage: unlisted slots read zero.
        if let Some(state) = over.and_then(|o| o.state.as_ref()) {
            return Ok(state.get(&key).map_or(U256::ZERO, |v| U256::from_be_bytes(v.0)));
        }
        if let Some(value) = over.and_then(|o| o.state_diff.as_ref()).and_then(|d| d.get(&key)) {
            return Ok(U256::from_be_bytes(value.0));
        }
        self.base.storage_ref(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        self.base.block_hash_ref(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;
    use alloy::rpc::types::state::AccountOverride;

    /// An empty chain, as a `StateError` database.
    struct Empty;

    impl DatabaseRef for Empty {
        type Error = StateError;
        fn basic_ref(&self, _: Address) -> Result<Option<AccountInfo>, StateError> {
            Ok(None)
        }
        fn code_by_hash_ref(&self, _: B256) -> Result<Bytecode, StateError> {
            Ok(Bytecode::default())
        }
        fn storage_ref(&self, _: Address, _: StorageKey) -> Result<StorageValue, StateError> {
            Ok(U256::from(7))
        }
        fn block_hash_ref(&self, _: u64) -> Result<B256, StateError> {
            Ok(B256::ZERO)
        }
    }

    #[test]
    fn balance_nonce_code_and_storage_overrides_apply() {
        let who = Address::repeat_byte(1);
        let slot = B256::with_last_byte(1);
        let mut overrides = StateOverride::default();
        overrides.insert(
            who,
            AccountOverride {
                balance: Some(U256::from(5)),
                nonce: Some(3),
                code: Some(Bytes::from_static(&[0x00])),
                state_diff: Some([(slot, B256::with_last_byte(9))].into_iter().collect()),
                ..Default::default()
            },
        );
        let overlay = Overlay::new(&Empty, &overrides).unwrap();
        let info = overlay.basic_ref(who).unwrap().unwrap();
        assert_eq!((info.balance, info.nonce), (U256::from(5), 3));
        assert_eq!(
            overlay.code_by_hash_ref(info.code_hash).unwrap().original_bytes(),
            Bytes::from_static(&[0])
        );
        assert_eq!(overlay.storage_ref(who, U256::from(1)).unwrap(), U256::from(9));
        // Untouched slots and accounts read the chain.
        assert_eq!(overlay.storage_ref(who, U256::from(2)).unwrap(), U256::from(7));
        assert_eq!(overlay.basic_ref(Address::repeat_byte(2)).unwrap(), None);
    }

    #[test]
    fn full_state_replaces_storage_and_unsupported_overrides_are_invalid_params() {
        let who = Address::repeat_byte(1);
        let mut overrides = StateOverride::default();
        overrides.insert(who, AccountOverride { state: Some(Default::default()), ..Default::default() });
        let overlay = Overlay::new(&Empty, &overrides).unwrap();
        assert_eq!(overlay.storage_ref(who, U256::from(2)).unwrap(), U256::ZERO);
        overrides.insert(who, AccountOverride { move_precompile_to: Some(who), ..Default::default() });
        let err = Overlay::new(&Empty, &overrides).err().unwrap();
        assert!(matches!(err, EstimationError::InvalidOverride(_)), "{err}");
    }
}
