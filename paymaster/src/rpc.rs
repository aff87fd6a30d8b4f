//! The wallet-facing JSON-RPC methods: ERC-7677's `pm_getPaymasterStubData` and
//! `pm_getPaymasterData` for EntryPoint v0.7, and `tora_getTokenQuote`.

use crate::config::TokenLimits;
use crate::gas_bounds::ChainGasReader;
use crate::quote::{Payer, QuoteError, Quoter};
use crate::sponsorship::auth::{ApiKeys, Role};
use crate::sponsorship::calls::check_calls;
use alloy::primitives::{Address, U64, U256};
use alloy::providers::{DynProvider, Provider};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tora_core::UserOperation;
use tora_core::clock::unix_now;
use tora_core::contracts::{TORA, ToraPaymaster};
use tora_core::money::Wei;
use tora_core::paymaster_quote::Permit;
use tora_core::permit::{TORA_PERMIT_NAME, permit};
use tora_core::pre_verification_gas::effective_gas_price;
use tora_core::price::PriceSource;
use tora_core::rpc_api::Method;
use tora_core::rpc_api::paymaster::{
    DraftOperation, GetPaymasterData, GetPaymasterStubData, GetTokenQuote, PaymasterContext, PaymasterData,
    PermitDomain, PermitMessage, PermitProposal, PermitTypedData, SponsorInfo, StubData, TokenQuote,
    TypedField,
};
use tora_core::sponsorship::{
    Budget, MicroTora, Reservation, ResetInterval, SponsorshipPolicy, SponsorshipStore,
};
use tora_core::{ErrorCode, RpcError};
use tora_jsonrpc::{CallMeta, Params, READY_WITHIN, RpcService, answer};

/// The JSON-RPC service wallets call for paymaster stub data, signed paymaster data and
/// token quotes.
pub struct PaymasterRpc<P, S> {
    /// Prices and signs the quotes.
    pub quoter: Quoter<P>,
    provider: DynProvider,
    /// The budgets and API keys of dapp-sponsored operations.
    pub sponsorship: Sponsorship<S>,
    chain_gas: ChainGasReader,
}

/// How long one read of the base fee (and L1 fee parameters) serves quotes.
const CHAIN_GAS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Dapp sponsorship: the budgets' store and the API keys allowed to draw on them (shared with
/// the admin API).
pub struct Sponsorship<S> {
    /// Where policies, their spend and open reservations are kept.
    pub store: Arc<S>,
    /// The secrets dapp and admin API keys are verified with.
    pub keys: Arc<ApiKeys>,
}

fn refused(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::RejectedByPaymaster, message)
}

impl From<QuoteError> for RpcError {
    fn from(e: QuoteError) -> Self {
        let code = match e {
            QuoteError::PermitTooSmall { .. } | QuoteError::Overflow | QuoteError::Bounds(_) => {
                ErrorCode::InvalidParams
            }
            QuoteError::Signing(_) => ErrorCode::Internal,
            QuoteError::Price(_) | QuoteError::OverLimit { .. } => ErrorCode::RejectedByPaymaster,
        };
        RpcError::new(code, e.to_string())
    }
}

/// A permit applied during validation must not read the clock (ERC-7562 OP-011): TORA skips its
/// deadline check only for the maximal deadline, and the quote's validUntil bounds the permit's
/// use instead. A bundler would refuse the operation, so refuse it here.
fn check_permit_deadline(deadline: U256) -> Result<(), RpcError> {
    if deadline != U256::MAX {
        return Err(RpcError::invalid_params(format!(
            "permit.deadline must be 2^256-1 (no expiry), got {deadline}: a finite deadline makes TORA read \
             TIMESTAMP during validation, which bundlers refuse (ERC-7562 OP-011)"
        )));
    }
    Ok(())
}

impl<P: PriceSource, S: SponsorshipStore> PaymasterRpc<P, S> {
    /// The service over `quoter`, reading the chain through `provider`.
    pub fn new(quoter: Quoter<P>, provider: DynProvider, sponsorship: Sponsorship<S>) -> Self {
        let oracle = quoter.config.gas_price_oracle;
        let chain_gas = ChainGasReader::new(provider.clone(), oracle, CHAIN_GAS_TTL);
        Self { quoter, provider, sponsorship, chain_gas }
    }

