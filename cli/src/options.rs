//! Options that several commands share: how to reach registries, where credentials come
//! from, and how to report.

use crate::creds::{self, AuthFile, Creds, Lookup};
use crate::failure::{Failure, Side};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct Access {
    /// Reach REGISTRY over plain HTTP instead of HTTPS; repeat for several.
    #[arg(
        long = "plain-http",
        visible_alias = "insecure",
        value_name = "REGISTRY"
    )]
    pub plain_http: Vec<String>,
    /// Reach REGISTRY at URL instead (a mirror, such as a pull-through cache for
    /// docker.io); repeat for several, tried in order.
    #[arg(long = "mirror", value_name = "REGISTRY=URL")]
    pub mirrors: Vec<String>,
    /// Retries of a failed request (network errors, 5xx, 408, 429), with backoff.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub retry: u32,
    /// A docker config.json to read credentials from (its `auths`). Default:
    /// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json, when they exist. Under
    /// wasmtime, preopen its directory with `--dir`.
    #[arg(long, env = "REGISTRY_AUTH_FILE", value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Send credentials over plain HTTP to a registry that is not on this machine.
    /// Refused by default: anyone on the path could read them.
    #[arg(long)]
    pub allow_cleartext_creds: bool,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Output {
    /// Print newline-delimited JSON events on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr; errors and the result only.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One side of a command (the source, the destination) that may need credentials.
pub struct SideSpec<'a> {
    pub registry: String,
    pub flag: &'static str,
    pub env: &'static str,
    pub action: &'static str,
    /// The value of the flag (or its variable), if given.
    pub given: Option<&'a str>,
}

/// What the engine needs to reach the registries, and what the hints need to know.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub endpoints: Vec<(String, Vec<String>)>,
    pub insecure: Vec<String>,
    pub credentials: Vec<(String, String, String)>,
    pub sides: Vec<Side>,
}

impl Access {
    /// The auth file, read once per command.
    pub fn auth_file(&self) -> Result<Option<AuthFile>, Failure> {
        match creds::auth_file_path(self.authfile.as_deref()) {
            Some((path, named)) => AuthFile::load(&path, named),
            None => Ok(None),
        }
    }

    /// The mirrors as `(registry, [url…])`, in the order given.
    pub fn endpoints(&self) -> Result<Vec<(String, Vec<String>)>, Failure> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for m in &self.mirrors {
            let Some((registry, url)) = m.split_once('=') else {
                return Err(Failure::usage(
                    format!("--mirror {m:?} is not REGISTRY=URL"),
                    "for example --mirror docker.io=http://127.0.0.1:5001",
                ));
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::usage(
                    format!("--mirror {m:?}: the URL must start with http:// or https://"),
                    "for example --mirror docker.io=https://mirror.example",
                ));
            }
            let registry = canonical_registry(registry);
            match out.iter_mut().find(|(r, _)| *r == registry) {
                Some((_, urls)) => urls.push(url.into()),
                None => out.push((registry, vec![url.into()])),
            }
        }
        Ok(out)
    }

    /// Credentials for each side (flag, else variable, else auth file), checked against
    /// the clear-text policy.
    pub fn resolve(
        &self,
        sides: &[SideSpec<'_>],
        auth_file: Option<&AuthFile>,
    ) -> Result<Resolved, Failure> {
        let endpoints = self.endpoints()?;
        let insecure: Vec<String> = self
            .plain_http
            .iter()
            .map(|r| canonical_registry(r))
            .collect();
        let mut resolved = Resolved {
            endpoints,
            insecure,
            ..Default::default()
        };
        for spec in sides {
            let mut side = Side {
                registry: spec.registry.clone(),
                flag: spec.flag,
                env: spec.env,
                action: spec.action,
                ..Default::default()
            };
            let found: Option<Creds> = match (spec.given, auth_file) {
                (Some(value), _) => {
                    side.creds_from = Some(format!("{} or {}", spec.flag, spec.env));
                    Some(creds::parse_pair(spec.flag, value)?)
                }
                (None, Some(file)) => match file.lookup(&spec.registry) {
                    Lookup::Found(c) => {
                        side.creds_from = Some(format!("the auth file {}", file.path));
                        Some(c)
                    }
                    Lookup::Unusable(why) => {
                        side.auth_file_note = Some(why);
                        None
                    }
                    Lookup::Missing => None,
                },
                (None, None) => None,
            };
            if let Some(c) = found {
                self.check_cleartext(&spec.registry, &resolved.endpoints, spec.flag)?;
                let entry = (spec.registry.clone(), c.username, c.password);
                match resolved
                    .credentials
                    .iter()
                    .find(|(r, _, _)| *r == spec.registry)
                {
                    // The engine keys credentials by registry: one set each.
                    Some(existing) if *existing != entry => {
                        return Err(Failure::usage(
                            format!(
                                "two different credentials for {}, which is both source and \
                                 destination",
                                spec.registry
                            ),
                            "give one set of credentials that may both pull and push",
                        ));
                    }
                    Some(_) => {}
                    None => resolved.credentials.push(entry),
                }
            }
            resolved.sides.push(side);
        }
        Ok(resolved)
    }

    /// Credentials go over plain HTTP only to this machine, unless the user accepts it.
    fn check_cleartext(
        &self,
        registry: &str,
        endpoints: &[(String, Vec<String>)],
        flag: &str,
    ) -> Result<(), Failure> {
        if self.allow_cleartext_creds {
            return Ok(());
        }
        let mirrors = endpoints
            .iter()
            .find(|(r, _)| r == registry)
            .map(|(_, urls)| urls.as_slice());
        let plain_hosts: Vec<String> = match mirrors {
            Some(urls) => urls
                .iter()
                .filter_map(|u| u.strip_prefix("http://"))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
                .collect(),
            None if self
                .plain_http
                .iter()
                .any(|r| canonical_registry(r) == registry) =>
            {
                vec![registry.to_owned()]
            }
            None => Vec::new(),
        };
        match plain_hosts.iter().find(|h| !creds::is_loopback(h)) {
            Some(host) => Err(Failure::policy(
                format!(
                    "refusing to send the credentials for {registry} ({flag}) over plain \
                     HTTP to {host}, where anyone on the path could read them"
                ),
                "serve the registry over HTTPS, or pass --allow-cleartext-creds to accept \
                 the risk",
            )),
            None => Ok(()),
        }
    }
}

