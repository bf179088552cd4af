//! The plugin's way out: every `wasi:http` request an import makes passes through here.
//!
//! This is where the host keeps what the sandbox must not hold (DESIGN.md §3). A request
//! takes these steps, each in a module of its own:
//! 1. the host's own registry is served in process, with the import's grant instead of
//!    any credential ([`own_registry`]);
//! 2. every other request goes out through the pooled client, whose connector checks the
//!    egress policy on the address it dials ([`client`], [`crate::egress`]);
//! 3. the host's credentials are added only for the registry they belong to and the
//!    token realm it announced ([`credentials`]);
//! 4. a request to a source waits for its turn under that registry's request ceilings,
//!    and the quota its response reports is noted ([`pacing`]);
//! 5. the response's body fails when the source goes silent ([`send`]).

pub mod client;
pub mod credentials;
pub mod fetch;
pub mod own_registry;
pub mod pacing;
mod send;

use client::{Clients, PolicyDenied};
use credentials::Credentials;
use hoist_plugin::url::Url;
use http_body_util::BodyExt as _;
use own_registry::OwnRegistryRoute;
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The `wasi:http` hooks of one import.
pub(crate) struct ImportNet {
    clients: Clients,
    credentials: Credentials,
    own: Option<OwnRegistryRoute>,
    denials: Arc<Mutex<Vec<PolicyDenied>>>,
}

impl ImportNet {
    pub fn new(clients: Clients, credentials: Credentials, own: Option<OwnRegistryRoute>) -> Self {
        Self {
            clients,
            credentials,
            own,
            denials: Arc::default(),
        }
    }

    /// The policy refusals this import met, to name the class of address in its error.
    pub(crate) fn denials(&self) -> Vec<PolicyDenied> {
        self.denials.lock().clone()
    }
}

impl Drop for ImportNet {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            own.release_claims();
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

fn done() -> Box<dyn Future<Output = Result<(), Error>> + Send> {
    Box::new(async { Ok(()) })
}

impl WasiHttpHooks for ImportNet {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let Ok(url) = Url::parse(&request.uri().to_string()) else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };
        if let Some(own) = self.own.as_ref().filter(|own| own.serves(&url)) {
            let own = own.clone();
            return Box::new(async move { Ok((own.send(url, request).await?, done())) });
        }
        if !request.headers().contains_key(http::header::AUTHORIZATION)
            && let Some(value) = self.credentials.authorization_for(&url)
        {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        let client = self.clients.for_authority(&url.authority).clone();
        let pacing = self.clients.pacing().clone();
        let credentials = self.credentials.clone();
        let denials = self.denials.clone();
        let idle = send::idle_timeout(options.as_ref());
        let download = is_blob_download(request.method(), &url.path);
        Box::new(async move {
            let transfer = match download {
                true => pacing.admit_transfer().await,
                false => None,
            };
            let turn = pacing.admit(&url.authority).await;
            let response = send::send(client, request, options, |d| denials.lock().push(d)).await?;
            pacing.observe(&url.authority, response.status(), response.headers());
            if response.status() == http::StatusCode::UNAUTHORIZED
                && let Some(index) = credentials.owner_of(&url)
            {
                credentials.learn(index, &url, response.headers());
            }
            Ok((
                response.map(|incoming| {
                    send::IdleBody::new(incoming, idle, [turn, transfer]).boxed_unsync()
                }),
                done(),
            ))
        })
    }
}

/// Whether a request fetches a blob (`GET /v2/<name>/blobs/<digest>`), the requests
/// whose bodies are large and whose number the host caps. A download a registry
/// redirects elsewhere (a CDN) is capped only for its first request, the redirect.
fn is_blob_download(method: &http::Method, path: &str) -> bool {
    method == http::Method::GET
        && path.starts_with("/v2/")
        && path
            .rsplit_once("/blobs/")
            .is_some_and(|(_, digest)| !digest.starts_with("uploads"))
}

#[cfg(test)]
mod tests {
    use super::is_blob_download;
    use http::Method;

    #[test]
    fn blob_downloads_are_told_from_other_requests() {
        let d = "/v2/library/nginx/blobs/sha256:aa";
        assert!(is_blob_download(&Method::GET, d));
        assert!(!is_blob_download(&Method::HEAD, d));
        assert!(!is_blob_download(
            &Method::GET,
            "/v2/library/nginx/manifests/latest"
        ));
        assert!(!is_blob_download(&Method::GET, "/v2/a/blobs/uploads/123"));
        assert!(!is_blob_download(&Method::GET, "/token"));
    }
}
