//! The plugin shipped as an OCI artifact, the way WebAssembly components are shipped today
//! (the layout `wkg` and wasm-pkg-tools use): an OCI image manifest whose config has the
//! media type `application/vnd.wasm.config.v0+json` and whose one layer, `application/wasm`,
//! is the component.
//!
//! A host configured with `plugin = "oci://registry/ns/hoist-plugin@sha256:…"` pulls it at
//! start ([`pull`]): through the same pooled client, egress policy, mirrors, plain-HTTP
//! list and CA files as the imports, anonymously or with the account the configuration
//! names. The manifest must have the pinned digest, the layer the digest the manifest
//! names, and the media types above; the contract version is checked when the component
//! is loaded. A pinned artifact is kept in the cache folder, so a restart does not need
//! the registry. [`push`] writes the same layout.

use crate::boundary::client::Clients;
use crate::boundary::credentials::Secret;
use crate::boundary::fetch::{Response, send};
use crate::settings::RegistrySettings;
use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use hoist_plugin::auth::{Challenge, TokenResponse, basic_authorization, parse_challenge};
use hoist_plugin::reference::Reference;
use hoist_plugin::url::Url;
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// The media type of a WebAssembly artifact's config.
pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the layer that holds the component.
pub(crate) const LAYER_MEDIA_TYPE: &str = "application/wasm";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// As distribution caps manifests.
const MAX_MANIFEST: usize = 4 << 20;
/// Far above the plugin's size (under 1 MiB), far below what would hurt the host.
const MAX_COMPONENT: usize = 64 << 20;
const MAX_REDIRECTS: usize = 5;

/// Where the host's plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// The plugin compiled into the host.
    Builtin,
    /// A component file.
    File(PathBuf),
    /// An OCI artifact: `oci://registry/namespace/name@sha256:…` (or `:tag`).
    Oci(ArtifactRef),
}

impl PluginSource {
    /// Reads the configuration's `plugin`: `oci://…` is an artifact, anything else a path.
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("") => Ok(Self::Builtin),
            Some(v) if v.starts_with("oci://") => Ok(Self::Oci(ArtifactRef::parse(v)?)),
            Some(v) => Ok(Self::File(v.into())),
        }
    }
}

/// An artifact's address: `oci://registry/repository@digest`, or with a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ArtifactRef {
    /// Parses `oci://registry/ns/name@sha256:…` (the `oci://` is optional here). The
    /// registry must be named: a plugin is not looked for on Docker Hub by accident.
    pub fn parse(input: &str) -> Result<Self> {
        let bare = input.strip_prefix("oci://").unwrap_or(input);
        let first = bare.split('/').next().unwrap_or("");
        ensure!(
            bare.contains('/') && (first.contains(['.', ':']) || first == "localhost"),
            "{input:?} does not name a registry: write oci://REGISTRY/NAMESPACE/NAME@sha256:… \
             (for example oci://registry.example.com/hoist/hoist-plugin@sha256:…)"
        );
        let parsed = Reference::parse(bare)
            .map_err(|e| anyhow!("{input:?} is not a valid OCI reference: {}", e.reason()))?;
        let named_tag = bare.rsplit('/').next().is_some_and(|last| {
            let name = last.split('@').next().unwrap_or(last);
            name.contains(':')
        });
        Ok(Self {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().filter(|_| named_tag).map(str::to_owned),
            digest: parsed.digest().map(str::to_owned),
        })
    }

    /// The digest or the tag, as the manifest's URL names it.
    fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// How to reach registries for artifacts: the imports' network and settings, and an
/// optional account.
#[derive(Clone)]
pub struct ArtifactAccess {
    pub clients: Clients,
    pub settings: RegistrySettings,
    /// Username and password for the artifact's registry (and the token realm it names).
    pub credential: Option<(String, Secret)>,
}

/// A pulled plugin.
#[derive(Debug)]
pub struct Pulled {
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The digest of the artifact's manifest.
    pub manifest_digest: String,
    /// Whether it came from the cache folder rather than the registry.
    pub cached: bool,
}

