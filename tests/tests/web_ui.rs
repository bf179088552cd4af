//! The web UI in a real browser: headless Chromium driven through chromedriver. An admin
//! signs in, creates a project, imports an image from a local registry standing in for
//! Docker Hub and watches its progress reach 100% without a reload, finds the new tag on
//! the project page, sees a bad reference refused as it is typed, and sees a failed
//! import's error. Another admin pastes a batch of references, cancels a slow import and
//! retries it, and presses buttons that live progress and history refreshes must not
//! replace under the mouse. Screenshots of the main pages go to `test-output/screenshots/`.

use fantoccini::{Client, ClientBuilder, Locator};
use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::hoist_server::{ADMIN_PASSWORD, HoistServer, over_plain_http, test_config};
use hoist_tests::images::{Format, Pusher, docker_hub};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Four layers of 1.5 MB: enough blobs and bytes for the progress to move.
const LAYERS: &[usize] = &[1_500_000, 1_500_000, 1_500_000, 1_500_000];
const DEADLINE: Duration = Duration::from_secs(60);

/// chromedriver on a loopback port of its own, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run scripts/install-deps.sh (Debian's chromium and \
                 chromium-driver)"
            );
        }
        let port = hoist_tests::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port };
        hoist_tests::wait_until(Duration::from_secs(20), "chromedriver to answer", || {
            ureq::get(&driver.url("/status"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true)
        });
        driver
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with a fresh profile. Without the background-networking
/// flags, Chromium keeps trying to reach Google's services, which a closed network makes
/// slow and flaky.
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url(""))
        .await
        .expect("a Chromium session through chromedriver")
}

/// Whether the JavaScript expression `condition` is true on the page now; a script error
/// counts as false.
async fn holds(c: &Client, condition: &str) -> bool {
    c.execute(&format!("return !!({condition});"), vec![])
        .await
        .is_ok_and(|v| v == Value::Bool(true))
}

