//! The route to the host's own registry: an import's requests for it are served in
//! process, through the registry's router, carrying the import's [`InternalGrant`]
//! instead of any credential. On the way, blob checks and completed uploads take part in
//! the blob work that imports into one project share (`shared_blobs`).

use crate::shared_blobs::{BlobClaims, BlobIndex, BlobRequest, Turn};
use hoist_plugin::url::Url;
use http_body_util::BodyExt as _;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, WasiBody};

/// The right an import holds on the host's own registry: push into its target project.
/// Its requests are served in-process and carry this as a request extension, which no
/// network client can set, instead of any credential. The host's authorizer checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalGrant {
    pub project: String,
    /// The task, for the audit trail.
    pub task: String,
}

/// The host's own registry, reached without leaving the process.
#[derive(Clone)]
pub struct OwnRegistryRoute {
    /// The authority imports name it by (`127.0.0.1:5000`).
    pub(crate) authority: String,
    pub(crate) router: axum::Router,
    pub(crate) grant: InternalGrant,
    /// Blob work shared with the other imports into the registry.
    pub(crate) claims: Arc<BlobClaims>,
    /// Where blobs already are, to mount them instead of copying.
    pub(crate) index: Arc<dyn BlobIndex>,
}

impl OwnRegistryRoute {
    /// Serves one request in-process, with the import's grant.
    async fn serve(&self, request: http::Request<axum::body::Body>) -> axum::response::Response {
        let mut request = request;
        request.extensions_mut().insert(self.grant.clone());
        tower::ServiceExt::oneshot(self.router.clone(), request)
            .await
            .unwrap_or_else(|never| match never {})
    }

    /// A blob check, taking part in the shared blob work: when another import is moving
    /// the blob into this project, wait for it and mount the blob from there.
    async fn check_blob(
        &self,
        request: http::Request<axum::body::Body>,
        repository: &str,
        digest: &str,
    ) -> axum::response::Response {
        let (project, task) = (&self.grant.project, &self.grant.task);
        let mut moved_into = None;
        while let Turn::Wait {
            repository: holder,
            mut ended,
        } = self.claims.claim(project, digest, task, repository)
        {
            // Err once the claim is dropped, which is the signal.
            let _ = ended.changed().await;
            moved_into = Some(holder);
        }
        if let Some(from) = moved_into.filter(|from| from != repository) {
            self.mount(repository, digest, &from).await;
        }
        // HEAD has no body, so the request can be made again after a mount.
        let again = rebuild(&request);
        let mut response = self.serve(request).await;
        if response.status() == http::StatusCode::NOT_FOUND
            && let Some(again) = again
        {
            let (index, p, d) = (self.index.clone(), project.clone(), digest.to_owned());
            let holder = tokio::task::spawn_blocking(move || index.repository_with(&p, &d))
                .await
                .ok()
                .flatten();
            if let Some(from) = holder.filter(|from| from != repository) {
                self.mount(repository, digest, &from).await;
                response = self.serve(again).await;
            }
        }
        if response.status().is_success() {
            self.claims.release(project, digest, task);
        }
        response
    }

    /// Links `digest` into `repository` from `from`, in the same project. When `from`
    /// does not hold it (that import failed), the registry opens an upload instead, which
    /// is cancelled: this import will upload the blob itself.
    async fn mount(&self, repository: &str, digest: &str, from: &str) {
        let uri = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let Ok(request) = http::Request::post(uri).body(axum::body::Body::empty()) else {
            return;
        };
        let response = self.serve(request).await;
        if response.status() == http::StatusCode::ACCEPTED
            && let Some(location) = response.headers().get(http::header::LOCATION)
            && let Ok(request) =
                http::Request::delete(location.as_bytes()).body(axum::body::Body::empty())
        {
            self.serve(request).await;
        }
    }

    /// Whether `url` is the host's own registry.
    pub(crate) fn serves(&self, url: &Url) -> bool {
        url.authority.eq_ignore_ascii_case(&self.authority)
    }

    /// Serves one of the plugin's requests in process.
    pub(crate) async fn send(
        self,
        url: Url,
        mut request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, Error> {
        // The plugin's credentials have no business here, and it holds none.
        request.headers_mut().remove(http::header::AUTHORIZATION);
        let blob = BlobRequest::of(request.method(), &url.path);
        let request = request.map(axum::body::Body::new);
        let response = match blob {
            Some(BlobRequest::Check { repository, digest }) => {
                self.check_blob(request, &repository, &digest).await
            }
            Some(BlobRequest::Committed { digest }) => {
                let response = self.serve(request).await;
                let grant = &self.grant;
                self.claims.release(&grant.project, &digest, &grant.task);
                response
            }
            None => self.serve(request).await,
        };
        Ok(response.map(|body| {
            body.map_err(|e| Error::InternalError(Some(e.to_string())))
                .boxed_unsync()
        }))
    }

    /// However the import ended, the blobs it claimed are free for the others.
    pub(crate) fn release_claims(&self) {
        self.claims.release_task(&self.grant.task);
    }
}

/// A copy of a bodiless request.
fn rebuild(request: &http::Request<axum::body::Body>) -> Option<http::Request<axum::body::Body>> {
    let mut builder = http::Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    builder.body(axum::body::Body::empty()).ok()
}
