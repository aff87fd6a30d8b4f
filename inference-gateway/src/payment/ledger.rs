//! One payer's account with this provider, and the rules that change it. Both stores apply
//! these same rules (the memory store under a lock, Redis by compare-and-set), so the rules
//! live here once.
//!
//! A voucher is a ceiling, not a debt: the payer owes the exact price of what ran
//! (`consumed`), and the provider claims that much on chain. A call is let in when its
//! worst-case price fits under a new voucher next to everything consumed and held; the
//! worst case is held while the call runs and settled at its exact price afterwards.
//! Unused headroom under the ceiling carries over: the next voucher need only clear
//! consumed + held + its own worst case (and be newer than the last one).

use alloy::primitives::U256;
use serde::{Deserialize, Serialize};

use super::voucher::{SignedVoucher, decimal};

/// How long a hold may wait for its settlement before it is charged in full. A hold outlives
/// its call only when the gateway died or lost its store mid-call, after the answer may have
/// been (partly) sent: charging the worst case the payer signed for never serves work unpaid.
pub const HOLD_LIFETIME_SECS: u64 = 3_600;

/// The worst-case price of one call in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hold {
    /// Number of the hold within its payer's ledger.
    pub id: u64,
    /// The worst-case price held, in TORA base units.
    #[serde(with = "decimal")]
    pub amount: U256,
    /// Unix seconds after which the hold counts as consumed in full.
    pub expires_at: u64,
}

/// A payer's account with this provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ledger {
    /// The newest voucher: the ceiling of what may be claimed, and what a redemption sends.
    pub latest: Option<SignedVoucher>,
    /// The exact price of every settled call (and of every expired hold), cumulative.
    #[serde(with = "decimal")]
    pub consumed: U256,
    /// Calls in flight.
    pub holds: Vec<Hold>,
    /// The id the next hold gets.
    pub next_hold: u64,
    /// What this provider is known to have been paid (the escrow's `redeemed`), as of the last
    /// redemption or call: what a claim now would add is the exposure to this payer.
    #[serde(default, with = "decimal")]
    pub redeemed: U256,
    /// Why this payer is not served: a voucher of its failed on chain (a contract wallet whose
    /// ERC-1271 answer changed, say). Lifted when a later redemption of it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

/// What to do to a ledger, with the caller's clock so the outcome does not depend on when
/// a store applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Takes `voucher` as the new latest and holds `price` for a call.
    Hold {
        /// The voucher that came with the call.
        voucher: SignedVoucher,
        /// The call's worst-case price, in TORA base units.
        price: U256,
        /// The escrow's `redeemed` for this payer, as just read from the chain.
        redeemed: U256,
        /// Unix seconds at the caller.
        now: u64,
    },
    /// Ends hold `hold`, charging `exact` (at most what was held).
    Settle {
        /// The id of the hold to end.
        hold: u64,
        /// The call's exact price, in TORA base units.
        exact: U256,
        /// Unix seconds at the caller.
        now: u64,
    },
    /// Stops serving the payer, for `reason`.
    Suspend {
        /// Why the payer is no longer served.
        reason: String,
    },
    /// A redemption paid this provider up to `cumulative` (and so the payer's vouchers work).
    Redeemed {
        /// The cumulative amount the redemption paid, in TORA base units.
        cumulative: U256,
    },
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call's price is held under this id.
    Held {
        /// The hold's id, to settle it with.
        hold: u64,
    },
    /// `charged` is `None` when the hold had already expired and was charged in full.
    Settled {
        /// What the call was charged, in TORA base units.
        charged: Option<U256>,
        /// The payer's consumed total after the settlement, in TORA base units.
        consumed: U256,
    },
    /// A suspension was set or lifted.
    Marked,
}

/// Why a hold is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The voucher must carry at least `required`.
    Underpaid {
        /// Least cumulative amount the voucher must carry, in TORA base units.
        required: U256,
    },
    /// The amounts do not fit 256 bits.
    Overflow,
    /// The payer is suspended, for this reason.
    Suspended(String),
}

