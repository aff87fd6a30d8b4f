// The JSON-RPC methods of Tensora's services beyond what viem types: their wire shapes, as
// core/src/rpc_api/paymaster.rs and bundler.rs define them (amounts are 0x-hex quantities).

import type { Address, Hex } from 'viem';
import type { RpcUserOperation } from 'viem/account-abstraction';

/** ERC-7677's `context` as Tensora's paymaster reads it: who pays. */
export type ToraPaymasterContext =
  | {
      /** The sender pays in this token (TORA). */
      token: Address;
      /** An EIP-2612 permit of TORA to the paymaster, signed for the sender. */
      permit?: PermitContext;
      sponsorshipPolicyId?: undefined;
    }
  | {
      /** A dapp pays, under this policy (the call needs the dapp's API key). */
      sponsorshipPolicyId: string;
      token?: undefined;
      permit?: undefined;
    };

/** A signed permit in the context, as the paymaster takes it. */
export interface PermitContext {
  /** The allowance granted, TORA base units. */
  value: Hex;
  /** Always 2^256-1: a finite deadline makes TORA read the clock during validation (ERC-7562). */
  deadline: Hex;
  /** 65 bytes: the owner's ECDSA signature or the account's ERC-1271 one. */
  signature: Hex;
}

/** One field of an EIP-712 struct type. */
export interface TypedField {
  name: string;
  type: string;
}

/** `tora_getTokenQuote`'s answer on the wire. */
export interface RpcTokenQuote {
  /** ToraPaymaster. */
  paymaster: Address;
  /** TORA. */
  token: Address;
  /** TORA base units per 1e18 wei, markup included. */
  exchangeRate: Hex;
  /** The likely charge at the current base fee, TORA base units. */
  estimatedTokenCost: Hex;
  /** The most the operation may be charged, TORA base units. */
  maxTokenCost: Hex;
  /** The sender's allowance to the paymaster now. */
  currentAllowance: Hex;
  /** The allowance that covers the maximum. */
  approveAmount: Hex;
  /** A permit of that allowance: its digest (what ERC-1271 accounts sign) and its typed data. */
  permit: {
    digest: Hex;
    typedData: {
      domain: { name: string; version: string; chainId: number; verifyingContract: Address };
      primaryType: 'Permit';
      types: { Permit: TypedField[] };
      message: { owner: Address; spender: Address; value: Hex; nonce: Hex; deadline: Hex };
    };
  };
}

/** One tier of `tora_getUserOperationGasPrice`, wei per gas. */
export interface RpcFeeTier {
  maxFeePerGas: Hex;
  maxPriorityFeePerGas: Hex;
}

/** The paymaster's own methods. */
export type ToraPaymasterRpcSchema = [
  {
    Method: 'tora_getTokenQuote';
    Parameters: [userOperation: Partial<RpcUserOperation<'0.7'>> & { sender: Address }, entryPoint: Address, chainId: Hex];
    ReturnType: RpcTokenQuote;
  },
];

/** The bundler's own methods. */
export type ToraBundlerRpcSchema = [
  {
    Method: 'tora_getUserOperationGasPrice';
    Parameters: [];
    ReturnType: { slow: RpcFeeTier; standard: RpcFeeTier; fast: RpcFeeTier };
  },
];
