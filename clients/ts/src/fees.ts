// Fees for user operations from Tensora's bundler, for viem's `userOperation.estimateFeesPerGas`.

import { type Client, type EIP1193RequestFn, hexToBigInt } from 'viem';
import type { ToraBundlerRpcSchema } from './rpc.js';

/**
 * The bundler's `standard` tier of `tora_getUserOperationGasPrice` (wei per gas): enough for its
 * next bundle with room for the base fee to move, and within the paymaster's fee bounds (viem's
 * own estimate, twice the node's fees, is over them).
 *
 * @example
 * createBundlerClient({ ..., userOperation: { estimateFeesPerGas: toraFeesPerGas } })
 */
export async function toraFeesPerGas({ bundlerClient }: { bundlerClient: Client }): Promise<{
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}> {
  const request = bundlerClient.request as EIP1193RequestFn<ToraBundlerRpcSchema>;
  const { standard } = await request({ method: 'tora_getUserOperationGasPrice', params: [] });
  return {
    maxFeePerGas: hexToBigInt(standard.maxFeePerGas),
    maxPriorityFeePerGas: hexToBigInt(standard.maxPriorityFeePerGas),
  };
}
