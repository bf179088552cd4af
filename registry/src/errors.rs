//! The registry's errors, as the OCI Distribution Spec v1.1 spells them:
//! `{"errors": [{"code", "message", "detail"}]}` with the spec's codes and statuses.
//!
//! Every message says what is wrong and what would fix it, because the people who read
//! them are looking at a failed `docker push` or `skopeo copy`, not at this code.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value, json};

/// One registry error, with the HTTP status it is answered with.
#[derive(Debug)]
pub struct RegistryError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Value,
    /// Headers the spec asks for beside some errors (the upload's `Range` and
    /// `Location` after a 416).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Reads and drops the body of the request this refuses (up to a bound), then gives
    /// the refusal back. Answered before its body is read, a request has its connection
    /// closed under the client still sending it, which then sees a broken pipe instead
    /// of this error (and the upload's `Range`). Go's net/http drains too, but only
    /// 256 KiB; chunks of several MiB are common, so the bound here is larger.
    pub(crate) async fn after_draining(self, body: Body) -> Self {
        const MAX_DRAIN: usize = 64 << 20;
        let mut body = body.into_data_stream();
        let mut seen = 0;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len();
            if seen > MAX_DRAIN {
                break;
            }
        }
        self
    }

    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub(crate) fn blob_unknown(repository: &str, digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!(
                "the blob {digest} is not in {repository}; push it there first, or mount it \
                 from a repository that has it (POST /v2/{repository}/blobs/uploads/?mount=\
                 {digest}&from=<repository>)"
            ),
        )
        .with_detail(json!({ "digest": digest }))
    }

    pub(crate) fn upload_unknown(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!(
                "there is no upload {id} in this repository (it finished, was cancelled, \
                 expired or belongs to another repository); start a new upload with POST \
                 /v2/<name>/blobs/uploads/"
            ),
        )
    }

    pub(crate) fn upload_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
    }

    pub(crate) fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    pub(crate) fn manifest_blob_unknown(digest: &str, what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            format!(
                "the manifest refers to {what} {digest}, which this repository does not have; \
                 push (or mount) it into this repository before the manifest"
            ),
        )
        .with_detail(json!({ "digest": digest }))
    }

    pub(crate) fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }

    pub(crate) fn manifest_unknown(repository: &str, reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!(
                "{repository} has no manifest {reference}; list its tags with GET \
                 /v2/{repository}/tags/list"
            ),
        )
        .with_detail(json!({ "reference": reference }))
    }

    pub(crate) fn name_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", message)
    }

    pub(crate) fn name_unknown(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    pub(crate) fn pagination_invalid(message: impl Into<String>) -> Self {
        // Not one of the spec's codes; distribution answers a bad `n` with it, and
        // clients only look at the 400.
        Self::new(
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
            message,
        )
    }

    /// A fault on our side. The log gets the cause; the client gets a pointer to it,
    /// never internals such as paths.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "a registry request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "the registry failed to answer; try again, and if it persists, the host's log \
             has the cause",
        )
    }
}

impl From<anyhow::Error> for RegistryError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(e)
    }
}

impl From<tokio::task::JoinError> for RegistryError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.detail.is_null() {
            error["detail"] = self.detail;
        }
        let mut response = (self.status, Json(json!({ "errors": [error] }))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
