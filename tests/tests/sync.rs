//! Scheduled sync end to end: a real Debian `docker-registry` stands in for Docker Hub
//! through the host's mirror settings, behind a proxy that counts every request (and, in
//! some tests, answers 429 for a while or reports a quota as Docker Hub does). Rules are created, run and planned through the
//! host's API; what lands is read back from the host's registry.

use hoist_host::config::Config;
use hoist_tests::fault_proxy::{FaultProxy, ProxyFault};
use hoist_tests::hoist_server::{HoistServer, test_config};
use hoist_tests::images::{Format, Pushed, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::wait_until;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RUN_DEADLINE: Duration = Duration::from_secs(120);
const REPO: &str = "library/app";

fn push(source: &Registry, tag: &str) -> Pushed {
    Pusher::new(&source.url()).image(REPO, Some(tag), Format::Oci, &[20_000], ("linux", "amd64"))
}

struct Setup {
    source: Registry,
    proxy: FaultProxy,
    host: HoistServer,
    config: Config,
    digests: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
}

fn setup(fault: ProxyFault, tags: &[&str]) -> Setup {
    setup_configured(fault, tags, |_| {})
}

fn setup_configured(
    fault: ProxyFault,
    tags: &[&str],
    configure: impl FnOnce(&mut Config),
) -> Setup {
    let source = Registry::start(Auth::None);
    let mut digests = BTreeMap::new();
    for tag in tags {
        digests.insert(tag.to_string(), push(&source, tag).digest);
    }
    let proxy = FaultProxy::start(&source.host(), fault);
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        dir.path(),
        &[("docker.io", &format!("http://{}", proxy.host()))],
    );
    // The scheduler is not under test here; runs start when asked.
    config.sync.scheduler = false;
    config.sync.quota_wait = Duration::from_secs(1);
    configure(&mut config);
    let host = HoistServer::start(config.clone());
    host.project("hub", false);
    // A restart comes back on the same address: the run's imports name it as their target.
    config.listen = host.host().parse().unwrap();
    Setup {
        source,
        proxy,
        host,
        config,
        digests,
        _dir: dir,
    }
}

fn create_rule(host: &HoistServer, body: Value) -> String {
    let (status, rule) = host.admin("POST", "/api/v1/projects/hub/sync-rules", Some(body));
    assert_eq!(status, 201, "{rule}");
    rule["id"].as_str().unwrap().to_owned()
}

/// Runs the rule now and returns the finished run.
fn run(host: &HoistServer, rule: &str) -> Value {
    let (status, started) = host.admin(
        "POST",
        &format!("/api/v1/projects/hub/sync-rules/{rule}/run"),
        None,
    );
    assert_eq!(status, 202, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_owned();
    wait_run(host, &id)
}

fn wait_run(host: &HoistServer, id: &str) -> Value {
    let mut last = Value::Null;
    wait_until(RUN_DEADLINE, &format!("sync run {id} to end"), || {
        let (_, run) = host.admin("GET", &format!("/api/v1/sync-runs/{id}"), None);
        let done = matches!(
            run["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled" | "skipped")
        );
        last = run;
        done
    });
    last
}

/// The tags of the run's items, by outcome.
fn outcomes(run: &Value) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::<String, Vec<String>>::new();
    for item in run["items"].as_array().unwrap() {
        by.entry(item["outcome"].as_str().unwrap().to_owned())
            .or_default()
            .push(item["tag"].as_str().unwrap_or("-").to_owned());
    }
    by
}

/// The digest `hub/app:tag` holds in the host's registry, if any.
fn target_digest(host: &HoistServer, tag: &str) -> Option<String> {
    let response = ureq::head(&host.url(&format!("/v2/hub/app/manifests/{tag}")))
        .set("authorization", &format!("Basic {}", base64_admin()))
        .set("accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .ok()?;
    response.header("docker-content-digest").map(str::to_owned)
}

fn base64_admin() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!(
        "admin:{}",
        hoist_tests::hoist_server::ADMIN_PASSWORD
    ))
}