/// Pulls the plugin artifact `reference`, checking its digests and media types. A
/// reference without a digest is refused unless `allow_tag`. A pinned artifact is kept
/// in (and first looked for in) `cache_dir`.
pub async fn pull(
    reference: &ArtifactRef,
    access: &ArtifactAccess,
    allow_tag: bool,
    cache_dir: &Path,
) -> Result<Pulled> {
    if reference.digest.is_none() && !allow_tag {
        bail!(
            "the plugin {reference} names no digest, and a tag can move to other code; pin it \
             (oci://{}/{}@sha256:…, the digest `hoist-host plugin push` printed), or set \
             [imports] plugin_allow_tag = true to trust the tag",
            reference.registry,
            reference.repository
        );
    }
    let cached_at = reference
        .digest
        .as_deref()
        .map(|d| cache_dir.join("artifacts").join(d.replace(':', "-")));
    if let Some(dir) = &cached_at
        && let Some(pulled) = from_cache(dir, reference)
    {
        return Ok(pulled);
    }

    let mut session = Session::new(access, &reference.registry, &reference.repository, false);
    let mut last_error = None;
    for endpoint in access.settings.endpoints(&reference.registry) {
        match pull_from(&mut session, &endpoint, reference).await {
            Ok((manifest, component)) => {
                let manifest_digest = sha256(&manifest);
                if let Some(dir) = &cached_at
                    && let Err(e) = keep(dir, &manifest, &component)
                {
                    tracing::warn!(error = %e, "cannot keep the plugin artifact in the cache");
                }
                return Ok(Pulled {
                    component,
                    manifest_digest,
                    cached: false,
                });
            }
            // A mirror that cannot be reached may be followed by another; a wrong
            // artifact is wrong everywhere.
            Err(PullError::Unreachable(e)) => last_error = Some(e),
            Err(PullError::Refused(e)) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("no endpoint for {}", reference.registry)))
}

enum PullError {
    Unreachable(anyhow::Error),
    Refused(anyhow::Error),
}

async fn pull_from(
    session: &mut Session<'_>,
    endpoint: &Url,
    reference: &ArtifactRef,
) -> Result<(Vec<u8>, Vec<u8>), PullError> {
    let repo = &reference.repository;
    let url = endpoint.with_path(&format!(
        "/v2/{repo}/manifests/{}",
        reference.manifest_reference()
    ));
    let accept = [(header::ACCEPT, MANIFEST_MEDIA_TYPE.to_owned())];
    let response = session
        .request(Method::GET, &url, &accept, Bytes::new(), MAX_MANIFEST)
        .await
        .map_err(PullError::Unreachable)?;
    let refused = PullError::Refused;
    if response.status != StatusCode::OK {
        return Err(refused(status_error(
            &response,
            &format!("the plugin artifact {reference}"),
        )));
    }
    let manifest = response.body.to_vec();
    let digest = sha256(&manifest);
    if let Some(pinned) = &reference.digest
        && *pinned != digest
    {
        return Err(refused(anyhow!(
            "the plugin artifact {reference} answered a manifest whose digest is {digest}, not \
             the pinned {pinned}: the registry holds other content under that name; check the \
             digest (use the one `hoist-host plugin push` printed)"
        )));
    }
    let layer = check_manifest(&manifest, reference).map_err(refused)?;
    let url = endpoint.with_path(&format!("/v2/{repo}/blobs/{}", layer.digest));
    let response = session
        .request(Method::GET, &url, &[], Bytes::new(), MAX_COMPONENT)
        .await
        .map_err(PullError::Unreachable)?;
    if response.status != StatusCode::OK {
        return Err(refused(status_error(
            &response,
            &format!("the component layer {} of {reference}", layer.digest),
        )));
    }
    let component = response.body.to_vec();
    let actual = sha256(&component);
    if actual != layer.digest || component.len() as u64 != layer.size {
        return Err(refused(anyhow!(
            "the component layer of {reference} does not match its manifest: the manifest \
             names {} ({} bytes), the registry sent {actual} ({} bytes); nothing was loaded",
            layer.digest,
            layer.size,
            component.len()
        )));
    }
    Ok((manifest, component))
}

/// The layer descriptor of a plugin artifact's manifest.
struct Layer {
    digest: String,
    size: u64,
}

