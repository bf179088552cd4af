//! The S3 driver: blobs in an S3-compatible object store, through `object_store`
//! (DESIGN.md §8), so that any number of hosts share them.
//!
//! Keys, under the configured prefix:
//! - `blobs/<algorithm>/<2 hex>/<hex>`: committed blobs, as on the filesystem.
//! - `uploads/<id>/state.json`: an upload session: its S3 multipart upload, the parts
//!   stored so far with their ETags, and the length of its tail. Any replica can resume
//!   the session from it.
//! - `uploads/<id>/tail-<length>`: the bytes after the last whole part (S3 wants every
//!   part but the last to be at least 5 MiB), named by the session's length when it was
//!   written, so that a crash between writing it and the state leaves the state's own
//!   tail in place.
//! - `uploads/<id>/data`: the multipart upload's object, which exists only from the
//!   commit on and is never a blob's key.
//!
//! A blob becomes visible only by a server-side copy from `uploads/<id>/data` to its
//! digest's key after the data has been hashed (while it streamed through this process,
//! or by reading it back), so no visible object ever has a wrong digest. S3 has no rename,
//! and the digest is known only at the commit, after the multipart upload was begun under
//! its own key. An upload cancelled or abandoned leaves nothing under `blobs/`.
//!
//! The methods block, as the trait's do: each runs its requests on the host's runtime
//! with `Handle::block_on`, from the blocking threads the registry calls storage on.

use super::running::RunningDigests;
use super::{BlobRead, CommitError, Storage};
use crate::digest::{self, Algorithm};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::SystemTime;

/// Every part but a session's last holds this much: S3's smallest part is 5 MiB, and a
/// session then holds at most two parts in memory (one filling, one being sent). 10,000
/// parts, S3's limit, make 50 GiB, far above any image layer.
const PART_SIZE: usize = 5 << 20;

/// Where the blobs are and how to reach them.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// `http://127.0.0.1:9000` for a local endpoint; None for AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Keys start with this (`prod/`); empty for the bucket's root.
    pub prefix: String,
    /// An access key; None takes the credentials `object_store` finds in the environment
    /// (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, a web identity, the instance's
    /// role).
    pub access_key: Option<(String, String)>,
}

/// Blobs in an S3 bucket.
pub struct S3Storage {
    store: Arc<AmazonS3>,
    prefix: String,
    runtime: tokio::runtime::Handle,
    digests: RunningDigests,
}

/// An upload session as `uploads/<id>/state.json` records it.
#[derive(Default, Serialize, Deserialize)]
struct Session {
    /// The S3 multipart upload of `uploads/<id>/data`, from the first whole part on.
    multipart: Option<String>,
    parts: Vec<Part>,
    /// Bytes in the tail object after the parts.
    tail: u64,
    /// The multipart upload was completed by a commit whose digest did not match: the
    /// data is `uploads/<id>/data`, whole, and takes no more appends.
    completed: bool,
}