    /// A sponsor that asked to withdraw gets no new quotes: every operation it already
    /// sponsored then expires before the withdrawal delay ends, instead of failing in a bundle.
    async fn check_no_withdrawal_pending(&self, sponsor: Address) -> Result<(), RpcError> {
        let paymaster = ToraPaymaster::new(self.quoter.config.paymaster, self.provider.clone());
        let request = paymaster
            .sponsorWithdrawal(sponsor)
            .call()
            .await
            .map_err(|e| RpcError::internal(format!("node: {e}")))?;
        if !request.readyAt.is_zero() {
            return Err(refused(format!(
                "sponsor {sponsor} has asked to withdraw its balance: no sponsored quotes until it cancels"
            )));
        }
        Ok(())
    }

    /// Token mode: the sender must hold the quote's maximum, so that quotes nobody can use
    /// do not fill the token limits.
    /// The sender's TORA balance, refused when it is short of this operation's maximum.
    async fn sender_balance(&self, sender: Address, max_token_cost: U256) -> Result<U256, RpcError> {
        let tora = TORA::new(self.quoter.config.token, self.provider.clone());
        let balance =
            tora.balanceOf(sender).call().await.map_err(|e| RpcError::internal(format!("node: {e}")))?;
        if balance < max_token_cost {
            return Err(refused(format!(
                "{sender} holds {balance} TORA base units but the operation may cost up to {max_token_cost}"
            )));
        }
        Ok(balance)
    }

    /// The policy a sponsored call names, after checking the caller's API key, the policy's
    /// window and what the operation calls.
    async fn sponsoring_policy(
        &self,
        meta: &CallMeta,
        policy_id: &str,
        op: &UserOperation,
    ) -> Result<SponsorshipPolicy, RpcError> {
        let claims =
            self.sponsorship.keys.verify(meta.api_key.as_deref()).map_err(|e| refused(e.to_string()))?;
        let store_err = |e: tora_core::sponsorship::BudgetError| RpcError::internal(e.to_string());
        let policy =
            self.sponsorship.store.policy(policy_id).await.map_err(store_err)?.ok_or_else(|| {
                RpcError::invalid_params(format!("unknown sponsorship policy {policy_id:?}"))
            })?;
        if claims.sub != policy.dapp && claims.role != Role::Admin {
            return Err(refused(format!("this API key may not use policy {policy_id:?}")));
        }
        let now = unix_now();
        if now < policy.valid_after || now >= policy.valid_until {
            return Err(refused(format!("policy {policy_id:?} is not active now")));
        }
        check_calls(&policy, &op.call_data).map_err(|e| refused(e.to_string()))?;
        self.check_no_withdrawal_pending(policy.sponsor).await?;
        Ok(policy)
    }

    fn check_target(&self, entry_point: Address, chain_id: U64) -> Result<(), RpcError> {
        let config = &self.quoter.config;
        if entry_point != config.entry_point {
            return Err(RpcError::invalid_params(format!(
                "unsupported entry point {entry_point}: this paymaster serves {}",
                config.entry_point
            )));
        }
        if chain_id.to::<u64>() != config.chain_id {
            return Err(RpcError::invalid_params(format!(
                "unsupported chain {chain_id}: this paymaster serves chain {}",
                config.chain_id
            )));
        }
        Ok(())
    }

    /// Who pays, and under which policy when a dapp does.
    async fn payer(
        &self,
        meta: &CallMeta,
        context: Option<PaymasterContext>,
        op: &UserOperation,
    ) -> Result<(Payer, Option<SponsorshipPolicy>), RpcError> {
        let context = context.unwrap_or_default();
        if let (None, Some(policy_id)) = (&context.token, &context.sponsorship_policy_id) {
            let policy = self.sponsoring_policy(meta, policy_id, op).await?;
            return Ok((Payer::Sponsor { sponsor: policy.sponsor }, Some(policy)));
        }
        match (context.token, context.sponsorship_policy_id) {
            (Some(token), None) if token == self.quoter.config.token => {
                let permit = context.permit.map(|p| {
                    check_permit_deadline(p.deadline)?;
                    let signature: [u8; 65] = p
                        .signature
                        .as_ref()
                        .try_into()
                        .map_err(|_| RpcError::invalid_params("permit.signature must be 65 bytes"))?;
                    Ok::<_, RpcError>((Permit { deadline: p.deadline, signature }, p.value))
                });
                let permit = permit.transpose()?;
                let payer = Payer::Sender {
                    permit_value: permit.as_ref().map(|(_, value)| *value),
                    permit: permit.map(|(permit, _)| permit),
                };
                Ok((payer, None))
            }
            (Some(token), None) => Err(RpcError::invalid_params(format!(
                "unsupported token {token}: this paymaster accepts TORA at {}",
                self.quoter.config.token
            ))),
            _ => Err(RpcError::invalid_params("context must name either a token or a sponsorshipPolicyId")),
        }
    }

