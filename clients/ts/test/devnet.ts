// The running `tora up` the tests talk to: its deployment file (contracts and the devnet's
// well-known keys) and its services' URLs, from the environment scripts/ts-client-tests.sh sets
// (defaults: `tora up`'s own, from the repository root).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type Address,
  type Hash,
  type Hex,
  type PublicClient,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseUnits,
  publicActions,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { type ToraSmartAccount, toToraSmartAccount } from '../src/index.js';
import { toraAbi } from './abis.js';

/** The deployment file `tora up` writes (core/src/deployment.rs), with its devKeys. */
export interface Deployment {
  chainId: number;
  rpcUrl: string;
  contracts: {
    entryPoint: Address;
    toraAccountFactory: Address;
    tora: Address;
    paymaster: Address;
    inferenceEscrow: Address;
  };
  devKeys: { deployer: Hex; walletOwner: Hex; inferenceProvider: Hex };
}

/** `n` whole TORA, in base units. */
export function tora(n: number | string): bigint {
  return parseUnits(String(n), 18);
}

const repositoryRoot = fileURLToPath(new URL('../../../../', import.meta.url));

function readDeployment(): Deployment {
  const path = process.env.TORA_DEPLOYMENT ?? `${repositoryRoot}.tora/devnet.json`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the deployment ${path} (${e}): start \`tora up\`, or run scripts/ts-client-tests.sh`);
  }
  const deployment = JSON.parse(text) as Deployment;
  assert.ok(deployment.devKeys, `${path} has no devKeys: these tests run on a devnet (\`tora up\`)`);
  return deployment;
}

/** The stack under test. */
export const deployment = readDeployment();
export const bundlerUrl = process.env.TORA_BUNDLER_URL ?? 'http://127.0.0.1:4337';
export const paymasterUrl = process.env.TORA_PAYMASTER_URL ?? 'http://127.0.0.1:4338';
/** Where /admin is served: the paymaster's own port unless `tora up` ran with --admin-listen. */
export const adminUrl = process.env.TORA_ADMIN_URL ?? paymasterUrl;
export const gatewayUrl = process.env.TORA_GATEWAY_URL ?? 'http://127.0.0.1:4339';

export const chain = defineChain({
  id: deployment.chainId,
  name: 'Tensora devnet',
  nativeCurrency: { name: 'BNB', symbol: 'BNB', decimals: 18 },
  rpcUrls: { default: { http: [deployment.rpcUrl] } },
});

export const publicClient: PublicClient = createPublicClient({ chain, transport: http(deployment.rpcUrl) });

/** The devnet's deployer: owns the contracts and holds the TORA supply. */
export const deployer = createWalletClient({
  account: privateKeyToAccount(deployment.devKeys.deployer),
  chain,
  transport: http(deployment.rpcUrl),
}).extend(publicActions);

/** Waits for `hash` and fails unless it succeeded. */
export async function confirmed(what: string, hash: Hash): Promise<void> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success', `${what} reverted: ${hash}`);
}

/** A salt nobody used: each run gets new accounts. */
export function freshSalt(): bigint {
  return BigInt(`0x${randomBytes(16).toString('hex')}`);
}

/** A new ToraAccount of the devnet's wallet owner, not deployed, holding `toraAmount` TORA base units from the deployer and no BNB. */
export async function newFundedAccount(toraAmount: bigint): Promise<ToraSmartAccount> {
  const account = await toToraSmartAccount({
    client: publicClient,
    owner: privateKeyToAccount(deployment.devKeys.walletOwner),
    factoryAddress: deployment.contracts.toraAccountFactory,
    salt: freshSalt(),
  });
  assert.equal(await publicClient.getCode({ address: account.address }), undefined, `${account.address} exists already`);
  await confirmed(
    'the deployer sends TORA',
    await deployer.writeContract({
      address: deployment.contracts.tora,
      abi: toraAbi,
      functionName: 'transfer',
      args: [account.address, toraAmount],
    }),
  );
  return account;
}

/** The TORA balance of `who`, in base units. */
export function toraOf(who: Address): Promise<bigint> {
  return publicClient.readContract({ address: deployment.contracts.tora, abi: toraAbi, functionName: 'balanceOf', args: [who] });
}

/** The BNB balance of `who`, in wei. */
export function bnbOf(who: Address): Promise<bigint> {
  return publicClient.getBalance({ address: who });
}
