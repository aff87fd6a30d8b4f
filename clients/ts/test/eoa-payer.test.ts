// An EOA pays the inference gateway too: its vouchers are its ECDSA signatures of the typed
// data, and the ledger carries the cumulative amount from one call to the next.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { createWalletClient, http, parseEther } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { CHARGED_HEADER, CUMULATIVE_HEADER, gatewayPricing, toraFetch } from '../src/index.js';
import { escrowAbi, toraAbi } from './abis.js';
import { chain, confirmed, deployer, deployment, gatewayUrl, publicClient, tora } from './devnet.js';

const EMBEDDING_MODEL = 'all-MiniLM-L6-v2';

test('an EOA pays two embeddings with cumulative vouchers it signs as typed data', async () => {
  const { contracts } = deployment;
  const pricing = await gatewayPricing(gatewayUrl);
  const eoa = privateKeyToAccount(generatePrivateKey());
  const wallet = createWalletClient({ account: eoa, chain, transport: http(deployment.rpcUrl) });
  await confirmed('send BNB for gas', await deployer.sendTransaction({ to: eoa.address, value: parseEther('0.01') }));
  await confirmed(
    'send TORA',
    await deployer.writeContract({ address: contracts.tora, abi: toraAbi, functionName: 'transfer', args: [eoa.address, tora(1)] }),
  );
  await confirmed(
    'approve the escrow',
    await wallet.writeContract({ address: contracts.tora, abi: toraAbi, functionName: 'approve', args: [contracts.inferenceEscrow, tora(1)] }),
  );
  await confirmed(
    'deposit in the channel to the provider',
    await wallet.writeContract({
      address: contracts.inferenceEscrow,
      abi: escrowAbi,
      functionName: 'deposit',
      args: [pricing.provider, tora(1)],
    }),
  );

  const pay = toraFetch({ payer: eoa });
  const openai = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: 'unused', fetch: pay, maxRetries: 0 });
  const price = pricing.pricePerToken.get(EMBEDDING_MODEL);
  assert.ok(price !== undefined);
  let owed = 0n;
  for (const input of ['An EOA pays for inference.', 'And pays again, a voucher for the running total.']) {
    const { data, response } = await openai.embeddings.create({ model: EMBEDDING_MODEL, input }).withResponse();
    const charged = BigInt(response.headers.get(CHARGED_HEADER) ?? 'missing');
    assert.equal(charged, BigInt(data.usage.total_tokens) * price);
    owed += charged;
    assert.equal(BigInt(response.headers.get(CUMULATIVE_HEADER) ?? 'missing'), owed);
    assert.equal(pay.ledger(pricing.provider).charged, owed);
  }
  const voucher = pay.ledger(pricing.provider).latest;
  assert.ok(voucher);
  assert.equal(voucher.payer, eoa.address);
  const valid = await publicClient.readContract({
    address: contracts.inferenceEscrow,
    abi: escrowAbi,
    functionName: 'isValidVoucherSignature',
    args: [{ payer: eoa.address, provider: pricing.provider, cumulativeAmount: voucher.cumulativeAmount }, voucher.signature],
  });
  assert.equal(valid, true);
});