    async fn stub_data(
        &self,
        meta: &CallMeta,
        (DraftOperation(mut op), entry_point, chain_id, context): <GetPaymasterStubData as Method>::Params,
    ) -> Result<StubData, RpcError> {
        self.check_target(entry_point, chain_id)?;
        let (payer, policy) = self.payer(meta, context, &op).await?;
        self.quoter.attach_paymaster(&mut op, &payer);
        Ok(StubData {
            paymaster: self.quoter.config.paymaster,
            paymaster_data: self.quoter.stub_data(&payer),
            paymaster_verification_gas_limit: op.paymaster_verification_gas_limit,
            paymaster_post_op_gas_limit: op.paymaster_post_op_gas_limit,
            // The signature binds the gas limits, which are only final after estimation.
            is_final: false,
            sponsor: policy.map(|policy| SponsorInfo { name: policy.name, icon: policy.icon }),
        })
    }

    async fn data(
        &self,
        meta: &CallMeta,
        (DraftOperation(mut op), entry_point, chain_id, context): <GetPaymasterData as Method>::Params,
    ) -> Result<PaymasterData, RpcError> {
        self.check_target(entry_point, chain_id)?;
        let (payer, policy) = self.payer(meta, context, &op).await?;
        let chain = self.chain_gas.read().await.map_err(RpcError::internal)?;
        let (quote, data) = self.quoter.paymaster_data(&mut op, &payer, &chain).await?;
        op.paymaster_data = Some(data.clone());
        match policy {
            Some(policy) => self.reserve(&policy.id, &policy.budget, policy.reset, &op, &quote, None).await?,
            None => self.reserve_token_mode(&op, &quote).await?,
        }
        Ok(PaymasterData { paymaster: self.quoter.config.paymaster, paymaster_data: data })
    }

    /// Token mode's limits, when configured: the sender must hold the maximum, and it counts
    /// against the per-sender and global limits until settled.
    async fn reserve_token_mode(
        &self,
        op: &UserOperation,
        quote: &tora_core::paymaster_quote::Quote,
    ) -> Result<(), RpcError> {
        let limits = self.quoter.config.token_limits;
        if limits.is_unlimited() {
            return Ok(());
        }
        // The balance backs every open quote of the sender, not just this one: otherwise one
        // wallet could hold many operations' maximum (one per nonce key) with one's balance.
        let balance = self.sender_balance(op.sender, quote.max_token_cost).await?;
        let cover = MicroTora::from_tora_floor(tora_core::money::ToraUnits(balance));
        self.reserve(TokenLimits::BUDGET_ID, &limits.budget(), limits.reset, op, quote, Some(cover)).await
    }

    /// Holds the quote's maximum against the budgets kept under `budget_id` until the
    /// operation settles on-chain or the quote expires.
    async fn reserve(
        &self,
        budget_id: &str,
        budget: &Budget,
        reset: ResetInterval,
        op: &UserOperation,
        quote: &tora_core::paymaster_quote::Quote,
        cover: Option<MicroTora>,
    ) -> Result<(), RpcError> {
        let amount = MicroTora::from_tora_ceil(tora_core::money::ToraUnits(quote.max_token_cost))
            .ok_or_else(|| refused("operation cost exceeds any budget"))?;
        let config = &self.quoter.config;
        let reservation = Reservation {
            policy_id: budget_id.to_owned(),
            period: reset.period(unix_now()),
            user: op.sender,
            nonce: op.nonce,
            user_op_hash: op.hash(config.entry_point, config.chain_id),
            amount,
            expires_at: quote.valid_until,
            cover,
        };
        let added =
            self.sponsorship.store.reserve(budget, &reservation).await.map_err(|e| refused(e.to_string()))?;
        crate::metrics::reserved(budget_id, added);
        Ok(())
    }

