//! Paid text generation, the domain between the HTTP routes and the model and cashier: hold
//! the worst-case price, generate until the answer ends or nobody listens, charge the exact
//! price of what ran. Stop sequences decide where an answer ends, so they live here too.

mod paid;
mod stop;

pub(crate) use paid::{GenerationError, Job, PaidGeneration};
