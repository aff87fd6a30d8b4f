// What the inference gateway charges and whom its vouchers pay (`GET /v1/pricing`), and the
// amounts it writes: decimal strings of TORA base units.

import type { Address } from 'viem';
import type { VoucherTerms } from './voucher.js';

/** The gateway's `GET /v1/pricing`: the voucher terms and each model's price per token. */
export interface GatewayPricing extends VoucherTerms {
  /** TORA base units per token (prompt and generated alike), by model id. */
  pricePerToken: ReadonlyMap<string, bigint>;
}

/** A decimal amount as the gateway writes them (digits only), or undefined. */
export function parseAmount(text: unknown): bigint | undefined {
  return typeof text === 'string' && /^[0-9]+$/.test(text) ? BigInt(text) : undefined;
}

/** `/v1/pricing` of the gateway at `url` (its base URL, or any URL of its API). */
export function pricingUrl(url: string | URL): string {
  const parsed = new URL(url);
  const v1 = parsed.pathname.indexOf('/v1');
  const prefix = v1 >= 0 ? parsed.pathname.slice(0, v1) : parsed.pathname.replace(/\/+$/, '');
  return `${parsed.origin}${prefix}/v1/pricing`;
}

interface PricingBody {
  provider?: Address;
  escrow?: Address;
  chain_id?: number;
  data?: { model?: string; price_per_token?: string }[];
}

/** The gateway's prices and voucher terms. */
export async function gatewayPricing(url: string | URL, fetchFn: typeof fetch = fetch): Promise<GatewayPricing> {
  const at = pricingUrl(url);
  const response = await fetchFn(at);
  if (!response.ok) throw new Error(`GET ${at} answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as PricingBody;
  const { provider, escrow, chain_id: chainId } = body;
  if (!provider || !escrow || typeof chainId !== 'number') {
    throw new Error(`GET ${at} names no provider, escrow and chain_id: ${JSON.stringify(body)}`);
  }
  const pricePerToken = new Map<string, bigint>();
  for (const { model, price_per_token } of body.data ?? []) {
    const price = parseAmount(price_per_token);
    if (model && price !== undefined) pricePerToken.set(model, price);
  }
  return { provider, escrow, chainId, pricePerToken };
}
