//! The README's run command on the real Spin CLI: `spin up` serves the built components, and the
//! README's `curl` examples answer as the README says they do.
//!
//! Needs the Spin CLI (`$SPIN_BIN`, default `../shared/tools/spin`) and the components built by
//! `spin build` (or the test command's build step). Under CI (`CI=true`) a missing binary or
//! component fails the test; elsewhere it is skipped with a message.

#[path = "common/bad_input.rs"]
mod bad_input;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `spin up`, stopped when dropped.
struct SpinUp {
    child: Child,
    port: u16,
    _state: TempDir,
}

impl SpinUp {
    /// The process group `spin up` leads (it is started as the leader of its own).
    fn group(&self) -> String {
        format!("-{}", self.child.id())
    }
}

/// Whether any process of `group` (`-<pgid>`) is alive.
fn group_alive(group: &str) -> bool {
    Command::new("kill")
        .args(["-0", "--", group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for SpinUp {
    /// `spin up` runs the app in a child process (`spin trigger http`) that it stops on SIGTERM;
    /// killing `spin up` alone would leave the trigger serving, orphaned. So the whole group
    /// gets SIGTERM, and SIGKILL whatever is left after 10 s.
    fn drop(&mut self) {
        let group = self.group();
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(&group) && Instant::now() < deadline {
            // Reaps `spin up` once it exits: a zombie leader still counts as alive.
            let _ = self.child.try_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `probe()` every 20 ms until `done` holds of its answer, for at most `seconds` (at least one
/// try); the last answer. The app counts after its answer has left, so a read of its counters may
/// come a moment early.
fn eventually<T>(seconds: u64, mut probe: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let answer = probe();
        if done(&answer) || Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn built_components(root: &Path) -> bool {
    let missing: Vec<String> = ["app.wasm", "model_service.prewarmed.wasm"]
        .iter()
        .map(|f| root.join("target/wasm32-wasip2/component").join(f))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    test_support::skip_or_fail(&format!(
        "{} not built; run `spin build` (or scripts/test.sh's build step) first",
        missing.join(", ")
    ));
    false
}

/// The bad-input matrix (`common/bad_input.rs`), every row, against the real `spin up`.
#[test]
fn the_bad_input_matrix_holds_on_real_spin() {
    let Some(up) = spin_up() else { return };
    let base = format!("http://127.0.0.1:{}", up.port);
    let rows = bad_input::table();
    let failures = bad_input::check_all(&rows, |row| Some(bad_input::send_tcp(&base, row)));
    assert!(
        failures.is_empty(),
        "on spin up, {} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    eprintln!("bad-input matrix on spin up: {} rows passed", rows.len());
}

/// The served model is the released one: `spin up`'s `/predict/batch` scores 1,024 URLs of the
/// test split as native inference does (tract natively, same lib-ml preprocessing).
#[test]
fn spin_up_serves_the_scores_native_inference_gives() {
    let Some(data) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return;
    };
    let Some(up) = spin_up() else { return };
    let text = std::fs::read_to_string(data.join("test.txt")).unwrap();
    let urls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, u)| u))
        .filter(|u| lib_ml::analysis::web_address(u).is_ok() && !u.chars().any(char::is_control))
        .take(1024)
        .collect();
    assert_eq!(urls.len(), 1024);
    let native = model_service::model::load().unwrap();
    let mut max_diff = 0f32;
    for chunk in urls.chunks(256) {
        let body = serde_json::json!({ "urls": chunk }).to_string();
        let (status, answer) = request(up.port, "POST", "/predict/batch", Some(&body)).unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let served: Vec<f32> = answer["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["score"].as_f64().unwrap() as f32)
            .collect();
        for (s, n) in served.iter().zip(native.scores(chunk).unwrap()) {
            max_diff = max_diff.max((s - n).abs());
        }
    }
    eprintln!(
        "spin up vs native on {} test URLs: max |diff| = {max_diff:e}",
        urls.len()
    );
    assert!(max_diff <= 1e-5, "max |diff| {max_diff}");
}

/// Feedback and metrics under concurrent requests on `spin up` with its default key-value store
/// (SQLite): 8 clients × 10 predictions and 10 feedback clicks each; the totals in `/metrics` and
/// the stored rows are exact.
#[test]
fn concurrent_predictions_and_feedback_count_exactly_on_spin_up() {
    let Some(up) = spin_up() else { return };
    count_concurrently(up.port);
}

/// The same with Redis as the store (Debian's `redis-server` on a loopback port), configured the
/// way the cluster's SpinApp `runtimeConfig` configures it (`kubernetes/base/app-v1.yaml`: the
/// `default` store, `type: redis`, its `url` option).
#[test]
fn concurrent_predictions_and_feedback_count_exactly_on_spin_up_with_redis() {
    let manifest =
        std::fs::read_to_string(test_support::workspace_root().join("kubernetes/base/app-v1.yaml"))
            .unwrap();
    assert!(
        manifest.contains("- name: default\n        type: redis")
            && manifest.contains("- name: url\n            value: redis://"),
        "the app's SpinApp no longer configures the default store as Redis with a url: update this test"
    );
    let Some(redis) = Redis::start(None) else {
        return;
    };
    let config = redis.runtime_config();
    let Some(up) = spin_up_with(Some(&config)) else {
        return;
    };
    count_concurrently(up.port);
    // The counters live in Redis, not in Spin's state directory.
    let reply = redis.command("KEYS metrics:local:served:phishing:*");
    assert!(
        reply.contains("metrics:local:served:phishing:"),
        "Redis holds: {reply}"
    );
}

/// `redis-server` on a loopback port (Debian's package; `$REDIS_SERVER_BIN`), killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
    /// Where it keeps an append-only file, if asked to persist across a restart.
    dir: Option<PathBuf>,
    config: PathBuf,
}

impl Redis {
    /// Starts it; `persist_in` keeps its data (append-only file, synced per write) there, so a
    /// restart finds what was written. `None` (and a message) when it cannot run outside CI.
    fn start(persist_in: Option<PathBuf>) -> Option<Redis> {
        let port = free_port();
        let config =
            std::env::temp_dir().join(format!("spin-redis-{}-{port}.toml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
            ),
        )
        .unwrap();
        let mut redis = Redis {
            child: None,
            port,
            dir: persist_in,
            config,
        };
        redis.run().then_some(redis)
    }

    fn run(&mut self) -> bool {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &self.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).unwrap();
                cmd.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(dir)
            }
            None => cmd.args(["--appendonly", "no"]),
        };
        let Ok(child) = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() else {
            test_support::skip_or_fail(&format!(
                "`{bin}` cannot be started (apt-get install redis-server, or set REDIS_SERVER_BIN)"
            ));
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Kills it (SIGKILL: a crash, not a shutdown).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The runtime config pointing Spin's `default` store at it, as the cluster's SpinApp
    /// `runtimeConfig` does.
    fn runtime_config(&self) -> PathBuf {
        self.config.clone()
    }

    /// One inline command; the raw reply.
    fn command(&self, line: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.config);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The Redis store crashes mid-run and comes back. On Spin 4.0.2 a store call made while Redis is
/// down does not fail: Spin's Redis client (a reconnecting connection manager) holds it until
/// Redis is back. So: predictions are still answered at once (their count is recorded after the
/// answer has left); feedback sent during the outage waits and is then stored (or answered 503
/// by a Spin that fails fast) — never half-written, never stored twice; after Redis returns the
/// next requests are stored and counted, with no restart of Spin.
#[test]
fn redis_stopping_mid_run_on_spin_up() {
    let dir = std::env::temp_dir().join(format!("spin-redis-aof-{}", std::process::id()));
    let Some(mut redis) = Redis::start(Some(dir)) else {
        return;
    };
    let Some(up) = spin_up_with(Some(&redis.runtime_config())) else {
        return;
    };
    let port = up.port;
    let predict = move |url: &str| {
        let body = serde_json::json!({ "url": url }).to_string();
        request(port, "POST", "/api/predict", Some(&body)).unwrap()
    };
    let feedback = move |url: &str| {
        let body =
            serde_json::json!({ "url": url, "label": "phishing", "agree": true }).to_string();
        request(port, "POST", "/api/feedback", Some(&body)).unwrap()
    };
    let url = "http://paypal.com.verify-account.tk/signin";
    assert_eq!(predict(url).0, 200);
    assert_eq!(feedback(url).0, 201);
    eventually(
        10,
        || redis.command("KEYS metrics:*"),
        |k| k.contains("served"),
    );

    redis.kill();
    let t = Instant::now();
    let (status, body) = predict(url);
    assert_eq!(
        status, 200,
        "predictions are served without the store: {body}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "and at once: {:?}",
        t.elapsed()
    );
    let during = std::thread::spawn(move || feedback(url));
    std::thread::sleep(Duration::from_millis(500));

    assert!(redis.run(), "redis-server restarts");
    let (status, body) = during.join().unwrap();
    assert!(
        status == 201 || status == 503,
        "feedback during the outage: {status} {body}"
    );
    let answered_201 = 2 + usize::from(status == 201);
    // Spin reconnects by itself; allow it some tries.
    let stored = eventually(60, || feedback(url), |(status, _)| *status == 201);
    assert_eq!(
        stored.0, 201,
        "feedback stored again after the store returns: {}",
        stored.1
    );
    assert_eq!(predict(url).0, 200);

    // Nothing half-written or doubled: exactly one whole row per 201.
    let rows = redis.command("KEYS feedback:row:*");
    let row_keys = rows
        .lines()
        .filter(|l| l.starts_with("feedback:row:"))
        .count();
    assert_eq!(row_keys, answered_201, "{rows}");
    let metric = |name: &str| -> Option<i64> {
        let (_, text) = request(up.port, "GET", "/metrics", None).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    assert_eq!(
        metric("phishing_app_feedback_rows"),
        Some(answered_201 as i64)
    );
    // Every prediction is counted, the one made during the outage too (its write waited).
    let predictions = r#"phishing_app_predictions_total{version="local",label="phishing"}"#;
    assert_eq!(
        eventually(10, || metric(predictions), |n| *n == Some(3)),
        Some(3)
    );
}

/// The app alone (`--component-id app`, like its pod) pointed at a port where nothing listens:
/// `/api/predict` answers 502 JSON naming the problem, fast, and counts the failure.
#[test]
fn an_unreachable_model_service_is_a_502_on_spin_up() {
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}");
    let Some(up) = spin_up_opts(
        None,
        Some("app"),
        &[("SPIN_VARIABLE_MODEL_SERVICE_URL", &url)],
    ) else {
        return;
    };
    let body =
        serde_json::json!({ "url": "http://paypal.com.verify-account.tk/signin" }).to_string();
    let t = Instant::now();
    let (status, answer) = request(up.port, "POST", "/api/predict", Some(&body)).unwrap();
    assert_eq!(status, 502, "{answer}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "fails fast: {:?}",
        t.elapsed()
    );
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["kind"], "unreachable", "{answer}");
    assert!(
        v["error"].as_str().unwrap().contains("unreachable"),
        "{answer}"
    );
    // `spin up` and the trigger it runs are one process group, stopped as one.
    let trigger = eventually(10, || group_size(&up), |&n| n >= 2);
    assert!(trigger >= 2, "spin up and its trigger: {trigger} processes");
    // The version endpoint still answers, without a model version.
    let (status, answer) = request(up.port, "GET", "/api/version", None).unwrap();
    assert_eq!(status, 200, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["model"]["version"], Value::Null, "{answer}");
    assert!(v["model"]["error"].as_str().is_some(), "{answer}");
    // The model-service's own routes are not served by the app's pod.
    let (status, _) = request(up.port, "POST", "/predict", Some(&body)).unwrap();
    assert_eq!(status, 404);
    let errors = r#"phishing_app_model_service_errors_total{version="local",kind="unreachable"} 1"#;
    let text = eventually(
        10,
        || request(up.port, "GET", "/metrics", None).unwrap().1,
        |t| t.contains(errors),
    );
    assert!(text.contains(errors), "{text}");
    // Nothing outlives the harness: no orphaned trigger keeps serving the port.
    let (group, port) = (up.group(), up.port);
    drop(up);
    assert!(
        !group_alive(&group),
        "processes of group {group} outlived spin up"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still served"
    );
}

/// How many processes `up`'s group holds.
fn group_size(up: &SpinUp) -> usize {
    let pgid = up.child.id().to_string();
    let out = Command::new("ps")
        .args(["-o", "pgid=", "-e"])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim() == pgid)
        .count()
}

/// 8 clients × 10 predictions and 10 feedback clicks on the app at `port`; checks the totals.
fn count_concurrently(port: u16) {
    let metric = |name: &str| -> i64 {
        let (_, text) = request(port, "GET", "/metrics", None).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    let predictions = r#"phishing_app_predictions_total{version="local",label="phishing"}"#;
    let agree = r#"phishing_app_feedback_total{version="local",verdict="agree"}"#;
    let before = (metric(predictions), metric(agree));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let url = format!("http://paypal.com.verify-account{c}-{i}.tk/signin");
                    let body = serde_json::json!({ "url": url }).to_string();
                    let (status, answer) =
                        request(port, "POST", "/api/predict", Some(&body)).unwrap();
                    assert_eq!(status, 200, "{answer}");
                    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    assert_eq!(v["label"], "phishing", "{answer}");
                    let fb = serde_json::json!({ "url": url, "label": "phishing", "agree": true,
                                                 "score": v["score"], "reasons": [] })
                    .to_string();
                    let (status, answer) =
                        request(port, "POST", "/api/feedback", Some(&fb)).unwrap();
                    assert_eq!(status, 201, "{answer}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // The app counts once its response has left, so the last counts may land a moment after the
    // last answer: wait for them, then check that nothing more arrives.
    let settled = |name: &str, base: i64| -> i64 {
        eventually(10, || metric(name) - base, |n| *n >= 80);
        std::thread::sleep(Duration::from_millis(200));
        metric(name) - base
    };
    assert_eq!(
        settled(predictions, before.0),
        80,
        "phishing predictions counted"
    );
    assert_eq!(settled(agree, before.1), 80, "agreeing feedback counted");
    let rows = metric("phishing_app_feedback_rows");
    assert!(rows >= 80, "feedback rows stored: {rows}");
}

/// Starts `spin up` on a free loopback port with its state in a fresh directory; `None` when Spin
/// or the components are missing outside CI.
fn spin_up() -> Option<SpinUp> {
    spin_up_with(None)
}

/// [`spin_up`] with `--runtime-config-file`.
fn spin_up_with(runtime_config: Option<&std::path::Path>) -> Option<SpinUp> {
    spin_up_opts(runtime_config, None, &[])
}

/// [`spin_up`] with `--runtime-config-file`, only `component` (`--component-id`, as a pod retains
/// one component) and extra environment (e.g. `SPIN_VARIABLE_*`).
fn spin_up_opts(
    runtime_config: Option<&std::path::Path>,
    component: Option<&str>,
    env: &[(&str, &str)],
) -> Option<SpinUp> {
    let spin = test_support::shared_path("SPIN_BIN", "tools/spin")?;
    let root = test_support::workspace_root();
    if !built_components(&root) {
        return None;
    }
    let port = free_port();
    let state =
        TempDir(std::env::temp_dir().join(format!("spin-up-{}-{port}", std::process::id())));
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("spin-up-{port}.log"))).unwrap();
    let mut cmd = Command::new(&spin);
    cmd.args(["up", "-f"])
        .arg(root.join("spin.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(&state.0);
    if let Some(rc) = runtime_config {
        cmd.arg("--runtime-config-file").arg(rc);
    }
    if let Some(c) = component {
        cmd.args(["--component-id", c]);
    }
    cmd.envs(env.iter().copied());
    let child = cmd
        .process_group(0)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start `{}`: {e}", spin.display()));
    let up = SpinUp {
        child,
        port,
        _state: state,
    };
    // The first start compiles both components (Cranelift), seconds on 2 cores.
    let deadline = Instant::now() + Duration::from_secs(180);
    let probe = if component == Some("model-service") {
        "/v2/health/live"
    } else {
        "/health"
    };
    while request(port, "GET", probe, None).is_err() {
        assert!(
            Instant::now() < deadline,
            "spin up did not answer on 127.0.0.1:{port} within 180 s (log: {})",
            std::env::temp_dir()
                .join(format!("spin-up-{port}.log"))
                .display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    Some(up)
}

/// One HTTP/1.1 request with `Connection: close`: (status, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = json.unwrap_or("");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if json.is_some() {
        head += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    s.write_all(format!("{head}\r\n{body}").as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out += &rest[..n];
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A `curl` line of the README's Run section and the answer documented under it.
struct Example {
    path: String,
    json: Option<String>,
    /// The `# -> ...` line after it: a JSON object whose fields the answer must have, or text the
    /// answer must contain.
    documented: String,
}

fn readme_examples() -> Vec<Example> {
    let readme = std::fs::read_to_string(test_support::workspace_root().join("README.md")).unwrap();
    let run = readme
        .split("## Run")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README.md has a Run section");
    let lines: Vec<&str> = run.lines().collect();
    let mut examples = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("curl -s localhost:3000") else {
            continue;
        };
        let path = rest.split_whitespace().next().unwrap().to_string();
        let json = rest
            .split_once("-d '")
            .map(|(_, d)| d.trim_end_matches('\'').to_string());
        let documented = lines
            .get(i + 1)
            .and_then(|l| l.trim().strip_prefix("# -> "))
            .unwrap_or_else(|| panic!("README: no `# -> ...` answer under `{line}`"))
            .to_string();
        examples.push(Example {
            path,
            json,
            documented,
        });
    }
    examples
}

#[test]
fn the_readme_curl_examples_answer_as_documented_on_spin_up() {
    let examples = readme_examples();
    assert!(
        examples.len() >= 3,
        "README's Run section lost its curl examples"
    );
    let Some(up) = spin_up() else {
        return;
    };
    for ex in &examples {
        let method = if ex.json.is_some() { "POST" } else { "GET" };
        let check = |body: &str| -> Result<(), String> {
            match serde_json::from_str::<Value>(&ex.documented) {
                Ok(Value::Object(want)) => {
                    let got: Value = serde_json::from_str(body)
                        .map_err(|e| format!("{}: not JSON ({e}): {body}", ex.path))?;
                    match want.iter().find(|(k, v)| &got[k.as_str()] != *v) {
                        Some((k, v)) => Err(format!(
                            "{} field `{k}`: want {v}, got {}: {body}",
                            ex.path,
                            got[k.as_str()]
                        )),
                        None => Ok(()),
                    }
                }
                _ if body.contains(&ex.documented) => Ok(()),
                _ => Err(format!("{}: `{}` not in {body}", ex.path, ex.documented)),
            }
        };
        // A GET that reads counters (`/metrics`) may run before the previous request's counts
        // land (the app records them once its answer has left): it is asked again for a while.
        let (status, body) = eventually(
            if method == "POST" { 0 } else { 10 },
            || request(up.port, method, &ex.path, ex.json.as_deref()).unwrap(),
            |(status, body)| *status != 200 || check(body).is_ok(),
        );
        assert_eq!(status, 200, "{method} {}: {body}", ex.path);
        if let Err(e) = check(&body) {
            panic!("{e}");
        }
    }
    // Service chaining reached the model-service: the app counted the verdict it served (once
    // its answer had left, so allow it a moment).
    let want = "phishing_app_predictions_total{version=\"local\",label=\"legitimate\"} 1";
    let metrics = eventually(
        10,
        || request(up.port, "GET", "/metrics", None).unwrap().1,
        |m| m.contains(want),
    );
    assert!(metrics.contains(want), "{metrics}");
    // Each component answers its own probe when both run under one `spin up`.
    for path in ["/health", "/v2/health/live", "/v2/health/ready"] {
        let (status, body) = request(up.port, "GET", path, None).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
    }
}
