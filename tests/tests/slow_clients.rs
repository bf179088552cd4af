//! Clients that hold connections without using them: a header sent in part and then
//! silence, a kept-alive connection left idle, more connections than the cap. They are
//! dropped in time while ordinary clients are served, and a slow upload that keeps
//! moving is never cut off.

use hoist_tests::hoist_server::{HoistServer, admin_basic, test_config};
use hoist_tests::wait_until;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

fn host(max_connections: usize) -> (HoistServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &[]);
    config.server.header_read_timeout = HEADER_TIMEOUT;
    config.server.max_connections = max_connections;
    let host = HoistServer::start(config);
    host.project("team", false);
    (host, dir)
}

/// Whether the server has closed `stream` (a read sees the end, or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // An answer (408) before the close: keep reading to the end.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn silent_and_idle_connections_are_dropped_while_a_slow_upload_completes() {
    let (host, _dir) = host(4096);
    // Fifty clients send half a header and go silent.
    let mut silent: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(host.host()).unwrap();
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Half: ")
                .unwrap();
            s
        })
        .collect();
    // One finishes a request and then keeps the connection idle.
    let mut idle = TcpStream::connect(host.host()).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Meanwhile an ordinary client is served at once.
    let started = Instant::now();
    let (status, _) = host.admin("GET", "/api/v1/projects", None);
    assert_eq!(status, 200);
    assert!(started.elapsed() < HEADER_TIMEOUT, "served without waiting");

    // A slow upload: its body trickles in over three times the header timeout, and
    // completes, since it keeps moving.
    let slow_host = host.host();
    let auth = admin_basic();
    let uploader = std::thread::spawn(move || {
        let location = ureq::post(&format!("http://{slow_host}/v2/team/app/blobs/uploads/"))
            .set("authorization", &auth)
            .call()
            .unwrap()
            .header("location")
            .unwrap()
            .to_owned();
        let mut s = TcpStream::connect(&slow_host).unwrap();
        let chunk = vec![b'x'; 1000];
        let pieces = 30;
        write!(
            s,
            "PATCH {location} HTTP/1.1\r\nHost: {slow_host}\r\nAuthorization: {auth}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            chunk.len() * pieces
        )
        .unwrap();
        for _ in 0..pieces {
            s.write_all(&chunk).unwrap();
            std::thread::sleep(HEADER_TIMEOUT * 3 / pieces as u32);
        }
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    });

    wait_until(
        HEADER_TIMEOUT * 5,
        "the silent connections to be dropped",
        || silent.iter_mut().all(closed),
    );
    wait_until(
        HEADER_TIMEOUT * 5,
        "the idle connection to be dropped",
        || closed(&mut idle),
    );
    let answer = uploader.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 202"),
        "the slow upload completed: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("range: 0-29999"),
        "{answer}"
    );
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (host, _dir) = host(4);
    // The cap is held by four silent clients...
    let mut holders: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(host.host()).unwrap();
            s.write_all(b"GET /v2/ HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // ...so a fifth is not served until the header timeout frees their slots.
    let started = Instant::now();
    let mut fifth = TcpStream::connect(host.host()).unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    fifth.read_to_string(&mut answer).unwrap();
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited >= HEADER_TIMEOUT / 2,
        "served after {waited:?}, while the cap was held"
    );
    assert!(holders.iter_mut().all(closed));
}
