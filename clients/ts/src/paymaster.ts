// A viem paymaster (what `createBundlerClient({ paymaster })` and `sendUserOperation` take) for
// Tensora's ERC-7677 paymaster: the sender pays gas in TORA, signing an EIP-2612 permit when its
// allowance to the paymaster falls short, or a dapp sponsors it under a policy.

import { type Address, type Hex, http, maxUint256, numberToHex, rpcSchema } from 'viem';
import {
  type GetPaymasterDataParameters,
  type GetPaymasterDataReturnType,
  type GetPaymasterStubDataParameters,
  type GetPaymasterStubDataReturnType,
  createPaymasterClient,
  formatUserOperationRequest,
} from 'viem/account-abstraction';
import { type TokenQuote, checkPermitProposal, parseTokenQuote } from './quote.js';
import type { PermitContext, ToraPaymasterContext, ToraPaymasterRpcSchema } from './rpc.js';
import { type TypedDataSigner, sameAddress, signTyped } from './signer.js';

/** What {@link toraPaymaster} needs. */
export interface ToraPaymasterOptions {
  /** The paymaster's JSON-RPC endpoint (`tora up` prints it; 4338 by default). */
  url: string;
  /**
   * The sender's smart account, which signs the TORA permit (through its ERC-1271) when its
   * allowance to the paymaster does not cover an operation. Not needed for sponsored operations.
   */
  account?: TypedDataSigner;
  /** A dapp's API key, sent as `Authorization: Bearer <key>`: sponsorship needs it. */
  apiKey?: string;
  /** The token to pay in when the context names none (default: the one the paymaster quotes in, TORA). */
  token?: Address;
  /**
   * Sees every token quote before the operation is paid with it, e.g. to show the user its
   * maximum; throwing refuses the operation.
   */
  onQuote?: (quote: TokenQuote) => void | Promise<void>;
}

/** viem's paymaster actions, and the quote behind a TORA payment. */
export interface ToraPaymaster {
  /** ERC-7677 `pm_getPaymasterStubData`: paymaster fields of the final size, for gas estimation. */
  getPaymasterStubData(parameters: GetPaymasterStubDataParameters): Promise<GetPaymasterStubDataReturnType>;
  /** ERC-7677 `pm_getPaymasterData`: the signed paymaster fields (a permit signed first if needed). */
  getPaymasterData(parameters: GetPaymasterDataParameters): Promise<GetPaymasterDataReturnType>;
  /** `tora_getTokenQuote`: what the operation may cost in TORA, and the permit that pays it. */
  getTokenQuote(parameters: GetPaymasterDataParameters): Promise<TokenQuote>;
}

/** Who pays, as the paymaster's context says it. */
type Payer = { token: Address } | { sponsorshipPolicyId: string };

/**
 * Stands for the permit during estimation: the paymaster sizes the stub (and its verification
 * gas) by whether a permit comes, and whether one is needed is known only once the gas is.
 */
const PLACEHOLDER_PERMIT: PermitContext = {
  value: '0x0',
  deadline: numberToHex(maxUint256),
  signature: `0x${'ff'.repeat(65)}`,
};

/** The paymaster fields that the signed data binds, from a stub. */
function gasLimits(stub: GetPaymasterStubDataReturnType) {
  return {
    paymasterVerificationGasLimit: stub.paymasterVerificationGasLimit,
    paymasterPostOpGasLimit: stub.paymasterPostOpGasLimit,
  };
}

/**
 * Tensora's paymaster as viem's `paymaster`. The context (viem's `paymasterContext`) says who pays:
 * `{ sponsorshipPolicyId }` for a dapp (with `apiKey`), `{ token }` or nothing for the sender in TORA.
 *
 * @example
 * createBundlerClient({ client, transport: http(bundlerUrl), paymaster: toraPaymaster({ url, account }) })
 */
