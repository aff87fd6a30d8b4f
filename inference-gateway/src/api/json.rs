//! A JSON body extractor whose refusals are [`ApiError`]s, so a malformed body gets the same
//! OpenAI-shaped answer as every other error instead of axum's plain text.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            // OpenAI answers 400 for a body of the wrong shape, where axum says 422.
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid(e.body_text(), None)),
            Err(rejection) => {
                let status = rejection.status();
                let status =
                    if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
                Err(ApiError::Rejected(status, rejection.body_text()))
            }
        }
    }
}
