// What a wallet does on Tensora, through this package and viem, against a running `tora up`:
// a new ToraAccount holding TORA and no BNB gets its first operation sponsored by a dapp, pays
// its next ones in TORA (with a permit, then from an allowance), and pays the inference gateway
// with vouchers from the official OpenAI client. Each step checks every amount it moves, exactly.
// The steps are one account's story, so they run in order.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type Address, encodeFunctionData, getAddress, hashTypedData } from 'viem';
import {
  CHARGED_HEADER,
  CUMULATIVE_HEADER,
  type GatewayPricing,
  type TokenQuote,
  type ToraSmartAccount,
  gatewayPricing,
  toraFetch,
  toraPaymaster,
  voucherTypedData,
} from '../src/index.js';
import { escrowAbi, toraAbi } from './abis.js';
import { DEVNET_DAPP, devnetApiKey } from './api-keys.js';
import { bnbOf, deployment, gatewayUrl, newFundedAccount, paymasterUrl, publicClient, tora, toraOf } from './devnet.js';
import { gasCharge, paymentModes, sendOperation } from './operations.js';
import { POLICY_ID, POLICY_NAME, ensureSponsorDeposit, putPolicy, sponsorBalance } from './sponsorship.js';

/** Who receives the TORA the account sends: any address will do. */
const FRIEND: Address = '0xf1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1';
/** The gateway's models (inference-gateway `MODEL_ID`, `TEXT_MODEL_ID`). */
const EMBEDDING_MODEL = 'all-MiniLM-L6-v2';
const TEXT_MODEL = 'SmolLM2-135M-Instruct';
/** all-MiniLM-L6-v2's embedding size. */
const EMBEDDING_DIMENSIONS = 384;
/** What the account deposits in its escrow channel to the gateway's provider. */
const ESCROW_DEPOSIT = tora(1);
/** The allowance the account gives the paymaster for its later operations. */
const ALLOWANCE = tora(5);

const { contracts } = deployment;

function transfer(to: Address, value: bigint) {
  return { to: contracts.tora, data: encodeFunctionData({ abi: toraAbi, functionName: 'transfer', args: [to, value] }) };
}

function permitNonce(owner: Address): Promise<bigint> {
  return publicClient.readContract({ address: contracts.tora, abi: toraAbi, functionName: 'nonces', args: [owner] });
}

function allowanceToPaymaster(owner: Address): Promise<bigint> {
  return publicClient.readContract({
    address: contracts.tora,
    abi: toraAbi,
    functionName: 'allowance',
    args: [owner, contracts.paymaster],
  });
}

function escrowChannel(payer: Address, provider: Address): Promise<bigint> {
  return publicClient.readContract({
    address: contracts.inferenceEscrow,
    abi: escrowAbi,
    functionName: 'balanceOf',
    args: [payer, provider],
  });
}

/** A decimal amount header of a paid answer. */
function amountHeader(response: Response, name: string): bigint {
  const value = response.headers.get(name);
  assert.ok(value !== null && /^[0-9]+$/.test(value), `no decimal ${name} in the answer`);
  return BigInt(value);
}

function priceOf(pricing: GatewayPricing, model: string): bigint {
  const price = pricing.pricePerToken.get(model);
  assert.ok(price !== undefined, `the gateway does not price ${model}`);
  return price;
}

