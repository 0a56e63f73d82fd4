//! The service errors, shaped as Amazon Bedrock's REST-JSON protocol returns them.
//!
//! On the wire an error is an HTTP status, an `x-amzn-errortype: <Type>` header and a JSON body
//! `{"message": "..."}`. The AWS SDKs key on the type, not the status: the Rust SDK reads the
//! header first and falls back to the body's `code` / `__type` (`json_errors.rs` of
//! aws-sdk-bedrock), botocore does the same, so both map these to their typed errors.

/// An error answer of the emulated service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request breaks a constraint of the API model or a documented rule.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// 400 (Bedrock models its ConflictException with status 400): e.g. a duplicate job name.
    #[error("ConflictException: {0}")]
    Conflict(String),
    /// 400: e.g. too many evaluation jobs in progress.
    #[error("ServiceQuotaExceededException: {0}")]
    ServiceQuotaExceeded(String),
    /// 429.
    #[error("ThrottlingException: {0}")]
    Throttling(String),
    /// 500.
    #[error("InternalServerException: {0}")]
    InternalServer(String),
    /// 403.
    #[error("AccessDeniedException: {0}")]
    AccessDenied(String),
    /// 404: no such evaluation job.
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    /// 404: no operation at this method and path.
    #[error("UnknownOperationException: {0}")]
    UnknownOperation(String),
}

impl ApiError {
    /// The HTTP status the service answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation(_) | ApiError::Conflict(_) | ApiError::ServiceQuotaExceeded(_) => {
                400
            }
            ApiError::Throttling(_) => 429,
            ApiError::InternalServer(_) => 500,
            ApiError::AccessDenied(_) => 403,
            ApiError::ResourceNotFound(_) | ApiError::UnknownOperation(_) => 404,
        }
    }

    /// The error type, sent in `x-amzn-errortype`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "ValidationException",
            ApiError::Conflict(_) => "ConflictException",
            ApiError::ServiceQuotaExceeded(_) => "ServiceQuotaExceededException",
            ApiError::Throttling(_) => "ThrottlingException",
            ApiError::InternalServer(_) => "InternalServerException",
            ApiError::AccessDenied(_) => "AccessDeniedException",
            ApiError::ResourceNotFound(_) => "ResourceNotFoundException",
            ApiError::UnknownOperation(_) => "UnknownOperationException",
        }
    }

    /// The human-readable message, sent as the body's `message`.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Validation(m)
            | ApiError::Conflict(m)
            | ApiError::ServiceQuotaExceeded(m)
            | ApiError::Throttling(m)
            | ApiError::InternalServer(m)
            | ApiError::AccessDenied(m)
            | ApiError::ResourceNotFound(m)
            | ApiError::UnknownOperation(m) => m,
        }
    }

    /// The JSON body: `{"message": "..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message() }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::ApiError;

    #[test]
    fn statuses_and_types_follow_the_api_model() {
        let table = [
            (ApiError::Validation("m".into()), 400, "ValidationException"),
            (ApiError::Conflict("m".into()), 400, "ConflictException"),
            (
                ApiError::ServiceQuotaExceeded("m".into()),
                400,
                "ServiceQuotaExceededException",
            ),
            (ApiError::Throttling("m".into()), 429, "ThrottlingException"),
            (
                ApiError::InternalServer("m".into()),
                500,
                "InternalServerException",
            ),
            (
                ApiError::AccessDenied("m".into()),
                403,
                "AccessDeniedException",
            ),
            (
                ApiError::ResourceNotFound("m".into()),
                404,
                "ResourceNotFoundException",
            ),
        ];
        for (error, status, name) in table {
            assert_eq!(error.status(), status, "{name}");
            assert_eq!(error.type_name(), name);
            assert_eq!(error.body(), r#"{"message":"m"}"#);
        }
    }
}