/// Checks that `manifest` is a WebAssembly component artifact: an OCI image manifest, the
/// wasm config media type, and exactly one `application/wasm` layer.
fn check_manifest(manifest: &[u8], reference: &ArtifactRef) -> Result<Layer> {
    let value: Value = serde_json::from_slice(manifest)
        .with_context(|| format!("the manifest of {reference} is not JSON"))?;
    let media_type = value["mediaType"].as_str().unwrap_or(MANIFEST_MEDIA_TYPE);
    ensure!(
        media_type == MANIFEST_MEDIA_TYPE,
        "{reference} is a {media_type}, not a plugin artifact (an OCI image manifest with a \
         {CONFIG_MEDIA_TYPE} config and one {LAYER_MEDIA_TYPE} layer); is this an image?"
    );
    let config = value["config"]["mediaType"].as_str().unwrap_or("none");
    ensure!(
        config == CONFIG_MEDIA_TYPE,
        "{reference} is not a WebAssembly component artifact: its config's media type is \
         {config}, where a plugin has {CONFIG_MEDIA_TYPE}; push the plugin with \
         `hoist-host plugin push` (or `wkg oci push`)"
    );
    let layers = value["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let [layer] = layers else {
        bail!(
            "{reference} has {} layers; a plugin artifact has exactly one, the component \
             ({LAYER_MEDIA_TYPE})",
            layers.len()
        );
    };
    let layer_type = layer["mediaType"].as_str().unwrap_or("none");
    ensure!(
        layer_type == LAYER_MEDIA_TYPE,
        "the layer of {reference} has the media type {layer_type}, not {LAYER_MEDIA_TYPE}: \
         it is not a WebAssembly component"
    );
    let digest = layer["digest"]
        .as_str()
        .filter(|d| d.starts_with("sha256:") && d.len() == 71)
        .ok_or_else(|| anyhow!("the layer of {reference} has no sha256 digest"))?;
    let size = layer["size"]
        .as_u64()
        .ok_or_else(|| anyhow!("the layer of {reference} has no size"))?;
    ensure!(
        size as usize <= MAX_COMPONENT,
        "the component of {reference} is {size} bytes; a plugin over {MAX_COMPONENT} bytes is \
         refused"
    );
    Ok(Layer {
        digest: digest.to_owned(),
        size,
    })
}

/// A pinned artifact kept by an earlier start, if it is intact.
fn from_cache(dir: &Path, reference: &ArtifactRef) -> Option<Pulled> {
    let manifest = std::fs::read(dir.join("manifest.json")).ok()?;
    let component = std::fs::read(dir.join("component.wasm")).ok()?;
    let digest = sha256(&manifest);
    let layer = check_manifest(&manifest, reference).ok()?;
    (Some(&digest) == reference.digest.as_ref() && sha256(&component) == layer.digest).then_some(
        Pulled {
            component,
            manifest_digest: digest,
            cached: true,
        },
    )
}

fn keep(dir: &Path, manifest: &[u8], component: &[u8]) -> std::io::Result<()> {
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join("manifest.json"), manifest)?;
    std::fs::write(tmp.join("component.wasm"), component)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir)
}

/// What a component imports and exports, for the artifact's config.
pub(crate) struct ComponentInfo {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl ComponentInfo {
    /// Reads the component's imports and exports (compiling it, which also proves it is one).
    pub fn of(bytes: &[u8]) -> Result<Self> {
        let engine = wasmtime::Engine::default();
        let component = crate::compiled::compile(&engine, bytes)?;
        let ty = component.component_type();
        Ok(Self {
            imports: ty.imports(&engine).map(|(n, _)| n.to_owned()).collect(),
            exports: ty.exports(&engine).map(|(n, _)| n.to_owned()).collect(),
        })
    }
}

/// Pushes `component` as a plugin artifact to `reference` (its tag, or by digest alone),
/// and returns the pinned reference (`oci://…@sha256:…`) a host's `plugin` takes.
pub async fn push(
    component: &[u8],
    reference: &ArtifactRef,
    access: &ArtifactAccess,
) -> Result<ArtifactRef> {
    let info = ComponentInfo::of(component)?;
    let layer_digest = sha256(component);
    // The wasm OCI artifact config (wasm-pkg-tools' `WasmConfig`).
    let config = serde_json::to_vec(&json!({
        "created": hoist_common::clock::now_rfc3339(),
        "author": null,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {"exports": info.exports, "imports": info.imports, "target": null},
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(&config), "size": config.len()},
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": component.len(),
            "annotations": {"org.opencontainers.image.title": "hoist_plugin.wasm"},
        }],
        "annotations": {"org.opencontainers.image.created": hoist_common::clock::now_rfc3339()},
    }))?;
    let endpoint = access.settings.origin(&reference.registry);
    let mut session = Session::new(access, &reference.registry, &reference.repository, true);
    let repo = &reference.repository;
    for blob in [&config[..], component] {
        let digest = sha256(blob);
        let url = endpoint.with_path(&format!("/v2/{repo}/blobs/{digest}"));
        let present = session
            .request(Method::HEAD, &url, &[], Bytes::new(), 0)
            .await?;
        if present.status == StatusCode::OK {
            continue;
        }
        let url = endpoint.with_path(&format!("/v2/{repo}/blobs/uploads/"));
        let started = session
            .request(Method::POST, &url, &[], Bytes::new(), MAX_MANIFEST)
            .await?;
        ensure!(
            started.status == StatusCode::ACCEPTED,
            status_error(&started, &format!("starting an upload to {reference}"))
        );
        let location = started
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| anyhow!("{reference}: the registry sent no upload location"))?;
        let url = url
            .join(location)
            .map_err(|e| anyhow!("the upload location: {e}"))?
            .with_query("digest", &digest);
        let headers = [(header::CONTENT_TYPE, "application/octet-stream".to_owned())];
        let done = session
            .request(
                Method::PUT,
                &url,
                &headers,
                Bytes::copy_from_slice(blob),
                MAX_MANIFEST,
            )
            .await?;
        ensure!(
            done.status == StatusCode::CREATED,
            status_error(&done, &format!("uploading {digest} to {reference}"))
        );
    }
    let manifest_digest = sha256(&manifest);
    let tag_or_digest = reference.tag.as_deref().unwrap_or(&manifest_digest);
    let url = endpoint.with_path(&format!("/v2/{repo}/manifests/{tag_or_digest}"));
    let headers = [(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE.to_owned())];
    let put = session
        .request(Method::PUT, &url, &headers, manifest.into(), MAX_MANIFEST)
        .await?;
    ensure!(
        put.status == StatusCode::CREATED,
        status_error(&put, &format!("pushing the manifest of {reference}"))
    );
    Ok(ArtifactRef {
        tag: None,
        digest: Some(manifest_digest),
        ..reference.clone()
    })
}

