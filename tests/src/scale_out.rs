//! The shared stores that several host replicas run on: a throwaway PostgreSQL cluster
//! and a local S3 endpoint (moto_server), started by `scripts/postgres.sh` and
//! `scripts/s3.sh` in a temporary folder and stopped when dropped.

use hoist_host::config::{Config, S3Config};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SharedStores {
    dir: tempfile::TempDir,
    /// The S3 endpoint's URL (its bucket is `hoist`).
    pub s3: String,
    /// The PostgreSQL database's URL.
    pub postgres: String,
    /// The folder of the key files every replica reads.
    pub keys: PathBuf,
}

fn script(name: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl SharedStores {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let s3 = script("s3.sh", &["start", &at("s3")]);
        let postgres = script("postgres.sh", &["start", &at("pg")]);
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(
            dir.path().join("s3.credentials"),
            "access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        )
        .unwrap();
        Self {
            dir,
            s3,
            postgres,
            keys,
        }
    }

    /// A replica's configuration: `config` with the shared database, bucket and keys.
    pub fn replica(&self, mut config: Config) -> Config {
        config.database.url = Some(self.postgres.clone());
        config.keys_dir = Some(self.keys.clone());
        config.storage.s3 = Some(S3Config {
            endpoint: Some(self.s3.clone()),
            bucket: "hoist".into(),
            region: "us-east-1".into(),
            prefix: "replicas".into(),
            credentials_file: Some(self.dir.path().join("s3.credentials")),
        });
        config
    }

    /// The same, as the TOML file a `hoist-host` process reads.
    pub fn replica_toml(&self, extra: &str) -> String {
        format!(
            "keys_dir = {keys:?}\n{extra}\n[database]\nurl = {pg:?}\n\
             [storage.s3]\nendpoint = {s3:?}\nbucket = \"hoist\"\nprefix = \"replicas\"\n\
             credentials_file = {creds:?}\n",
            keys = self.keys,
            pg = self.postgres,
            s3 = self.s3,
            creds = self.dir.path().join("s3.credentials"),
        )
    }

    /// How many times each blob's key was written (a PUT, or the copy that publishes an
    /// upload), from the endpoint's request log.
    pub fn blob_writes(&self) -> HashMap<String, usize> {
        let log = std::fs::read_to_string(self.dir.path().join("s3/moto.log")).unwrap();
        let mut writes = HashMap::new();
        for line in log.lines() {
            let Some(rest) = line.split("\"PUT /hoist/replicas/blobs/").nth(1) else {
                continue;
            };
            let key = rest.split([' ', '?']).next().unwrap_or_default();
            *writes.entry(key.to_owned()).or_default() += 1;
        }
        writes
    }
}

impl Drop for SharedStores {
    fn drop(&mut self) {
        let at = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        script("s3.sh", &["stop", &at("s3")]);
        script("postgres.sh", &["stop", &at("pg")]);
    }
}