/// Polls a JavaScript condition until it returns true, failing after `DEADLINE` with
/// `what` and the page's main text.
async fn wait_js(c: &Client, what: &str, condition: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        if holds(c, condition).await {
            return;
        }
        if Instant::now() > end {
            let text = c
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap_or_default();
            panic!("timed out after {DEADLINE:?} waiting for {what}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The rendered text of the element `css`, found and read in one step: live pages redraw
/// between two WebDriver calls.
async fn text_of(c: &Client, css: &str) -> String {
    let text = c
        .execute(
            "const e = document.querySelector(arguments[0]); return e && e.innerText;",
            vec![Value::from(css)],
        )
        .await
        .unwrap();
    text.as_str()
        .unwrap_or_else(|| panic!("no element {css} on the page"))
        .to_owned()
}

async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Signs in as the admin through the sign-in form on the page, and waits for the
/// projects page.
async fn sign_in_as_admin(c: &Client) {
    type_into(c, "#signin-password", ADMIN_PASSWORD).await;
    click(c, "#signin-submit").await;
    wait_js(
        c,
        "the projects page",
        "document.querySelector('#project-form')",
    )
    .await;
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("HOIST_TEST_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-output"))
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// A screenshot with the element `css` scrolled to the middle of the window.
async fn screenshot_around(c: &Client, css: &str, name: &str) {
    c.execute(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
        vec![Value::from(css)],
    )
    .await
    .unwrap();
    screenshot(c, name).await;
}

#[test]
fn an_admin_imports_an_image_from_the_browser() {
    let (src, pushed) = docker_hub(LAYERS);
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let host = HoistServer::start(test_config(
        &dir.path().join("host"),
        &[("docker.io", &mirror)],
    ));
    let driver = Driver::start();
    let profile = dir.path().join("chromium-profile");
    let base = host.url("/");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver, &profile).await;

        // Signing in: `/` sends the browser to the UI, which asks for the password.
        c.goto(&base).await.unwrap();
        wait_js(&c, "the sign-in form", "document.querySelector('#signin-form')").await;
        screenshot(&c, "01-sign-in").await;
        type_into(&c, "#signin-password", "wrong").await;
        click(&c, "#signin-submit").await;
        wait_js(
            &c,
            "a wrong password refused",
            "document.querySelector('#signin-error').textContent.includes('wrong')",
        )
        .await;
        sign_in_as_admin(&c).await;
        let cookie = c.get_named_cookie("hoist_session").await.unwrap();
        assert_eq!(cookie.http_only(), Some(true), "the session is HttpOnly");

        // A project.
        type_into(&c, "#project-name", "web").await;
        click(&c, "#project-create").await;
        wait_js(
            &c,
            "the new project in the list",
            "document.querySelector('#projects a[data-project=\"web\"]')",
        )
        .await;
        let (status, project) = host.admin("GET", "/api/v1/projects/web", None);
        assert_eq!(status, 200, "{project}");
        assert_eq!(project["public"], false);
        screenshot(&c, "02-projects").await;

        // The import form checks the reference as it is typed and fills in the target.
        click(&c, "#projects a[data-project=\"web\"]").await;
        wait_js(&c, "the import form", "document.querySelector('#import-form')").await;
        type_into(&c, "#import-source", "UPPER/Case:tag").await;
        wait_js(
            &c,
            "the bad reference refused inline",
            "document.querySelector('#import-source').getAttribute('aria-invalid') === 'true' \
             && document.querySelector('#import-parse').classList.contains('error') \
             && document.querySelector('#import-parse').textContent.length > 0",
        )
        .await;
        screenshot(&c, "03-invalid-reference").await;
        type_into(&c, "#import-source", "app:v1").await;
        wait_js(
            &c,
            "the reference normalised",
            "document.querySelector('#import-parse').textContent.includes('docker.io/library/app:v1')",
        )
        .await;
        assert_eq!(value_of(&c, "#import-image").await, "app");
        assert_eq!(value_of(&c, "#import-tag").await, "v1");
        screenshot(&c, "04-import-form").await;

        // The import, followed live: every progress value the bar shows is recorded by
        // an observer in the page, which a reload would wipe out.
        c.execute(
            "window.__seen = []; window.__noReload = true; \
             new MutationObserver(() => { \
               const p = document.querySelector('#task-progress'); \
               if (p) window.__seen.push(Number(p.getAttribute('aria-valuenow'))); \
             }).observe(document.querySelector('#task'), {subtree: true, childList: true, attributes: true});",
            vec![],
        )
        .await
        .unwrap();
        click(&c, "#import-submit").await;
        wait_js(
            &c,
            "the import to succeed",
            "document.querySelector('#task-result') \
             && document.querySelector('#task-percent').textContent === '100%'",
        )
        .await;
        let seen = c
            .execute("return [window.__noReload, window.__seen];", vec![])
            .await
            .unwrap();
        assert_eq!(seen[0], true, "the page was not reloaded");
        let seen: Vec<u64> = serde_json::from_value(seen[1].clone()).unwrap();
        assert_eq!(seen.last(), Some(&100), "{seen:?}");
        assert!(seen.len() >= 2, "the bar moved in steps: {seen:?}");
        assert_eq!(text_of(&c, "#task-digest").await, pushed.digest);
        assert_eq!(
            value_of(&c, "#task-pull").await,
            format!("docker pull {}/web/app:v1", host.host())
        );
        screenshot(&c, "05-import-done").await;

        // The tag on the project page, with where it came from.
        wait_js(
            &c,
            "the new tag in the project",
            "document.querySelector('#tags tr[data-tag=\"app:v1\"]')",
        )
        .await;
        let row = text_of(&c, "#tags tr[data-tag=\"app:v1\"]").await;
        assert!(row.contains("linux/amd64"), "{row}");
        assert!(row.contains("imported from docker.io/library/app:v1"), "{row}");
        c.goto(&host.url("/ui/#/projects/web")).await.unwrap();
        wait_js(
            &c,
            "the tag after a fresh load",
            "document.querySelector('#tags tr[data-tag=\"app:v1\"]') \
             && document.querySelector('#history tbody tr[data-task]')",
        )
        .await;
        screenshot_around(&c, "#tags", "06-project").await;

        // A failed import shows its error; the credentials typed for it leave the page.
        type_into(&c, "#import-source", "app:missing").await;
        wait_js(
            &c,
            "the second reference parsed",
            "document.querySelector('#import-parse').textContent.includes('app:missing')",
        )
        .await;
        // The tags reload when the import ends; the row of app:v1, unchanged, must stay
        // the same element, or a digest the admin is selecting to copy would be lost.
        c.execute(
            "window.__appRow = document.querySelector('#tags tr[data-tag=\"app:v1\"]'); \
             window.__tagLoads = 0; \
             new MutationObserver(() => window.__tagLoads++) \
               .observe(document.querySelector('#repos-summary'), {childList: true});",
            vec![],
        )
        .await
        .unwrap();
        click(&c, "#import-creds summary").await;
        type_into(&c, "#import-username", "someone").await;
        type_into(&c, "#import-password", "s3cret-Pa55word").await;
        click(&c, "#import-submit").await;
        wait_js(
            &c,
            "the failed import's error",
            "document.querySelector('#task-error-message') \
             && document.querySelector('#task-retry')",
        )
        .await;
        assert_eq!(value_of(&c, "#import-password").await, "");
        let html = c.source().await.unwrap();
        assert!(!html.contains("s3cret-Pa55word"), "the password left the page");
        let error = text_of(&c, "#task-error").await;
        assert!(error.contains("not_found"), "{error}");
        screenshot(&c, "07-import-error").await;
        wait_js(&c, "the tags reloaded", "window.__tagLoads > 0").await;
        assert!(
            holds(
                &c,
                "document.querySelector('#tags tr[data-tag=\"app:v1\"]') === window.__appRow"
            )
            .await,
            "an unchanged tag row is kept across a reload"
        );

        // The history filters by state.
        c.find(Locator::Css("#history-state"))
            .await
            .unwrap()
            .select_by_value("failed")
            .await
            .unwrap();
        wait_js(
            &c,
            "only failed tasks in the history",
            "(() => { const rows = [...document.querySelectorAll('#history tbody tr[data-task]')]; \
               return rows.length === 1 && rows[0].textContent.includes('failed'); })()",
        )
        .await;

        // At phone width the same page still works.
        c.set_window_size(390, 1400).await.unwrap();
        c.goto(&host.url("/ui/#/projects/web")).await.unwrap();
        wait_js(
            &c,
            "the project page at phone width",
            "document.querySelector('#tags tr[data-tag=\"app:v1\"]')",
        )
        .await;
        assert!(
            holds(
                &c,
                "document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            .await,
            "no sideways scrolling at phone width"
        );
        c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
        screenshot(&c, "08-phone").await;

        // Signing out ends the session.
        click(&c, "#sign-out").await;
        wait_js(&c, "the sign-in form again", "document.querySelector('#signin-form')").await;
        c.close().await.unwrap();
    });

    // Without the UI's header, the session cookie changes nothing (CSRF).
    let (token, _) = {
        // A session as the browser had it: sign in through the API the page uses.
        let response = ureq::post(&host.url("/ui/session"))
            .set("x-hoist-ui", "1")
            .send_json(json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .unwrap();
        let cookie = response.header("set-cookie").unwrap().to_owned();
        (cookie.split(';').next().unwrap().to_owned(), ())
    };
    let forged = ureq::post(&host.url("/api/v1/projects"))
        .set("cookie", &token)
        .send_json(json!({"name": "forged"}));
    assert!(
        matches!(forged, Err(ureq::Error::Status(401, _))),
        "{forged:?}"
    );
    let cross_site = ureq::post(&host.url("/api/v1/projects"))
        .set("cookie", &token)
        .set("x-hoist-ui", "1")
        .set("origin", "http://evil.example")
        .send_json(json!({"name": "forged"}));
    assert!(
        matches!(cross_site, Err(ureq::Error::Status(401, _))),
        "{cross_site:?}"
    );
    let same_page = ureq::post(&host.url("/api/v1/projects"))
        .set("cookie", &token)
        .set("x-hoist-ui", "1")
        .send_json(json!({"name": "allowed"}))
        .unwrap();
    assert_eq!(same_page.status(), 201);
}

#[test]
fn an_admin_imports_a_batch_and_cancels_and_retries_a_slow_import() {
    let (src, app) = docker_hub(LAYERS);
    let tool = Pusher::new(&src.url()).image(
        "library/tool",
        Some("v2"),
        Format::Oci,
        LAYERS,
        ("linux", "arm64"),
    );
    // A source whose layer trickles out over seconds: long enough to press Cancel.
    let slow = FakeRegistry::start(Fault::SlowLayer);
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let mut config = test_config(&dir.path().join("host"), &[("docker.io", &mirror)]);
    over_plain_http(&mut config, &slow.host());
    let host = HoistServer::start(config);
    host.project("batch", false);
    let driver = Driver::start();
    let profile = dir.path().join("chromium-profile");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver, &profile).await;
        c.goto(&host.url("/")).await.unwrap();
        wait_js(&c, "the sign-in form", "document.querySelector('#signin-form')").await;
        sign_in_as_admin(&c).await;
        c.goto(&host.url("/ui/#/projects/batch")).await.unwrap();
        wait_js(&c, "the batch form", "document.querySelector('#batch-form')").await;

        // Two good references and a bad one: each good one becomes a task, and the bad
        // one is named with what is wrong with it.
        c.find(Locator::Css("#batch-refs"))
            .await
            .unwrap()
            .send_keys("app:v1\ntool:v2\nteam/Bad:x")
            .await
            .unwrap();
        click(&c, "#batch-submit").await;
        wait_js(
            &c,
            "an answer for each line of the batch",
            "document.querySelectorAll('#batch-result li').length === 3",
        )
        .await;
        let tasks = c
            .execute(
                "return [...document.querySelectorAll('#batch-result li')].map(li => li.textContent);",
                vec![],
            )
            .await
            .unwrap();
        let lines: Vec<String> = serde_json::from_value(tasks).unwrap();
        assert!(lines[0].starts_with("app:v1") && lines[0].contains("task "), "{lines:?}");
        assert!(lines[1].starts_with("tool:v2") && lines[1].contains("task "), "{lines:?}");
        assert!(
            lines[2].starts_with("team/Bad:x") && lines[2].contains("lowercase"),
            "the bad line says what is wrong: {lines:?}"
        );
        screenshot_around(&c, "#batch-result", "09-batch").await;
        let (_, listed) = host.admin("GET", "/api/v1/projects/batch/tasks", None);
        let ids: Vec<String> = listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 2, "{listed}");
        for id in &ids {
            assert_eq!(host.wait_task(id, DEADLINE)["state"], "succeeded");
        }
        // Without a reload: the page notices its tasks ending.
        wait_js(
            &c,
            "both batch imports among the tags",
            "document.querySelector('#tags tr[data-tag=\"app:v1\"]') \
             && document.querySelector('#tags tr[data-tag=\"tool:v2\"]')",
        )
        .await;
        let row = text_of(&c, "#tags tr[data-tag=\"tool:v2\"]").await;
        assert!(row.contains("linux/arm64"), "{row}");
        assert!(row.contains(&tool.digest[..19]), "{row}");
        assert_ne!(app.digest, tool.digest);

        // A slow import, cancelled while its layer is on the way: no tag is left.
        type_into(&c, "#import-source", &format!("{}/fake:v1", slow.host())).await;
        wait_js(
            &c,
            "the slow source parsed",
            "document.querySelector('#import-image').value === 'fake'",
        )
        .await;
        click(&c, "#import-submit").await;
        wait_js(
            &c,
            "the slow layer under way",
            "document.querySelector('#task-cancel') \
             && [...document.querySelectorAll('#task-blobs-list tr')] \
                  .some(tr => tr.textContent.includes('copying'))",
        )
        .await;
        // The button pressed is the one found before the bar last moved: progress
        // redraws the panel, and must not replace the button under the mouse.
        let cancel = c.find(Locator::Css("#task-cancel")).await.unwrap();
        let before = text_of(&c, "#task-bytes").await;
        wait_js(
            &c,
            "the slow layer's progress to move",
            &format!(
                "document.querySelector('#task-bytes').textContent !== {}",
                Value::from(before)
            ),
        )
        .await;
        cancel.click().await.expect("Cancel survives progress updates");
        wait_js(
            &c,
            "the import cancelled, with Retry offered",
            "document.querySelector('#task-state').dataset.state === 'cancelled' \
             && document.querySelector('#task-retry') \
             && !document.querySelector('#task-cancel')",
        )
        .await;
        screenshot(&c, "10-cancelled").await;
        let (status, _) = host.admin("GET", "/v2/batch/fake/manifests/v1", None);
        assert_eq!(status, 404, "a cancelled import leaves no tag");

        // Retried, the same import runs again. Meanwhile the admin looks at the earlier
        // import of app:v1 through its Show button, found before the history last
        // refreshed: the refresh must not replace the button under the mouse.
        let task_of = |source: &str| -> String {
            let (_, listed) = host.admin("GET", "/api/v1/projects/batch/tasks", None);
            let task = listed["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["source_canonical"].as_str().unwrap().ends_with(source))
                .unwrap_or_else(|| panic!("a task from {source} in {listed}"));
            task["id"].as_str().unwrap().to_owned()
        };
        let (app_task, slow_task) = (task_of("/library/app:v1"), task_of("/fake:v1"));
        click(&c, "#task-retry").await;
        let show = c
            .find(Locator::Css(&format!(
                "#history tr[data-task=\"{app_task}\"] button"
            )))
            .await
            .unwrap();
        // Marked after the button is found, the cell tells when a refresh has run since.
        let progress_cell =
            format!("document.querySelector('#history tr[data-task=\"{app_task}\"]').children[4]");
        c.execute(&format!("{progress_cell}.dataset.seen = '1';"), vec![])
            .await
            .unwrap();
        wait_js(
            &c,
            "the history refreshed",
            &format!("!{progress_cell}.dataset.seen"),
        )
        .await;
        show.click()
            .await
            .expect("Show survives the history's refresh");
        wait_js(
            &c,
            "the earlier import in the task panel",
            &format!(
                "document.querySelector('#task-digest') \
                 && document.querySelector('#task-digest').textContent === '{}'",
                app.digest
            ),
        )
        .await;
        click(&c, &format!("#history tr[data-task=\"{slow_task}\"] button")).await;
        wait_js(
            &c,
            "the retried import to succeed",
            "document.querySelector('#task').textContent.includes('/fake:v1') \
             && document.querySelector('#task-result') \
             && document.querySelector('#task-percent').textContent === '100%'",
        )
        .await;
        let (status, _) = host.admin("GET", "/v2/batch/fake/manifests/v1", None);
        assert_eq!(status, 200, "the retried import left its tag");
        c.close().await.unwrap();
    });
}