fn status_error(response: &Response, what: &str) -> anyhow::Error {
    let body = String::from_utf8_lossy(&response.body[..response.body.len().min(300)]);
    match response.status {
        StatusCode::NOT_FOUND => anyhow!("{what} does not exist (404 Not Found): {body}"),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => anyhow!(
            "{what}: the registry refused the credentials ({}); check [imports] \
             plugin_username and plugin_password_file (or HOIST_PLUGIN_PASSWORD)",
            response.status
        ),
        status => anyhow!("{what}: the registry answered {status}: {body}"),
    }
}

/// Requests to one repository of one registry, with the registry auth protocol: Basic,
/// or a Bearer token from the realm its challenge names (anonymous unless an account is
/// configured). Credentials go to the registry's endpoints and that realm only, never to
/// a redirect's host.
struct Session<'a> {
    access: &'a ArtifactAccess,
    registry: String,
    scope: String,
    authorization: Option<String>,
}

impl<'a> Session<'a> {
    fn new(access: &'a ArtifactAccess, registry: &str, repository: &str, push: bool) -> Self {
        let scope = if push {
            hoist_plugin::auth::push_scope(repository)
        } else {
            hoist_plugin::auth::pull_scope(repository)
        };
        Self {
            access,
            registry: registry.to_owned(),
            scope,
            authorization: None,
        }
    }

    /// Sends a request, answering one 401 with the challenge's protocol.
    async fn request(
        &mut self,
        method: Method,
        url: &Url,
        headers: &[(header::HeaderName, String)],
        body: Bytes,
        limit: usize,
    ) -> Result<Response> {
        let first = self
            .follow(method.clone(), url, headers, body.clone(), limit)
            .await?;
        // A 401, or a 403 whose challenge asks for a token of a wider scope.
        let challenged = first.status == StatusCode::UNAUTHORIZED
            || (first.status == StatusCode::FORBIDDEN
                && first.headers.contains_key(header::WWW_AUTHENTICATE));
        if !challenged || (self.authorization.is_some() && first.status == StatusCode::FORBIDDEN) {
            return Ok(first);
        }
        let challenge = first
            .headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        self.authorization = Some(match challenge {
            Some(Challenge::Bearer { realm, service, .. }) => {
                // The session's own scope (pull, or pull and push), whatever this one
                // request was challenged for, so that one token serves the session.
                let token = self.token(&realm, service.as_deref()).await?;
                format!("Bearer {token}")
            }
            Some(Challenge::Basic) => match &self.access.credential {
                Some((user, password)) => basic_authorization(user, password.expose()),
                None => bail!(
                    "{} asks for credentials to reach the plugin artifact; set [imports] \
                     plugin_username and plugin_password_file (or HOIST_PLUGIN_PASSWORD)",
                    self.registry
                ),
            },
            None => bail!(
                "{} answered 401 without a challenge this host understands",
                self.registry
            ),
        });
        self.follow(method, url, headers, body, limit).await
    }

