// SPDX-License-Identifier: MIT
pragma solidity ^0.8.23;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title InferenceEscrow
/// @notice Payers lock TORA; inference providers are paid with off-chain vouchers carrying a
///         cumulative ceiling, so only the latest voucher per (payer, provider) ever needs redeeming.
///         A voucher caps what the provider may take; the provider claims what was actually used
///         (at most the ceiling), so a call authorized for its worst case is paid at its exact price.
///         Withdrawal needs a notice period so providers can redeem outstanding vouchers first.
contract InferenceEscrow is EIP712 {
    using SafeERC20 for IERC20;

    struct Voucher {
        address payer;
        address provider;
        uint256 cumulativeAmount; // most the provider may ever take from payer in total, not an increment
    }

    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(address payer,address provider,uint256 cumulativeAmount)");

    /// @notice Token held in escrow.
    IERC20 public immutable token;
    /// @notice Seconds between requestWithdrawal and withdraw.
    uint64 public immutable noticePeriod;

    /// @notice Escrowed balance of each payer.
    mapping(address payer => uint256) public balanceOf;
    /// @notice Cumulative amount already paid from payer to provider (the latest claim).
    mapping(address payer => mapping(address provider => uint256)) public redeemed;
    /// @notice When the payer may withdraw; 0 when no withdrawal is pending.
    mapping(address payer => uint256) public withdrawableAt;

    event Deposited(address indexed payer, address indexed from, uint256 amount);
    event Redeemed(address indexed payer, address indexed provider, uint256 paid, uint256 cumulativeClaim);
    event WithdrawalRequested(address indexed payer, uint256 withdrawableAt);
    event Withdrawn(address indexed payer, uint256 amount);

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

    /// @notice Deposits `amount` from the caller into the caller's own balance.
    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    /// @notice Deposits `amount` from the caller into `payer`'s balance.
    function depositFor(address payer, uint256 amount) public {
        balanceOf[payer] += amount;
        emit Deposited(payer, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Pays v.provider the part of `claim` not yet redeemed; `claim` is the cumulative
    ///         amount the provider takes in total, at most v.cumulativeAmount.
    /// @dev Only the provider may redeem. A voucher's ceiling usually exceeds what was used, and a
    ///      redeemed voucher is public (it is calldata), so if anyone could redeem, anyone could
    ///      raise the payer's payment from the provider's claim to the whole ceiling.
    /// @param signature Payer's signature over voucherDigest(v): ECDSA for EOAs, ERC-1271 for contracts.
    /// @return paid Amount transferred; 0 (with no state change) if `claim` is already redeemed.
    function redeem(Voucher calldata v, bytes calldata signature, uint256 claim) public returns (uint256 paid) {
        if (msg.sender != v.provider) revert NotProvider(msg.sender, v.provider);
        if (claim > v.cumulativeAmount) revert ClaimAboveVoucher(claim, v.cumulativeAmount);
        uint256 already = redeemed[v.payer][v.provider];
        // Idempotent so the provider may resubmit without risk; checked before the signature to save gas.
        if (claim <= already) return 0;
        if (!SignatureChecker.isValidSignatureNow(v.payer, voucherDigest(v), signature)) {
            revert InvalidVoucherSignature();
        }
        paid = claim - already;
        uint256 balance = balanceOf[v.payer];
        if (balance < paid) revert InsufficientDeposit(v.payer, balance, paid);

        redeemed[v.payer][v.provider] = claim;
        balanceOf[v.payer] = balance - paid;
        emit Redeemed(v.payer, v.provider, paid, claim);
        token.safeTransfer(v.provider, paid);
    }

    /// @notice Redeems several vouchers; signatures[i] and claims[i] belong to vouchers[i].
    /// @return totalPaid Sum of the individual payouts.
    function redeemBatch(Voucher[] calldata vouchers, bytes[] calldata signatures, uint256[] calldata claims)
        external
        returns (uint256 totalPaid)
    {
        if (vouchers.length != signatures.length || vouchers.length != claims.length) revert LengthMismatch();
        for (uint256 i = 0; i < vouchers.length; ++i) {
            totalPaid += redeem(vouchers[i], signatures[i], claims[i]);
        }
    }

    /// @notice Starts (or restarts) the notice period for withdrawing the caller's balance.
    function requestWithdrawal() external {
        uint256 at = block.timestamp + noticePeriod;
        withdrawableAt[msg.sender] = at;
        emit WithdrawalRequested(msg.sender, at);
    }

    /// @notice Sends the caller's whole remaining balance back once the notice period has passed.
    function withdraw() external {
        uint256 at = withdrawableAt[msg.sender];
        if (at == 0) revert WithdrawalNotRequested();
        if (block.timestamp < at) revert WithdrawalLocked(at);

        uint256 amount = balanceOf[msg.sender];
        balanceOf[msg.sender] = 0;
        withdrawableAt[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