fn target_tags(host: &HoistServer) -> Vec<String> {
    let (status, list) = host.admin("GET", "/v2/hub/app/tags/list", None);
    assert_eq!(status, 200, "{list}");
    let mut tags: Vec<String> = list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

const TAGS: &[&str] = &[
    "1.0.0",
    "1.1.0",
    "1.2.0",
    "1.3.0",
    "1.4.0-rc.1",
    "latest",
    "edge",
];

fn rule_body(extra: Value) -> Value {
    let mut body = json!({
        "name": "app releases",
        "source": {"registry": "docker.io", "repositories": [REPO]},
        "tags": {"semver": ">=1.1 <2", "newest": 2},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn a_rule_copies_what_it_selects_then_only_what_changed_and_unchanged_costs_heads_only() {
    let s = setup(ProxyFault::None, TAGS);
    let rule = create_rule(&s.host, rule_body(json!({})));

    // The plan says what a run would do and changes nothing.
    let (status, plan) = s.host.admin(
        "POST",
        &format!("/api/v1/projects/hub/sync-rules/{rule}/plan"),
        None,
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["totals"]["copy"], 2, "{plan}");
    assert!(
        plan["totals"]["bytes_to_copy"].as_u64().unwrap() > 20_000,
        "{plan}"
    );
    assert_eq!(
        target_digest(&s.host, "1.2.0"),
        None,
        "a plan writes nothing"
    );

    // First run: `>=1.1 <2`, newest 2: exactly 1.2.0 and 1.3.0; the pre-release, 1.0.0,
    // 1.1.0, latest and edge are filtered.
    let first = run(&s.host, &rule);
    assert_eq!(first["state"], "succeeded", "{first}");
    let by = outcomes(&first);
    assert_eq!(by["copied"], vec!["1.2.0", "1.3.0"], "{first}");
    assert_eq!(by["filtered"].len(), 5, "{first}");
    assert_eq!(first["trigger"], "manual");
    assert_eq!(target_tags(&s.host), vec!["1.2.0", "1.3.0"]);
    for tag in ["1.2.0", "1.3.0"] {
        assert_eq!(
            target_digest(&s.host, tag).as_deref(),
            Some(s.digests[tag].as_str())
        );
    }

    // A new upstream release is copied by the next run, and nothing else is.
    let new = push(&s.source, "1.4.0");
    let second = run(&s.host, &rule);
    assert_eq!(second["state"], "succeeded", "{second}");
    let by = outcomes(&second);
    assert_eq!(by["copied"], vec!["1.4.0"], "{second}");
    assert_eq!(by["unchanged"], vec!["1.3.0"], "{second}");
    assert_eq!(target_digest(&s.host, "1.4.0"), Some(new.digest.clone()));

    // Nothing changed: one tag-list page, one manifest HEAD per selected tag at the
    // source, none at the target (the host's metadata knows), and nothing else.
    s.proxy.clear_log();
    let idle = run(&s.host, &rule);
    assert_eq!(idle["state"], "succeeded", "{idle}");
    assert_eq!(idle["counts"]["copied"], 0, "{idle}");
    assert_eq!(idle["counts"]["unchanged"], 2, "{idle}");
    let log = s.proxy.log();
    let heads = log
        .iter()
        .filter(|(m, p, _)| m == "HEAD" && p.contains("/manifests/"));
    let lists = log
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("/tags/list"));
    assert_eq!(heads.count(), 2, "{log:?}");
    assert_eq!(lists.count(), 1, "{log:?}");
    assert_eq!(
        log.len(),
        3,
        "no GET of a manifest, no blob, no token: {log:?}"
    );
    assert_eq!(idle["requests"]["target"], 0, "{idle}");
    assert_eq!(idle["requests"]["manifest_head"], 2, "{idle}");

    // The rule's runs are listed newest first, and the rule shows its last run.
    let (_, runs) = s.host.admin(
        "GET",
        &format!("/api/v1/projects/hub/sync-rules/{rule}/runs"),
        None,
    );
    assert_eq!(runs["runs"].as_array().unwrap().len(), 3, "{runs}");
    assert_eq!(runs["runs"][0]["id"], idle["id"]);
    let (_, shown) = s.host.admin(
        "GET",
        &format!("/api/v1/projects/hub/sync-rules/{rule}"),
        None,
    );
    assert_eq!(shown["last_run"]["id"], idle["id"], "{shown}");
}

#[test]
fn a_retagged_release_is_copied_and_backed_up_and_pruning_keeps_the_minimum() {
    let s = setup(ProxyFault::None, &["1.1.0", "1.2.0", "1.3.0"]);
    let rule = create_rule(
        &s.host,
        rule_body(json!({
            "tags": {"semver": ">=1.1 <2"},
            "policy": {"backup": true},
            "prune": {"keep_minimum": 2},
        })),
    );
    let first = run(&s.host, &rule);
    assert_eq!(outcomes(&first)["copied"].len(), 3, "{first}");
    let old = s.digests["1.3.0"].clone();

    // Upstream moves 1.3.0 to a new image: the run copies it and keeps the old one.
    let moved = push(&s.source, "1.3.0");
    let second = run(&s.host, &rule);
    assert_eq!(second["state"], "succeeded", "{second}");
    assert_eq!(outcomes(&second)["copied"], vec!["1.3.0"], "{second}");
    assert_eq!(target_digest(&s.host, "1.3.0"), Some(moved.digest.clone()));
    let item = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tag"] == "1.3.0")
        .unwrap();
    let backup = item["backup_tag"]
        .as_str()
        .expect("a backup tag")
        .to_owned();
    assert!(backup.starts_with("1.3.0-backup-"), "{backup}");
    assert_eq!(target_digest(&s.host, &backup), Some(old));

    // Two releases disappear upstream: only the tags that vanished are pruned, and never
    // below the minimum of two.
    for tag in ["1.1.0", "1.2.0"] {
        let digest = &s.digests[tag];
        let response = ureq::delete(&format!("{}/v2/{REPO}/manifests/{digest}", s.source.url()))
            .call()
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let third = run(&s.host, &rule);
    assert_eq!(third["state"], "succeeded", "{third}");
    let pruned = outcomes(&third).get("pruned").cloned().unwrap_or_default();
    assert_eq!(pruned.len(), 1, "one pruned, the minimum kept: {third}");
    let tags = target_tags(&s.host);
    assert!(tags.contains(&"1.3.0".to_owned()), "{tags:?}");
    assert_eq!(
        tags.iter().filter(|t| !t.contains("backup")).count(),
        2,
        "{tags:?}"
    );
}

#[test]
fn a_rate_limited_source_pauses_the_run_which_resumes_by_itself() {
    let s = setup(
        ProxyFault::RateLimitManifests {
            retry_after_secs: 3,
        },
        &["1.1.0", "1.2.0"],
    );
    let rule = create_rule(&s.host, rule_body(json!({})));
    s.proxy.arm_rate_limit(1);
    let done = run(&s.host, &rule);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(outcomes(&done)["copied"], vec!["1.1.0", "1.2.0"], "{done}");
    let log = s.proxy.log();
    let refused = log.iter().position(|(_, _, status)| *status == 429);
    assert!(refused.is_some(), "the source refused once: {log:?}");
}

#[test]
fn a_source_at_its_quota_floor_pauses_the_run_until_the_quota_comes_back() {
    let tags = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"];
    let s = setup_configured(ProxyFault::Quota { limit: 100 }, &tags, |config| {
        config.registries.get_mut("docker.io").unwrap().quota_floor = Some(10);
        config.sync.quota_retries = 30;
    });
    // Two pulls above the floor: the plan's HEADs are free, two copies fit.
    s.proxy.set_quota(12);
    let rule = create_rule(&s.host, rule_body(json!({"tags": {"semver": ">=1"}})));
    let id = start_run(&s.host, &rule);
    let mut waiting = Value::Null;
    wait_until(RUN_DEADLINE, "the run to wait for quota", || {
        let (_, run) = s
            .host
            .admin("GET", &format!("/api/v1/sync-runs/{id}"), None);
        let at_floor = run["state"] == "waiting";
        waiting = run;
        at_floor
    });
    assert_eq!(waiting["counts"]["copied"], 2, "{waiting}");
    assert_eq!(waiting["quota"]["remaining"], 10, "{waiting}");
    assert_eq!(waiting["quota"]["limit"], 100, "{waiting}");
    assert!(waiting["waiting_until"].is_string(), "{waiting}");
    let warning = waiting["warnings"].to_string();
    assert!(
        warning.contains("down to 10 of 100 pulls, at the floor of 10"),
        "{warning}"
    );
    let pulls = |log: &[(String, String, u16)]| {
        log.iter()
            .filter(|(m, p, _)| m == "GET" && p.contains("/manifests/"))
            .count()
    };
    assert_eq!(pulls(&s.proxy.log()), 2, "nothing pulled below the floor");

    s.proxy.set_quota(100);
    let done = wait_run(&s.host, &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(outcomes(&done)["copied"].len(), tags.len(), "{done}");
    assert_eq!(target_tags(&s.host), tags.to_vec());
    assert_eq!(done["quota"]["remaining"], 100 - 3, "{done}");
}

/// A 429 whose `Retry-After` outlasts the plugin's retries: the run waits as long as the
/// source asked, not only `quota_wait`, in the open.
#[test]
fn a_run_refused_for_quota_waits_as_long_as_the_source_asked() {
    let s = setup_configured(
        ProxyFault::RateLimitManifests {
            retry_after_secs: 2,
        },
        &["1.1.0"],
        |config| config.sync.quota_wait = Duration::from_millis(100),
    );
    let rule = create_rule(&s.host, rule_body(json!({})));
    // The first request and the plugin's five retries are all refused.
    s.proxy.arm_rate_limit(6);
    let id = start_run(&s.host, &rule);
    let state = |host: &HoistServer| {
        let (_, run) = host.admin("GET", &format!("/api/v1/sync-runs/{id}"), None);
        run["state"].as_str().unwrap_or_default().to_owned()
    };
    wait_until(RUN_DEADLINE, "the run to wait for quota", || {
        state(&s.host) == "waiting"
    });
    let waiting_since = std::time::Instant::now();
    wait_until(RUN_DEADLINE, "the run to go on", || {
        state(&s.host) != "waiting"
    });
    let waited = waiting_since.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "waited {waited:?}, not the 2 s the source asked for"
    );
    let done = wait_run(&s.host, &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        done["warnings"].to_string().contains("asked to wait 2s"),
        "{done}"
    );
}

#[test]
fn a_request_ceiling_spaces_every_request_to_the_source() {
    let per_second = 8.0;
    let s = setup_configured(ProxyFault::None, &["1.1.0", "1.2.0", "1.3.0"], |config| {
        config
            .registries
            .get_mut("docker.io")
            .unwrap()
            .max_requests_per_second = Some(per_second);
    });
    let rule = create_rule(&s.host, rule_body(json!({"tags": {"semver": ">=1"}})));
    let done = run(&s.host, &rule);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(outcomes(&done)["copied"].len(), 3, "{done}");
    let arrivals = s.proxy.arrivals();
    assert!(
        arrivals.len() >= 10,
        "enough requests to measure: {}",
        arrivals.len()
    );
    // Evenly spaced: the n requests span at least n - 1 gaps, and no second holds more
    // than the ceiling (one more at a window's edge).
    let span = arrivals[arrivals.len() - 1] - arrivals[0];
    let least = Duration::from_secs_f64((arrivals.len() - 1) as f64 / per_second * 0.9);
    assert!(span >= least, "{} requests in {span:?}", arrivals.len());
    for (i, start) in arrivals.iter().enumerate() {
        let within = arrivals[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_secs(1))
            .count();
        assert!(
            within <= per_second as usize + 1,
            "{within} requests within a second"
        );
    }
}

/// Starts a run and returns its id without waiting for it.
fn start_run(host: &HoistServer, rule: &str) -> String {
    let (status, started) = host.admin(
        "POST",
        &format!("/api/v1/projects/hub/sync-rules/{rule}/run"),
        None,
    );
    assert_eq!(status, 202, "{started}");
    started["run"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_second_run_while_one_is_going_is_recorded_as_skipped() {
    // Blobs come slowly, so the first run is surely still copying when the second asks.
    let s = setup(
        ProxyFault::DelayBlobs(Duration::from_millis(1500)),
        &["1.1.0", "1.2.0"],
    );
    let rule = create_rule(&s.host, rule_body(json!({})));
    let first = start_run(&s.host, &rule);
    let (status, refused) = s.host.admin(
        "POST",
        &format!("/api/v1/projects/hub/sync-rules/{rule}/run"),
        None,
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "run_active", "{refused}");
    assert_eq!(refused["active_run"], first.as_str());
    let skipped = refused["skipped_run"].as_str().unwrap();
    let (_, record) = s
        .host
        .admin("GET", &format!("/api/v1/sync-runs/{skipped}"), None);
    assert_eq!(record["state"], "skipped", "{record}");
    assert!(
        record["warnings"][0]
            .as_str()
            .unwrap()
            .contains("previous run"),
        "{record}"
    );
    let done = wait_run(&s.host, &first);
    assert_eq!(done["state"], "succeeded", "{done}");
}

#[test]
fn a_restart_during_a_run_leaves_no_half_written_tag_and_the_run_finishes() {
    let s = setup(
        ProxyFault::DelayBlobs(Duration::from_millis(1500)),
        &["1.1.0", "1.2.0", "1.3.0"],
    );
    let rule = create_rule(&s.host, rule_body(json!({"tags": {"semver": ">=1.1 <2"}})));
    let id = start_run(&s.host, &rule);
    wait_until(Duration::from_secs(60), "the run to be copying", || {
        let (_, run) = s
            .host
            .admin("GET", &format!("/api/v1/sync-runs/{id}"), None);
        run["phase"] == "copying"
    });
    let Setup {
        host,
        config,
        digests,
        proxy: _proxy,
        source: _source,
        _dir,
    } = s;
    host.stop();
    let host = HoistServer::start(config);
    // Whatever is visible right after the restart is whole: a tag names the upstream image.
    for tag in target_tags_or_none(&host) {
        assert_eq!(
            target_digest(&host, &tag).as_deref(),
            Some(digests[&tag].as_str()),
            "{tag} is whole"
        );
    }
    let run = wait_run(&host, &id);
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(
        outcomes(&run)["copied"].len() + outcomes(&run).get("unchanged").map_or(0, Vec::len),
        3,
        "{run}"
    );
    assert!(
        run["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("restarted")),
        "{run}"
    );
    assert_eq!(target_tags(&host), vec!["1.1.0", "1.2.0", "1.3.0"]);
    for (tag, digest) in &digests {
        assert_eq!(target_digest(&host, tag).as_ref(), Some(digest), "{tag}");
    }
}

/// The repository's tags, or none when it does not exist yet.
fn target_tags_or_none(host: &HoistServer) -> Vec<String> {
    let (status, _) = host.admin("GET", "/v2/hub/app/tags/list", None);
    if status == 404 {
        return Vec::new();
    }
    target_tags(host)
}

/// Receives webhook POSTs and keeps their bodies.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let port = hoist_tests::serve(app);
    (format!("http://127.0.0.1:{port}/hook"), seen)
}

#[test]
fn a_finished_run_is_posted_to_the_rules_webhook() {
    let s = setup(ProxyFault::None, &["1.1.0", "1.2.0"]);
    let (url, seen) = webhook_receiver();
    let always = create_rule(&s.host, rule_body(json!({"webhook": {"url": url}})));
    let done = run(&s.host, &always);
    wait_until(Duration::from_secs(30), "the webhook to be posted", || {
        !seen.lock().unwrap().is_empty()
    });
    let posted = seen.lock().unwrap()[0].clone();
    assert_eq!(posted["event"], "sync_run_finished", "{posted}");
    assert_eq!(posted["project"], "hub");
    assert_eq!(posted["rule"]["id"], always.as_str());
    assert_eq!(posted["run"]["id"], done["id"]);
    assert_eq!(posted["run"]["state"], "succeeded");
    assert_eq!(posted["run"]["counts"]["copied"], 2, "{posted}");

    // "Failures only": a successful run posts nothing.
    let quiet = create_rule(
        &s.host,
        rule_body(json!({"name": "quiet", "webhook": {"url": url, "on": "failures"}})),
    );
    let second = run(&s.host, &quiet);
    assert_eq!(second["state"], "succeeded", "{second}");
    let third = run(&s.host, &always);
    wait_until(Duration::from_secs(30), "the next webhook", || {
        seen.lock().unwrap().len() >= 2
    });
    let all = seen.lock().unwrap().clone();
    assert_eq!(
        all.len(),
        2,
        "the failures-only rule posted nothing: {all:?}"
    );
    assert_eq!(all[1]["run"]["id"], third["id"]);
}

#[test]
fn bad_rules_are_refused_with_the_field_at_fault() {
    let s = setup(ProxyFault::None, &[]);
    let cases = [
        (
            json!({"name": "x", "source": {"registry": "docker.io", "repositories": []}}),
            "source.repositories",
        ),
        (
            json!({"name": "x", "source": {"registry": "docker.io", "repositories": [REPO]},
            "tags": {"include": [{"regex": "(unclosed"}]}}),
            "tags",
        ),
        (
            json!({"name": "x", "source": {"registry": "docker.io", "repositories": [REPO]},
            "schedule": {"cron": "0 3 * * *", "timezone": "Mars/Olympus"}}),
            "schedule.timezone",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = s
            .host
            .admin("POST", "/api/v1/projects/hub/sync-rules", Some(body));
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, error) = s.host.admin(
        "POST",
        "/api/v1/projects/hub/sync-rules",
        Some(
            json!({"name": "x", "source": {"registry": "docker.io", "repositories": [REPO]},
                    "tagz": {}}),
        ),
    );
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"].as_str().unwrap().contains("tagz"),
        "{error}"
    );
    let created = create_rule(&s.host, rule_body(json!({})));
    let (status, error) = s.host.admin(
        "POST",
        "/api/v1/projects/hub/sync-rules",
        Some(rule_body(json!({}))),
    );
    assert_eq!(status, 409, "a second rule of the same name: {error}");
    let (status, _) = s.host.call(
        "GET",
        &format!("/api/v1/projects/hub/sync-rules/{created}"),
        None,
        false,
    );
    assert_eq!(
        status, 401,
        "a private project's rules need a signed-in user"
    );
}