impl Ledger {
    /// Everything held for calls in flight.
    pub fn held(&self) -> U256 {
        self.holds.iter().fold(U256::ZERO, |sum, h| sum.saturating_add(h.amount))
    }

    /// The least cumulative amount a voucher must carry to be let in for a call of `price`:
    /// room for what was consumed (at least what the escrow already paid out, in case the store
    /// lost its records), what is held and `price`, and above the latest voucher, so that each
    /// voucher lets in one call at most (a redeemed voucher is public, so one that could be
    /// shown again would spend its payer's headroom for anyone). `None` on overflow.
    pub fn required(&self, price: U256, redeemed: U256) -> Option<U256> {
        let room = self.consumed.max(redeemed).checked_add(self.held())?.checked_add(price)?;
        match &self.latest {
            Some(latest) => Some(room.max(latest.cumulative_amount.checked_add(U256::from(1))?)),
            None => Some(room),
        }
    }

    /// What a redemption may claim at `now`: the consumed amount with expired holds charged,
    /// never above the latest voucher.
    pub fn claimable(&self, now: u64) -> U256 {
        let expired = self
            .holds
            .iter()
            .filter(|h| h.expires_at <= now)
            .fold(U256::ZERO, |sum, h| sum.saturating_add(h.amount));
        let ceiling = self.latest.as_ref().map_or(U256::ZERO, |v| v.cumulative_amount);
        self.consumed.saturating_add(expired).min(ceiling)
    }

    /// What a redemption now would add to what this provider was paid: its exposure to the
    /// payer, were the payer never to pay again.
    pub fn unredeemed(&self, now: u64) -> U256 {
        self.claimable(now).saturating_sub(self.redeemed)
    }

    /// Applies `change`, or says why not (the ledger is then left as it was).
    pub fn apply(mut self, change: &Change) -> Result<(Self, Outcome), Refusal> {
        match change {
            Change::Hold { voucher, price, redeemed, now } => {
                if let Some(reason) = &self.suspended {
                    return Err(Refusal::Suspended(reason.clone()));
                }
                self.expire(*now);
                let required = self.required(*price, *redeemed).ok_or(Refusal::Overflow)?;
                if voucher.cumulative_amount < required {
                    return Err(Refusal::Underpaid { required });
                }
                let hold = self.next_hold;
                self.next_hold = hold.wrapping_add(1);
                self.consumed = self.consumed.max(*redeemed);
                self.redeemed = self.redeemed.max(*redeemed);
                self.latest = Some(voucher.clone());
                self.holds.push(Hold {
                    id: hold,
                    amount: *price,
                    expires_at: now.saturating_add(HOLD_LIFETIME_SECS),
                });
                Ok((self, Outcome::Held { hold }))
            }
            Change::Settle { hold, exact, now } => {
                // Before expiring others: a call that settles late still pays only its price.
                let charged = self.holds.iter().position(|h| h.id == *hold).map(|at| {
                    let held = self.holds.remove(at);
                    // Never above the hold, so consumed never passes the voucher.
                    let charged = (*exact).min(held.amount);
                    self.consumed = self.consumed.saturating_add(charged);
                    charged
                });
                self.expire(*now);
                let consumed = self.consumed;
                Ok((self, Outcome::Settled { charged, consumed }))
            }
            Change::Suspend { reason } => {
                self.suspended = Some(reason.clone());
                Ok((self, Outcome::Marked))
            }
            Change::Redeemed { cumulative } => {
                self.redeemed = self.redeemed.max(*cumulative);
                self.consumed = self.consumed.max(*cumulative);
                self.suspended = None;
                Ok((self, Outcome::Marked))
            }
        }
    }

