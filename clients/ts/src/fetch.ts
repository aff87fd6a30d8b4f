// A `fetch` that pays Tensora's inference gateway, for the OpenAI SDKs' `fetch` option: a call
// answered 402 is sent again with the next cumulative voucher, signed by the payer, and the
// ledger follows what the gateway says it charged so the next voucher is for the right total.

import type { Address } from 'viem';
import { gatewayPricing, parseAmount } from './gateway.js';
import type { TypedDataSigner } from './signer.js';
import { type SignedVoucher, VOUCHER_HEADER, type VoucherTerms, signVoucher, voucherHeaderValue } from './voucher.js';

/** The gateway's answer headers: this call's exact price, and everything charged so far. */
export const CHARGED_HEADER = 'x-tora-charged';
export const CUMULATIVE_HEADER = 'x-tora-cumulative-amount';

/**
 * The 402 code of a call that a new voucher pays for (no voucher, or one that leaves no room);
 * other refusals (an insufficient deposit, a bad signature) are the caller's to handle.
 */
const VOUCHER_REQUIRED = 'voucher_required';

/** Vouchers signed per call at most: one for the price, one more if the gateway's ledger was ahead of ours. */
const MAX_VOUCHERS_PER_CALL = 2;

/** What {@link toraFetch} needs. */
export interface ToraFetchOptions {
  /** Who pays: an EOA, or a smart account whose ERC-1271 accepts its signatures (a deposit in the escrow is theirs). */
  payer: TypedDataSigner;
  /** The voucher terms, when the caller knows them; by default the gateway's `GET /v1/pricing`. */
  terms?: VoucherTerms;
  /** The most one call may cost (TORA base units): a call that may cost more is not paid, its 402 is returned. */
  maxAmountDue?: bigint;
  /** The fetch that carries the requests (default: the global one). */
  fetch?: typeof fetch;
}

/** The payer's account with one provider, as this client keeps it. */
export interface VoucherLedger {
  /** Everything the gateway says it charged the payer (its `x-tora-cumulative-amount`), TORA base units. */
  charged: bigint;
  /** The newest voucher the gateway accepted: the ceiling of what the provider may claim. */
  latest: SignedVoucher | undefined;
}

/** A fetch that pays the gateway, and the ledgers it keeps. */
export interface ToraFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The payer's ledger with `provider` (all zero before the first paid call). */
  ledger(provider: Address): Readonly<VoucherLedger>;
}

/** A 402's body, read: what the call costs and the least voucher the gateway will take. */
interface Refusal {
  text: string;
  code: string | undefined;
  /** This call's worst-case price. */
  due: bigint | undefined;
  /** The least cumulative amount a voucher must carry, when the gateway knows the payer. */
  expected: bigint | undefined;
}

async function readRefusal(response: Response): Promise<Refusal> {
  const text = await response.text();
  let error: { code?: unknown; amount_due?: unknown; cumulative_amount_expected?: unknown } = {};
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
  } catch {
    // Not JSON: nothing to pay for.
  }
  return {
    text,
    code: typeof error.code === 'string' ? error.code : undefined,
    due: parseAmount(error.amount_due),
    expected: parseAmount(error.cumulative_amount_expected),
  };
}

/** `response` again, its body already read as `text`. */
function withBody(response: Response, text: string): Response {
  return new Response(text, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** `request` with a voucher header. */
function paying(request: Request, voucher: SignedVoucher): Request {
  const headers = new Headers(request.headers);
  headers.set(VOUCHER_HEADER, voucherHeaderValue(voucher));
  return new Request(request.clone(), { headers });
}

function max(...values: bigint[]): bigint {
  return values.reduce((a, b) => (a > b ? a : b));
}

/**
 * A fetch that pays the gateway with vouchers from `payer`.
 *
 * @example
 * new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: 'unused', fetch: toraFetch({ payer: account }) })
 */
export function toraFetch(options: ToraFetchOptions): ToraFetch {
  const send = options.fetch ?? fetch;
  const terms = new Map<string, Promise<VoucherTerms>>();
  const ledgers = new Map<string, VoucherLedger>();

  function termsFor(url: string): Promise<VoucherTerms> {
    if (options.terms) return Promise.resolve(options.terms);
    const origin = new URL(url).origin;
    let known = terms.get(origin);
    if (!known) {
      known = gatewayPricing(url, send);
      known.catch(() => terms.delete(origin));
      terms.set(origin, known);
    }
    return known;
  }

  function ledgerOf(provider: Address): VoucherLedger {
    const key = provider.toLowerCase();
    let ledger = ledgers.get(key);
    if (!ledger) {
      ledger = { charged: 0n, latest: undefined };
      ledgers.set(key, ledger);
    }
    return ledger;
  }

  /** The next voucher's amount: room for this call next to what was charged, above the last voucher. */
  function nextCumulative(ledger: VoucherLedger, refusal: Refusal & { due: bigint }): bigint {
    const aboveLatest = ledger.latest ? ledger.latest.cumulativeAmount + 1n : 0n;
    return max(refusal.expected ?? 0n, ledger.charged + refusal.due, aboveLatest);
  }

  const paidFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    let response = await send(request.clone());
    let voucher: SignedVoucher | undefined;
    for (let signed = 0; response.status === 402 && signed < MAX_VOUCHERS_PER_CALL; signed++) {
      const refusal = await readRefusal(response);
      const { due } = refusal;
      const payable = refusal.code === VOUCHER_REQUIRED && due !== undefined;
      if (!payable || (options.maxAmountDue !== undefined && due > options.maxAmountDue)) {
        return withBody(response, refusal.text);
      }
      const voucherTerms = await termsFor(request.url);
      const ledger = ledgerOf(voucherTerms.provider);
      voucher = await signVoucher(options.payer, voucherTerms, nextCumulative(ledger, { ...refusal, due }));
      response = await send(paying(request, voucher));
    }
    if (voucher && response.ok) {
      const ledger = ledgerOf((await termsFor(request.url)).provider);
      ledger.latest = voucher;
      // A stream's charge comes in its last chunk, not here: the next 402 then says what is owed.
      const charged = parseAmount(response.headers.get(CUMULATIVE_HEADER));
      if (charged !== undefined) ledger.charged = charged;
    }
    return response;
  };

  return Object.assign(paidFetch, {
    ledger: (provider: Address): Readonly<VoucherLedger> => ({ ...ledgerOf(provider) }),
  });
}
