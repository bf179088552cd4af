//! Test images: random gzip layers, a config, a manifest, and multi-arch indexes, pushed
//! through the registry API of a real registry.

use crate::registry::{Auth, Registry};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The manifest flavour to build.
#[derive(Clone, Copy)]
pub enum Format {
    Oci,
    Docker,
}

impl Format {
    fn manifest(self) -> &'static str {
        match self {
            Format::Oci => "application/vnd.oci.image.manifest.v1+json",
            Format::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }
    fn index(self) -> &'static str {
        match self {
            Format::Oci => "application/vnd.oci.image.index.v1+json",
            Format::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }
    fn config(self) -> &'static str {
        match self {
            Format::Oci => "application/vnd.oci.image.config.v1+json",
            Format::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }
    fn layer(self) -> &'static str {
        match self {
            Format::Oci => "application/vnd.oci.image.layer.v1.tar+gzip",
            Format::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
}

/// What was pushed.
pub struct Pushed {
    pub digest: String,
    pub manifest: Vec<u8>,
    /// Every blob (configs and layers) with its size.
    pub blobs: Vec<(String, u64)>,
}

/// Pushes to one registry, with an optional Authorization header.
pub struct Pusher {
    pub base: String,
    pub authorization: Option<String>,
}

impl Pusher {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    pub fn with_auth(mut self, authorization: String) -> Self {
        self.authorization = Some(authorization);
        self
    }

    fn req(&self, method: &str, url: &str) -> ureq::Request {
        let r = ureq::request(method, url);
        match &self.authorization {
            Some(a) => r.set("authorization", a),
            None => r,
        }
    }

    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let started = self
            .req("POST", &format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .call()
            .unwrap_or_else(|e| panic!("starting an upload to {repo}: {e}"));
        let location = started.header("location").unwrap().to_owned();
        let url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        self.req("PUT", &format!("{url}{sep}digest={digest}"))
            .set("content-type", "application/octet-stream")
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("uploading {digest}: {e}"));
        digest
    }

    pub fn push_manifest(&self, repo: &str, reference: &str, media: &str, bytes: &[u8]) -> String {
        self.req(
            "PUT",
            &format!("{}/v2/{repo}/manifests/{reference}", self.base),
        )
        .set("content-type", media)
        .send_bytes(bytes)
        .unwrap_or_else(|e| panic!("pushing the manifest {repo}:{reference}: {e}"));
        sha256(bytes)
    }

    /// A single-platform image with gzip layers of about the given sizes (random, so
    /// incompressible), tagged `tag` (or pushed by digest only when `tag` is None).
    pub fn image(
        &self,
        repo: &str,
        tag: Option<&str>,
        format: Format,
        layer_sizes: &[usize],
        platform: (&str, &str),
    ) -> Pushed {
        let mut blobs = Vec::new();
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for &size in layer_sizes {
            let mut raw = vec![0u8; size];
            rand::rng().fill_bytes(&mut raw);
            diff_ids.push(sha256(&raw));
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(&raw).unwrap();
            let layer = gz.finish().unwrap();
            let digest = self.push_blob(repo, &layer);
            layers
                .push(json!({"mediaType": format.layer(), "digest": digest, "size": layer.len()}));
            blobs.push((digest, layer.len() as u64));
        }
        let config = serde_json::to_vec(&json!({
            "architecture": platform.1,
            "os": platform.0,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Labels": {"nonce": rand::random::<u64>().to_string()}},
        }))
        .unwrap();
        let config_digest = self.push_blob(repo, &config);
        blobs.insert(0, (config_digest.clone(), config.len() as u64));
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": format.manifest(),
            "config": {"mediaType": format.config(), "digest": config_digest, "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        let digest = sha256(&manifest);
        self.push_manifest(repo, tag.unwrap_or(&digest), format.manifest(), &manifest);
        Pushed {
            digest,
            manifest,
            blobs,
        }
    }

    /// A multi-arch image: one image per platform, then an index under `tag`.
    pub fn index(
        &self,
        repo: &str,
        tag: &str,
        format: Format,
        layer_sizes: &[usize],
        platforms: &[(&str, &str, Option<&str>)],
    ) -> Pushed {
        let mut entries = Vec::new();
        let mut blobs = Vec::new();
        for (os, arch, variant) in platforms {
            let child = self.image(repo, None, format, layer_sizes, (os, arch));
            let mut platform = json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                platform["variant"] = json!(v);
            }
            entries.push(json!({
                "mediaType": format.manifest(),
                "digest": child.digest,
                "size": child.manifest.len(),
                "platform": platform,
            }));
            blobs.extend(child.blobs);
        }
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": format.index(),
            "manifests": entries,
        }))
        .unwrap();
        let digest = self.push_manifest(repo, tag, format.index(), &index);
        Pushed {
            digest,
            manifest: index,
            blobs,
        }
    }
}

/// The setup of most copy tests: a source and a target Debian `docker-registry`, both
/// without auth (started in that order), and a linux/amd64 image pushed to the source.
pub fn two_registries_with_image(
    repo: &str,
    tag: &str,
    format: Format,
    layer_sizes: &[usize],
) -> (Registry, Registry, Pushed) {
    let (src, dst) = (Registry::start(Auth::None), Registry::start(Auth::None));
    let pushed =
        Pusher::new(&src.url()).image(repo, Some(tag), format, layer_sizes, ("linux", "amd64"));
    (src, dst, pushed)
}

/// [`two_registries_with_image`], with a multi-arch index of one image per platform.
pub fn two_registries_with_index(
    repo: &str,
    tag: &str,
    format: Format,
    layer_sizes: &[usize],
    platforms: &[(&str, &str, Option<&str>)],
) -> (Registry, Registry, Pushed) {
    let (src, dst) = (Registry::start(Auth::None), Registry::start(Auth::None));
    let pushed = Pusher::new(&src.url()).index(repo, tag, format, layer_sizes, platforms);
    (src, dst, pushed)
}

/// A Debian `docker-registry` standing in for Docker Hub, holding `library/app:v1`: a
/// linux/amd64 image in Docker's format with layers of `layer_sizes` bytes.
pub fn docker_hub(layer_sizes: &[usize]) -> (Registry, Pushed) {
    let hub = Registry::start(Auth::None);
    let app = Pusher::new(&hub.url()).image(
        "library/app",
        Some("v1"),
        Format::Docker,
        layer_sizes,
        ("linux", "amd64"),
    );
    (hub, app)
}
