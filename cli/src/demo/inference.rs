//! Step 3: the wallet pays the gateway for an embedding and a chat completion with cumulative
//! vouchers, and the provider redeems from the escrow exactly what the gateway charged.

use super::check;
use super::gateway::GatewayTerms;
use super::stack::Stack;
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, anyhow, bail, ensure};
use serde_json::json;
use tora_core::clock::unix_now;
use tora_inference_gateway::api::{MODEL_ID, TEXT_MODEL_ID};
use tora_inference_gateway::payment::ledger::{Change, Outcome};
use tora_inference_gateway::payment::{
    Escrow, MemoryVoucherStore, Redeemer, Redemption, SignedVoucher, VoucherStore,
};

impl Stack {
    /// The provider's side: its ledger of the wallet (the latest voucher, and what the gateway
    /// charged under it, as the gateway's answers said), redeemed with the provider's key. The
    /// gateway redeems by itself too, but only hourly or once a payer owes it 10 TORA.
    async fn redeem(
        &self,
        latest: &SignedVoucher,
        owed: U256,
        provider: Address,
    ) -> anyhow::Result<Redemption> {
        let c = &self.deployment.contracts;
        let escrow = Escrow::new(self.chain.clone(), self.deployment.chain_id, c.inference_escrow, provider);
        let payer = self.wallet.address;
        let redeemed = escrow.account(payer).await?.redeemed;
        let ledger = MemoryVoucherStore::default();
        let now = unix_now();
        let hold = Change::Hold { voucher: latest.clone(), price: owed, redeemed, now };
        let hold = match ledger.change(payer, &hold).await? {
            Ok(Outcome::Held { hold }) => hold,
            other => bail!("the provider's ledger refuses the latest voucher: {other:?}"),
        };
        let settle = Change::Settle { hold, exact: owed, now };
        ledger.change(payer, &settle).await?.map_err(|refusal| anyhow!("{refusal:?}"))?;
        let key = PrivateKeySigner::from_bytes(&self.keys.inference_provider)?;
        let redeemer = Redeemer::new(&self.deployment.rpc_url, key, escrow)?;
        Ok(redeemer.redeem_latest(&ledger).await?)
    }

    pub(super) async fn paid_inference(&self, terms: &GatewayTerms) -> anyhow::Result<()> {
        println!(
            "\n3/3  The wallet pays the inference gateway per token with cumulative vouchers, and the provider redeems exactly what was charged"
        );
        println!(
            "     prices: {} base units per {MODEL_ID} token, {} per {TEXT_MODEL_ID} token",
            terms.embedding_price, terms.text_price
        );
        let (w, provider) = (self.wallet.address, terms.provider);
        let provider_before = self.tora_of(provider).await?;
        let wallet_before = self.tora_of(w).await?;
        let channel_before = self.channel_of(provider).await?;
        let redeemed_before = self.escrow().redeemed(w, provider).call().await?;

        let body = json!({ "model": MODEL_ID, "input": "A smart wallet pays for its own inference." });
        let embedding = self.paid_call("/v1/embeddings", &body, U256::ZERO, provider).await?;
        let tokens = embedding.body["usage"]["total_tokens"].as_u64().context("no usage in the embedding")?;
        let dims = embedding.body["data"][0]["embedding"].as_array().map_or(0, Vec::len);
        println!(
            "     embedding: {dims} dimensions, {tokens} tokens, charged {} base units",
            embedding.charged
        );
        ensure!(
            embedding.charged == terms.embedding_price * U256::from(tokens),
            "the embedding's charge is not its tokens' price"
        );
        ensure!(
            embedding.owed == embedding.charged,
            "a new wallet owes its first call's price, not {}",
            embedding.owed
        );

        let body = json!({
            "model": TEXT_MODEL_ID,
            "messages": [{ "role": "user", "content": "What is the capital of France?" }],
            "max_tokens": 12,
            "temperature": 0,
        });
        let chat = self.paid_call("/v1/chat/completions", &body, embedding.owed, provider).await?;
        let usage = &chat.body["usage"];
        let prompt = usage["prompt_tokens"].as_u64().context("no usage in the completion")?;
        let generated = usage["completion_tokens"].as_u64().context("no usage in the completion")?;
        let reply = chat.body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
        println!(
            "     chat completion: {reply:?} ({prompt} prompt + {generated} generated tokens), charged {} base units",
            chat.charged
        );
        ensure!(
            chat.charged == terms.text_price * U256::from(prompt + generated),
            "the completion's charge is not its tokens' price"
        );
        ensure!(
            chat.owed == embedding.owed + chat.charged,
            "the gateway's running total {} is not the two charges",
            chat.owed
        );
        println!(
            "     the latest voucher allows {} in all; the wallet owes {}",
            chat.voucher.cumulative_amount, chat.owed
        );

        let redemption = self.redeem(&chat.voucher, chat.owed, provider).await?;
        let tx = redemption.tx.context("the redemption sent no transaction")?;
        ensure!(redemption.failed.is_empty(), "the escrow refused the voucher of {:?}", redemption.failed);
        ensure!(
            redemption.paid.0 == chat.owed,
            "the provider was paid {}, not the {} charged",
            redemption.paid.0,
            chat.owed
        );
        println!(
            "     InferenceEscrow.redeemBatch with the provider's key: tx {tx}, paid {}",
            redemption.paid
        );
        check("provider TORA", provider_before, self.tora_of(provider).await?, provider_before + chat.owed)?;
        self.check_channel(provider, channel_before, channel_before - chat.owed).await?;
        let redeemed_after = self.escrow().redeemed(w, provider).call().await?;
        check("redeemed from the channel", redeemed_before, redeemed_after, redeemed_before + chat.owed)?;
        self.check_wallet_tora(wallet_before, wallet_before).await?;
        println!(
            "  => step 3 ok: two calls paid with vouchers, {} base units redeemed to the provider in tx {tx}",
            chat.owed
        );
        Ok(())
    }
}
