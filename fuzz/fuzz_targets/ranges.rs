//! `Range` on blob reads and `Content-Range` on upload chunks, from clients: a served
//! part lies inside the blob, and an accepted chunk range is in order.
#![no_main]

use hoist_registry::fuzzing::{content_range, wanted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, u64)| {
    let (header, len) = input;
    if let Some((start, end)) = wanted(header, len) {
        assert!(
            start <= end && end < len,
            "{header:?} of {len} bytes: {start}-{end}"
        );
    }
    if let Some((start, end)) = content_range(header) {
        assert!(start <= end, "{header:?}: {start}-{end}");
    }
});