/// A part being sent.
struct InFlight {
    handle: tokio::task::JoinHandle<object_store::Result<PartId>>,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct Part {
    etag: String,
    len: u64,
}

impl Session {
    fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum::<u64>() + self.tail
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// None for a missing object, the error otherwise.
fn found<T>(result: object_store::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(other(e)),
    }
}

impl S3Storage {
    /// Connects to the bucket; call it inside the tokio runtime the host runs on.
    pub fn open(options: &S3Options) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(other)?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&options.bucket)
            .with_region(&options.region);
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // Local endpoints (moto, MinIO) take the bucket in the path.
                .with_virtual_hosted_style_request(false);
        }
        if let Some((id, secret)) = &options.access_key {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = builder.build().map_err(other)?;
        let prefix = options.prefix.trim_matches('/');
        Ok(Self {
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            runtime,
            digests: RunningDigests::default(),
        })
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn blob_key(&self, digest: &str) -> Option<Path> {
        let (algorithm, hex) = digest::parse(digest)?;
        Some(self.key(&format!("blobs/{}/{}/{hex}", algorithm.name(), &hex[..2])))
    }

    fn upload_key(&self, id: &str, name: &str) -> Option<Path> {
        // Ids are ours (hex); anything else could reach other keys.
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.key(&format!("uploads/{id}/{name}")))
    }

    fn state_key(&self, id: &str) -> Option<Path> {
        self.upload_key(id, "state.json")
    }

    fn tail_key(&self, id: &str, len: u64) -> Option<Path> {
        self.upload_key(id, &format!("tail-{len}"))
    }

    fn block<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn load(&self, id: &str) -> io::Result<Option<Session>> {
        let Some(key) = self.state_key(id) else {
            return Ok(None);
        };
        let got = self.block(async { self.store.get(&key).await?.bytes().await });
        let Some(bytes) = found(got)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(other)
    }

    fn save(&self, id: &str, session: &Session) -> io::Result<()> {
        let key = self.state_key(id).expect("ids are checked before a save");
        let body = serde_json::to_vec(session).map_err(other)?;
        self.block(self.store.put(&key, body.into()))
            .map_err(other)?;
        Ok(())
    }

    fn read_tail(&self, id: &str, session: &Session) -> io::Result<Vec<u8>> {
        if session.tail == 0 {
            return Ok(Vec::new());
        }
        let key = self.tail_key(id, session.len()).expect("a checked id");
        let bytes = self
            .block(async { self.store.get(&key).await?.bytes().await })
            .map_err(other)?;
        Ok(bytes.to_vec())
    }

    /// Sends the session's next part while the caller goes on (filling the part after
    /// it), so that reading the client and writing the store overlap.
    fn start_part(&self, id: &str, session: &mut Session, bytes: Bytes) -> io::Result<InFlight> {
        let data = self.upload_key(id, "data").expect("a checked id");
        let multipart = match &session.multipart {
            Some(m) => m.clone(),
            None => {
                let m = self
                    .block(self.store.create_multipart(&data))
                    .map_err(other)?;
                session.multipart = Some(m.clone());
                m
            }
        };
        let (store, index, len) = (self.store.clone(), session.parts.len(), bytes.len() as u64);
        let handle = self.runtime.spawn(async move {
            store
                .put_part(&data, &multipart, index, PutPayload::from(bytes))
                .await
        });
        Ok(InFlight { handle, len })
    }

    /// Waits for a part sent by [`Self::start_part`] and records it in the session.
    fn finish_part(&self, session: &mut Session, part: InFlight) -> io::Result<()> {
        let id = self.block(part.handle).map_err(other)?.map_err(other)?;
        session.parts.push(Part {
            etag: id.content_id,
            len: part.len,
        });
        Ok(())
    }

    fn put_part(&self, id: &str, session: &mut Session, bytes: Bytes) -> io::Result<()> {
        let part = self.start_part(id, session, bytes)?;
        self.finish_part(session, part)
    }

    /// Removes every object of a session, and its multipart upload.
    fn remove_session(&self, id: &str, session: Option<&Session>) -> io::Result<()> {
        let data = self.upload_key(id, "data").expect("a checked id");
        if let Some(multipart) = session.and_then(|s| s.multipart.as_ref())
            && !session.is_some_and(|s| s.completed)
        {
            // Gone already when a commit completed it just before failing.
            let _ = self.block(self.store.abort_multipart(&data, multipart));
        }
        let folder = self.key(&format!("uploads/{id}/"));
        self.block(async {
            let keys = self
                .store
                .list(Some(&folder))
                .map_ok(|m| m.location)
                .boxed();
            self.store.delete_stream(keys).try_collect::<Vec<_>>().await
        })
        .map_err(other)?;
        Ok(())
    }

    /// Hashes an object by reading it.
    fn hash_object(&self, key: &Path, algorithm: Algorithm) -> io::Result<String> {
        self.block(async {
            let mut hasher = algorithm.hasher();
            let mut body = self.store.get(key).await?.into_stream();
            while let Some(chunk) = body.next().await {
                hasher.update(&chunk?);
            }
            Ok::<_, object_store::Error>(hasher.finish())
        })
        .map_err(other)
    }
}

impl Storage for S3Storage {
    fn blob_len(&self, digest: &str) -> io::Result<Option<u64>> {
        let Some(key) = self.blob_key(digest) else {
            return Ok(None);
        };
        Ok(found(self.block(self.store.head(&key)))?.map(|m| m.size))
    }