describe('a new ToraAccount with TORA and no BNB', () => {
  let account: ToraSmartAccount;
  let pricing: GatewayPricing;
  let modes: { token: number; sponsor: number };
  const quotes: TokenQuote[] = [];
  const payingInTora = () => toraPaymaster({ url: paymasterUrl, account, onQuote: (quote) => void quotes.push(quote) });

  before(async () => {
    [pricing, modes] = await Promise.all([gatewayPricing(gatewayUrl), paymentModes()]);
    assert.equal(getAddress(pricing.escrow), getAddress(contracts.inferenceEscrow), "the gateway's escrow is the deployment's");
    account = await newFundedAccount(tora(100));
  });

  it('gets its first operation, which deploys it, sponsored by a dapp', async () => {
    const sponsor = await ensureSponsorDeposit();
    await putPolicy(sponsor);
    const paymaster = toraPaymaster({ url: paymasterUrl, apiKey: devnetApiKey(DEVNET_DAPP, 'dapp') });
    const context = { sponsorshipPolicyId: POLICY_ID };
    const gift = transfer(FRIEND, tora(1));

    const stub = await paymaster.getPaymasterStubData({
      sender: account.address,
      nonce: 0n,
      callData: await account.encodeCalls([gift]),
      chainId: deployment.chainId,
      entryPointAddress: contracts.entryPoint,
      context,
    });
    assert.equal(stub.paymaster && getAddress(stub.paymaster), getAddress(contracts.paymaster));
    assert.equal(stub.sponsor?.name, POLICY_NAME, 'the stub names the sponsor the wallet shows');

    const [sponsorBefore, walletBefore, friendBefore] = await Promise.all([
      sponsorBalance(sponsor),
      toraOf(account.address),
      toraOf(FRIEND),
    ]);
    const receipt = await sendOperation(account, paymaster, [gift], context);
    const charge = gasCharge(receipt);
    assert.equal(charge.mode, modes.sponsor);
    assert.equal(charge.payer, sponsor);
    assert.equal(charge.sender, account.address);
    assert.ok(charge.charge > 0n);
    assert.notEqual(await publicClient.getCode({ address: account.address }), undefined, 'the operation deployed the account');
    assert.equal(await sponsorBalance(sponsor), sponsorBefore - charge.charge, "the sponsor's deposit paid the gas, exactly");
    assert.equal(await toraOf(account.address), walletBefore - tora(1));
    assert.equal(await toraOf(FRIEND), friendBefore + tora(1));
    assert.equal(await bnbOf(account.address), 0n);
  });

  it('pays its next operation in TORA with a permit its owner signs through ERC-1271', async () => {
    // It deposits in its escrow channel to the gateway's provider, and approves the paymaster
    // for the operations after this one.
    const calls = [
      {
        to: contracts.tora,
        data: encodeFunctionData({ abi: toraAbi, functionName: 'approve', args: [contracts.inferenceEscrow, ESCROW_DEPOSIT] }),
      },
      {
        to: contracts.inferenceEscrow,
        data: encodeFunctionData({ abi: escrowAbi, functionName: 'deposit', args: [pricing.provider, ESCROW_DEPOSIT] }),
      },
      {
        to: contracts.tora,
        data: encodeFunctionData({ abi: toraAbi, functionName: 'approve', args: [contracts.paymaster, ALLOWANCE] }),
      },
    ];
    const w = account.address;
    assert.equal(await allowanceToPaymaster(w), 0n, 'no allowance yet: only a permit can pay');
    const [walletBefore, paymasterBefore, channelBefore, nonceBefore] = await Promise.all([
      toraOf(w),
      toraOf(contracts.paymaster),
      escrowChannel(w, pricing.provider),
      permitNonce(w),
    ]);

    quotes.length = 0;
    const charge = gasCharge(await sendOperation(account, payingInTora(), calls));
    const quote = quotes.at(-1);
    assert.ok(quote, 'the paymaster object quoted the operation');
    assert.equal(quote.currentAllowance, 0n);
    assert.equal(charge.mode, modes.token);
    assert.equal(charge.payer, getAddress(contracts.tora));
    assert.equal(charge.charge + charge.refund, quote.maxTokenCost, "the permit's value was taken, the rest refunded");
    assert.equal(await toraOf(w), walletBefore - ESCROW_DEPOSIT - charge.charge);
    assert.equal(await toraOf(contracts.paymaster), paymasterBefore + charge.charge);
    assert.equal(await escrowChannel(w, pricing.provider), channelBefore + ESCROW_DEPOSIT);
    assert.equal(await permitNonce(w), nonceBefore + 1n, 'one permit used');
    assert.equal(await allowanceToPaymaster(w), ALLOWANCE);
    assert.equal(await bnbOf(w), 0n);
  });

  it('pays the operation after from its allowance, signing no permit', async () => {
    const w = account.address;
    const [walletBefore, friendBefore, nonceBefore] = await Promise.all([toraOf(w), toraOf(FRIEND), permitNonce(w)]);
    quotes.length = 0;
    const charge = gasCharge(await sendOperation(account, payingInTora(), [transfer(FRIEND, tora(1))]));
    const quote = quotes.at(-1);
    assert.ok(quote, 'the paymaster object quoted the operation');
    assert.equal(quote.currentAllowance, ALLOWANCE);
    assert.equal(charge.mode, modes.token);
    assert.equal(charge.payer, getAddress(contracts.tora));
    // The quote's maximum is the permit path's (more verification gas): without one it costs less.
    const preCharge = charge.charge + charge.refund;
    assert.ok(preCharge <= quote.maxTokenCost);
    assert.equal(await permitNonce(w), nonceBefore, 'no permit used');
    assert.equal(await allowanceToPaymaster(w), ALLOWANCE - preCharge, 'the pre-charge was drawn from the allowance');
    assert.equal(await toraOf(w), walletBefore - tora(1) - charge.charge);
    assert.equal(await toraOf(FRIEND), friendBefore + tora(1));
    assert.equal(await bnbOf(w), 0n);
  });

  it('pays the gateway with vouchers from the official OpenAI client: an embedding, then a chat completion', async () => {
    const w = account.address;
    const { provider } = pricing;
    const walletBefore = await toraOf(w);
    const pay = toraFetch({ payer: account });
    const openai = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: 'unused', fetch: pay, maxRetries: 0 });

    const embedded = await openai.embeddings
      .create({ model: EMBEDDING_MODEL, input: 'A smart wallet pays for its own inference.' })
      .withResponse();
    assert.equal(embedded.data.data[0]?.embedding.length, EMBEDDING_DIMENSIONS);
    const embeddingCharge = amountHeader(embedded.response, CHARGED_HEADER);
    assert.equal(embeddingCharge, BigInt(embedded.data.usage.total_tokens) * priceOf(pricing, EMBEDDING_MODEL));
    assert.equal(amountHeader(embedded.response, CUMULATIVE_HEADER), embeddingCharge, 'a new payer owes its first call');
    assert.equal(pay.ledger(provider).charged, embeddingCharge);

    const chatted = await openai.chat.completions
      .create({
        model: TEXT_MODEL,
        messages: [{ role: 'user', content: 'What is the capital of France?' }],
        max_tokens: 12,
        temperature: 0,
      })
      .withResponse();
    const usage = chatted.data.usage;
    assert.ok(usage, 'the completion reports its usage');
    assert.ok(chatted.data.choices[0]?.message.content, 'the completion answers');
    const chatCharge = amountHeader(chatted.response, CHARGED_HEADER);
    assert.equal(chatCharge, BigInt(usage.prompt_tokens + usage.completion_tokens) * priceOf(pricing, TEXT_MODEL));
    assert.equal(amountHeader(chatted.response, CUMULATIVE_HEADER), embeddingCharge + chatCharge);

    const ledger = pay.ledger(provider);
    assert.equal(ledger.charged, embeddingCharge + chatCharge, 'the ledger follows the gateway');
    const voucher = ledger.latest;
    assert.ok(voucher && voucher.cumulativeAmount >= ledger.charged, 'the latest voucher covers what was charged');
    const onChain = { payer: w, provider, cumulativeAmount: voucher.cumulativeAmount };
    const escrow = { address: contracts.inferenceEscrow, abi: escrowAbi } as const;
    const digest = await publicClient.readContract({ ...escrow, functionName: 'voucherDigest', args: [onChain] });
    assert.equal(digest, hashTypedData(voucherTypedData(pricing, w, voucher.cumulativeAmount)));
    const valid = await publicClient.readContract({
      ...escrow,
      functionName: 'isValidVoucherSignature',
      args: [onChain, voucher.signature],
    });
    assert.equal(valid, true, 'the escrow takes the voucher as signed by the account (ERC-1271)');
    assert.equal(await toraOf(w), walletBefore, 'inference is paid from the escrow deposit');
  });
});
