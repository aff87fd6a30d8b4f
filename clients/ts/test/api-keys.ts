// The API keys a paymaster on a devnet accepts when nobody configured secrets: HS256 JWTs
// signed with the devnet's public secret (cli/src/paymaster.rs `devnet_api_key`, the format of
// paymaster/src/sponsorship/auth.rs), the keys `tora up` prints.

import { createHmac } from 'node:crypto';

const DEVNET_KEY_ID = 'devnet';
const DEVNET_KEY_SECRET = 'tora devnet api keys';
/** 2100-01-01: devnet keys do not expire. */
const DEVNET_KEY_EXPIRY = 4_102_444_800;

/** The dapp the devnet dapp key belongs to (`tora up` prints its key). */
export const DEVNET_DAPP = 'demo-dapp';

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** A devnet API key for `sub` in `role`. */
export function devnetApiKey(sub: string, role: 'dapp' | 'admin'): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: DEVNET_KEY_ID }));
  const claims = base64url(JSON.stringify({ sub, exp: DEVNET_KEY_EXPIRY, role }));
  const signature = createHmac('sha256', DEVNET_KEY_SECRET).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}
