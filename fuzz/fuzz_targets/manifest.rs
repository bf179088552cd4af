//! Manifests: as the registry checks a push (with the `Content-Type` it came with) and
//! summarises one for the API, and as the plugin reads one from a source. Whatever the
//! bytes, each gives an answer or an error; a manifest the registry accepts names only
//! well-formed digests.
#![no_main]

use hoist_registry::fuzzing::{check, digest_ok, summarize};
use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: [&str; 5] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "text/plain",
];

fuzz_target!(|input: (u8, &[u8])| {
    let (pick, bytes) = input;
    let media = MEDIA_TYPES[pick as usize % MEDIA_TYPES.len()];
    let content_type = (pick < 128).then_some(media);
    if let Ok(checked) = check(bytes, content_type) {
        for r in &checked.references {
            assert!(digest_ok(&r.digest), "accepted {:?}", r.digest);
        }
        if let Some(subject) = &checked.subject {
            assert!(digest_ok(subject), "accepted the subject {subject:?}");
        }
    }
    // Children read back as the same bytes: nesting and sizes are the fuzzer's to choose.
    summarize(bytes, &|_| Some(bytes.to_vec()));
    if let Ok(parsed) = hoist_plugin::manifest::parse(media, bytes) {
        let _ = parsed;
    }
});
