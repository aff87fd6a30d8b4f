// ToraAccount as a viem smart account: eth-infinitism's SimpleAccount for EntryPoint v0.7 (the
// same calls and the same user-operation signature) plus ERC-1271 over raw digests, so the
// account's owner signs TORA permits and inference vouchers for it. viem has no SimpleAccount
// of its own, hence this one.

import {
  type Address,
  type Hex,
  type LocalAccount,
  decodeFunctionData,
  encodeFunctionData,
  parseAbi,
} from 'viem';
import {
  type SmartAccount,
  type SmartAccountImplementation,
  entryPoint07Abi,
  entryPoint07Address,
  getUserOperationHash,
  toSmartAccount,
} from 'viem/account-abstraction';
import { readContract } from 'viem/actions';

/** The calls ToraAccount (SimpleAccount v0.7) executes. */
export const toraAccountAbi = parseAbi([
  'function execute(address dest, uint256 value, bytes func)',
  'function executeBatch(address[] dest, uint256[] value, bytes[] func)',
]);

/** ToraAccountFactory: CREATE2 proxies of one ToraAccount implementation, by owner and salt. */
export const toraAccountFactoryAbi = parseAbi([
  'function createAccount(address owner, uint256 salt) returns (address)',
  'function getAddress(address owner, uint256 salt) view returns (address)',
]);

/**
 * A signature of the right shape for gas estimation: 65 bytes that ECDSA recovers (to nobody's
 * key) without reverting, so the account's validation runs its usual path and fails softly.
 */
const STUB_SIGNATURE: Hex =
  '0xfffffffffffffffffffffffffffffff0000000000000000000000000000000007aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1c';

/** Nonce key 0 for every operation, as SimpleAccount wallets use (viem's default is a new key per call). */
const SEQUENTIAL_NONCES = {
  consume: async () => 0,
  increment: () => {},
  get: async () => 0,
  reset: () => {},
};

/** ToraAccount's implementation of viem's smart account, on EntryPoint v0.7. */
type ToraAccountImplementation = SmartAccountImplementation<typeof entryPoint07Abi, '0.7'>;

/** What {@link toToraSmartAccount} needs. */
export interface ToToraSmartAccountParameters {
  /** A client of the chain the account lives on (reads the factory and the EntryPoint). */
  client: ToraAccountImplementation['client'];
  /** The owner key: signs operations (EIP-191 over the userOpHash) and, for ERC-1271, digests. */
  owner: LocalAccount;
  /** ToraAccountFactory's address (`contracts.toraAccountFactory` in the deployment file). */
  factoryAddress: Address;
  /** CREATE2 salt: one owner has one account per salt. Default 0. */
  salt?: bigint;
}

/** A ToraAccount as viem's bundler client drives it. */
export type ToraSmartAccount = SmartAccount<ToraAccountImplementation>;

/**
 * A ToraAccount (or any SimpleAccount v0.7 whose ERC-1271 checks the owner's signature of the
 * raw hash) for viem's `sendUserOperation`. Its `signTypedData` is the owner's signature of the
 * EIP-712 digest, which is what ToraAccount's `isValidSignature` accepts; while the account is
 * not deployed viem wraps it in ERC-6492, which this package's paymaster and fetch unwrap.
 */
export async function toToraSmartAccount(parameters: ToToraSmartAccountParameters): Promise<ToraSmartAccount> {
  const { client, owner, factoryAddress, salt = 0n } = parameters;
  const entryPoint = { abi: entryPoint07Abi, address: entryPoint07Address, version: '0.7' } as const;
  const implementation: ToraAccountImplementation = {
    client,
    entryPoint,
    nonceKeyManager: SEQUENTIAL_NONCES,

    async decodeCalls(data) {
      const call = decodeFunctionData({ abi: toraAccountAbi, data });
      if (call.functionName === 'execute') {
        const [to, value, data] = call.args;
        return [{ to, value, data }];
      }
      const [targets, values, datas] = call.args;
      return targets.map((to, i) => ({ to, value: values[i] ?? 0n, data: datas[i] ?? '0x' }));
    },

    async encodeCalls(calls) {
      const [only] = calls;
      if (calls.length === 1 && only) {
        return encodeFunctionData({
          abi: toraAccountAbi,
          functionName: 'execute',
          args: [only.to, only.value ?? 0n, only.data ?? '0x'],
        });
      }
      return encodeFunctionData({
        abi: toraAccountAbi,
        functionName: 'executeBatch',
        args: [calls.map((c) => c.to), calls.map((c) => c.value ?? 0n), calls.map((c) => c.data ?? '0x')],
      });
    },

    async getAddress() {
      return readContract(client, {
        address: factoryAddress,
        abi: toraAccountFactoryAbi,
        functionName: 'getAddress',
        args: [owner.address, salt],
      });
    },

    async getFactoryArgs() {
      const factoryData = encodeFunctionData({
        abi: toraAccountFactoryAbi,
        functionName: 'createAccount',
        args: [owner.address, salt],
      });
      return { factory: factoryAddress, factoryData };
    },

    async getStubSignature() {
      return STUB_SIGNATURE;
    },

    // ERC-1271 verifiers pass the EIP-191 / EIP-712 hash, which the owner's signature covers.
    async signMessage({ message }) {
      return owner.signMessage({ message });
    },

    async signTypedData(typedData) {
      return owner.signTypedData(typedData);
    },

    // SimpleAccount v0.7: the owner's EIP-191 signature of the userOpHash.
    async signUserOperation({ chainId, ...userOperation }) {
      const id = chainId ?? client.chain?.id;
      if (id === undefined) throw new Error('signUserOperation: no chain id (give the client a chain)');
      const hash = getUserOperationHash({
        chainId: id,
        entryPointAddress: entryPoint.address,
        entryPointVersion: entryPoint.version,
        userOperation: { ...userOperation, sender: userOperation.sender ?? (await this.getAddress()) },
      });
      return owner.signMessage({ message: { raw: hash } });
    },
  };
  return toSmartAccount(implementation);
}
