//! The new wallet's user operations, as every step makes them: built with its next nonce,
//! given the paymaster's data (ERC-7677) and the bundler's gas estimate, signed by its owner,
//! sent, and waited for until a bundle carries them.

use super::stack::Stack;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::aliases::U192;
use alloy::primitives::{Address, Bytes, U64, U128};
use alloy::providers::Provider;
use anyhow::{Context, ensure};
use std::time::{Duration, Instant};
use tora_core::contracts::{EntryPoint, ToraPaymaster};
use tora_core::paymaster_quote::QuoteMode;
use tora_core::rpc_api::bundler::{
    EstimateUserOperationGas, GetUserOperationReceipt, OperationToEstimate, SendUserOperation, SentOperation,
    UserOperationReceipt,
};
use tora_core::rpc_api::paymaster::{
    DraftOperation, GetPaymasterData, GetPaymasterStubData, PaymasterContext, StubData,
};
use tora_core::strict_hex::Hex;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_jsonrpc::Client;

/// The tip every operation offers, in wei per gas; its max fee is twice the base fee plus this,
/// what the bundler's own bundles offer.
const TIP_WEI: u64 = 1_000_000_000;
/// How long an operation may wait for its bundle (`tora up` bundles every second).
const RECEIPT_WAIT: Duration = Duration::from_secs(60);

impl Stack {
    /// The wallet's next operation, calling `call_data`; `first` deploys the wallet in it.
    pub(super) async fn operation(&self, first: bool, call_data: Bytes) -> anyhow::Result<UserOperation> {
        let entry_point = EntryPoint::new(ENTRY_POINT_V07, &self.chain);
        let nonce = entry_point.getNonce(self.wallet.address, U192::ZERO).call().await?;
        Ok(UserOperation {
            sender: self.wallet.address,
            nonce,
            factory: first.then_some(self.wallet.factory),
            factory_data: first.then(|| self.wallet.factory_data()),
            call_data,
            ..Default::default()
        })
    }

    /// The params of both ERC-7677 calls (stub data, then the signed data) for `op` as it is now.
    fn erc7677_params(
        &self,
        op: &UserOperation,
        context: &PaymasterContext,
    ) -> (DraftOperation, Address, U64, Option<PaymasterContext>) {
        (DraftOperation(op.clone()), ENTRY_POINT_V07, self.chain_id(), Some(context.clone()))
    }

    /// ERC-7677 before estimation: fees for the chain now, the paymaster's stub data, then the
    /// bundler's gas estimate with it. The stub's paymaster gas limits stay in `op`.
    pub(super) async fn stub_and_estimate(
        &self,
        paymaster: &Client,
        op: &mut UserOperation,
        context: &PaymasterContext,
    ) -> anyhow::Result<StubData> {
        let block =
            self.chain.get_block_by_number(BlockNumberOrTag::Latest).await?.context("no latest block")?;
        let base_fee = block.header.base_fee_per_gas.context("the chain has no base fee")?;
        op.max_priority_fee_per_gas = U128::from(TIP_WEI);
        op.max_fee_per_gas = U128::from(2 * base_fee + TIP_WEI);
        let params = self.erc7677_params(op, context);
        let stub = paymaster.call::<GetPaymasterStubData>(params).await.context("pm_getPaymasterStubData")?;
        op.paymaster = Some(stub.paymaster);
        op.paymaster_verification_gas_limit = stub.paymaster_verification_gas_limit;
        op.paymaster_post_op_gas_limit = stub.paymaster_post_op_gas_limit;
        op.paymaster_data = Some(stub.paymaster_data.clone());
        // A signature of the right shape, so that the account's validation runs as it will.
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.deployment.chain_id);
        let params = (OperationToEstimate(op.clone()), Hex(ENTRY_POINT_V07), None);
        let gas = self
            .bundler
            .call::<EstimateUserOperationGas>(params)
            .await
            .context("eth_estimateUserOperationGas")?;
        op.pre_verification_gas = gas.pre_verification_gas;
        op.verification_gas_limit = gas.verification_gas_limit;
        op.call_gas_limit = gas.call_gas_limit;
        println!(
            "     pm_getPaymasterStubData, then eth_estimateUserOperationGas: verification {} gas, call {}, preVerification {}",
            op.verification_gas_limit, op.call_gas_limit, op.pre_verification_gas
        );
        Ok(stub)
    }

    /// The paymaster's signed data for the estimated operation, then the wallet's signature.
    pub(super) async fn finish(
        &self,
        paymaster: &Client,
        op: &mut UserOperation,
        context: &PaymasterContext,
    ) -> anyhow::Result<()> {
        let params = self.erc7677_params(op, context);
        let data = paymaster.call::<GetPaymasterData>(params).await.context("pm_getPaymasterData")?;
        op.paymaster = Some(data.paymaster);
        op.paymaster_data = Some(data.paymaster_data);
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.deployment.chain_id);
        println!(
            "     pm_getPaymasterData: the quote, signed by the paymaster; the wallet's owner signs the operation"
        );
        Ok(())
    }

    /// Sends `op` to the bundler and waits for the bundle that carries it; fails if its call
    /// reverted.
    pub(super) async fn send(&self, op: &UserOperation) -> anyhow::Result<UserOperationReceipt> {
        let params = (SentOperation(op.clone()), Hex(ENTRY_POINT_V07));
        let hash = self.bundler.call::<SendUserOperation>(params).await.context("eth_sendUserOperation")?;
        println!("     eth_sendUserOperation: userOpHash {hash}");
        let deadline = Instant::now() + RECEIPT_WAIT;
        loop {
            let receipt = self.bundler.call::<GetUserOperationReceipt>((Hex(hash),)).await;
            if let Some(receipt) = receipt.context("eth_getUserOperationReceipt")? {
                let tx = receipt.receipt.transaction_hash;
                ensure!(
                    receipt.success,
                    "operation {hash} was bundled in {tx} but its call reverted: {}",
                    receipt.reason
                );
                println!(
                    "     bundled: tx {tx} (block {}), {} wei of gas",
                    receipt.receipt.block_number.unwrap_or_default(),
                    receipt.actual_gas_cost
                );
                return Ok(receipt);
            }
            ensure!(
                Instant::now() < deadline,
                "no receipt for {hash} after {RECEIPT_WAIT:?}: is the bundler bundling?"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// ToraPaymaster's account of an operation's gas, from its `GasChargedInToken` event; fails
/// unless `payer` paid it, in `mode` (`whom` names the payer in the error).
pub(super) fn gas_charge(
    receipt: &UserOperationReceipt,
    mode: QuoteMode,
    payer: Address,
    whom: &str,
) -> anyhow::Result<ToraPaymaster::GasChargedInToken> {
    let charge = receipt
        .logs
        .iter()
        .find_map(|log| log.log_decode::<ToraPaymaster::GasChargedInToken>().ok())
        .map(|log| log.inner.data)
        .context("no GasChargedInToken among the operation's logs")?;
    ensure!(
        charge.mode == mode as u8 && charge.payer == payer,
        "the operation was not charged to {whom}: {charge:?}"
    );
    Ok(charge)
}
