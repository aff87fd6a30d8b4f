//! Step 2: the wallet's next operation pays its gas in TORA with an EIP-2612 permit (it never
//! approves the paymaster), and deposits TORA in its escrow channel to the gateway's provider.

use super::stack::Stack;
use super::wallet::gas_charge;
use super::{check, tora};
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use anyhow::{Context, ensure};
use tora_core::ENTRY_POINT_V07;
use tora_core::contracts::{InferenceEscrow, SimpleAccount, TORA};
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::QuoteMode;
use tora_core::permit::permit;
use tora_core::rpc_api::paymaster::{DraftOperation, GetTokenQuote, PaymasterContext, PermitContext};

/// Whole TORA the wallet deposits in its escrow channel to the gateway's provider.
const ESCROW_TORA: u64 = 1;

impl Stack {
    pub(super) async fn deposit_paid_in_tora(&self, provider: Address) -> anyhow::Result<()> {
        let c = &self.deployment.contracts;
        println!(
            "\n2/3  The wallet's next operation pays its gas in TORA with an EIP-2612 permit: it deposits {ESCROW_TORA} TORA in its InferenceEscrow channel to the gateway's provider {provider}"
        );
        let w = self.wallet.address;
        let deposit = tora(ESCROW_TORA);
        let calls = SimpleAccount::executeBatchCall {
            dest: vec![c.tora, c.inference_escrow],
            value: vec![U256::ZERO; 2],
            func: vec![
                TORA::approveCall { spender: c.inference_escrow, value: deposit }.abi_encode().into(),
                InferenceEscrow::depositCall { provider, amount: deposit }.abi_encode().into(),
            ],
        };
        let mut op = self.operation(false, calls.abi_encode().into()).await?;
        let allowance = self.tora().allowance(w, c.paymaster).call().await?;
        ensure!(allowance.is_zero(), "the wallet has an allowance of {allowance} to the paymaster already");
        println!("     the wallet's allowance to ToraPaymaster: 0 (it never sends an approve)");
        let (wallet_before, bnb_before) = (self.tora_of(w).await?, self.bnb_of(w).await?);
        let paymaster_before = self.tora_of(c.paymaster).await?;
        let channel_before = self.channel_of(provider).await?;
        let nonce_before = self.tora().nonces(w).call().await?;

        // The stub has the permit's length; what the permit allows is known once the gas is.
        let placeholder =
            PermitContext { value: U256::ZERO, deadline: U256::MAX, signature: Bytes::from(vec![0xff; 65]) };
        let mut context =
            PaymasterContext { token: Some(c.tora), permit: Some(placeholder), ..Default::default() };
        self.stub_and_estimate(&self.paymaster, &mut op, &context).await?;
        let params = (DraftOperation(op.clone()), ENTRY_POINT_V07, self.chain_id());
        let quote = self.paymaster.call::<GetTokenQuote>(params).await.context("tora_getTokenQuote")?;
        println!(
            "     tora_getTokenQuote: {} TORA base units per BNB (markup included); at most {} ({} base units), likely {}",
            quote.exchange_rate,
            ToraUnits(quote.max_token_cost),
            quote.max_token_cost,
            ToraUnits(quote.estimated_token_cost)
        );
        // The wallet signs only what it checked: a permit of the quote's maximum to the paymaster.
        let deadline = quote.permit.typed_data.message.deadline;
        let expected = permit(w, c.paymaster, quote.max_token_cost, nonce_before, deadline);
        ensure!(
            quote.permit.digest == expected.tora_digest(self.deployment.chain_id, c.tora),
            "the quote's permit digest is not that of a permit of {} to the paymaster",
            quote.max_token_cost
        );
        let signature = Bytes::from(self.wallet.sign_digest(quote.permit.digest).to_vec());
        println!(
            "     the owner signs the permit digest {} for the wallet (ToraAccount's ERC-1271)",
            quote.permit.digest
        );
        context.permit = Some(PermitContext { value: quote.max_token_cost, deadline, signature });
        self.finish(&self.paymaster, &mut op, &context).await?;
        let receipt = self.send(&op).await?;
        let charge = gas_charge(&receipt, QuoteMode::Token, c.tora, "the wallet in TORA")?;
        ensure!(charge.charge <= quote.max_token_cost, "charged {} over the quote's maximum", charge.charge);
        println!(
            "     ToraPaymaster took {} through the permit and refunded {}: the wallet paid {} ({} base units)",
            charge.charge + charge.refund,
            charge.refund,
            ToraUnits(charge.charge),
            charge.charge
        );
        self.check_wallet_tora(wallet_before, wallet_before - deposit - charge.charge).await?;
        let paymaster_after = self.tora_of(c.paymaster).await?;
        check("ToraPaymaster TORA", paymaster_before, paymaster_after, paymaster_before + charge.charge)?;
        self.check_channel(provider, channel_before, channel_before + deposit).await?;
        let nonce_after = self.tora().nonces(w).call().await?;
        check(
            "wallet's TORA permit nonce (permits used)",
            nonce_before,
            nonce_after,
            nonce_before + U256::from(1),
        )?;
        self.check_wallet_bnb(bnb_before).await?;
        println!(
            "  => step 2 ok: gas paid in TORA with a permit, no approve and no BNB, tx {}",
            receipt.receipt.transaction_hash
        );
        Ok(())
    }
}
