//! `spawn_app`: the real API server on 127.0.0.1:0 over a real SQLite
//! file, with the local platform (real stand-in bot processes) or the fake
//! one, driven with reqwest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deployment::api::{self, ApiToken, ServeOptions, StopSignal};
use deployment::{BotService, ServiceSettings};
use platform_core::testkit::FakePlatform;
use platform_core::{MapEnv, PlatformService, SecretString};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::common::{TestDb, test_options};

/// The token every test app uses.
pub const TOKEN: &str = "test-token-0123456789abcdef";
/// The `Prefer` header of a create that waits for its bot to run or fail.
pub const WAIT: &str = "wait=30";

/// The `meeboter-deploy` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_meeboter-deploy");

/// A running server and what it runs on.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// An HTTP client (no proxy).
    pub client: reqwest::Client,
    /// The service behind it.
    pub service: BotService,
    stop: StopSignal,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: TestDb,
    _state_dir: Option<tempfile::TempDir>,
}

/// A client that never goes through a proxy, whatever the environment says.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

async fn start(service: BotService, db: TestDb, state_dir: Option<tempfile::TempDir>) -> TestApp {
    start_on(bind().await, service, db, state_dir).await
}

async fn start_on(
    listener: tokio::net::TcpListener,
    service: BotService,
    db: TestDb,
    state_dir: Option<tempfile::TempDir>,
) -> TestApp {
    let addr = listener.local_addr().unwrap();
    let stop = StopSignal::new();
    let options = ServeOptions {
        webhook_worker: None,
        reconcile_interval: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(10),
        max_body_bytes: 8 * 1024,
    };
    let server = tokio::spawn(api::serve(
        listener,
        service.clone(),
        ApiToken::new(&SecretString::from(TOKEN)),
        options,
        stop.stopped(),
    ));
    TestApp {
        addr,
        client: client(),
        service,
        stop,
        server: Some(server),
        _db: db,
        _state_dir: state_dir,
    }
}

/// The API over a fake platform (answers at once unless told otherwise).
pub async fn spawn_fake(platform: Arc<FakePlatform>) -> TestApp {
    let db = TestDb::sqlite();
    let service = BotService::new(
        db.store().await,
        platform as Arc<dyn PlatformService>,
        test_options(),
    );
    start(service, db, None).await
}

/// The API over a fake platform with these options; bots are told to
/// reach the API at its real address.
pub async fn spawn_fake_with(
    platform: Arc<FakePlatform>,
    options: deployment::ServiceOptions,
) -> TestApp {
    let db = TestDb::sqlite();
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let service = BotService::new(
        db.store().await,
        platform as Arc<dyn PlatformService>,
        deployment::ServiceOptions {
            bot_api_url: Some(format!("http://{addr}")),
            ..options
        },
    );
    start_on(listener, service, db, None).await
}

/// The API over the local platform running real stand-in bots (which end
/// on their own within a minute, should a failing test leave one behind).
pub async fn spawn_local() -> TestApp {
    let db = TestDb::sqlite();
    let state = tempfile::tempdir().unwrap();
    let listener = bind().await;
    let env = MapEnv::new()
        .with("LISTEN_ADDR", listener.local_addr().unwrap().to_string())
        .with("DEPLOYMENT_PLATFORM", "local")
        .with("DATABASE_URL", db.url())
        .with("LOCAL_STATE_DIR", state.path().display().to_string())
        .with(
            "LOCAL_BOT_COMMAND",
            format!("env SIM_BOT_LIFETIME=60 {BIN} sim-bot"),
        )
        .with("LOCAL_STOP_GRACE_SECONDS", "5");
    let settings = ServiceSettings::load(&env).unwrap();
    let service = deployment::open_service(&settings, Arc::new(env))
        .await
        .expect("open the service on the local platform");
    start_on(listener, service, db, Some(state)).await
}

impl TestApp {
    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with the right token.
    pub fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
    }

    /// A request without a token.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `POST /v1/bots` with `body`, waiting for the bot to run or fail
    /// (`Prefer: wait=30`), as most tests want to look at a bot the
    /// platform answered for.
    pub async fn create(&self, body: &Value) -> Response {
        self.authed(Method::POST, "/v1/bots")
            .header("Prefer", WAIT)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET` with the token, as JSON, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let response = self.authed(Method::GET, path).send().await.unwrap();
        expect_json(response, status).await
    }

    /// Stops the server and waits for it, as SIGTERM would.
    pub async fn shutdown(mut self) {
        self.stop.stop();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.service.store().close().await;
    }

    /// Tells the server to stop without waiting.
    pub fn begin_shutdown(&self) {
        self.stop.stop();
    }

    /// Waits for the server to have stopped.
    pub async fn wait_stopped(&mut self) {
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A Zoom bot request, with a passcode and a password.
pub fn zoom_request(n: u64) -> Value {
    serde_json::json!({
        "meeting_platform": "zoom",
        "meeting_url": format!("https://us02web.zoom.us/j/8{n:010}?pwd=s3cr3tpass"),
        "meeting_password": "hunter2-pw",
        "display_name": format!("Notes {n}"),
    })
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an error answer: status, code, and that the body never shows
/// a secret of [`zoom_request`].
pub async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let text = body.to_string();
    for secret in ["s3cr3tpass", "hunter2-pw", TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    body
}

/// Polls `GET path` until `done` holds, for at most 20 s.
pub async fn wait_for(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app.get_json(path, 200).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never reached the expected state; last: {last}");
}

/// `meeboter-deploy serve` as a child process on 127.0.0.1:0, on the local
/// platform and a SQLite file in its own directory. Killed when dropped.
pub struct ServeProcess {
    /// The process.
    pub child: std::process::Child,
    /// Where it listens, once it said so.
    pub addr: SocketAddr,
    /// Every line it wrote on standard error so far.
    pub stderr: Arc<std::sync::Mutex<Vec<String>>>,
    /// Its working directory (database, local platform state), removed
    /// when dropped, unless the test owns it.
    _dir: Option<tempfile::TempDir>,
}

/// The command for `meeboter-deploy serve` in `dir`, with `extra` variables.
pub fn serve_command(dir: &std::path::Path, extra: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("bots.db").display()),
        )
        .env("DEPLOYMENT_PLATFORM", "local")
        .env("LOCAL_STATE_DIR", dir.join("local"))
        .env(
            "LOCAL_BOT_COMMAND",
            format!("env SIM_BOT_LIFETIME=60 {BIN} sim-bot"),
        )
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "debug")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}

impl ServeProcess {
    /// Starts it and waits (at most 60 s) until it listens.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut serve = Self::start_in(dir.path(), extra);
        serve._dir = Some(dir);
        serve
    }

    /// Starts it in `dir`, which the test keeps (to start it again there
    /// after a crash), and waits (at most 60 s) until it listens.
    pub fn start_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = serve_command(dir, extra)
            .spawn()
            .expect("start meeboter-deploy serve");
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().expect("a socket address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve never listened; stderr: {:?}", stderr.lock().unwrap());
            }
        };
        Self {
            child,
            addr,
            stderr,
            _dir: None,
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything written on standard error so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Waits (at most 60 s) for the process to exit, and returns its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not exit; stderr: {}", self.stderr_text());
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