#[test]
fn an_admin_creates_a_sync_rule_with_its_preview_runs_it_and_sees_its_items() {
    let src = hoist_tests::registry::Registry::start(hoist_tests::registry::Auth::None);
    for tag in ["1.0.0", "1.1.0", "1.2.0", "edge"] {
        Pusher::new(&src.url()).image(
            "library/app",
            Some(tag),
            Format::Oci,
            &[30_000],
            ("linux", "amd64"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let host = HoistServer::start(test_config(
        &dir.path().join("host"),
        &[("docker.io", &mirror)],
    ));
    host.project("mirror", false);
    let driver = Driver::start();
    let profile = dir.path().join("chromium-profile");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver, &profile).await;
        c.goto(&host.url("/")).await.unwrap();
        wait_js(&c, "the sign-in form", "document.querySelector('#signin-form')").await;
        sign_in_as_admin(&c).await;
        c.goto(&host.url("/ui/#/projects/mirror")).await.unwrap();
        wait_js(&c, "the project page", "document.querySelector('#sync-link')").await;
        click(&c, "#sync-link").await;
        wait_js(&c, "the sync page", "document.querySelector('#rule-form')").await;

        // The preview follows the form: a semver range keeps 1.1.0 and 1.2.0.
        type_into(&c, "#rule-name", "app").await;
        type_into(&c, "#rule-repositories", "library/app").await;
        type_into(&c, "#rule-semver", ">=1.1 <2").await;
        wait_js(
            &c,
            "the preview to list two tags to copy",
            "document.querySelectorAll('#preview tr[data-action=\"copy\"]').length === 2",
        )
        .await;
        let summary = text_of(&c, "#preview-summary").await;
        assert!(summary.starts_with("2 to copy"), "{summary}");
        screenshot_around(&c, "#rule-preview", "20-sync-preview").await;

        // A bad range is named at its field when saving.
        type_into(&c, "#rule-semver", ">=banana").await;
        click(&c, "#rule-save").await;
        wait_js(
            &c,
            "the range refused",
            "document.querySelector('#rule-include-msg').textContent.length > 0",
        )
        .await;
        type_into(&c, "#rule-semver", ">=1.1 <2").await;
        click(&c, "#rule-save").await;
        wait_js(
            &c,
            "the rule listed",
            "document.querySelector('#rules tr[data-rule]')",
        )
        .await;

        // Run now: the run's page shows its items, and ends with two copied.
        c.execute(
            "document.querySelector('#rules tr[data-rule] button').click();",
            vec![],
        )
        .await
        .unwrap();
        wait_js(
            &c,
            "the run to end with two tags copied",
            "document.querySelectorAll('#run-items tr[data-outcome=\"copied\"]').length === 2 \
             && document.querySelector('#run-summary').innerText.includes('succeeded')",
        )
        .await;
        let filtered = c
            .execute(
                "return document.querySelectorAll('#run-items tr[data-outcome=\"filtered\"]').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(filtered, json!(2), "1.0.0 and edge are filtered out");
        screenshot(&c, "21-sync-run").await;
        c.close().await.unwrap();
    });
    let (_, list) = host.admin("GET", "/v2/mirror/app/tags/list", None);
    let mut tags: Vec<&str> = list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["1.1.0", "1.2.0"]);
}
