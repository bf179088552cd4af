//! Blob work shared by imports into one project of the host's own registry.
//!
//! Two imports that need the same layer (two tags of one image, two images on one base)
//! would each download and upload it. Instead, the first import whose check finds a blob
//! missing claims it; another import asking about the same blob waits until that claim
//! ends, then mounts the blob from the claimant's repository and is told the blob is
//! there. A blob that another repository of the project already holds is mounted from it
//! the same way. All of it stays inside one project: a mount never links bytes across
//! projects, so a caller cannot reach another project's blob by naming its digest.
//!
//! Everything happens on the plugin's ordinary requests (the blob check and the final
//! upload PUT), so the plugin needs to know nothing of it.

use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::watch;

#[derive(Default)]
pub(crate) struct BlobClaims {
    claims: Mutex<HashMap<Key, Claim>>,
}

/// (project, digest)
type Key = (String, String);

struct Claim {
    task: String,
    repository: String,
    /// Dropped when the claim ends, which wakes the waiters.
    ended: watch::Sender<()>,
}

/// Which repository of a project already holds a blob.
pub trait BlobIndex: Send + Sync {
    fn repository_with(&self, project: &str, digest: &str) -> Option<String>;
}

/// What an import asking about a blob should do.
pub(crate) enum Turn {
    /// Check the blob; the caller holds the claim until its upload ends.
    Claimed,
    /// Another import is moving this blob into `repository`; wait on `ended`, then ask
    /// again.
    Wait {
        repository: String,
        ended: watch::Receiver<()>,
    },
}

impl BlobClaims {
    /// Claims `digest` in `project` for `task` (uploading into `repository`), unless
    /// another task holds it.
    pub fn claim(&self, project: &str, digest: &str, task: &str, repository: &str) -> Turn {
        let mut claims = self.claims.lock();
        let key = (project.to_owned(), digest.to_owned());
        if let Some(claim) = claims.get(&key)
            && claim.task != task
        {
            return Turn::Wait {
                repository: claim.repository.clone(),
                ended: claim.ended.subscribe(),
            };
        }
        claims.insert(
            key,
            Claim {
                task: task.to_owned(),
                repository: repository.to_owned(),
                ended: watch::channel(()).0,
            },
        );
        Turn::Claimed
    }

    /// Ends `task`'s claim on `digest`: its upload finished, or the blob was there.
    pub fn release(&self, project: &str, digest: &str, task: &str) {
        let mut claims = self.claims.lock();
        let key = (project.to_owned(), digest.to_owned());
        if claims.get(&key).is_some_and(|c| c.task == task) {
            claims.remove(&key);
        }
    }

    /// Ends every claim of `task`, when it finishes however it finishes.
    pub(crate) fn release_task(&self, task: &str) {
        self.claims.lock().retain(|_, c| c.task != task);
    }
}

/// The blob requests that take part: a check (HEAD of a blob) and the upload's end (a PUT
/// naming its digest).
pub(crate) enum BlobRequest {
    Check { repository: String, digest: String },
    Committed { digest: String },
}

impl BlobRequest {
    /// Recognises `HEAD /v2/<repo>/blobs/<digest>`, and the two ways an upload ends with
    /// the blob in place: `PUT /v2/<repo>/blobs/uploads/<id>?digest=<digest>` and
    /// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>`.
    pub fn of(method: &http::Method, path_and_query: &str) -> Option<Self> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let rest = path.strip_prefix("/v2/")?;
        if method == http::Method::HEAD {
            let (repository, digest) = rest.rsplit_once("/blobs/")?;
            return (!digest.contains('/')).then(|| BlobRequest::Check {
                repository: repository.to_owned(),
                digest: digest.to_owned(),
            });
        }
        let key = match *method {
            http::Method::PUT => "digest",
            http::Method::POST => "mount",
            _ => return None,
        };
        if !rest.contains("/blobs/uploads/") {
            return None;
        }
        let digest = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)?
            .1
            .into_owned();
        Some(BlobRequest::Committed { digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_claims_a_blob_and_the_others_wait_until_it_is_released() {
        let claims = BlobClaims::default();
        assert!(matches!(
            claims.claim("p", "sha256:a", "t1", "p/one"),
            Turn::Claimed
        ));
        // The holder asking again keeps its claim.
        assert!(matches!(
            claims.claim("p", "sha256:a", "t1", "p/one"),
            Turn::Claimed
        ));
        let Turn::Wait { repository, ended } = claims.claim("p", "sha256:a", "t2", "p/two") else {
            panic!("a second task got the claim");
        };
        assert_eq!(repository, "p/one");
        // Another project, or another blob, is not held up.
        assert!(matches!(
            claims.claim("q", "sha256:a", "t2", "q/two"),
            Turn::Claimed
        ));
        assert!(matches!(
            claims.claim("p", "sha256:b", "t2", "p/two"),
            Turn::Claimed
        ));
        // Only the holder releases it.
        claims.release("p", "sha256:a", "t2");
        assert!(ended.has_changed().is_ok(), "released by a non-holder");
        claims.release_task("t1");
        assert!(ended.has_changed().is_err(), "the waiter was not woken");
        assert!(matches!(
            claims.claim("p", "sha256:a", "t2", "p/two"),
            Turn::Claimed
        ));
    }

    #[test]
    fn blob_checks_and_upload_ends_are_recognised() {
        let head = http::Method::HEAD;
        let put = http::Method::PUT;
        assert!(matches!(
            BlobRequest::of(&head, "/v2/p/a/b/blobs/sha256:00"),
            Some(BlobRequest::Check { repository, digest }) if repository == "p/a/b" && digest == "sha256:00"
        ));
        assert!(matches!(
            BlobRequest::of(&put, "/v2/p/a/blobs/uploads/u1?_state=x&digest=sha256%3A00"),
            Some(BlobRequest::Committed { digest }) if digest == "sha256:00"
        ));
        assert!(matches!(
            BlobRequest::of(&http::Method::POST, "/v2/p/a/blobs/uploads/?mount=sha256:00&from=p/b"),
            Some(BlobRequest::Committed { digest }) if digest == "sha256:00"
        ));
        assert!(BlobRequest::of(&http::Method::POST, "/v2/p/a/blobs/uploads/").is_none());
        assert!(BlobRequest::of(&head, "/v2/p/a/manifests/v1").is_none());
        assert!(BlobRequest::of(&head, "/v2/p/a/blobs/uploads/u1").is_none());
        assert!(BlobRequest::of(&put, "/v2/p/a/blobs/uploads/u1").is_none());
        assert!(BlobRequest::of(&http::Method::GET, "/v2/p/a/blobs/sha256:00").is_none());
    }
}
