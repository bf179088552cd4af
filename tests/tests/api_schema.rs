//! The JSON API against its own description, `host/openapi.yaml`, by schemathesis (from
//! PyPI, pinned by `scripts/install-deps.sh`): generated valid and invalid requests to
//! every operation, as the admin, and every answer must be no 5xx, a status the document
//! lists for that operation, the content type and body schema it gives, and a 4xx for a
//! request that breaks the schema. Bounded by examples per operation, so it takes a
//! minute or two.

use hoist_tests::hoist_server::{ADMIN_PASSWORD, HoistServer, test_config};
use std::process::Command;

#[test]
fn every_api_answer_matches_the_openapi_document() {
    let st = hoist_tests::hoist_cache().join("tools/schemathesis/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/install-deps.sh, which installs schemathesis",
        st.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[]));
    // Something for the generated requests to find besides 404s.
    host.project("demo", false);
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../host/openapi.yaml");
    let report = dir.path().join("report");
    let output = Command::new(&st)
        // Its cache (`.schemathesis/`) goes to the temporary folder, not into the clone.
        .current_dir(dir.path())
        .args(["--no-color", "run", schema])
        .args(["--url", &host.url("")])
        .args(["--auth", &format!("admin:{ADMIN_PASSWORD}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,negative_data_rejection",
        ])
        // Stateful runs would chain created tasks into their event streams, which stay
        // open while a task runs; the streams are excluded for the same reason.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--exclude-path-regex", "/events$"])
        .args(["--max-examples", "12"])
        .args(["--request-timeout", "10"])
        .arg("--report-dir")
        .arg(&report)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers that break host/openapi.yaml:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It did test: a run that reached no operation would also exit 0.
    assert!(
        stdout.contains("passed") && !stdout.contains("No operations"),
        "{stdout}"
    );
}
