//! The pooled HTTP client that carries the plugin's requests: keep-alive connections
//! per origin, every dialled address checked by the egress policy, and TLS with the
//! system's usual roots plus the extra CAs the configuration names per registry.

use super::pacing::Pacing;
use crate::egress::{EgressPolicy, Refused};
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::WasiBody;

/// Why the policy stopped a connection: the host, the address and its class.
#[derive(Debug, Clone)]
pub(crate) struct PolicyDenied {
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

/// Dials the plugin's connections, and the one place where the egress policy is applied:
/// every address it is about to connect to, whether it came from DNS or was written
/// literally in the URL (IPv4, IPv6 with or without a port, mapped or embedded forms), is
/// checked first, and only allowed addresses are dialled. Redirects, token realms,
/// mirrors and the external target all arrive here as new connections. Checking the
/// address dialled, not a name, leaves no window for a DNS answer that changes between
/// the check and the connection (rebinding).
#[derive(Clone)]
pub(crate) struct PolicyConnector {
    policy: Arc<EgressPolicy>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for PolicyConnector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.dial(&uri).await })
    }
}

impl PolicyConnector {
    async fn dial(&self, uri: &Uri) -> std::io::Result<TokioIo<TcpStream>> {
        let invalid =
            |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned());
        let host = uri.host().ok_or_else(|| invalid("the URL has no host"))?;
        // `Uri::host` keeps an IPv6 literal's brackets.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let candidates: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port)).await?.collect(),
        };
        let trusted = self.policy.trusts(bare);
        let (mut refused, mut failed) = (None, None);
        for address in candidates {
            if !trusted && let Err(class) = self.policy.check(address.ip()) {
                refused.get_or_insert(PolicyDenied {
                    host: host.to_owned(),
                    ip: address.ip(),
                    class,
                });
                continue;
            }
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true)?;
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(e)) => failed = Some(e),
                Err(_) => {
                    failed = Some(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("connecting to {address} timed out"),
                    ));
                }
            }
        }
        // An allowed address that could not be reached says more than a refused one.
        Err(match (failed, refused) {
            (Some(e), _) => e,
            (None, Some(denied)) => {
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, denied)
            }
            (None, None) => std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ),
        })
    }
}

pub(crate) type PooledClient = Client<hyper_rustls::HttpsConnector<PolicyConnector>, WasiBody>;

/// One pooled client per TLS trust setting: the default roots, and each registry that
/// has extra CAs of its own; and the pacing every request to a source goes through.
#[derive(Clone)]
pub struct Clients {
    default: PooledClient,
    per_host: Arc<HashMap<String, PooledClient>>,
    pacing: Arc<Pacing>,
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
            pacing: Arc::default(),
        })
    }

    /// These clients with the request ceilings of `pacing`; the clones made before do not
    /// share them.
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = Arc::new(pacing);
        self
    }

    /// The request ceilings and the quotas sources reported, shared by every clone.
    pub(crate) fn pacing(&self) -> &Arc<Pacing> {
        &self.pacing
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

    /// The client for `authority` (`host[:port]`): the one with that registry's extra CAs,
    /// named with or without its port, else the default.
    pub(crate) fn for_authority(&self, authority: &str) -> &PooledClient {
        let authority = authority.to_ascii_lowercase();
        let host = authority
            .parse::<http::uri::Authority>()
            .map(|a| a.host().to_owned())
            .unwrap_or_else(|_| authority.clone());
        self.per_host
            .get(&authority)
            .or_else(|| self.per_host.get(&host))
            .unwrap_or(&self.default)
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
    let dial = PolicyConnector {
        policy: policy.clone(),
        connect_timeout,
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(dial);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .build(https))
}

/// The policy refusal somewhere in an error's chain of causes.
pub(crate) fn policy_denial(error: &(dyn std::error::Error + 'static)) -> Option<PolicyDenied> {
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
