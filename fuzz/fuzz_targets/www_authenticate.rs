//! `WWW-Authenticate` challenges from source registries, which are untrusted input to the
//! plugin: any header gives a challenge or none, and a Bearer challenge's realm is what
//! the header said, never an empty one invented by the parser.
#![no_main]

use hoist_plugin::auth::{Challenge, parse_challenge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(header) {
        assert!(
            realm.is_empty() || header.contains(realm.as_str()) || header.contains('\\'),
            "{header:?} gave the realm {realm:?}"
        );
    }
});
