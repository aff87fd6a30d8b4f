// A new account needs no sponsor: its very first operation, which deploys it, pays its gas in
// TORA with a permit signed before the account exists (viem wraps that signature in ERC-6492;
// the paymaster object hands TORA the owner's signature inside, valid once the account is deployed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Address, encodeFunctionData, getAddress } from 'viem';
import { type TokenQuote, toraPaymaster } from '../src/index.js';
import { toraAbi } from './abis.js';
import { bnbOf, deployment, newFundedAccount, paymasterUrl, publicClient, tora, toraOf } from './devnet.js';
import { gasCharge, paymentModes, sendOperation } from './operations.js';

const FRIEND: Address = '0xf2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2';

test('a new ToraAccount pays its first operation, which deploys it, in TORA with a permit', async () => {
  const { contracts } = deployment;
  const account = await newFundedAccount(tora(10));
  const w = account.address;
  const quotes: TokenQuote[] = [];
  const paymaster = toraPaymaster({ url: paymasterUrl, account, onQuote: (quote) => void quotes.push(quote) });
  const [walletBefore, friendBefore, paymasterBefore, modes] = await Promise.all([
    toraOf(w),
    toraOf(FRIEND),
    toraOf(contracts.paymaster),
    paymentModes(),
  ]);

  const call = { to: contracts.tora, data: encodeFunctionData({ abi: toraAbi, functionName: 'transfer', args: [FRIEND, tora(1)] }) };
  const charge = gasCharge(await sendOperation(account, paymaster, [call], { token: contracts.tora }));
  const quote = quotes.at(-1);
  assert.ok(quote, 'the paymaster object quoted the operation');
  assert.equal(charge.mode, modes.token);
  assert.equal(charge.payer, getAddress(contracts.tora));
  assert.equal(charge.charge + charge.refund, quote.maxTokenCost, "the permit's value was taken, the rest refunded");
  assert.notEqual(await publicClient.getCode({ address: w }), undefined, 'the operation deployed the account');
  assert.equal(await toraOf(w), walletBefore - tora(1) - charge.charge);
  assert.equal(await toraOf(FRIEND), friendBefore + tora(1));
  assert.equal(await toraOf(contracts.paymaster), paymasterBefore + charge.charge);
  assert.equal(await bnbOf(w), 0n);
});