export function toraPaymaster(options: ToraPaymasterOptions): ToraPaymaster {
  const headers: Record<string, string> = options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {};
  const client = createPaymasterClient({
    transport: http(options.url, { fetchOptions: { headers } }),
    rpcSchema: rpcSchema<ToraPaymasterRpcSchema>(),
  });
  let quotedToken: Promise<Address> | undefined = options.token ? Promise.resolve(options.token) : undefined;

  async function getTokenQuote(parameters: GetPaymasterDataParameters): Promise<TokenQuote> {
    const { chainId, entryPointAddress, context: _, ...userOperation } = parameters;
    const rpc = await client.request({
      method: 'tora_getTokenQuote',
      params: [formatUserOperationRequest(userOperation), entryPointAddress, numberToHex(chainId)],
    });
    return parseTokenQuote(rpc);
  }

  async function payer(parameters: GetPaymasterDataParameters): Promise<Payer> {
    const context = (parameters.context ?? {}) as Partial<ToraPaymasterContext>;
    if (context.sponsorshipPolicyId !== undefined) return { sponsorshipPolicyId: context.sponsorshipPolicyId };
    if (context.token !== undefined) return { token: context.token };
    // Asked once and shared by concurrent calls; a failed ask is forgotten so the next call asks again.
    quotedToken ??= getTokenQuote(parameters).then(
      (quote) => quote.token,
      (error: unknown) => {
        quotedToken = undefined;
        throw error;
      },
    );
    return { token: await quotedToken };
  }

  /** The permit the sender signs for `quote`, once it is checked to be the quote's maximum to the paymaster. */
  async function signedPermit(quote: TokenQuote, parameters: GetPaymasterDataParameters, token: Address): Promise<PermitContext> {
    const { account } = options;
    if (!account) {
      throw new Error(
        `${parameters.sender} allows the paymaster ${quote.currentAllowance} TORA base units, short of ${quote.maxTokenCost}: pass toraPaymaster({ account }) to sign a permit`,
      );
    }
    if (!sameAddress(account.address, parameters.sender)) {
      throw new Error(`the permit would be signed by ${account.address}, not the operation's sender ${parameters.sender}`);
    }
    checkPermitProposal(quote, { sender: parameters.sender, chainId: parameters.chainId, token });
    const signature: Hex = await signTyped(account, quote.permit.typedData);
    if (signature.length !== 2 + 65 * 2) {
      throw new Error(`the paymaster takes 65-byte permit signatures; ${account.address} signed ${(signature.length - 2) / 2} bytes`);
    }
    return { value: numberToHex(quote.maxTokenCost), deadline: numberToHex(maxUint256), signature };
  }

  return {
    getTokenQuote,

    async getPaymasterStubData(parameters) {
      const who = await payer(parameters);
      const context: ToraPaymasterContext = 'token' in who ? { token: who.token, permit: PLACEHOLDER_PERMIT } : who;
      return client.getPaymasterStubData({ ...parameters, context });
    },

    async getPaymasterData(parameters) {
      const who = await payer(parameters);
      if (!('token' in who)) return client.getPaymasterData({ ...parameters, context: who });
      const quote = await getTokenQuote(parameters);
      await options.onQuote?.(quote);
      if (quote.currentAllowance < quote.maxTokenCost) {
        const permit = await signedPermit(quote, parameters, who.token);
        return client.getPaymasterData({ ...parameters, context: { token: who.token, permit } });
      }
      // The allowance pays: the paymaster signs the gas limits of the path without a permit
      // (less verification gas than the stub's), which the operation must then carry.
      const context: ToraPaymasterContext = { token: who.token };
      const limits = gasLimits(await client.getPaymasterStubData({ ...parameters, context }));
      const data = await client.getPaymasterData({ ...parameters, ...limits, context } as GetPaymasterDataParameters);
      return { ...data, ...limits } as GetPaymasterDataReturnType;
    },
  };
}
