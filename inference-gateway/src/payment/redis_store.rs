//! Ledgers in Redis: they survive a gateway restart and are shared by replicas.
//!
//! Each payer's ledger is one JSON value, changed by compare-and-set: read it, apply
//! [`Ledger::apply`] here, and write the result with a Lua script that refuses when the value
//! changed meanwhile (then read and apply again). The rules stay in Rust, where 256-bit
//! amounts are native, and two calls of one payer still never spend the same headroom. Every
//! key of one provider carries the hash tag `{provider}`, so they share a cluster slot and the
//! script may touch them together.

use alloy::primitives::{Address, U256};
use redis::{AsyncCommands, Script};

use super::ledger::{Change, Ledger, Outcome, Refusal};
use super::store::{StoreError, VoucherStore};
use super::voucher::SignedVoucher;

/// KEYS[1]: the payer's ledger, KEYS[2]: the set of payers.
/// ARGV[1]: the ledger as read ('' when there was none), ARGV[2]: the new ledger, ARGV[3]: payer.
/// Returns 1 when written, 0 when the ledger changed since it was read.
const COMPARE_AND_SET: &str = r#"
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"#;

/// Tries before a change gives up: each failed try means another change of the same payer
/// landed, so running out takes that many calls of one payer at the same instant.
const MAX_TRIES: usize = 64;

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

/// Ledgers in Redis, one key per payer under this provider's prefix, changed by compare-and-set.
#[derive(Clone)]
pub struct RedisVoucherStore {
    connection: tora_redis::Connection,
    compare_and_set: Script,
    prefix: String,
}

impl RedisVoucherStore {
    /// Connects (and reconnects on failure) to `url`, keeping `provider`'s ledgers apart from
    /// any other provider's on the same server; `url` may name a Redis Cluster as
    /// `redis+cluster://host:port` or several seed URLs.
    pub async fn connect(url: &str, provider: Address) -> Result<Self, StoreError> {
        let connection =
            tora_redis::connect(&tora_redis::RedisTarget::parse(url)).await.map_err(store_err)?;
        Ok(Self {
            connection,
            compare_and_set: Script::new(COMPARE_AND_SET),
            prefix: format!("tora:gw:{{{provider:#x}}}"),
        })
    }

    fn ledger_key(&self, payer: Address) -> String {
        format!("{}:ledger:{payer:#x}", self.prefix)
    }

    fn payers_key(&self) -> String {
        format!("{}:payers", self.prefix)
    }

    /// Where gateways before exact metering kept the payer's latest voucher (a hash with its
    /// JSON under `voucher`): every voucher there was charged in full.
    fn voucher_key(&self, payer: Address) -> String {
        format!("{}:voucher:{payer:#x}", self.prefix)
    }

    /// The ledger's JSON as stored ('' when none) and parsed; a payer known only to an older
    /// gateway starts from its latest voucher, consumed in full, so an upgrade loses nothing.
    async fn read(&self, payer: Address) -> Result<(String, Ledger), StoreError> {
        let mut connection = self.connection.clone();
        let json: Option<String> = connection.get(self.ledger_key(payer)).await.map_err(store_err)?;
        if let Some(json) = json {
            let ledger = parse_ledger(&json)?;
            return Ok((json, ledger));
        }
        let old: Option<String> =
            connection.hget(self.voucher_key(payer), "voucher").await.map_err(store_err)?;
        let latest = old
            .as_deref()
            .map(|json| {
                serde_json::from_str::<SignedVoucher>(json)
                    .map_err(|e| StoreError(format!("corrupt voucher {json:?}: {e}")))
            })
            .transpose()?;
        let consumed = latest.as_ref().map_or(U256::ZERO, |v| v.cumulative_amount);
        Ok((String::new(), Ledger { latest, consumed, ..Ledger::default() }))
    }
}

fn parse_ledger(json: &str) -> Result<Ledger, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError(format!("corrupt ledger {json:?}: {e}")))
}

impl VoucherStore for RedisVoucherStore {
    async fn ledger(&self, payer: Address) -> Result<Ledger, StoreError> {
        Ok(self.read(payer).await?.1)
    }

    async fn change(&self, payer: Address, change: &Change) -> Result<Result<Outcome, Refusal>, StoreError> {
        for _ in 0..MAX_TRIES {
            let (read, ledger) = self.read(payer).await?;
            let (ledger, outcome) = match ledger.apply(change) {
                Ok(applied) => applied,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let json = serde_json::to_string(&ledger).map_err(|e| StoreError(e.to_string()))?;
            let mut connection = self.connection.clone();
            let written: i64 = self
                .compare_and_set
                .key(self.ledger_key(payer))
                .key(self.payers_key())
                .arg(read)
                .arg(json)
                .arg(format!("{payer:#x}"))
                .invoke_async(&mut connection)
                .await
                .map_err(store_err)?;
            if written == 1 {
                return Ok(Ok(outcome));
            }
        }
        Err(StoreError(format!("the ledger of {payer} changed {MAX_TRIES} times while being changed")))
    }

    async fn ledgers(&self) -> Result<Vec<Ledger>, StoreError> {
        let mut connection = self.connection.clone();
        let payers: Vec<String> = connection.smembers(self.payers_key()).await.map_err(store_err)?;
        let mut ledgers = Vec::with_capacity(payers.len());
        for payer in payers {
            let payer: Address = payer.parse().map_err(|_| StoreError(format!("corrupt payer {payer:?}")))?;
            ledgers.push(self.ledger(payer).await?);
        }
        Ok(ledgers)
    }
}
