// SPDX-License-Identifier: MIT
pragma solidity ^0.8.23;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title InferenceEscrow
/// @notice Payers lock TORA in a channel to one inference provider; the provider is paid from
///         that channel only, with off-chain vouchers carrying a cumulative ceiling, so only the
///         latest voucher per (payer, provider) ever needs redeeming. A voucher caps what the
///         provider may take; the provider claims what was actually used (at most the ceiling).
/// @dev    Why channels: with one balance per payer, a payer could sign a voucher to itself (or
///         to a second provider) and redeem it first, and the provider's later claim would find
///         the balance gone. A channel's balance leaves only by its provider's redemption or by
///         a withdrawal after the notice period, which the provider sees coming (it stops
///         serving and redeems). The bound is in docs/architecture/contracts.md.
contract InferenceEscrow is EIP712 {
    using SafeERC20 for IERC20;

    struct Voucher {
        address payer;
        address provider;
        uint256 cumulativeAmount; // most the provider may ever take from payer in total, not an increment
    }

    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(address payer,address provider,uint256 cumulativeAmount)");

    /// @notice Gas an ERC-1271 wallet's isValidSignature may use: a wallet that burns more
    ///         cannot make a batch of redemptions run out of gas, and the gateway's check of a
    ///         voucher (an eth_call of isValidVoucherSignature) runs under the same cap.
    uint256 public constant ERC1271_GAS_LIMIT = 100_000;

    /// @notice Why one voucher of a batch was not redeemed.
    enum Failure {
        None,
        NotProvider,
        ClaimAboveVoucher,
        InvalidSignature,
        InsufficientDeposit
    }

    /// @notice Token held in escrow.
    IERC20 public immutable token;
    /// @notice Seconds between requestWithdrawal and withdraw.
    uint64 public immutable noticePeriod;

    /// @notice Escrowed balance of each (payer, provider) channel.
    mapping(address payer => mapping(address provider => uint256)) public balanceOf;
    /// @notice Cumulative amount already paid from payer to provider (the latest claim).
    mapping(address payer => mapping(address provider => uint256)) public redeemed;
    /// @notice When the payer may withdraw the channel's balance; 0 when no withdrawal is pending.
    mapping(address payer => mapping(address provider => uint256)) public withdrawableAt;

    event Deposited(address indexed payer, address indexed provider, address from, uint256 amount);
    event Redeemed(address indexed payer, address indexed provider, uint256 paid, uint256 cumulativeClaim);
    event RedeemFailed(address indexed payer, address indexed provider, uint256 index, Failure failure);
    event WithdrawalRequested(address indexed payer, address indexed provider, uint256 withdrawableAt);
    event WithdrawalCancelled(address indexed payer, address indexed provider);
    event Withdrawn(address indexed payer, address indexed provider, uint256 amount);

    error InvalidVoucherSignature();
    error NotProvider(address caller, address provider);
    error ClaimAboveVoucher(uint256 claim, uint256 cumulativeAmount);
    error InsufficientDeposit(address payer, uint256 balance, uint256 required);
    error LengthMismatch();
    error WithdrawalNotRequested();
    error WithdrawalLocked(uint256 withdrawableAt);

    constructor(IERC20 token_, uint64 noticePeriod_) EIP712("ToraInferenceEscrow", "1") {
        token = token_;
        noticePeriod = noticePeriod_;
    }

    /// @notice EIP-712 digest the payer signs for `v`.
    function voucherDigest(Voucher calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, v.payer, v.provider, v.cumulativeAmount)));
    }

    /// @notice Whether `signature` is v.payer's over voucherDigest(v), by the rule redeem uses:
    ///         ECDSA of the payer itself (65 bytes, v 27 or 28, low s), else the payer's ERC-1271
    ///         isValidSignature within ERC1271_GAS_LIMIT. Providers check vouchers with this.
    function isValidVoucherSignature(Voucher calldata v, bytes calldata signature) public view returns (bool) {
        bytes32 digest = voucherDigest(v);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == v.payer) return true;
        return _isValidErc1271(v.payer, digest, signature);
    }

    /// @notice Deposits `amount` from the caller into its channel to `provider`.
    function deposit(address provider, uint256 amount) external {
        depositFor(msg.sender, provider, amount);
    }

    /// @notice Deposits `amount` from the caller into `payer`'s channel to `provider`.
    function depositFor(address payer, address provider, uint256 amount) public {
        balanceOf[payer][provider] += amount;
        emit Deposited(payer, provider, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Pays v.provider the part of `claim` not yet redeemed; `claim` is the cumulative
    ///         amount the provider takes in total, at most v.cumulativeAmount.
    /// @dev Only the provider may redeem. A voucher's ceiling usually exceeds what was used, and a
    ///      redeemed voucher is public (it is calldata), so if anyone could redeem, anyone could
    ///      raise the payer's payment from the provider's claim to the whole ceiling.
    /// @return paid Amount transferred; 0 (with no state change) if `claim` is already redeemed.
    function redeem(Voucher calldata v, bytes calldata signature, uint256 claim) external returns (uint256 paid) {
        Failure failure;
        (paid, failure) = _redeem(v, signature, claim);
        if (failure == Failure.NotProvider) revert NotProvider(msg.sender, v.provider);
        if (failure == Failure.ClaimAboveVoucher) revert ClaimAboveVoucher(claim, v.cumulativeAmount);
        if (failure == Failure.InvalidSignature) revert InvalidVoucherSignature();
        if (failure == Failure.InsufficientDeposit) {
            revert InsufficientDeposit(v.payer, balanceOf[v.payer][v.provider], claim - redeemed[v.payer][v.provider]);
        }
    }

    /// @notice Redeems several vouchers; signatures[i] and claims[i] belong to vouchers[i]. A
    ///         voucher that fails is skipped and reported (RedeemFailed), so one payer cannot
    ///         block the claims on every other.
    /// @return totalPaid Sum of the payouts of the vouchers redeemed.
    function redeemBatch(Voucher[] calldata vouchers, bytes[] calldata signatures, uint256[] calldata claims)
        external
        returns (uint256 totalPaid)
    {
        if (vouchers.length != signatures.length || vouchers.length != claims.length) revert LengthMismatch();
        for (uint256 i = 0; i < vouchers.length; ++i) {
            (uint256 paid, Failure failure) = _redeem(vouchers[i], signatures[i], claims[i]);
            if (failure != Failure.None) {
                emit RedeemFailed(vouchers[i].payer, vouchers[i].provider, i, failure);
            }
            totalPaid += paid;
        }
    }

    /// @notice Starts (or restarts) the notice period for withdrawing the caller's channel to
    ///         `provider`. The provider stops serving the payer while it runs.
    function requestWithdrawal(address provider) external {
        uint256 at = block.timestamp + noticePeriod;
        withdrawableAt[msg.sender][provider] = at;
        emit WithdrawalRequested(msg.sender, provider, at);
    }

    /// @notice Calls off a pending withdrawal: the channel is served again.
    function cancelWithdrawal(address provider) external {
        if (withdrawableAt[msg.sender][provider] == 0) revert WithdrawalNotRequested();
        withdrawableAt[msg.sender][provider] = 0;
        emit WithdrawalCancelled(msg.sender, provider);
    }

    /// @notice Sends the caller the channel's whole remaining balance once the notice has passed.
    function withdraw(address provider) external {
        uint256 at = withdrawableAt[msg.sender][provider];
        if (at == 0) revert WithdrawalNotRequested();
        if (block.timestamp < at) revert WithdrawalLocked(at);

        uint256 amount = balanceOf[msg.sender][provider];
        balanceOf[msg.sender][provider] = 0;
        withdrawableAt[msg.sender][provider] = 0;
        emit Withdrawn(msg.sender, provider, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @dev One redemption, reporting instead of reverting, so redeem and redeemBatch share it.
    function _redeem(Voucher calldata v, bytes calldata signature, uint256 claim)
        internal
        returns (uint256 paid, Failure failure)
    {
        if (msg.sender != v.provider) return (0, Failure.NotProvider);
        if (claim > v.cumulativeAmount) return (0, Failure.ClaimAboveVoucher);
        uint256 already = redeemed[v.payer][v.provider];
        // Idempotent so the provider may resubmit without risk; checked before the signature to save gas.
        if (claim <= already) return (0, Failure.None);
        if (!isValidVoucherSignature(v, signature)) return (0, Failure.InvalidSignature);
        paid = claim - already;
        uint256 balance = balanceOf[v.payer][v.provider];
        if (balance < paid) return (0, Failure.InsufficientDeposit);

        redeemed[v.payer][v.provider] = claim;
        balanceOf[v.payer][v.provider] = balance - paid;
        emit Redeemed(v.payer, v.provider, paid, claim);
        token.safeTransfer(v.provider, paid);
    }

    /// @dev OpenZeppelin's isValidERC1271SignatureNow with a gas cap, and only the first 32
    ///      bytes of the answer copied (a wallet cannot grow our memory with a huge reply).
    function _isValidErc1271(address signer, bytes32 digest, bytes calldata signature) internal view returns (bool) {
        bytes memory query = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 answer;
        uint256 size;
        uint256 gasLimit = ERC1271_GAS_LIMIT;
        /// @solidity memory-safe-assembly
        assembly {
            mstore(0x00, 0)
            success := staticcall(gasLimit, signer, add(query, 0x20), mload(query), 0x00, 0x20)
            size := returndatasize()
            answer := mload(0x00)
        }
        return success && size >= 32 && answer == bytes32(IERC1271.isValidSignature.selector);
    }
}