    /// A token from `realm`, with the account's Basic credentials when there is one.
    async fn token(&self, realm: &str, service: Option<&str>) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| anyhow!("the token realm: {e}"))?;
        if let Some(service) = service {
            url = url.with_query("service", service);
        }
        url = url.with_query("scope", &self.scope);
        let authorization = self
            .access
            .credential
            .as_ref()
            .map(|(user, password)| basic_authorization(user, password.expose()));
        let response = send(
            &self.access.clients,
            Method::GET,
            &url,
            &[],
            authorization.as_deref(),
            Bytes::new(),
            1 << 20,
        )
        .await?;
        if !response.status.is_success() {
            return Err(status_error(
                &response,
                &format!("the token realm of {}", self.registry),
            ));
        }
        let answer: TokenResponse = serde_json::from_slice(&response.body)
            .context("the token realm's answer is not a token")?;
        answer
            .token()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the token realm of {} sent no token", self.registry))
    }

    /// Sends a request and follows redirects, each as a new request (checked by the
    /// egress policy like any other) that carries no credentials off the origin.
    async fn follow(
        &self,
        method: Method,
        url: &Url,
        headers: &[(header::HeaderName, String)],
        body: Bytes,
        limit: usize,
    ) -> Result<Response> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let authorization = self
                .authorization
                .as_deref()
                .filter(|_| current.same_origin(url));
            let response = send(
                &self.access.clients,
                method.clone(),
                &current,
                headers,
                authorization,
                body.clone(),
                limit,
            )
            .await?;
            let redirect = matches!(response.status.as_u16(), 301 | 302 | 303 | 307 | 308);
            let location = response
                .headers
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok());
            match location.filter(|_| redirect && method == Method::GET) {
                Some(location) => {
                    current = current
                        .join(location)
                        .map_err(|e| anyhow!("a redirect from {}: {e}", current.redacted()))?;
                }
                None => return Ok(response),
            }
        }
        bail!(
            "{} redirected more than {MAX_REDIRECTS} times",
            url.redacted()
        )
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hoist_common::hex(&Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_sources_read_as_a_file_or_an_artifact() {
        assert_eq!(PluginSource::parse(None).unwrap(), PluginSource::Builtin);
        assert_eq!(
            PluginSource::parse(Some("/opt/hoist_plugin.wasm")).unwrap(),
            PluginSource::File("/opt/hoist_plugin.wasm".into())
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let PluginSource::Oci(pinned) = PluginSource::parse(Some(&format!(
            "oci://127.0.0.1:5000/ns/hoist-plugin@{digest}"
        )))
        .unwrap() else {
            panic!("an oci:// reference is an artifact");
        };
        assert_eq!(pinned.registry, "127.0.0.1:5000");
        assert_eq!(pinned.repository, "ns/hoist-plugin");
        assert_eq!(pinned.tag, None, "no tag was written");
        assert_eq!(pinned.digest.as_deref(), Some(digest.as_str()));
        let tagged = ArtifactRef::parse("oci://registry.example/ns/p:0.2.0").unwrap();
        assert_eq!(tagged.tag.as_deref(), Some("0.2.0"));
        assert_eq!(tagged.to_string(), "oci://registry.example/ns/p:0.2.0");
        let err = ArtifactRef::parse("oci://hoist-plugin@sha256:x").unwrap_err();
        assert!(
            err.to_string().contains("does not name a registry"),
            "{err}"
        );
    }

    #[test]
    fn only_a_wasm_component_artifact_passes() {
        let reference = ArtifactRef::parse("oci://r.example/ns/p:1").unwrap();
        let layer = json!({"mediaType": LAYER_MEDIA_TYPE, "digest": format!("sha256:{}", "b".repeat(64)), "size": 10});
        let manifest = |config: &str, layers: Value| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": config, "digest": "sha256:00", "size": 2},
                "layers": layers,
            }))
            .unwrap()
        };
        assert!(check_manifest(&manifest(CONFIG_MEDIA_TYPE, json!([layer])), &reference).is_ok());
        let image = check_manifest(
            &manifest("application/vnd.oci.image.config.v1+json", json!([layer])),
            &reference,
        )
        .err()
        .unwrap();
        assert!(image.to_string().contains(CONFIG_MEDIA_TYPE), "{image}");
        let two = check_manifest(
            &manifest(CONFIG_MEDIA_TYPE, json!([layer, layer])),
            &reference,
        )
        .err()
        .unwrap();
        assert!(two.to_string().contains("exactly one"), "{two}");
    }
}
