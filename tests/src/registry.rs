//! A real CNCF distribution registry (Debian's `docker-registry`) on a loopback port, with
//! its storage in a temporary folder. It stops when dropped.

use crate::{free_port, wait_until};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How a registry authenticates clients.
pub enum Auth {
    None,
    /// htpasswd basic auth with one user.
    Basic {
        user: String,
        password: String,
    },
    /// The distribution token flow against a token server.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem: String,
    },
}

pub struct Registry {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Auth) -> Self {
        Self::start_with(auth, "")
    }

    /// Starts a registry with extra top-level YAML appended to its configuration.
    pub fn start_with(auth: Auth, extra_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        match &auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let htpasswd = dir.path().join("htpasswd");
                let status = Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&htpasswd)
                    .args([user, password])
                    .stderr(Stdio::null())
                    .status()
                    .expect("htpasswd (apache2-utils) is installed by scripts/install-deps.sh");
                assert!(status.success());
                config += &format!(
                    "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert_pem,
            } => {
                let cert = dir.path().join("token-cert.pem");
                std::fs::write(&cert, cert_pem).unwrap();
                config += &format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                     issuer: {issuer}\n    rootcertbundle: {}\n",
                    cert.display()
                );
            }
        }
        config += extra_config;
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed by scripts/install-deps.sh");
        let registry = Self {
            port,
            child,
            _dir: dir,
        };
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until(Duration::from_secs(20), "docker-registry to listen", || {
            // Any HTTP answer (200, or 401 with auth) means it is serving.
            match ureq::get(&url).call() {
                Ok(_) | Err(ureq::Error::Status(_, _)) => true,
                Err(_) => false,
            }
        });
        registry
    }

    /// `127.0.0.1:PORT`, as references name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
