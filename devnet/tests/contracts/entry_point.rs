use super::common::*;
use alloy::primitives::{Address, Bytes, U128, U256, keccak256};
use alloy::providers::Provider;
use tora_core::contracts::{ENTRY_POINT_V07_CODE_HASH, EntryPoint, SENDER_CREATOR_V07, SimpleAccountFactory};
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::keys::{self, signer};
use tora_devnet::{DeployError, SmartWallet, confirm, deploy_entry_point};

#[tokio::test]
async fn entry_point_has_the_canonical_address_and_code_hash() {
    let h = Harness::start().await;
    let code = h.deployer.get_code_at(ENTRY_POINT_V07).await.unwrap();
    assert_eq!(code.len(), 16_035);
    assert_eq!(keccak256(&code), ENTRY_POINT_V07_CODE_HASH);
    let creator = h.deployer.get_code_at(SENDER_CREATOR_V07).await.unwrap();
    assert!(!creator.is_empty(), "the constructor creates SenderCreator at its canonical address");
    // Deploying again finds the canonical code and leaves it alone.
    deploy_entry_point(&h.deployer).await.unwrap();
}

#[tokio::test]
async fn a_non_canonical_entry_point_is_refused() {
    let h = Harness::start().await;
    h.anvil("anvil_setCode", serde_json::json!([ENTRY_POINT_V07, "0x6000"])).await;
    let err = deploy_entry_point(&h.deployer).await.unwrap_err();
    assert!(matches!(err, DeployError::EntryPointCodeHash { .. }), "{err}");
    assert!(err.to_string().contains("non-canonical"), "{err}");
}

#[tokio::test]
async fn user_op_hash_matches_the_entry_points_get_user_op_hash() {
    let h = Harness::start().await;
    let base = UserOperation {
        sender: Address::repeat_byte(0x11),
        nonce: U256::from(3) << 64 | U256::from(9),
        call_data: Bytes::from(vec![0xb6, 0x1d, 0x27, 0xf6, 1, 2, 3]),
        call_gas_limit: U128::from(100_000),
        verification_gas_limit: U128::MAX,
        pre_verification_gas: U256::from(21_000),
        max_fee_per_gas: U128::from(7),
        max_priority_fee_per_gas: U128::from(1u128 << 100),
        signature: Bytes::from(vec![0xff; 65]),
        ..Default::default()
    };
    let with_factory = UserOperation {
        factory: Some(Address::repeat_byte(0x22)),
        factory_data: Some(Bytes::from(vec![0xab; 40])),
        ..base.clone()
    };
    let with_paymaster = UserOperation {
        paymaster: Some(Address::repeat_byte(0x33)),
        paymaster_verification_gas_limit: Some(U128::from(55_555)),
        paymaster_post_op_gas_limit: Some(U128::from(44_444)),
        paymaster_data: Some(Bytes::from(vec![0xcd; 162])),
        ..with_factory.clone()
    };
    let entry_point = EntryPoint::new(ENTRY_POINT_V07, h.deployer.clone());
    for op in [base, with_factory, with_paymaster] {
        let on_chain = entry_point.getUserOpHash(op.pack()).call().await.unwrap();
        assert_eq!(op.hash(ENTRY_POINT_V07, h.chain_id), on_chain, "{op:?}");
    }
}

/// The reference wallet from @account-abstraction/contracts, paying its own gas in BNB.
#[tokio::test]
async fn reference_simple_account_is_created_through_init_code_and_pays_exactly() {
    let h = Harness::start().await;
    let factory = h.contracts().simple_account_factory;
    let wallet =
        SmartWallet::at(&h.deployer, factory, signer(keys::WALLET_OWNER), U256::from(7)).await.unwrap();
    let implementation =
        SimpleAccountFactory::new(factory, h.deployer.clone()).accountImplementation().call().await.unwrap();
    assert_ne!(implementation, Address::ZERO);

    let one_bnb = U256::from(10u64).pow(U256::from(18));
    let tx = alloy::rpc::types::TransactionRequest::default().to(wallet.address).value(one_bnb);
    let pending = h.deployer.send_transaction(tx).await.unwrap();
    confirm(&h.deployer, "fund wallet", pending).await.unwrap();

    let target = Address::repeat_byte(0x7a);
    let tenth = one_bnb / U256::from(10);
    let call = SmartWallet::execute(target, tenth, Bytes::new());
    let op = h.op(&wallet, true, call).await;
    let prefund = op.max_cost_wei();
    let receipt = h.sign_and_handle(&wallet, op).await.unwrap();

    let event: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(event.success);
    assert_eq!(event.sender, wallet.address);
    assert!(!h.deployer.get_code_at(wallet.address).await.unwrap().is_empty());
    assert_eq!(h.eth_balance(target).await, tenth);
    // The account prefunds the maximum into its EntryPoint deposit; the unused part stays there.
    assert_eq!(h.eth_balance(wallet.address).await, one_bnb - tenth - prefund);
    let deposit = h.entry_point().balanceOf(wallet.address).call().await.unwrap();
    assert_eq!(deposit, prefund - event.actualGasCost);
}

/// Every devnet role's key is one of anvil's funded accounts.
#[tokio::test]
async fn every_dev_key_is_a_funded_anvil_account() {
    let h = Harness::start().await;
    let accounts: Vec<Address> =
        serde_json::from_value(h.anvil("eth_accounts", serde_json::json!([])).await).unwrap();
    let k = keys::dev_keys();
    for key in
        [k.deployer, k.bundler, k.paymaster_signer, k.price_updater, k.wallet_owner, k.inference_provider]
    {
        assert!(accounts.contains(&signer(key).address()), "{key} is not an anvil account");
    }
}
