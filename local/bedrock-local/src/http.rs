//! The REST-JSON wire layer: routes, bodies, headers. Thin on purpose; the rules live in
//! [`crate::service`], [`crate::validate`] and [`crate::store`].
//!
//! | operation | request | success |
//! |---|---|---|
//! | CreateEvaluationJob | `POST /evaluation-jobs` | 202 `{"jobArn"}` |
//! | GetEvaluationJob | `GET /evaluation-jobs/{jobIdentifier}` | 200 |
//! | ListEvaluationJobs | `GET /evaluation-jobs?statusEquals=..` | 200 `{"jobSummaries", "nextToken"?}` |
//! | StopEvaluationJob | `POST /evaluation-job/{jobIdentifier}/stop` | 200 `{}` |
//! | BatchDeleteEvaluationJob | `POST /evaluation-jobs/batch-delete` | 202 `{"errors", "evaluationJobs"}` |
//! | (health check) | `GET /ping` | 200 `ok` |
//!
//! `{jobIdentifier}` arrives percent-encoded (the SDKs encode `:` and `/` in labels:
//! `arn%3Aaws%3Abedrock%3A...%3Aevaluation-job%2Fabc`), so routing works on raw path segments
//! and decodes the label afterwards. Every answer carries `x-amzn-RequestId`; errors carry
//! `x-amzn-errortype` and `{"message"}`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tracing::info;

use crate::error::ApiError;
use crate::service::Service;

/// Request bodies larger than this are refused (CreateEvaluationJob bodies are a few KB).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The operations, by route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Create,
    List,
    Get(String),
    Stop(String),
    BatchDelete,
    Unknown,
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Route::Ping => "Ping",
            Route::Create => "CreateEvaluationJob",
            Route::List => "ListEvaluationJobs",
            Route::Get(_) => "GetEvaluationJob",
            Route::Stop(_) => "StopEvaluationJob",
            Route::BatchDelete => "BatchDeleteEvaluationJob",
            Route::Unknown => "Unknown",
        }
    }
}

/// Maps a method and raw (still percent-encoded) path to an operation.
pub fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["ping"]) => Route::Ping,
        ("POST", ["evaluation-jobs"]) => Route::Create,
        ("GET", ["evaluation-jobs"]) => Route::List,
        ("POST", ["evaluation-jobs", "batch-delete"]) => Route::BatchDelete,
        ("GET", ["evaluation-jobs", label]) if !label.is_empty() => {
            Route::Get(percent_decode(label))
        }
        ("POST", ["evaluation-job", label, "stop"]) if !label.is_empty() => {
            Route::Stop(percent_decode(label))
        }
        _ => Route::Unknown,
    }
}

/// Decodes `%XX` escapes (a path label; `+` stays `+`). Invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The axum application.
pub fn router(service: Arc<Service>) -> Router {
    Router::new().fallback(handle).with_state(service)
}

async fn handle(State(service): State<Arc<Service>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let route = route(&method, &path);
    let request_id = service.ids.uuid();
    if route == Route::Ping {
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("ok"))
            .unwrap_or_default();
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await;
    let result = match body {
        Err(e) => Err(ApiError::Validation(format!(
            "The request body could not be read ({e}); bodies are limited to {MAX_BODY_BYTES} bytes."
        ))),
        Ok(body) => dispatch(&service, &route, &query, &body).await,
    };
    let response = match &result {
        Ok((status, value)) => json_response(*status, value, &request_id),
        Err(error) => error_response(error, &request_id),
    };
    match &result {
        Ok((status, _)) => info!(
            operation = route.name(),
            %method, %path, status = status.as_u16(), request_id, "request"
        ),
        Err(error) => info!(
            operation = route.name(),
            %method, %path, status = error.status(), error = error.type_name(),
            message = error.message(), request_id, "request failed"
        ),
    }
    response
}

async fn dispatch(
    service: &Arc<Service>,
    route: &Route,
    query: &str,
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    if *route == Route::Unknown {
        return Err(ApiError::UnknownOperation(
            "No Bedrock evaluation operation matches this method and path (bedrock-local serves CreateEvaluationJob, GetEvaluationJob, ListEvaluationJobs, StopEvaluationJob and BatchDeleteEvaluationJob).".into(),
        ));
    }
    if let Some(fault) = service.faults.next() {
        return Err(fault);
    }
    match route {
        Route::Create => {
            let arn = service.create(&json_body(body)?).await?;
            Ok((StatusCode::ACCEPTED, serde_json::json!({ "jobArn": arn })))
        }
        Route::Get(identifier) => Ok((StatusCode::OK, service.get(identifier)?)),
        Route::List => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            Ok((StatusCode::OK, service.list(&pairs)?))
        }
        Route::Stop(identifier) => {
            service.stop(identifier)?;
            Ok((StatusCode::OK, serde_json::json!({})))
        }
        Route::BatchDelete => Ok((
            StatusCode::ACCEPTED,
            service.batch_delete(&json_body(body)?)?,
        )),
        Route::Ping | Route::Unknown => {
            Err(ApiError::UnknownOperation("No such operation.".into()))
        }
    }
}

/// The JSON body; an empty body is `{}` (so that missing members are reported as such).
fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Validation(format!("The request body is not valid JSON: {e}.")))
}

fn json_response(status: StatusCode, value: &Value, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn error_response(error: &ApiError, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(error.body()));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(error.type_name()),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_api_model() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdef012345";
        let encoded =
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aevaluation-job%2Fabcdef012345";
        let table = [
            (Method::GET, "/ping".to_string(), Route::Ping),
            (Method::POST, "/evaluation-jobs".to_string(), Route::Create),
            (Method::GET, "/evaluation-jobs".to_string(), Route::List),
            (
                Method::POST,
                "/evaluation-jobs/batch-delete".to_string(),
                Route::BatchDelete,
            ),
            (
                Method::GET,
                format!("/evaluation-jobs/{encoded}"),
                Route::Get(arn.into()),
            ),
            (
                Method::POST,
                format!("/evaluation-job/{encoded}/stop"),
                Route::Stop(arn.into()),
            ),
            (
                Method::POST,
                format!("/evaluation-jobs/{encoded}/stop"),
                Route::Unknown,
            ),
            (
                Method::DELETE,
                "/evaluation-jobs".to_string(),
                Route::Unknown,
            ),
            (Method::GET, "/evaluation-jobs/".to_string(), Route::Unknown),
        ];
        for (method, path, expected) in table {
            assert_eq!(route(&method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn labels_are_percent_decoded() {
        assert_eq!(percent_decode("a%3Ab%2Fc"), "a:b/c");
        assert_eq!(percent_decode("a+b%zz%4"), "a+b%zz%4");
    }
}
