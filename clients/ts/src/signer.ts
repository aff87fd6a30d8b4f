// Who signs permits and vouchers: an EOA (its ECDSA signature of the EIP-712 digest) or a smart
// account (a signature its ERC-1271 accepts for that digest; ToraAccount's is the owner's ECDSA
// signature of the raw digest).

import { type Address, type Hex, type TypedDataDefinition, parseErc6492Signature } from 'viem';

/** A viem account that signs EIP-712 typed data: a local EOA (`privateKeyToAccount`) or a smart account. */
export interface TypedDataSigner {
  readonly address: Address;
  signTypedData(typedData: TypedDataDefinition): Promise<Hex>;
}

/**
 * The signer's signature of `typedData`, as the contract that checks it takes it. viem wraps a
 * not-yet-deployed smart account's signature in ERC-6492; neither TORA's permit nor the escrow
 * reads that wrapper, and the account exists by the time they check (a first operation deploys
 * it before the paymaster applies the permit), so the inner signature is what they get.
 */
export async function signTyped(signer: TypedDataSigner, typedData: TypedDataDefinition): Promise<Hex> {
  const signed = await signer.signTypedData(typedData);
  return parseErc6492Signature(signed).signature;
}

/** Equality of two addresses, whatever their case. */
export function sameAddress(a: Address, b: Address): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
