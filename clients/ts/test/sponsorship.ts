// A dapp's sponsorship on the devnet: the deployer is the sponsor (its TORA deposit in
// ToraPaymaster pays), and a policy put through the paymaster's admin API names the devnet dapp.

import assert from 'node:assert/strict';
import { type Address, toFunctionSelector } from 'viem';
import { toraAbi, toraPaymasterAbi } from './abis.js';
import { DEVNET_DAPP, devnetApiKey } from './api-keys.js';
import { adminUrl, confirmed, deployer, deployment, publicClient, tora } from './devnet.js';

/** The policy the tests put (again on every run: a put replaces it). */
export const POLICY_ID = 'ts-client-tests';
export const POLICY_NAME = 'Tensora TypeScript client tests';
/** Budgets are in micro-TORA (core/src/sponsorship.rs `MicroTora`). */
const MICRO_TORA_PER_TORA = 1_000_000;

/** The sponsor's deposit in ToraPaymaster, in TORA base units. */
export function sponsorBalance(sponsor: Address): Promise<bigint> {
  return publicClient.readContract({
    address: deployment.contracts.paymaster,
    abi: toraPaymasterAbi,
    functionName: 'sponsorBalance',
    args: [sponsor],
  });
}

/** Tops the deployer's sponsor deposit up to at least 1,000 TORA. */
export async function ensureSponsorDeposit(): Promise<Address> {
  const sponsor = deployer.account.address;
  if ((await sponsorBalance(sponsor)) >= tora(1_000)) return sponsor;
  const amount = tora(10_000);
  const { paymaster } = deployment.contracts;
  await confirmed(
    'approve the sponsor deposit',
    await deployer.writeContract({ address: deployment.contracts.tora, abi: toraAbi, functionName: 'approve', args: [paymaster, amount] }),
  );
  await confirmed(
    'deposit for the sponsor',
    await deployer.writeContract({ address: paymaster, abi: toraPaymasterAbi, functionName: 'depositForSponsor', args: [sponsor, amount] }),
  );
  return sponsor;
}

/** Puts the tests' policy: the devnet dapp's TORA transfers, paid by `sponsor`, 10,000 TORA a day, 100 per account. */
export async function putPolicy(sponsor: Address): Promise<void> {
  const policy = {
    id: POLICY_ID,
    name: POLICY_NAME,
    icon: null,
    dapp: DEVNET_DAPP,
    sponsor,
    budget: { global: 10_000 * MICRO_TORA_PER_TORA, perUser: 100 * MICRO_TORA_PER_TORA },
    reset: 'daily',
    allowedTargets: [deployment.contracts.tora],
    allowedSelectors: [toFunctionSelector('transfer(address,uint256)')],
    validAfter: 0,
    validUntil: Math.floor(Date.now() / 1000) + 365 * 86_400,
  };
  const response = await fetch(`${adminUrl}/admin/policies`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${devnetApiKey('ts-client-tests', 'admin')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(policy),
  });
  assert.equal(response.status, 201, `POST /admin/policies: ${await response.text()}`);
}
