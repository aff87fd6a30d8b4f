// The contract functions and events the tests read and call (contracts/src), human-readable.

import { parseAbi } from 'viem';

export const toraAbi = parseAbi([
  'function balanceOf(address account) view returns (uint256)',
  'function allowance(address owner, address spender) view returns (uint256)',
  'function nonces(address owner) view returns (uint256)',
  'function transfer(address to, uint256 value) returns (bool)',
  'function approve(address spender, uint256 value) returns (bool)',
]);

export const toraPaymasterAbi = parseAbi([
  'function MODE_TOKEN() view returns (uint8)',
  'function MODE_SPONSOR() view returns (uint8)',
  'function sponsorBalance(address sponsor) view returns (uint256)',
  'function depositForSponsor(address sponsor, uint256 amount)',
  'event GasChargedInToken(bytes32 indexed userOpHash, address indexed sender, address indexed payer, uint8 mode, uint256 charge, uint256 refund, uint256 exchangeRate)',
]);

export const escrowAbi = parseAbi([
  'struct Voucher { address payer; address provider; uint256 cumulativeAmount; }',
  'function deposit(address provider, uint256 amount)',
  'function balanceOf(address payer, address provider) view returns (uint256)',
  'function voucherDigest(Voucher v) view returns (bytes32)',
  'function isValidVoucherSignature(Voucher v, bytes signature) view returns (bool)',
]);
