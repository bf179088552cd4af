//! A client for the OCI distribution API (and Docker's registry API v2) over `wasi:http`:
//! endpoints and mirrors, the auth challenge flow, retries, redirects, and the manifest and
//! blob calls an import makes.

use crate::auth::{self, Challenge, TokenResponse};
use crate::executor::{now, sleep};
use crate::http::{self, HttpError, Request, Response, Timeouts, Upload};
use crate::manifest;
use crate::progress::{Field, ImportError, RequestCounts};
use crate::reference;
use crate::retry;
use crate::url::Url;
use sha2::{Digest as _, Sha256, Sha512};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use wasi::http::types::Method;

/// Redirects followed for one request: enough for a registry → CDN → signed URL chain.
const MAX_REDIRECTS: usize = 5;
/// A token endpoint's answer is small; anything larger is not a token.
const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Entries asked for per page of a tag list or the catalog.
const LIST_PAGE: u32 = 1000;
/// A page of a list is at most this large (1000 entries of up to 255 characters).
const MAX_LIST_BYTES: u64 = 1 << 20;
/// Pages followed for one list: a million tags, far past any real repository.
const MAX_PAGES: usize = 1000;

/// How the client reaches registries.
pub struct Settings {
    /// Base URLs per registry name, in order of preference.
    pub endpoints: HashMap<String, Vec<Url>>,
    /// Registries reached over plain HTTP when no endpoint is configured.
    pub insecure: HashSet<String>,
    /// Username and password per registry name (standalone use only).
    pub credentials: HashMap<String, (String, String)>,
    pub max_retries: u32,
    pub timeouts: Timeouts,
    /// Registries whose credentials the host adds on its side of `wasi:http`: a 401 there
    /// means they were refused, although this client holds none.
    pub host_credentials: HashSet<String>,
    /// The longest `Retry-After` waited for inside a request.
    pub max_retry_wait: std::time::Duration,
}

impl Settings {
    /// From a request's plain values: endpoint URLs per registry (checked here), the
    /// registries on plain HTTP, `(registry, username, password)` triples, and the retry
    /// budget (0 for the default).
    pub fn new(
        endpoints: &[(String, Vec<String>)],
        insecure: &[String],
        credentials: &[(String, String, String)],
        max_retries: u32,
        timeouts: Timeouts,
    ) -> Result<Self, ImportError> {
        let mut parsed_endpoints = HashMap::new();
        for (registry, urls) in endpoints {
            let parsed = urls
                .iter()
                .map(|u| Url::parse(u.trim_end_matches('/')))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ImportError::invalid(
                        Field::Options,
                        format!("the endpoint for {registry}: {e}"),
                    )
                })?;
            parsed_endpoints.insert(registry.clone(), parsed);
        }
        Ok(Self {
            endpoints: parsed_endpoints,
            insecure: insecure.iter().cloned().collect(),
            credentials: credentials
                .iter()
                .map(|(r, u, p)| (r.clone(), (u.clone(), p.clone())))
                .collect(),
            max_retries: if max_retries == 0 {
                retry::DEFAULT_RETRIES
            } else {
                max_retries
            },
            timeouts,
            host_credentials: HashSet::new(),
            max_retry_wait: retry::RETRY_AFTER_CAP,
        })
    }

    /// Waits at most `ms` for a `Retry-After` (0: the default, two minutes).
    pub fn with_max_retry_wait(mut self, ms: u32) -> Self {
        if ms > 0 {
            self.max_retry_wait = std::time::Duration::from_millis(u64::from(ms));
        }
        self
    }

    /// Marks the registries whose credentials the host adds.
    pub fn with_host_credentials(mut self, registries: &[String]) -> Self {
        self.host_credentials = registries.iter().cloned().collect();
        self
    }

    /// Whether credentials for `registry` exist, here or in the host.
    fn has_credentials(&self, registry: &str) -> bool {
        self.credentials.contains_key(registry) || self.host_credentials.contains(registry)
    }
}

