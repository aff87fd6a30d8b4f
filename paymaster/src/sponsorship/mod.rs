//! Dapp sponsorship: which operations a policy may pay for, and the stores that hold its
//! budgets (in memory for the embedded default, Redis in production).

pub mod auth;
pub mod calls;
pub mod memory;
pub mod redis_store;
pub mod rules;

pub use memory::MemoryStore;
pub use redis_store::RedisStore;
