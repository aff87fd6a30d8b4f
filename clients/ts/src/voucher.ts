// Cumulative payment vouchers for the inference gateway: EIP-712 typed data of InferenceEscrow
// (core/src/escrow_voucher.rs), signed by the payer, sent as JSON in the `x-tora-voucher` header.

import type { Address, Hex, TypedDataDefinition } from 'viem';
import { type TypedDataSigner, signTyped } from './signer.js';

/** The request header carrying a signed voucher (inference-gateway's `VOUCHER_HEADER`). */
export const VOUCHER_HEADER = 'x-tora-voucher';

/** `InferenceEscrow.Voucher`: the provider may take up to `cumulativeAmount` from the payer in all. */
export const voucherTypes = {
  Voucher: [
    { name: 'payer', type: 'address' },
    { name: 'provider', type: 'address' },
    { name: 'cumulativeAmount', type: 'uint256' },
  ],
} as const;

/** Whom vouchers pay and where: the gateway's provider, its escrow and the escrow's chain. */
export interface VoucherTerms {
  provider: Address;
  escrow: Address;
  chainId: number;
}

/** A voucher as the gateway takes it. */
export interface SignedVoucher {
  /** Who pays: an EOA, or a contract wallet checked through ERC-1271. */
  payer: Address;
  /** Everything the payer allows the provider in all (not one call's price), TORA base units. */
  cumulativeAmount: bigint;
  /** The payer's signature of the voucher's EIP-712 digest. */
  signature: Hex;
}

/** The voucher as EIP-712 typed data, in the escrow's domain. */
export function voucherTypedData(
  terms: VoucherTerms,
  payer: Address,
  cumulativeAmount: bigint,
): TypedDataDefinition<typeof voucherTypes, 'Voucher'> {
  return {
    domain: { name: 'ToraInferenceEscrow', version: '1', chainId: terms.chainId, verifyingContract: terms.escrow },
    types: voucherTypes,
    primaryType: 'Voucher',
    message: { payer, provider: terms.provider, cumulativeAmount },
  };
}

/** A voucher of `cumulativeAmount` from `payer` to the terms' provider, signed. */
export async function signVoucher(payer: TypedDataSigner, terms: VoucherTerms, cumulativeAmount: bigint): Promise<SignedVoucher> {
  const signature = await signTyped(payer, voucherTypedData(terms, payer.address, cumulativeAmount));
  return { payer: payer.address, cumulativeAmount, signature };
}

/** The header's value: JSON with the amount in decimal, as the gateway reads it. */
export function voucherHeaderValue(voucher: SignedVoucher): string {
  return JSON.stringify({
    payer: voucher.payer,
    cumulativeAmount: voucher.cumulativeAmount.toString(),
    signature: voucher.signature,
  });
}
