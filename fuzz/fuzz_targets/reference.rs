//! Image references as admins paste them (the plugin's parser) and manifest references
//! as clients put them in `/v2` paths (the registry's). Beyond not panicking: a parsed
//! reference prints in a canonical form that parses back to itself, and the two parsers
//! agree on which digests are well formed.
#![no_main]

use hoist_plugin::reference::{Reference, check_digest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(parsed) = Reference::parse(input) {
        let canonical = parsed.canonical();
        let again = Reference::parse(&canonical).unwrap_or_else(|e| {
            panic!("{input:?} parsed, but its canonical form {canonical:?} did not: {e}")
        });
        assert_eq!(again.canonical(), canonical, "{input:?}");
        assert!(!parsed.repository().is_empty(), "{input:?}");
        if let Some(digest) = parsed.digest() {
            assert!(hoist_registry::fuzzing::digest_ok(digest), "{input:?}");
        }
    }
    let registry_accepts = hoist_registry::fuzzing::manifest_reference_ok(input);
    if input.contains(':') {
        assert_eq!(registry_accepts, check_digest(input).is_ok(), "{input:?}");
    }
});