/// What a registry taught us about authenticating to it.
#[derive(Clone)]
enum AuthMode {
    Anonymous,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

struct CachedToken {
    value: String,
    expires_at: u64,
}

/// One import's registry client. Tokens are cached per registry and scope.
pub struct Client {
    settings: Settings,
    modes: RefCell<HashMap<String, AuthMode>>,
    tokens: RefCell<HashMap<(String, String), CachedToken>>,
    warnings: Rc<RefCell<Vec<String>>>,
    /// Requests sent, per registry, for plans and run records.
    counts: RefCell<HashMap<String, RequestCounts>>,
}

/// The scopes a request needs, as the token spec spells them.
pub type Scopes = Vec<String>;

impl Client {
    pub fn new(settings: Settings, warnings: Rc<RefCell<Vec<String>>>) -> Self {
        Self {
            settings,
            modes: RefCell::default(),
            tokens: RefCell::default(),
            warnings,
            counts: RefCell::default(),
        }
    }

    /// The requests sent to `registry` so far.
    pub fn counts(&self, registry: &str) -> RequestCounts {
        self.counts
            .borrow()
            .get(registry)
            .copied()
            .unwrap_or_default()
    }

    fn counted(&self, registry: &str) -> std::cell::RefMut<'_, RequestCounts> {
        std::cell::RefMut::map(self.counts.borrow_mut(), |c| {
            c.entry(registry.to_owned()).or_default()
        })
    }

    /// The base URLs for `registry`: its configured endpoints, else `https://<api host>`
    /// (plain HTTP when marked insecure).
    pub fn endpoints(&self, registry: &str) -> Vec<Url> {
        if let Some(list) = self
            .settings
            .endpoints
            .get(registry)
            .filter(|l| !l.is_empty())
        {
            return list.clone();
        }
        let https = !self.settings.insecure.contains(registry);
        vec![Url {
            https,
            authority: reference::api_host(registry).to_owned(),
            path: "/".into(),
        }]
    }

    /// Whether `url` is at one of `registry`'s endpoints: only their challenges are
    /// learned, so that a 401 from elsewhere (a CDN, the token realm) cannot redirect
    /// where credentials go.
    fn is_endpoint(&self, registry: &str, url: &Url) -> bool {
        self.endpoints(registry).iter().any(|e| e.same_origin(url))
    }

    /// Whether `url` belongs to `registry`: one of its endpoints, or the token realm it
    /// named. Credentials go nowhere else.
    fn is_registry_origin(&self, registry: &str, url: &Url) -> bool {
        if self.is_endpoint(registry, url) {
            return true;
        }
        matches!(
            self.modes.borrow().get(registry),
            Some(AuthMode::Bearer { realm, .. }) if realm.same_origin(url)
        )
    }

    fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }

    /// Sends a request built for each endpoint of `registry` in turn, handling auth,
    /// retries and redirects. Returns the final response whatever its status; `body` is
    /// sent with every attempt.
    pub async fn send(
        &self,
        registry: &str,
        scopes: &Scopes,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, ImportError> {
        let endpoints = self.endpoints(registry);
        let mut last_error = None;
        for (i, endpoint) in endpoints.iter().enumerate() {
            let url = endpoint.with_path(path);
            match self
                .send_to(registry, scopes, method.clone(), url, headers, body)
                .await
            {
                // A mirror that cannot be reached hands over to the next one.
                Err(ImportError::Network(m)) if i + 1 < endpoints.len() => {
                    self.warn(format!(
                        "{endpoint} is unreachable ({m}); trying the next endpoint"
                    ));
                    last_error = Some(ImportError::Network(m));
                }
                other => return other,
            }
        }
        Err(last_error
            .unwrap_or_else(|| ImportError::Network(format!("{registry} has no endpoint"))))
    }

    /// One URL: retries with backoff, one re-authentication after a 401, and redirects.
    pub async fn send_to(
        &self,
        registry: &str,
        scopes: &Scopes,
        method: Method,
        mut url: Url,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, ImportError> {
        let mut attempt = 0;
        let mut reauthenticated = false;
        let mut redirects = 0;
        loop {
            let mut req = Request::new(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(k, *v);
            }
            if self.is_registry_origin(registry, &url)
                && let Some(authorization) = self.authorization(registry, scopes).await?
            {
                req = req.header("authorization", authorization);
            }
            self.counted(registry)
                .count(method_name(&method), &url.path);
            let result = http::send(&req, body, &self.settings.timeouts).await;
            let response = match result {
                Ok(r) => r,
                Err(HttpError::Denied(m)) => {
                    return Err(ImportError::DeniedByPolicy(format!(
                        "{} {}: {m}",
                        method_name(&method),
                        url.redacted()
                    )));
                }
                Err(e) => {
                    attempt += 1;
                    if attempt > self.settings.max_retries {
                        return Err(ImportError::Network(format!(
                            "{} {}: {e} (gave up after {attempt} attempts)",
                            method_name(&method),
                            url.redacted()
                        )));
                    }
                    sleep(retry::delay(attempt, random_unit(), None)).await;
                    continue;
                }
            };
            let status = response.status;
            if status == 401 && !reauthenticated && self.is_endpoint(registry, &url) {
                let challenge = response.header("www-authenticate").map(str::to_owned);
                response.discard().await;
                reauthenticated = true;
                self.learn(registry, &url, challenge.as_deref())?;
                // The cached tokens of this registry were refused or have expired.
                self.forget_tokens(registry);
                continue;
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308)
                && let Some(location) = response.header("location").map(str::to_owned)
            {
                response.discard().await;
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(ImportError::Registry(format!(
                        "{} redirected more than {MAX_REDIRECTS} times",
                        url.redacted()
                    )));
                }
                // The next URL gets credentials only if it is the registry's own origin,
                // which `is_registry_origin` checks on the next pass.
                url = url.join(&location).map_err(|e| {
                    ImportError::Registry(format!(
                        "{} redirected to a bad location: {e}",
                        url.redacted()
                    ))
                })?;
                continue;
            }
            let retry_after = response
                .header("retry-after")
                .and_then(retry::parse_retry_after);
            if retry::is_retryable_status(status)
                && retry::worth_waiting(retry_after, self.settings.max_retry_wait)
            {
                attempt += 1;
                if attempt <= self.settings.max_retries {
                    if status == 429 {
                        self.warn(format!(
                            "{registry} rate-limited a request (429); waiting {}s as asked",
                            retry_after.map_or(0, |d| d.as_secs())
                        ));
                    }
                    response.discard().await;
                    sleep(retry::delay(attempt, random_unit(), retry_after)).await;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// Drops the cached tokens of `registry`, after it refused one.
    pub fn forget_tokens(&self, registry: &str) {
        self.tokens.borrow_mut().retain(|(r, _), _| r != registry);
    }

    /// Records what a 401's challenge from `url` asks for.
    fn learn(&self, registry: &str, url: &Url, challenge: Option<&str>) -> Result<(), ImportError> {
        let mode = match challenge.and_then(auth::parse_challenge) {
            Some(Challenge::Basic) => AuthMode::Basic,
            Some(Challenge::Bearer { realm, service, .. }) => {
                let realm = Url::parse(&realm).map_err(|e| {
                    ImportError::Registry(format!("{registry} named an unusable token realm: {e}"))
                })?;
                // Credentials reached over HTTPS must not travel on in clear text.
                if url.https && !realm.https {
                    return Err(ImportError::DeniedByPolicy(format!(
                        "{registry} named a plain-HTTP token realm ({}) although it is served \
                         over HTTPS; refusing to send credentials there",
                        realm.redacted()
                    )));
                }
                AuthMode::Bearer { realm, service }
            }
            None => {
                return Err(ImportError::Unauthorized(format!(
                    "{registry} answered 401 without a challenge Hoist understands"
                )));
            }
        };
        self.modes.borrow_mut().insert(registry.to_owned(), mode);
        Ok(())
    }

    /// The Authorization value for a request to `registry`, fetching a token if needed.
    async fn authorization(
        &self,
        registry: &str,
        scopes: &Scopes,
    ) -> Result<Option<String>, ImportError> {
        let mode = self
            .modes
            .borrow()
            .get(registry)
            .cloned()
            .unwrap_or(AuthMode::Anonymous);
        let creds = self.settings.credentials.get(registry);
        match mode {
            AuthMode::Anonymous => Ok(None),
            AuthMode::Basic => Ok(creds.map(|(u, p)| auth::basic_authorization(u, p))),
            AuthMode::Bearer { realm, service } => {
                let key = (registry.to_owned(), scopes.join(" "));
                if let Some(t) = self.tokens.borrow().get(&key)
                    && t.expires_at > now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), scopes)
                    .await?;
                let value = format!("Bearer {}", token.value);
                self.tokens.borrow_mut().insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// The token flow: GET the realm with service and scopes, with Basic credentials when
    /// the registry has some.
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &Url,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<CachedToken, ImportError> {
        let mut url = realm.clone();
        if let Some(service) = service {
            url = url.with_query("service", service);
        }
        for scope in scopes {
            url = url.with_query("scope", scope);
        }
        let mut req = Request::new(Method::Get, url.clone());
        if let Some((u, p)) = self.settings.credentials.get(registry) {
            req = req.header("authorization", auth::basic_authorization(u, p));
        }
        let mut attempt = 0;
        let response = loop {
            self.counted(registry).token += 1;
            match http::send(&req, None, &self.settings.timeouts).await {
                Ok(r)
                    if retry::is_retryable_status(r.status)
                        && attempt < self.settings.max_retries =>
                {
                    attempt += 1;
                    r.discard().await;
                    sleep(retry::delay(attempt, random_unit(), None)).await;
                }
                Ok(r) => break r,
                Err(HttpError::Denied(m)) => {
                    return Err(ImportError::DeniedByPolicy(format!(
                        "the token service of {registry} at {}: {m}",
                        url.authority
                    )));
                }
                Err(e) if attempt < self.settings.max_retries => {
                    attempt += 1;
                    let _ = e;
                    sleep(retry::delay(attempt, random_unit(), None)).await;
                }
                Err(e) => {
                    return Err(ImportError::Network(format!(
                        "the token service of {registry} at {} is unreachable: {e}",
                        url.authority
                    )));
                }
            }
        };
        let status = response.status;
        if status == 401 || status == 403 {
            response.discard().await;
            return Err(unauthorized(
                registry,
                self.settings.has_credentials(registry),
            ));
        }
        if status != 200 {
            response.discard().await;
            return Err(ImportError::Registry(format!(
                "the token service of {registry} answered {status}"
            )));
        }
        let bytes = response
            .bytes(MAX_TOKEN_BYTES)
            .await
            .map_err(|e| ImportError::Network(format!("reading a token from {registry}: {e}")))?;
        let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::Registry(format!(
                "the token service of {registry} sent bad JSON: {e}"
            ))
        })?;
        let value = parsed
            .token()
            .ok_or_else(|| {
                ImportError::Registry(format!("the token service of {registry} sent no token"))
            })?
            .to_owned();
        Ok(CachedToken {
            value,
            // A huge `expires_in` must not wrap around into an expired token.
            expires_at: now().saturating_add(parsed.lifetime_secs().saturating_mul(1_000_000_000)),
        })
    }

    /// Turns a final error status into the error a caller can act on.
    pub async fn error(&self, registry: &str, what: &str, response: Response) -> ImportError {
        let status = response.status;
        // Only the delta-seconds form is named; an HTTP date would read oddly as seconds.
        let retry_after = response
            .header("retry-after")
            .and_then(retry::parse_retry_after)
            .map(|wait| wait.as_secs());
        let body = response.bytes(64 * 1024).await.unwrap_or_default();
        let detail = registry_error_detail(&body);
        let suffix = detail
            .as_ref()
            .map(|(_, m)| format!(": {m}"))
            .unwrap_or_default();
        let code = detail.as_ref().map(|(c, _)| c.as_str()).unwrap_or("");
        match status {
            401 => unauthorized(registry, self.settings.has_credentials(registry)),
            403 => ImportError::Unauthorized(format!(
                "{registry} denied access to {what}{suffix}; the credentials lack the rights"
            )),
            404 => ImportError::NotFound(format!("{what} was not found on {registry}{suffix}")),
            429 => ImportError::RateLimited(match retry_after {
                Some(wait) => {
                    format!("{registry} rate-limited {what} and asked to wait {wait}s{suffix}")
                }
                None => format!("{registry} kept rate-limiting {what} past every retry{suffix}"),
            }),
            400 if code == "DIGEST_INVALID" => ImportError::DigestMismatch(format!(
                "{registry} refused {what}: its content does not match its digest{suffix}"
            )),
            _ => ImportError::Registry(format!("{registry} answered {status} for {what}{suffix}")),
        }
    }

    // ---- manifests ----

    /// Fetches a manifest's raw bytes, its media type and its digest. A manifest fetched
    /// by digest is checked against it.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), ImportError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let scopes = vec![auth::pull_scope(repository)];
        let response = self
            .send(
                registry,
                &scopes,
                Method::Get,
                &path,
                &[("accept", manifest::ACCEPT)],
                None,
            )
            .await?;
        let what = format!("the manifest {repository}:{reference}");
        if response.status != 200 {
            return Err(self.error(registry, &what, response).await);
        }
        if response
            .content_length()
            .is_some_and(|n| n > manifest::MAX_MANIFEST_BYTES)
        {
            return Err(ImportError::Registry(format!(
                "{what} on {registry} is {} bytes, over the {} MiB limit for manifests",
                response.content_length().unwrap_or_default(),
                manifest::MAX_MANIFEST_BYTES >> 20
            )));
        }
        let content_type = response.header("content-type").map(str::to_owned);
        let bytes = response
            .bytes(manifest::MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| match e {
                HttpError::TooLarge { .. } => ImportError::Registry(format!(
                    "{what} on {registry} is over the {} MiB limit for manifests",
                    manifest::MAX_MANIFEST_BYTES >> 20
                )),
                e => ImportError::Network(format!("reading {what} from {registry}: {e}")),
            })?;
        let digest = digest_as(reference, &bytes);
        if reference.contains(':') && reference != digest {
            return Err(ImportError::DigestMismatch(format!(
                "{registry} served {what} with digest {digest}, not the one asked for"
            )));
        }
        let media = manifest::media_type(content_type.as_deref(), &bytes)?;
        Ok((bytes, media, digest))
    }

    /// Pushes a manifest under `reference` (a tag, or its digest), naming its digest with
    /// `?digest=` when given. Returns whether the registry processed the manifest's
    /// `subject` (it answered `OCI-Subject`, as the OCI 1.1 spec has registries with the
    /// referrers API do); a client must otherwise keep the referrers tag itself.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        digest: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, ImportError> {
        let mut path = format!("/v2/{repository}/manifests/{reference}");
        if let Some(digest) = digest {
            path = format!("{path}?digest={}", crate::url::encode(digest));
        }
        let scopes = vec![auth::push_scope(repository)];
        let len = bytes.len().to_string();
        let headers = [
            ("content-type", media_type),
            ("content-length", len.as_str()),
        ];
        let response = self
            .send(registry, &scopes, Method::Put, &path, &headers, Some(bytes))
            .await?;
        if response.status == 201 || response.status == 200 {
            let took_subject = response.header("oci-subject").is_some();
            response.discard().await;
            return Ok(took_subject);
        }
        Err(self
            .error(
                registry,
                &format!("pushing the manifest {repository}:{reference}"),
                response,
            )
            .await)
    }

    /// The digest `registry` holds under `repository:reference`, from a manifest `HEAD`
    /// (which registries do not count as a pull); None when it has none. A registry that
    /// answers a HEAD without `Docker-Content-Digest` is asked with a GET instead.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, ImportError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let scopes = vec![auth::pull_scope(repository)];
        let response = self
            .send(
                registry,
                &scopes,
                Method::Head,
                &path,
                &[("accept", manifest::ACCEPT)],
                None,
            )
            .await?;
        match response.status {
            200 => {}
            404 => return Ok(None),
            _ => {
                let what = format!("the manifest {repository}:{reference}");
                return Err(self.error(registry, &what, response).await);
            }
        }
        let digest = response.header("docker-content-digest").map(str::to_owned);
        response.discard().await;
        match digest {
            Some(digest) => Ok(Some(digest)),
            None => {
                self.warn(format!(
                    "{registry} answered a manifest HEAD without Docker-Content-Digest; \
                     fetching {repository}:{reference} to learn its digest"
                ));
                let (_, _, digest) = self.get_manifest(registry, repository, reference).await?;
                Ok(Some(digest))
            }
        }
    }

    /// Every tag of `repository`, in the order the registry lists them, following its
    /// `Link` pages.
    pub async fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, ImportError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let scopes = vec![auth::pull_scope(repository)];
        let first = format!("/v2/{repository}/tags/list?n={LIST_PAGE}");
        let pages = self
            .pages::<Page>(
                registry,
                &scopes,
                &first,
                &format!("the tags of {repository}"),
            )
            .await?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.tags.unwrap_or_default())
            .collect())
    }

    /// Every repository of `registry` (`/v2/_catalog`, following its pages). Docker Hub
    /// and others do not serve it; the error then says so.
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>, ImportError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let scopes = vec!["registry:catalog:*".to_owned()];
        let first = format!("/v2/_catalog?n={LIST_PAGE}");
        let pages = self
            .pages::<Page>(registry, &scopes, &first, "the catalog")
            .await
            .map_err(|e| match e {
                ImportError::NotFound(_) | ImportError::Unauthorized(_) => {
                    ImportError::Registry(format!(
                        "{registry} does not list its repositories (/v2/_catalog: {}); name \
                         the repositories instead of a glob",
                        e.message()
                    ))
                }
                e => e,
            })?;
        Ok(pages.into_iter().flat_map(|p| p.repositories).collect())
    }

    /// The JSON pages of a paginated list, from `first` on.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        registry: &str,
        scopes: &Scopes,
        first: &str,
        what: &str,
    ) -> Result<Vec<T>, ImportError> {
        let mut out = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(path) = next.take() {
            if out.len() >= MAX_PAGES {
                return Err(ImportError::Registry(format!(
                    "{registry} kept paging {what} past {MAX_PAGES} pages"
                )));
            }
            let response = if path.starts_with("http://") || path.starts_with("https://") {
                let url = Url::parse(&path).map_err(ImportError::Registry)?;
                self.send_to(registry, scopes, Method::Get, url, &[], None)
                    .await?
            } else {
                self.send(registry, scopes, Method::Get, &path, &[], None)
                    .await?
            };
            if response.status != 200 {
                return Err(self.error(registry, what, response).await);
            }
            next = crate::sync::next_page(response.header("link"));
            let bytes = response.bytes(MAX_LIST_BYTES).await.map_err(|e| {
                ImportError::Network(format!("reading {what} from {registry}: {e}"))
            })?;
            let page = serde_json::from_slice(&bytes).map_err(|e| {
                ImportError::Registry(format!("{registry} sent {what} as bad JSON: {e}"))
            })?;
            out.push(page);
        }
        Ok(out)
    }

    // ---- blobs ----

    pub async fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool, ImportError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let scopes = vec![auth::push_scope(repository)];
        let response = self
            .send(registry, &scopes, Method::Head, &path, &[], None)
            .await?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self
                .error(registry, &format!("checking the blob {digest}"), response)
                .await),
        }
    }

    /// Asks the target to mount `digest` from `from`; on refusal the registry starts an
    /// ordinary upload, whose URL is returned.
    pub async fn mount_or_start(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from: Option<&str>,
    ) -> Result<Started, ImportError> {
        let mut path = format!("/v2/{repository}/blobs/uploads/");
        let mut scopes = vec![auth::push_scope(repository)];
        if let Some(from) = from {
            path = format!(
                "{path}?mount={}&from={}",
                crate::url::encode(digest),
                crate::url::encode(from)
            );
            scopes.push(auth::pull_scope(from));
        }
        let sent = self
            .send(
                registry,
                &scopes,
                Method::Post,
                &path,
                &[("content-length", "0")],
                Some(&[]),
            )
            .await;
        let response = match (sent, from) {
            (Ok(response), _) => response,
            // A token service may refuse the pull scope on the mount's source outright.
            (Err(ImportError::Unauthorized(m)), Some(from)) => {
                return Ok(self.mount_refused(from, &m));
            }
            (Err(e), _) => return Err(e),
        };
        match (response.status, from) {
            (201, Some(_)) => {
                response.discard().await;
                Ok(Started::Mounted)
            }
            (202, _) => {
                let location = response.header("location").map(str::to_owned);
                let url = response.url.clone();
                response.discard().await;
                let location = location.ok_or_else(|| {
                    ImportError::Registry(format!("{registry} started an upload with no Location"))
                })?;
                let url = url.join(&location).map_err(ImportError::Registry)?;
                Ok(Started::Upload(url))
            }
            // No rights on the source repository, or a registry without mounting: the
            // blob is copied instead.
            (status @ (401 | 403 | 404 | 405), Some(from)) => {
                response.discard().await;
                Ok(self.mount_refused(from, &format!("{registry} answered {status}")))
            }
            _ => Err(self
                .error(
                    registry,
                    &format!("starting an upload to {repository}"),
                    response,
                )
                .await),
        }
    }

    fn mount_refused(&self, from: &str, why: &str) -> Started {
        self.warn(format!(
            "could not mount from {from} ({why}); copying the blob instead"
        ));
        Started::Refused
    }

    /// Opens the blob for reading from `offset`, following redirects.
    pub async fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        offset: u64,
    ) -> Result<Response, ImportError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let scopes = vec![auth::pull_scope(repository)];
        let range = format!("bytes={offset}-");
        let headers: Vec<(&str, &str)> = if offset > 0 {
            vec![("range", range.as_str())]
        } else {
            Vec::new()
        };
        let response = self
            .send(registry, &scopes, Method::Get, &path, &headers, None)
            .await?;
        if offset == 0 && response.status == 200 {
            return Ok(response);
        }
        if offset > 0 && response.status == 206 {
            // The bytes must start where the download broke off, or the blob would be
            // stitched together wrongly.
            let start = response
                .header("content-range")
                .and_then(content_range_start);
            if start == Some(offset) {
                return Ok(response);
            }
            response.discard().await;
            return Err(ImportError::Registry(format!(
                "{registry} answered a request for the blob {digest} from byte {offset} with \
                 other bytes (Content-Range {})",
                start.map_or("missing".to_owned(), |s| format!("from {s}"))
            )));
        }
        if offset > 0 && response.status == 200 {
            return Err(ImportError::Registry(format!(
                "{registry} cannot resume the blob {digest} (it ignored the Range request)"
            )));
        }
        Err(self
            .error(
                registry,
                &format!("the blob {digest} of {repository}"),
                response,
            )
            .await)
    }

    /// Starts streaming an upload to `url` (a PUT that completes the upload, or a PATCH
    /// chunk), with the registry's credentials when it is the registry's origin.
    pub async fn start_upload(
        &self,
        registry: &str,
        repository: &str,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
    ) -> Result<Upload, ImportError> {
        let mut req = Request::new(method, url.clone());
        for (k, v) in headers {
            req = req.header(k, v.clone());
        }
        if self.is_registry_origin(registry, &url)
            && let Some(authorization) = self
                .authorization(registry, &vec![auth::push_scope(repository)])
                .await?
        {
            req = req.header("authorization", authorization);
        }
        Upload::start(&req, &self.settings.timeouts)
            .map_err(|e| ImportError::Network(format!("uploading to {registry}: {e}")))
    }

    /// Abandons an upload session, so the registry can free it. Best effort: a registry
    /// also expires abandoned sessions on its own.
    pub async fn cancel_upload(&self, registry: &str, repository: &str, url: Url) {
        let scopes = vec![auth::push_scope(repository)];
        if let Ok(response) = self
            .send_to(registry, &scopes, Method::Delete, url, &[], None)
            .await
        {
            response.discard().await;
        }
    }

    /// Completes a chunked upload with an empty PUT.
    pub async fn finish_upload(
        &self,
        registry: &str,
        repository: &str,
        url: Url,
        digest: &str,
    ) -> Result<(), ImportError> {
        let url = url.with_query("digest", digest);
        let scopes = vec![auth::push_scope(repository)];
        let response = self
            .send_to(
                registry,
                &scopes,
                Method::Put,
                url,
                &[("content-length", "0")],
                Some(&[]),
            )
            .await?;
        if response.status == 201 {
            response.discard().await;
            return Ok(());
        }
        let error = self
            .error(
                registry,
                &format!("completing the upload of {digest}"),
                response,
            )
            .await;
        // A retried PUT finds its session gone when the first one was applied but its
        // answer lost; the blob being there is the success it could not report.
        if self.blob_exists(registry, repository, digest).await? {
            return Ok(());
        }
        Err(error)
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// What starting an upload gave.
pub enum Started {
    Mounted,
    /// The mount was refused; nothing was started.
    Refused,
    Upload(Url),
}

fn unauthorized(registry: &str, had_credentials: bool) -> ImportError {
    if had_credentials {
        ImportError::Unauthorized(format!(
            "{registry} refused the credentials; check the username and password"
        ))
    } else {
        ImportError::Unauthorized(format!(
            "{registry} requires credentials; give a username and password for {registry}"
        ))
    }
}

/// The first `{code, message}` of a registry's `{"errors": [...]}` body.
fn registry_error_detail(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = v.get("errors")?.as_array()?.first()?;
    Some((
        first.get("code")?.as_str()?.to_owned(),
        first
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_owned(),
    ))
}

/// The digest of `bytes` in the algorithm `like` is written in: sha512 when it is a
/// sha512 digest, sha256 for anything else (a tag, a sha256 digest), which is how
/// registries name a manifest pushed by tag.
pub fn digest_as(like: &str, bytes: &[u8]) -> String {
    if like.starts_with("sha512:") {
        format!("sha512:{:x}", Sha512::digest(bytes))
    } else {
        format!("sha256:{:x}", Sha256::digest(bytes))
    }
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        _ => "request",
    }
}

/// A uniform value in [0, 1) for backoff jitter, from `wasi:random`.
fn random_unit() -> f64 {
    (wasi::random::random::get_random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