    /// Charges in full the holds whose call never settled.
    fn expire(&mut self, now: u64) {
        let (expired, live): (Vec<Hold>, Vec<Hold>) =
            std::mem::take(&mut self.holds).into_iter().partition(|h| h.expires_at <= now);
        self.holds = live;
        for hold in expired {
            self.consumed = self.consumed.saturating_add(hold.amount);
        }
    }
}

/// Unix seconds now, for [`Change`]s.
pub use tora_core::clock::unix_now;

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, Bytes};

    use super::*;

    fn voucher(amount: u64) -> SignedVoucher {
        SignedVoucher {
            payer: Address::repeat_byte(1),
            cumulative_amount: U256::from(amount),
            signature: Bytes::new(),
        }
    }

    fn hold(ledger: Ledger, amount: u64, price: u64, now: u64) -> Result<(Ledger, Outcome), Refusal> {
        let change =
            Change::Hold { voucher: voucher(amount), price: U256::from(price), redeemed: U256::ZERO, now };
        ledger.apply(&change)
    }

    fn settle(ledger: Ledger, id: u64, exact: u64, now: u64) -> (Ledger, Outcome) {
        ledger.apply(&Change::Settle { hold: id, exact: U256::from(exact), now }).unwrap()
    }

    fn underpaid(required: u64) -> Refusal {
        Refusal::Underpaid { required: U256::from(required) }
    }

    #[test]
    fn a_call_pays_its_exact_price_and_leaves_the_headroom_to_the_next() {
        let (ledger, held) = hold(Ledger::default(), 100, 100, 10).unwrap();
        assert_eq!(held, Outcome::Held { hold: 0 });
        let (ledger, settled) = settle(ledger, 0, 37, 11);
        assert_eq!(settled, Outcome::Settled { charged: Some(U256::from(37)), consumed: U256::from(37) });
        // The next call of worst case 50 needs 37 + 50 = 87, but a voucher newer than 100.
        assert_eq!(ledger.required(U256::from(50), U256::ZERO), Some(U256::from(101)));
        assert_eq!(hold(ledger.clone(), 100, 50, 12).unwrap_err(), underpaid(101), "the same voucher again");
        let (ledger, _) = hold(ledger, 101, 50, 12).unwrap();
        let (ledger, _) = settle(ledger, 1, 50, 13);
        assert_eq!(ledger.consumed, U256::from(87));
        assert_eq!(ledger.claimable(13), U256::from(87));
        assert_eq!(ledger.required(U256::from(20), U256::ZERO), Some(U256::from(107)));
    }

    #[test]
    fn holds_in_flight_take_their_worst_case_from_the_headroom() {
        let (ledger, _) = hold(Ledger::default(), 100, 60, 0).unwrap();
        // 60 held: a second call of 60 needs 120.
        assert_eq!(hold(ledger.clone(), 119, 60, 0).unwrap_err(), underpaid(120));
        let (ledger, second) = hold(ledger, 120, 60, 0).unwrap();
        assert_eq!(second, Outcome::Held { hold: 1 });
        assert_eq!(ledger.held(), U256::from(120));
        let (ledger, _) = settle(ledger, 1, 5, 1);
        let (ledger, _) = settle(ledger, 0, 7, 1);
        assert_eq!((ledger.consumed, ledger.held()), (U256::from(12), U256::ZERO));
        // Settling twice charges nothing more.
        let (ledger, again) = settle(ledger, 0, 7, 1);
        assert_eq!(again, Outcome::Settled { charged: None, consumed: U256::from(12) });
        assert_eq!(ledger.claimable(1), U256::from(12));
    }

    #[test]
    fn a_charge_never_passes_the_hold_and_an_unsettled_hold_is_charged_in_full_when_it_expires() {
        let (ledger, _) = hold(Ledger::default(), 30, 30, 0).unwrap();
        let (ledger, settled) = settle(ledger, 0, 31, 1);
        assert_eq!(settled, Outcome::Settled { charged: Some(U256::from(30)), consumed: U256::from(30) });

        let (ledger, _) = hold(ledger, 50, 20, 100).unwrap();
        let expiry = 100 + HOLD_LIFETIME_SECS;
        assert_eq!(ledger.claimable(expiry - 1), U256::from(30));
        assert_eq!(ledger.claimable(expiry), U256::from(50));
        let (ledger, late) = settle(ledger, 1, 3, expiry);
        assert_eq!(late, Outcome::Settled { charged: Some(U256::from(3)), consumed: U256::from(33) });
        let (ledger, _) = hold(ledger, 60, 20, 200).unwrap();
        let (ledger, _) = hold(ledger, 61, 0, 200 + HOLD_LIFETIME_SECS).unwrap();
        assert_eq!((ledger.consumed, ledger.held()), (U256::from(53), U256::ZERO));
        let (_, missed) = settle(ledger, 2, 1, 200 + HOLD_LIFETIME_SECS);
        assert_eq!(missed, Outcome::Settled { charged: None, consumed: U256::from(53) });
    }

    #[test]
    fn a_suspended_payer_is_refused_and_its_calls_in_flight_still_settle() {
        let (ledger, _) = hold(Ledger::default(), 100, 40, 0).unwrap();
        let reason = "voucher failed on chain: InvalidSignature".to_owned();
        let (ledger, marked) = ledger.apply(&Change::Suspend { reason: reason.clone() }).unwrap();
        assert_eq!(marked, Outcome::Marked);
        assert_eq!(hold(ledger.clone(), 200, 10, 1).unwrap_err(), Refusal::Suspended(reason));
        // The call already let in is charged as usual.
        let (ledger, settled) = settle(ledger, 0, 25, 1);
        assert_eq!(settled, Outcome::Settled { charged: Some(U256::from(25)), consumed: U256::from(25) });
        assert!(hold(ledger, 200, 10, 2).is_err(), "only a redemption lifts it");
    }

    #[test]
    fn a_redemption_records_what_was_paid_and_lifts_a_suspension() {
        let (ledger, _) = hold(Ledger::default(), 100, 40, 0).unwrap();
        let (ledger, _) = settle(ledger, 0, 40, 1);
        assert_eq!(ledger.unredeemed(1), U256::from(40));
        let (ledger, _) = ledger.apply(&Change::Suspend { reason: "failed".into() }).unwrap();
        let (ledger, _) = ledger.apply(&Change::Redeemed { cumulative: U256::from(30) }).unwrap();
        assert_eq!(
            (ledger.redeemed, ledger.unredeemed(1), ledger.suspended.clone()),
            (U256::from(30), U256::from(10), None)
        );
        // Never backwards.
        let (ledger, _) = ledger.apply(&Change::Redeemed { cumulative: U256::from(5) }).unwrap();
        assert_eq!(ledger.redeemed, U256::from(30));
    }

    #[test]
    fn a_ledger_stored_before_suspensions_existed_still_reads() {
        let old = r#"{"latest":null,"consumed":"5","holds":[],"nextHold":1}"#;
        let ledger: Ledger = serde_json::from_str(old).unwrap();
        assert_eq!((ledger.consumed, ledger.suspended), (U256::from(5), None));
    }

    #[test]
    fn what_the_escrow_paid_out_counts_as_consumed() {
        let change =
            Change::Hold { voucher: voucher(25), price: U256::from(10), redeemed: U256::from(20), now: 0 };
        assert_eq!(Ledger::default().apply(&change).unwrap_err(), underpaid(30));
        let change =
            Change::Hold { voucher: voucher(30), price: U256::from(10), redeemed: U256::from(20), now: 0 };
        let (ledger, _) = Ledger::default().apply(&change).unwrap();
        assert_eq!(ledger.consumed, U256::from(20));
        let max = Change::Hold { voucher: voucher(1), price: U256::MAX, redeemed: U256::from(1), now: 0 };
        assert_eq!(Ledger::default().apply(&max).unwrap_err(), Refusal::Overflow);
    }
}
