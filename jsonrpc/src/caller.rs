//! Who is calling: what the HTTP request carried besides the JSON-RPC body.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// What the HTTP request says about its caller.
#[derive(Clone, Debug, Default)]
pub struct CallMeta {
    /// An API key from `Authorization: Bearer <key>` or the `apiKey` query parameter (wallet
    /// SDKs put paymaster keys in the URL).
    pub api_key: Option<String>,
}

impl CallMeta {
    pub(crate) fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let from_query =
            query.and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("apiKey=")).map(str::to_owned));
        Self { api_key: bearer.or(from_query) }
    }
}
