//! The egress policy, as an attacker probes it: every way of writing a refused address
//! (IPv6 literals with and without a port, IPv4-mapped and -compatible forms, the
//! unspecified address), reached as the source itself, through a redirect from an allowed
//! mirror, and as a token realm. Each must end in a policy refusal, and a listener on the
//! refused address must receive nothing at all.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hoist_imports::boundary::client::Clients;
use hoist_imports::contract::{Phase, PluginError, Status};
use hoist_imports::egress::{Cidr, EgressPolicy};
use hoist_tests::{request, run_import_with, serve};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts the connections made to an address the policy refuses. Bound to the IPv6
/// wildcard, so that IPv4 connections to any loopback address arrive here too.
struct Recorder {
    connections: Arc<AtomicUsize>,
}

impl Recorder {
    fn on_port(port: u16) -> Self {
        let listener = TcpListener::bind(("::", port)).unwrap_or_else(|e| {
            panic!("the test listens on port {port} of every address (as root): {e}")
        });
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { connections }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A registry on an allowed address whose manifest answers point elsewhere.
#[derive(Clone)]
enum Lure {
    /// 307 to this URL.
    RedirectTo(String),
    /// 401 with a Bearer challenge whose realm is this URL.
    RealmAt(String),
}

async fn lure(State(lure): State<Lure>) -> Response {
    match lure {
        Lure::RedirectTo(url) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", url)]).into_response()
        }
        Lure::RealmAt(realm) => (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                format!("Bearer realm=\"{realm}\",service=\"lure\",scope=\"repository:x/y:pull\""),
            )],
        )
            .into_response(),
    }
}

fn serve_lure(lure_kind: Lure) -> SocketAddr {
    let app = Router::new()
        .route("/v2/x/y/manifests/{reference}", axum::routing::any(lure))
        .with_state(lure_kind);
    SocketAddr::from(([127, 0, 0, 1], serve(app)))
}

fn assert_refused(status: &Status, case: &str, class: &str) {
    assert_eq!(status.phase, Phase::Failed, "{case}: {:?}", status.error);
    match &status.error {
        Some(PluginError::DeniedByPolicy(m)) => assert!(m.contains(class), "{case}: {m}"),
        other => panic!("{case}: expected a policy refusal naming {class}, got {other:?}"),
    }
}

#[test]
fn every_way_of_writing_a_refused_address_is_refused_before_any_connection() {
    let (http, https) = (Recorder::on_port(80), Recorder::on_port(443));
    // The recorders do hear what the lures point at (a control: without it, a count of
    // zero would prove nothing).
    for address in ["[::1]:80", "127.0.0.2:80", "[::1]:443"] {
        std::net::TcpStream::connect(address).unwrap();
    }
    hoist_tests::wait_until(Duration::from_secs(5), "the control connections", || {
        http.count() == 2 && https.count() == 1
    });
    let (http_before, https_before) = (http.count(), https.count());
    // The admin allowed exactly 127.0.0.1, where the lures listen.
    let runtime = hoist_tests::plugin().with_network(
        Clients::new(
            EgressPolicy {
                allowed: vec![Cidr::parse("127.0.0.1/32").unwrap()],
                ..Default::default()
            },
            &Default::default(),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let target = "registry.invalid/proj/y:v1";

    // The source itself, written as a literal. (References take IPv6 in hex only, as
    // Docker's grammar does; dotted forms arrive through redirects and realms below.)
    for (source, insecure, class) in [
        ("[::1]/x/y:v1", "[::1]", "loopback"),
        ("[::1]/x/y:v1", "", "loopback"),
        ("[::1]:80/x/y:v1", "[::1]:80", "loopback"),
        ("[::]/x/y:v1", "[::]", "unspecified"),
        (
            "[0:0:0:0:0:ffff:7f00:2]/x/y:v1",
            "[0:0:0:0:0:ffff:7f00:2]",
            "loopback",
        ),
        ("[::7f00:2]/x/y:v1", "[::7f00:2]", "loopback"),
        ("[64:ff9b::7f00:2]/x/y:v1", "[64:ff9b::7f00:2]", "loopback"),
        (
            "[::ffff:a9fe:a9fe]/x/y:v1",
            "[::ffff:a9fe:a9fe]",
            "metadata",
        ),
        ("127.0.0.2/x/y:v1", "127.0.0.2", "loopback"),
    ] {
        let status = run_import_with(&runtime, &request(source, target, &[insecure]));
        assert_refused(&status, source, class);
    }

    // A redirect from the allowed mirror, and a token realm it names.
    for (url, class) in [
        ("http://[::1]/v2/x/y/manifests/v1", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:127.0.0.2]/v2/x/y/manifests/v1", "loopback"),
        (
            "http://[0:0:0:0:0:ffff:7f00:2]/v2/x/y/manifests/v1",
            "loopback",
        ),
        ("https://[::1]/v2/x/y/manifests/v1", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data", "metadata"),
    ] {
        for lure_kind in [Lure::RedirectTo(url.into()), Lure::RealmAt(url.into())] {
            let mirror = serve_lure(lure_kind.clone());
            let source = format!("{mirror}/x/y:v1");
            let status =
                run_import_with(&runtime, &request(&source, target, &[&mirror.to_string()]));
            let case = match lure_kind {
                Lure::RedirectTo(_) => format!("a redirect to {url}"),
                Lure::RealmAt(_) => format!("a token realm at {url}"),
            };
            assert_refused(&status, &case, class);
        }
    }

    assert_eq!(
        http.count(),
        http_before,
        "a refused address on port 80 was connected to"
    );
    assert_eq!(
        https.count(),
        https_before,
        "a refused address on port 443 was connected to"
    );
}
