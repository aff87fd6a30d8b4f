//! The authenticated admin API: create and update sponsorship policies, read their spend.
//! Every error is a JSON body with a 4xx status.

use crate::sponsorship::auth::{ApiKeys, Role};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tora_core::sponsorship::{MAX_BUDGET, SponsorshipPolicy, SponsorshipStore};

struct Admin<S> {
    store: Arc<S>,
    keys: Arc<ApiKeys>,
}

impl<S> Clone for Admin<S> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), keys: self.keys.clone() }
    }
}

/// A refusal: its status and the reason, sent as `{"error": reason}`.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    Refusal(status, message.into()).into_response()
}

/// The `/admin/policies` routes, for admin API keys only: create and update a policy, read it
/// and its spend.
pub fn router<S: SponsorshipStore + 'static>(store: Arc<S>, keys: Arc<ApiKeys>) -> Router {
    Router::new()
        .route("/admin/policies", axum::routing::post(put_policy::<S>))
        .route("/admin/policies/{id}", get(get_policy::<S>).put(put_policy_at::<S>))
        .route("/admin/policies/{id}/spend", get(get_spend::<S>))
        .with_state(Admin { store, keys })
}

fn authorize(keys: &ApiKeys, headers: &HeaderMap) -> Result<(), Refusal> {
    let token =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match keys.verify(token) {
        Ok(claims) if claims.role == Role::Admin => Ok(()),
        Ok(_) => Err(Refusal(StatusCode::FORBIDDEN, "an admin API key is required".into())),
        Err(e) => Err(Refusal(StatusCode::UNAUTHORIZED, e.to_string())),
    }
}

/// Rules a policy must meet before it is stored.
fn validate(policy: &SponsorshipPolicy) -> Result<(), String> {
    let id_ok = !policy.id.is_empty()
        && policy.id.len() <= 64
        && policy.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err("id must be 1-64 characters of A-Z, a-z, 0-9, - and _".into());
    }
    if policy.valid_after >= policy.valid_until {
        return Err("validAfter must be before validUntil".into());
    }
    let budgets = [policy.budget.global, policy.budget.per_user, policy.budget.per_op];
    if budgets.iter().flatten().any(|b| *b > MAX_BUDGET) {
        return Err(format!("budgets are limited to {} micro-TORA", MAX_BUDGET.0));
    }
    Ok(())
}

async fn store_policy<S: SponsorshipStore>(admin: &Admin<S>, policy: SponsorshipPolicy) -> Response {
    if let Err(why) = validate(&policy) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    match admin.store.put_policy(&policy).await {
        Ok(()) => (StatusCode::CREATED, Json(policy)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn parse_policy(body: &[u8]) -> Result<SponsorshipPolicy, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("invalid policy: {e}")))
}

async fn put_policy<S: SponsorshipStore>(
    State(admin): State<Admin<S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorize(&admin.keys, &headers) {
        return denied.into_response();
    }
    match parse_policy(&body) {
        Ok(policy) => store_policy(&admin, policy).await,
        Err(bad) => bad.into_response(),
    }
}

async fn put_policy_at<S: SponsorshipStore>(
    State(admin): State<Admin<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorize(&admin.keys, &headers) {
        return denied.into_response();
    }
    match parse_policy(&body) {
        Ok(policy) if policy.id == id => store_policy(&admin, policy).await,
        Ok(_) => error(StatusCode::BAD_REQUEST, "the body's id must match the path"),
        Err(bad) => bad.into_response(),
    }
}

async fn get_policy<S: SponsorshipStore>(
    State(admin): State<Admin<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorize(&admin.keys, &headers) {
        return denied.into_response();
    }
    match admin.store.policy(&id).await {
        Ok(Some(policy)) => Json(policy).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no policy {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
struct SpendQuery {
    /// Unix seconds inside the period to report; now by default.
    at: Option<u64>,
}

async fn get_spend<S: SponsorshipStore>(
    State(admin): State<Admin<S>>,
    Path(id): Path<String>,
    Query(query): Query<SpendQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorize(&admin.keys, &headers) {
        return denied.into_response();
    }
    let policy = match admin.store.policy(&id).await {
        Ok(Some(policy)) => policy,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no policy {id:?}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let at = query.at.unwrap_or_else(tora_core::clock::unix_now);
    let period = policy.reset.period(at);
    match admin.store.spend(&id, period).await {
        Ok(spend) => Json(json!({
            "policyId": id,
            "period": period,
            "spentMicroTora": spend.total.0,
            "spentTora": spend.total.to_tora().0.to_string(),
            "ops": spend.ops,
            "budget": policy.budget,
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
