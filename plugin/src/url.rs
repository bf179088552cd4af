//! The little of URLs a registry client needs: endpoints (`http://host:port`), absolute
//! realms and redirects, and `Location` headers relative to the request.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host[:port]`, IPv6 in brackets.
    pub authority: String,
    /// The path with its query, starting with '/'.
    pub path: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(rest) = s.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{s:?} is not an http:// or https:// URL"));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..split];
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{s:?} has no usable host"));
        }
        let path = match &rest[split..] {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path,
        })
    }

    /// The same scheme and authority with another path.
    pub fn with_path(&self, path: &str) -> Self {
        Self {
            https: self.https,
            authority: self.authority.clone(),
            path: path.to_owned(),
        }
    }

    /// Resolves a `Location` header against this URL: absolute URLs stand alone, paths
    /// keep this URL's scheme and authority.
    pub fn join(&self, location: &str) -> Result<Self, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Self::parse(location)
        } else if let Some(rest) = location.strip_prefix("//") {
            Self::parse(&format!(
                "{}://{rest}",
                if self.https { "https" } else { "http" }
            ))
        } else if location.starts_with('/') {
            Ok(self.with_path(location))
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            Ok(self.with_path(&format!("{dir}{location}")))
        }
    }

    /// Whether two URLs reach the same origin (scheme, host and port).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https && self.authority.eq_ignore_ascii_case(&other.authority)
    }

    /// Appends `key=value` to the query, percent-encoding the value.
    /// The URL without its query, for messages: a presigned URL's query is a credential.
    pub fn redacted(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let path = self.path.split('?').next().unwrap_or("/");
        format!("{scheme}://{}{path}", self.authority)
    }

    pub fn with_query(&self, key: &str, value: &str) -> Self {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        self.with_path(&format!("{}{sep}{key}={}", self.path, encode(value)))
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path)
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_join() {
        let u = Url::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(u.path, "/");
        assert_eq!(u.authority, "127.0.0.1:5000");
        let up = u.join("/v2/a/blobs/uploads/abc?_state=x").unwrap();
        assert_eq!(
            up.to_string(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/abc?_state=x"
        );
        let cdn = up.join("https://cdn.example/blob?sig=1").unwrap();
        assert!(cdn.https && cdn.authority == "cdn.example");
        assert!(!cdn.same_origin(&up));
        assert_eq!(
            u.join("//other:1/x").unwrap().to_string(),
            "http://other:1/x"
        );
        assert_eq!(
            Url::parse("https://[::1]:5000/token?x=1")
                .unwrap()
                .authority,
            "[::1]:5000"
        );
        assert_eq!(cdn.redacted(), "https://cdn.example/blob");
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://user@evil/").is_err());
        assert_eq!(
            u.with_path("/token")
                .with_query("scope", "repository:a/b:pull,push")
                .path,
            "/token?scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
