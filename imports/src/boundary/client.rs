//! The pooled HTTP client that carries the plugin's requests: keep-alive connections
//! per origin, DNS answers filtered by the egress policy, and TLS with the system's
//! usual roots plus the extra CAs the configuration names per registry.

use crate::egress::{EgressPolicy, Refused};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::WasiBody;

/// Why the policy stopped a connection: the host, the address and its class.
#[derive(Debug, Clone)]
pub struct PolicyDenied {
    pub host: String,
    pub ip: IpAddr,
    pub class: Refused,
}

impl std::fmt::Display for PolicyDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {} ({}), which imports may not reach; allow it in [egress] \
             allowed_networks if it is a registry you trust",
            self.host,
            self.ip,
            self.class.describe()
        )
    }
}

impl std::error::Error for PolicyDenied {}

/// Resolves names with the system resolver and keeps only the addresses the policy
/// allows; the connector then connects to those and no others.
#[derive(Clone)]
pub struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let answers: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy.trusts(&host) {
                return Ok(answers.into_iter());
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = answers
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert(PolicyDenied {
                            host: host.clone(),
                            ip: a.ip(),
                            class,
                        });
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(denied)) => Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    denied,
                )),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

pub type PooledClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<PolicyResolver>>, WasiBody>;

/// One pooled client per TLS trust setting: the default roots, and each registry that
/// has extra CAs of its own.
#[derive(Clone)]
pub struct Clients {
    default: PooledClient,
    per_host: Arc<HashMap<String, PooledClient>>,
    policy: Arc<EgressPolicy>,
}

impl Clients {
    /// `extra_cas` maps a registry host (`registry.example:5000`, or without a port) to
    /// PEM certificates it is also trusted with.
    pub fn new(
        policy: EgressPolicy,
        extra_cas: &HashMap<String, Vec<u8>>,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let policy = Arc::new(policy);
        let default = build(&policy, None, connect_timeout)?;
        let mut per_host = HashMap::new();
        for (host, pem) in extra_cas {
            per_host.insert(
                host.to_ascii_lowercase(),
                build(&policy, Some((host, pem)), connect_timeout)?,
            );
        }
        Ok(Self {
            default,
            per_host: Arc::new(per_host),
            policy,
        })
    }

    /// Clients that reach public addresses only, with the usual roots: the default policy.
    pub fn public_only() -> Self {
        Self::new(
            EgressPolicy::default(),
            &HashMap::new(),
            Duration::from_secs(15),
        )
        .expect("the default TLS configuration builds")
    }

    /// The client for `authority` (`host[:port]`).
    pub fn for_authority(&self, authority: &str) -> &PooledClient {
        let authority = authority.to_ascii_lowercase();
        let host = authority
            .rsplit_once(':')
            .filter(|(h, p)| !h.ends_with(']') || !p.is_empty())
            .map_or(authority.as_str(), |(h, _)| h);
        self.per_host
            .get(&authority)
            .or_else(|| self.per_host.get(host))
            .unwrap_or(&self.default)
    }

    /// Checks an address written literally in a URL, which skips the resolver.
    pub fn check_literal(&self, host: &str) -> Result<(), PolicyDenied> {
        if self.policy.trusts(host) {
            return Ok(());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.policy.check(ip).map_err(|class| PolicyDenied {
                host: host.to_owned(),
                ip,
                class,
            }),
            Err(_) => Ok(()),
        }
    }
}

fn build(
    policy: &Arc<EgressPolicy>,
    extra: Option<(&String, &Vec<u8>)>,
    connect_timeout: Duration,
) -> Result<PooledClient, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    if let Some((host, pem)) = extra {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the CA certificates for {host}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA certificates for {host}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "the CA certificates for {host} hold no PEM certificate"
            ));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(PolicyResolver {
        policy: policy.clone(),
    });
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .build(https))
}

/// The policy refusal somewhere in an error's chain of causes.
pub fn policy_denial(error: &(dyn std::error::Error + 'static)) -> Option<PolicyDenied> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(denied) = e.downcast_ref::<PolicyDenied>() {
            return Some(denied.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(denied) = inner.downcast_ref::<PolicyDenied>()
        {
            return Some(denied.clone());
        }
        current = e.source();
    }
    None
}
