// `tora_getTokenQuote`: what an operation costs in TORA, and the EIP-2612 permit that pays it.
// A wallet signs the permit only once it has checked it is the one it means to give: the
// quote's maximum, from the sender, to the paymaster, for TORA on this chain.

import { type Address, type Hex, type TypedDataDefinition, hashTypedData, hexToBigInt, maxUint256 } from 'viem';
import type { RpcTokenQuote } from './rpc.js';
import { sameAddress } from './signer.js';

/** EIP-2612's `Permit` struct. */
export const permitTypes = {
  Permit: [
    { name: 'owner', type: 'address' },
    { name: 'spender', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

/** A TORA permit as typed data. */
export type PermitTypedData = TypedDataDefinition<typeof permitTypes, 'Permit'>;

/** A token quote with its amounts as bigints (TORA base units; the rate per 1e18 wei). */
export interface TokenQuote {
  /** ToraPaymaster. */
  paymaster: Address;
  /** TORA. */
  token: Address;
  /** TORA base units per 1e18 wei, markup included. */
  exchangeRate: bigint;
  /** The likely charge at the current base fee. */
  estimatedTokenCost: bigint;
  /** The most the operation may be charged: what a permit must allow. */
  maxTokenCost: bigint;
  /** The sender's allowance to the paymaster now. */
  currentAllowance: bigint;
  /** The permit of `maxTokenCost` the quote proposes: its EIP-712 digest and typed data. */
  permit: { digest: Hex; typedData: PermitTypedData };
}

/** The quote's wire form, read. */
export function parseTokenQuote(rpc: RpcTokenQuote): TokenQuote {
  const { domain, message } = rpc.permit.typedData;
  return {
    paymaster: rpc.paymaster,
    token: rpc.token,
    exchangeRate: hexToBigInt(rpc.exchangeRate),
    estimatedTokenCost: hexToBigInt(rpc.estimatedTokenCost),
    maxTokenCost: hexToBigInt(rpc.maxTokenCost),
    currentAllowance: hexToBigInt(rpc.currentAllowance),
    permit: {
      digest: rpc.permit.digest,
      typedData: {
        domain,
        types: permitTypes,
        primaryType: 'Permit',
        message: {
          owner: message.owner,
          spender: message.spender,
          value: hexToBigInt(message.value),
          nonce: hexToBigInt(message.nonce),
          deadline: hexToBigInt(message.deadline),
        },
      },
    },
  };
}

/** What the wallet expects the quote's permit to be. */
export interface PermitExpectation {
  /** The operation's sender, who grants the allowance. */
  sender: Address;
  /** The chain the operation runs on. */
  chainId: number;
  /** The token the wallet pays in. */
  token: Address;
}

/**
 * Throws unless the quote proposes a permit of exactly its maximum, from the sender to the
 * paymaster, for the token on this chain, without expiry, and its digest is that permit's.
 */
export function checkPermitProposal(quote: TokenQuote, expected: PermitExpectation): void {
  const { domain, message } = quote.permit.typedData;
  const problems = [
    !sameAddress(message.owner, expected.sender) && `owner ${message.owner} is not the sender ${expected.sender}`,
    !sameAddress(message.spender, quote.paymaster) && `spender ${message.spender} is not the paymaster ${quote.paymaster}`,
    message.value !== quote.maxTokenCost && `value ${message.value} is not the quote's maximum ${quote.maxTokenCost}`,
    message.deadline !== maxUint256 && `deadline ${message.deadline} is not 2^256-1`,
    !sameAddress(quote.token, expected.token) && `the quote is in ${quote.token}, not ${expected.token}`,
    !sameAddress(domain?.verifyingContract ?? '0x', expected.token) && `the permit is for ${domain?.verifyingContract}`,
    Number(domain?.chainId) !== expected.chainId && `the permit is for chain ${domain?.chainId}, not ${expected.chainId}`,
    hashTypedData(quote.permit.typedData) !== quote.permit.digest && `its digest is not that of its typed data`,
  ].filter((p): p is string => typeof p === 'string');
  if (problems.length > 0) throw new Error(`tora_getTokenQuote proposed a permit the wallet will not sign: ${problems.join('; ')}`);
}