    fn open_blob(&self, digest: &str, offset: u64) -> io::Result<Option<BlobRead>> {
        let Some(key) = self.blob_key(digest) else {
            return Ok(None);
        };
        let got = if offset == 0 {
            // The whole blob: the GET answers with its size, no HEAD needed.
            found(self.block(self.store.get(&key)))?
        } else {
            let Some(meta) = found(self.block(self.store.head(&key)))? else {
                return Ok(None);
            };
            if offset >= meta.size {
                // S3 refuses a range that starts at the end; the answer is empty anyway.
                return Ok(Some(BlobRead {
                    len: meta.size,
                    reader: Box::new(tokio::io::empty()),
                }));
            }
            let options = GetOptions {
                range: Some(GetRange::Offset(offset)),
                ..Default::default()
            };
            found(self.block(self.store.get_opts(&key, options)))?
        };
        let Some(got) = got else {
            return Ok(None);
        };
        // The object's size, whatever range was read.
        let len = got.meta.size;
        let body = got.into_stream().map_err(other);
        Ok(Some(BlobRead {
            len,
            reader: Box::new(tokio_util::io::StreamReader::new(body)),
        }))
    }

    fn read_small(&self, digest: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(key) = self.blob_key(digest) else {
            return Ok(None);
        };
        let Some(got) = found(self.block(self.store.get(&key)))? else {
            return Ok(None);
        };
        if got.meta.size > limit {
            return Ok(None);
        }
        let bytes = self.block(got.bytes()).map_err(other)?;
        Ok(Some(bytes.to_vec()))
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), CommitError> {
        let (algorithm, _) = digest::parse(digest).ok_or(CommitError::InvalidDigest)?;
        let computed = algorithm.digest(bytes);
        if computed != digest {
            return Err(CommitError::DigestMismatch { computed });
        }
        let key = self.blob_key(digest).expect("a parsed digest");
        self.block(self.store.put(&key, Bytes::copy_from_slice(bytes).into()))
            .map_err(other)?;
        Ok(())
    }

    fn delete_blob(&self, digest: &str) -> io::Result<bool> {
        let Some(key) = self.blob_key(digest) else {
            return Ok(false);
        };
        // S3 answers a delete of a missing key with success, so ask first.
        if found(self.block(self.store.head(&key)))?.is_none() {
            return Ok(false);
        }
        self.block(self.store.delete(&key)).map_err(other)?;
        Ok(true)
    }