/// A registry as references name it: Docker Hub's aliases folded into `docker.io`.
pub fn canonical_registry(name: &str) -> String {
    match name {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        access: Access,
    }

    fn access(args: &[&str]) -> Access {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .access
    }

    fn side<'a>(registry: &str, given: Option<&'a str>) -> SideSpec<'a> {
        SideSpec {
            registry: registry.into(),
            flag: "--src-creds",
            env: "HOIST_SRC_CREDS",
            action: "pull from",
            given,
        }
    }

    #[test]
    fn mirrors_group_by_registry_and_need_a_scheme() {
        let a = access(&[
            "--mirror",
            "docker.io=http://127.0.0.1:5001",
            "--mirror",
            "index.docker.io=https://m.example",
        ]);
        assert_eq!(
            a.endpoints().unwrap(),
            vec![(
                "docker.io".to_owned(),
                vec![
                    "http://127.0.0.1:5001".to_owned(),
                    "https://m.example".into()
                ]
            )]
        );
        assert_eq!(
            access(&["--mirror", "docker.io"])
                .endpoints()
                .unwrap_err()
                .code,
            "usage"
        );
        assert_eq!(
            access(&["--mirror", "docker.io=m.example"])
                .endpoints()
                .unwrap_err()
                .code,
            "usage"
        );
    }

    #[test]
    fn cleartext_credentials_only_to_this_machine() {
        let a = access(&["--plain-http", "registry.example:5000"]);
        let e = a
            .resolve(&[side("registry.example:5000", Some("u:p"))], None)
            .unwrap_err();
        assert_eq!(e.code, "denied_by_policy");
        assert!(e.to_string().starts_with("denied by policy: "), "{e}");
        // Without credentials there is nothing to leak.
        assert!(
            a.resolve(&[side("registry.example:5000", None)], None)
                .is_ok()
        );
        // Loopback, HTTPS, or an explicit acceptance are fine.
        let a = access(&["--plain-http", "127.0.0.1:5000"]);
        assert!(
            a.resolve(&[side("127.0.0.1:5000", Some("u:p"))], None)
                .is_ok()
        );
        let a = access(&[]);
        assert!(
            a.resolve(&[side("registry.example", Some("u:p"))], None)
                .is_ok()
        );
        let a = access(&[
            "--plain-http",
            "registry.example:5000",
            "--allow-cleartext-creds",
        ]);
        assert!(
            a.resolve(&[side("registry.example:5000", Some("u:p"))], None)
                .is_ok()
        );
        // A plain-HTTP mirror elsewhere gets the registry's credentials, so it counts.
        let a = access(&["--mirror", "docker.io=http://10.1.2.3:5000"]);
        let e = a
            .resolve(&[side("docker.io", Some("u:p"))], None)
            .unwrap_err();
        assert!(e.message.contains("10.1.2.3:5000"), "{e}");
    }

    #[test]
    fn flags_win_over_the_auth_file_and_one_registry_gets_one_set() {
        let file = AuthFile::parse(
            "/d/config.json",
            r#"{"auths": {"a.example": {"username": "file", "password": "x"}}}"#,
        )
        .unwrap();
        let a = access(&[]);
        let r = a.resolve(&[side("a.example", None)], Some(&file)).unwrap();
        assert_eq!(r.credentials[0].1, "file");
        assert!(
            r.sides[0]
                .creds_from
                .as_deref()
                .unwrap()
                .contains("/d/config.json")
        );
        let r = a
            .resolve(&[side("a.example", Some("flag:y"))], Some(&file))
            .unwrap();
        assert_eq!(r.credentials[0].1, "flag");
        let e = a
            .resolve(
                &[
                    side("a.example", Some("one:1")),
                    side("a.example", Some("two:2")),
                ],
                None,
            )
            .unwrap_err();
        assert_eq!(e.code, "usage");
    }
}
