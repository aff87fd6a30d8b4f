// Tensora for wallet and app developers, on viem: pay gas in TORA or have a dapp sponsor it
// (`toraPaymaster`, with `toToraSmartAccount` and `toraFeesPerGas`), and pay the inference
// gateway from the OpenAI SDK (`toraFetch`).

export { type ToToraSmartAccountParameters, type ToraSmartAccount, toToraSmartAccount, toraAccountAbi, toraAccountFactoryAbi } from './account.js';
export { toraFeesPerGas } from './fees.js';
export { CHARGED_HEADER, CUMULATIVE_HEADER, type ToraFetch, type ToraFetchOptions, type VoucherLedger, toraFetch } from './fetch.js';
export { type GatewayPricing, gatewayPricing, parseAmount, pricingUrl } from './gateway.js';
export { type ToraPaymaster, type ToraPaymasterOptions, toraPaymaster } from './paymaster.js';
export { type PermitExpectation, type PermitTypedData, type TokenQuote, checkPermitProposal, parseTokenQuote, permitTypes } from './quote.js';
export type { PermitContext, RpcTokenQuote, ToraBundlerRpcSchema, ToraPaymasterContext, ToraPaymasterRpcSchema } from './rpc.js';
export { type TypedDataSigner, signTyped } from './signer.js';
export { type SignedVoucher, VOUCHER_HEADER, type VoucherTerms, signVoucher, voucherHeaderValue, voucherTypedData, voucherTypes } from './voucher.js';