    fn list_blobs(&self) -> io::Result<Vec<String>> {
        let folder = self.key("blobs/");
        let metas: Vec<_> = self
            .block(self.store.list(Some(&folder)).try_collect())
            .map_err(other)?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref();
                let rest = key.strip_prefix(&format!("{}blobs/", self.prefix))?;
                let (algorithm, rest) = rest.split_once('/')?;
                let (_, hex) = rest.split_once('/')?;
                let digest = format!("{algorithm}:{hex}");
                digest::parse(&digest).is_some().then_some(digest)
            })
            .collect())
    }

    fn blob_modified(&self, digest: &str) -> io::Result<Option<SystemTime>> {
        let Some(key) = self.blob_key(digest) else {
            return Ok(None);
        };
        Ok(found(self.block(self.store.head(&key)))?.map(|m| m.last_modified.into()))
    }

    fn start_upload(&self) -> io::Result<String> {
        let id = hoist_common::random::id();
        self.save(&id, &Session::default())?;
        Ok(id)
    }

    fn upload_len(&self, id: &str) -> io::Result<Option<u64>> {
        Ok(self.load(id)?.map(|s| s.len()))
    }

    fn append(&self, id: &str, data: &mut dyn Read) -> io::Result<u64> {
        let mut session = self
            .load(id)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown upload"))?;
        if session.completed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this upload was already committed with another digest; start a new upload",
            ));
        }
        let start = session.len();
        let mut running = self.digests.take(id, start);
        let mut buf = self.read_tail(id, &session)?;
        buf.reserve_exact(PART_SIZE - buf.len());
        let old_tail = (session.tail > 0).then(|| self.tail_key(id, start));
        session.tail = 0;
        let mut in_flight = None;
        let read = loop {
            let filled = buf.len();
            let room = PART_SIZE - filled;
            let result = Read::take(&mut *data, room as u64).read_to_end(&mut buf);
            if let Some(r) = &mut running {
                r.update(&buf[filled..]);
            }
            match result {
                Err(e) => break Err(e),
                Ok(n) if n < room => break Ok(()),
                Ok(_) => {
                    let part =
                        Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(PART_SIZE)));
                    // One part in flight while the next fills: two parts of memory.
                    if let Some(previous) = in_flight.take() {
                        self.finish_part(&mut session, previous)
                            .inspect_err(|_| self.digests.forget(id))?;
                    }
                    in_flight = Some(
                        self.start_part(id, &mut session, part)
                            .inspect_err(|_| self.digests.forget(id))?,
                    );
                }
            }
        };
        if let Some(last) = in_flight.take() {
            self.finish_part(&mut session, last)
                .inspect_err(|_| self.digests.forget(id))?;
        }
        // What arrived before a broken body is kept, for the client to resume after it.
        session.tail = buf.len() as u64;
        if session.tail > 0 {
            let key = self.tail_key(id, session.len()).expect("a checked id");
            self.block(self.store.put(&key, Bytes::from(buf).into()))
                .map_err(other)?;
        }
        self.save(id, &session)?;
        if let Some(Some(old)) = old_tail
            && Some(&old) != self.tail_key(id, session.len()).as_ref()
        {
            self.block(self.store.delete(&old)).map_err(other)?;
        }
        if let Some(r) = running {
            self.digests.keep(id, r);
        }
        read?;
        Ok(session.len())
    }

    fn commit(&self, id: &str, digest: &str) -> Result<u64, CommitError> {
        let (algorithm, _) = digest::parse(digest).ok_or(CommitError::InvalidDigest)?;
        let mut session = self.load(id)?.ok_or(CommitError::UnknownUpload)?;
        let len = session.len();
        let known = self.digests.finish(id, len, algorithm);
        let dest = self.blob_key(digest).expect("a parsed digest");
        if session.parts.is_empty() && !session.completed {
            // Small enough to have stayed in the tail: checked in memory, put whole.
            let bytes = self.read_tail(id, &session)?;
            let computed = known.unwrap_or_else(|| algorithm.digest(&bytes));
            if computed != digest {
                return Err(CommitError::DigestMismatch { computed });
            }
            self.block(self.store.put(&dest, Bytes::from(bytes).into()))
                .map_err(other)?;
            self.remove_session(id, Some(&session))?;
            return Ok(len);
        }
        let data = self.upload_key(id, "data").expect("a checked id");
        if !session.completed {
            let tail = self.read_tail(id, &session)?;
            if !tail.is_empty() {
                // The last part may be short.
                self.put_part(id, &mut session, Bytes::from(tail))?;
            }
            let multipart = session.multipart.clone().expect("parts have an upload");
            let parts = session
                .parts
                .iter()
                .map(|p| PartId {
                    content_id: p.etag.clone(),
                })
                .collect();
            self.block(self.store.complete_multipart(&data, &multipart, parts))
                .map_err(other)?;
            session.completed = true;
            session.tail = 0;
            self.save(id, &session)?;
        }
        let computed = match known {
            Some(computed) => computed,
            None => self.hash_object(&data, algorithm)?,
        };
        if computed != digest {
            // The session stays, so the client can see its state or cancel it; the data
            // never becomes a blob.
            return Err(CommitError::DigestMismatch { computed });
        }
        self.block(self.store.copy(&data, &dest)).map_err(other)?;
        self.remove_session(id, Some(&session))?;
        Ok(len)
    }

    fn cancel_upload(&self, id: &str) -> io::Result<bool> {
        self.digests.forget(id);
        let Some(session) = self.load(id)? else {
            return Ok(false);
        };
        self.remove_session(id, Some(&session))?;
        Ok(true)
    }

    fn list_uploads(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let folder = self.key("uploads/");
        let metas: Vec<_> = self
            .block(self.store.list(Some(&folder)).try_collect())
            .map_err(other)?;
        let states = format!("{}uploads/", self.prefix);
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let rest = m.location.as_ref().strip_prefix(&states)?;
                let id = rest.strip_suffix("/state.json")?;
                // The state is written at every append: its time is the last one.
                self.state_key(id)?;
                Some((id.to_owned(), m.last_modified.into()))
            })
            .collect())
    }

    fn probe(&self) -> io::Result<()> {
        let key = self.key(&format!("tmp/probe-{}", hoist_common::random::id()));
        self.block(async {
            self.store
                .put(&key, Bytes::from_static(b"ok").into())
                .await?;
            self.store.delete(&key).await
        })
        .map_err(other)
    }
}
