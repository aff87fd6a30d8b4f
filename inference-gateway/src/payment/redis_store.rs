//! Latest vouchers in Redis: they survive a gateway restart and are shared by replicas. The
//! check-and-replace runs as one Lua script, so a voucher sent twice at once counts once.
//!
//! Amounts are kept as 78-digit zero-padded decimals (2^256 has 78 digits): Lua has no 256-bit
//! integers, but equal-length digit strings compare as the numbers do. The script is given
//! `new - price` and accepts when the stored amount is at most that, which is the rule
//! `new >= latest + price` without adding in Lua. Every key of one provider carries the hash
//! tag `{provider}`, so they share a cluster slot and the script may touch them together.

use alloy::primitives::{Address, U256};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tora_core::money::ToraUnits;

use super::store::{Acceptance, StoreError, VoucherStore};
use super::voucher::{SignedVoucher, decimal};

/// KEYS[1]: the payer's voucher hash, KEYS[2]: the set of payers.
/// ARGV[1]: new amount - price, ARGV[2]: new amount (both padded), ARGV[3]: voucher JSON,
/// ARGV[4]: payer. Returns 'ok' and the previous amount, or 'stale' and the latest.
const ACCEPT: &str = r#"
local latest = redis.call('HGET', KEYS[1], 'amount')
if latest and latest > ARGV[1] then return {'stale', latest} end
redis.call('HSET', KEYS[1], 'amount', ARGV[2], 'voucher', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return {'ok', latest or '0'}
"#;

const DIGITS: usize = 78;

fn padded(amount: U256) -> String {
    format!("{amount:0>DIGITS$}")
}

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

#[derive(Clone)]
pub struct RedisVoucherStore {
    connection: ConnectionManager,
    accept: Script,
    prefix: String,
}

impl RedisVoucherStore {
    /// Connects (and reconnects on failure) to `url`, keeping `provider`'s vouchers apart from
    /// any other provider's on the same server.
    pub async fn connect(url: &str, provider: Address) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let connection = ConnectionManager::new(client).await.map_err(store_err)?;
        Ok(Self { connection, accept: Script::new(ACCEPT), prefix: format!("tora:gw:{{{provider:#x}}}") })
    }

    fn voucher_key(&self, payer: Address) -> String {
        format!("{}:voucher:{payer:#x}", self.prefix)
    }

    fn payers_key(&self) -> String {
        format!("{}:payers", self.prefix)
    }
}

fn parse_voucher(json: &str) -> Result<SignedVoucher, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError(format!("corrupt voucher {json:?}: {e}")))
}

fn parse_amount(text: &str) -> Result<U256, StoreError> {
    decimal::parse(text).ok_or_else(|| StoreError(format!("corrupt amount {text:?}")))
}

impl VoucherStore for RedisVoucherStore {
    async fn latest(&self, payer: Address) -> Result<Option<SignedVoucher>, StoreError> {
        let mut connection = self.connection.clone();
        let json: Option<String> =
            connection.hget(self.voucher_key(payer), "voucher").await.map_err(store_err)?;
        json.as_deref().map(parse_voucher).transpose()
    }

    async fn accept(&self, next: &SignedVoucher, price: ToraUnits) -> Result<Acceptance, StoreError> {
        let Some(floor) = next.cumulative_amount.checked_sub(price.0) else {
            // Below the price itself: stale whatever is stored.
            let latest = self.latest(next.payer).await?.map_or(U256::ZERO, |v| v.cumulative_amount);
            return Ok(Acceptance::Stale { latest });
        };
        let json = serde_json::to_string(next).map_err(|e| StoreError(e.to_string()))?;
        let mut connection = self.connection.clone();
        let (outcome, amount): (String, String) = self
            .accept
            .key(self.voucher_key(next.payer))
            .key(self.payers_key())
            .arg(padded(floor))
            .arg(padded(next.cumulative_amount))
            .arg(json)
            .arg(format!("{:#x}", next.payer))
            .invoke_async(&mut connection)
            .await
            .map_err(store_err)?;
        let amount = parse_amount(&amount)?;
        match outcome.as_str() {
            "ok" => Ok(Acceptance::Accepted { previous: amount }),
            "stale" => Ok(Acceptance::Stale { latest: amount }),
            other => Err(StoreError(format!("unexpected script answer {other:?}"))),
        }
    }

    async fn all_latest(&self) -> Result<Vec<SignedVoucher>, StoreError> {
        let mut connection = self.connection.clone();
        let payers: Vec<String> = connection.smembers(self.payers_key()).await.map_err(store_err)?;
        let mut vouchers = Vec::with_capacity(payers.len());
        for payer in payers {
            let payer: Address = payer.parse().map_err(|_| StoreError(format!("corrupt payer {payer:?}")))?;
            if let Some(voucher) = self.latest(payer).await? {
                vouchers.push(voucher);
            }
        }
        Ok(vouchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_amounts_compare_as_numbers() {
        assert_eq!(padded(U256::MAX).len(), DIGITS);
        assert!(padded(U256::from(9)) < padded(U256::from(10)));
        assert!(padded(U256::from(10)) < padded(U256::MAX));
        assert_eq!(parse_amount(&padded(U256::from(42))).unwrap(), U256::from(42));
    }
}
