//! Hoist's own host, started in this process from a configuration, on a port of its own;
//! stopped when dropped, and started again on the same data folder to test restarts.

use hoist_host::config::{Config, SourceRegistry};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "test-admin-password-7f3e";

/// The admin's `user:password`, as skopeo's `--creds` takes it.
pub fn admin_creds() -> String {
    format!("admin:{ADMIN_PASSWORD}")
}

/// The admin's `Authorization` header.
pub fn admin_basic() -> String {
    crate::basic("admin", ADMIN_PASSWORD)
}

pub struct HoistServer {
    pub port: u16,
    pub data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A configuration for tests: loopback allowed, `mirrors` as given.
pub fn test_config(data_dir: &Path, mirrors: &[(&str, &str)]) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.egress.allowed_networks = vec!["127.0.0.0/8".into()];
    for (registry, url) in mirrors {
        config.registries.insert(
            (*registry).to_owned(),
            SourceRegistry {
                mirrors: vec![(*url).to_owned()],
                ..Default::default()
            },
        );
    }
    config
}

/// Has the host reach `registry` (a test registry on loopback) over plain HTTP.
pub fn over_plain_http(config: &mut Config, registry: &str) {
    config.registries.insert(
        registry.to_owned(),
        SourceRegistry {
            insecure: true,
            ..Default::default()
        },
    );
}

impl HoistServer {
    /// Starts the host with `config`, on a free port unless it names one.
    pub fn start(mut config: Config) -> Self {
        // Bound here, before the host is built, and handed over: a port picked now and
        // bound later can be taken by another test in between.
        if config.listen.port() == 5000 {
            config.listen = "127.0.0.1:0".parse().unwrap();
        }
        let listener = std::net::TcpListener::bind(config.listen)
            .unwrap_or_else(|e| panic!("binding {}: {e}", config.listen));
        listener.set_nonblocking(true).unwrap();
        config.listen = listener.local_addr().unwrap();
        let port = config.listen.port();
        let data_dir = config.data_dir.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let host = hoist_host::server::build(&config, Some(ADMIN_PASSWORD.into()))
                    .await
                    .expect("the host starts");
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                host.resume().await.unwrap();
                ready.send(()).unwrap();
                // Stopping drops the runtime mid-flight, as a crash would: no import gets
                // to finish or to record anything more.
                tokio::select! {
                    () = host.serve(listener) => {}
                    _ = stopped => {}
                }
            });
        });
        is_ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the host started");
        Self {
            port,
            data_dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
    }

    /// Sends a request as the admin (or anonymously) and returns the status and JSON.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>, admin: bool) -> (u16, Value) {
        let mut req = Self::agent().request(method, &self.url(path));
        if admin {
            req = req.set("authorization", &admin_basic());
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body, true)
    }

    /// Asks, as the admin, for an import into `project`; the status and the answer.
    pub fn import(&self, project: &str, body: Value) -> (u16, Value) {
        self.admin(
            "POST",
            &format!("/api/v1/projects/{project}/images/import"),
            Some(body),
        )
    }

    /// [`HoistServer::import`], which must be accepted; the task's id.
    pub fn start_import(&self, project: &str, body: Value) -> String {
        let (status, accepted) = self.import(project, body);
        assert_eq!(status, 202, "{accepted}");
        accepted["task_id"].as_str().unwrap().to_owned()
    }

    /// Creates a project as the admin.
    pub fn project(&self, name: &str, public: bool) {
        let (status, body) = self.admin(
            "POST",
            "/api/v1/projects",
            Some(serde_json::json!({"name": name, "public": public})),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Waits until the task has finished and returns it.
    pub fn wait_task(&self, id: &str, within: Duration) -> Value {
        let mut last = Value::Null;
        crate::wait_until(within, &format!("task {id} to finish"), || {
            let (_, task) = self.admin("GET", &format!("/api/v1/tasks/{id}"), None);
            let done = matches!(
                task["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            );
            last = task;
            done
        });
        last
    }

    /// Stops the host as abruptly as a crash would, leaving its data folder.
    pub fn stop(mut self) -> PathBuf {
        self.shutdown();
        self.data_dir.clone()
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HoistServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
