// User operations as a wallet sends them with viem: a bundler client on Tensora's bundler, with
// a paymaster object, fees from the bundler, and the receipt waited for.

import assert from 'node:assert/strict';
import { type Address, type Hex, http, parseEventLogs } from 'viem';
import { type UserOperationReceipt, createBundlerClient } from 'viem/account-abstraction';
import { type ToraPaymaster, type ToraPaymasterContext, type ToraSmartAccount, toraFeesPerGas } from '../src/index.js';
import { toraPaymasterAbi } from './abis.js';
import { bundlerUrl, deployment, publicClient } from './devnet.js';

/** One call of an operation. */
export interface Call {
  to: Address;
  data: Hex;
}

/** Sends `calls` from `account` with `paymaster` (and `context`) and waits for the receipt; fails unless the calls succeeded. */
export async function sendOperation(
  account: ToraSmartAccount,
  paymaster: ToraPaymaster,
  calls: Call[],
  context?: ToraPaymasterContext,
): Promise<UserOperationReceipt> {
  const bundler = createBundlerClient({
    client: publicClient,
    transport: http(bundlerUrl),
    paymaster,
    paymasterContext: context,
    userOperation: { estimateFeesPerGas: toraFeesPerGas },
  });
  const hash = await bundler.sendUserOperation({ account, calls });
  const receipt = await bundler.waitForUserOperationReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.success, true, `operation ${hash} reverted: ${receipt.reason}`);
  return receipt;
}

/** ToraPaymaster's account of the operation's gas (its `GasChargedInToken` event). */
export function gasCharge(receipt: UserOperationReceipt) {
  const events = parseEventLogs({ abi: toraPaymasterAbi, eventName: 'GasChargedInToken', logs: receipt.logs });
  assert.equal(events.length, 1, 'one GasChargedInToken per operation');
  return events[0]!.args;
}

/** ToraPaymaster's payment modes. */
export async function paymentModes(): Promise<{ token: number; sponsor: number }> {
  const read = (functionName: 'MODE_TOKEN' | 'MODE_SPONSOR') =>
    publicClient.readContract({ address: deployment.contracts.paymaster, abi: toraPaymasterAbi, functionName });
  const [token, sponsor] = await Promise.all([read('MODE_TOKEN'), read('MODE_SPONSOR')]);
  return { token, sponsor };
}