    async fn token_quote(
        &self,
        (DraftOperation(mut op), entry_point, chain_id): <GetTokenQuote as Method>::Params,
    ) -> Result<TokenQuote, RpcError> {
        self.check_target(entry_point, chain_id)?;
        // Quote with the permit path's larger gas limit: a permit for this maximum covers both.
        let with_permit = Payer::Sender {
            permit: Some(Permit { deadline: U256::ZERO, signature: [0; 65] }),
            permit_value: None,
        };
        self.quoter.attach_paymaster(&mut op, &with_permit);
        let costs = self.quoter.costs(&op).await?;
        let config = &self.quoter.config;
        let node = |e: alloy::contract::Error| RpcError::internal(format!("node: {e}"));
        let tora = TORA::new(config.token, self.provider.clone());
        let nonce = tora.nonces(op.sender).call().await.map_err(node)?;
        let allowance = tora.allowance(op.sender, config.paymaster).call().await.map_err(node)?;
        let chain = self.chain_gas.read().await.map_err(RpcError::internal)?;
        let max_fee = U256::from(op.max_fee_per_gas).max(U256::from(1));
        let estimated_wei = op.max_cost_wei() / max_fee * effective_gas_price(&op, chain.base_fee);
        let estimated = costs.rate.tora_for(Wei(estimated_wei)).ok_or(QuoteError::Overflow)?;
        // A permit applied during validation must not read the clock (ERC-7562 OP-011): TORA treats
        // the maximal deadline as "no expiry"; the quote's validUntil bounds its use instead.
        let deadline = U256::MAX;
        let message = permit(op.sender, config.paymaster, costs.max_token_cost.0, nonce, deadline);
        let field = |name: &str, kind: &str| TypedField { name: name.into(), kind: kind.into() };
        Ok(TokenQuote {
            paymaster: config.paymaster,
            token: config.token,
            exchange_rate: costs.rate.0,
            estimated_token_cost: estimated.0,
            max_token_cost: costs.max_token_cost.0,
            current_allowance: allowance,
            approve_amount: costs.max_token_cost.0,
            permit: PermitProposal {
                digest: message.tora_digest(config.chain_id, config.token),
                typed_data: PermitTypedData {
                    domain: PermitDomain {
                        name: TORA_PERMIT_NAME.into(),
                        version: "1".into(),
                        chain_id: config.chain_id,
                        verifying_contract: config.token,
                    },
                    primary_type: "Permit".into(),
                    types: BTreeMap::from([(
                        "Permit".to_owned(),
                        vec![
                            field("owner", "address"),
                            field("spender", "address"),
                            field("value", "uint256"),
                            field("nonce", "uint256"),
                            field("deadline", "uint256"),
                        ],
                    )]),
                    message: PermitMessage {
                        owner: message.owner,
                        spender: message.spender,
                        value: message.value,
                        nonce: message.nonce,
                        deadline: message.deadline,
                    },
                },
            },
        })
    }
}

impl<P: PriceSource + 'static, S: SponsorshipStore + 'static> RpcService for PaymasterRpc<P, S> {
    async fn call(&self, meta: &CallMeta, method: &str, params: Params) -> Result<Value, RpcError> {
        match method {
            GetPaymasterStubData::NAME => {
                answer::<GetPaymasterStubData, _, _>(params, |p| self.stub_data(meta, p)).await
            }
            GetPaymasterData::NAME => answer::<GetPaymasterData, _, _>(params, |p| self.data(meta, p)).await,
            GetTokenQuote::NAME => answer::<GetTokenQuote, _, _>(params, |p| self.token_quote(p)).await,
            _ => Err(RpcError::new(ErrorCode::MethodNotFound, format!("method {method} does not exist"))),
        }
    }

    /// A genuine API key counts under its dapp; a made-up one under the client's address.
    fn verified_caller(&self, meta: &CallMeta) -> Option<String> {
        self.sponsorship.keys.verify(meta.api_key.as_deref()).ok().map(|claims| claims.sub)
    }

    /// The node and the budget store both answer, within [`READY_WITHIN`] each: a frozen
    /// node must turn the pod unready, not hang its probe.
    async fn ready(&self) -> Result<(), String> {
        let node = tokio::time::timeout(READY_WITHIN, self.provider.get_block_number());
        node.await
            .map_err(|_| "node did not answer".to_owned())?
            .map_err(|e| format!("node unreachable: {e}"))?;
        let store = tokio::time::timeout(READY_WITHIN, self.sponsorship.store.settled_block());
        store.await.map_err(|_| "budget store did not answer".to_owned())?.map_err(|e| e.to_string())?;
        Ok(())
    }
}
