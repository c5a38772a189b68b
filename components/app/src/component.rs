//! The wasm glue: Spin's HTTP trigger and the real [`Env`]: `wasi:keyvalue` (Spin's `default`
//! store), outbound `wasi:http` to the model-service with a deadline, Spin variables.

use crate::api::{self, Call, CallError, Config, Env};
use crate::store::{Store, StoreError};
use spin_sdk::http::{Request, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store as kv};
use wasi::clocks::{monotonic_clock, wall_clock};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasi::io::streams::StreamError;

/// Converts Spin's request to the plain API and back, then records the request's metrics.
#[http_component]
fn handle(req: Request, out: ResponseOutparam) {
    let method = req.method().to_string();
    let path = req.path().split('?').next().unwrap_or("/").to_string();
    let header = |name: &str| {
        req.header(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let authorization = header("authorization");
    let config = match Config::from_vars(|name| spin_sdk::variables::get(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("app: configuration error: {e}");
            let resp = api::Response::error(500, format!("the app is misconfigured: {e}"));
            api_policy::spin::respond(out, resp.status, &resp.headers, &resp.body, false);
            return;
        }
    };
    let env = WasmEnv {
        store: std::cell::OnceCell::new(),
        config,
    };
    let resp = api::handle(
        api::Request {
            method: &method,
            path: &path,
            content_type: content_type.as_deref(),
            authorization: authorization.as_deref(),
            body: req.body(),
        },
        &env,
    );
    api_policy::spin::respond(
        out,
        resp.status,
        &resp.headers,
        &resp.body,
        method == "HEAD",
    );
    // The response has left: the store's commit no longer delays the client.
    api::record(&env, &resp.counts);
}

struct WasmEnv {
    /// Opened on a route's first use: most routes never touch the store.
    store: std::cell::OnceCell<Result<KvStore, StoreError>>,
    config: Config,
}

impl Env for WasmEnv {
    fn store(&self) -> Result<&dyn Store, StoreError> {
        match self.store.get_or_init(KvStore::open) {
            Ok(s) => Ok(s),
            Err(e) => Err(e.clone()),
        }
    }

    fn model_service(&self, method: &str, path: &str, body: Option<&[u8]>) -> Call {
        let start = monotonic_clock::now();
        let outcome = send(&self.config, method, path, body);
        let seconds = (monotonic_clock::now().saturating_sub(start)) as f64 / 1e9;
        Call { outcome, seconds }
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn now_ms(&self) -> u64 {
        let t = wall_clock::now();
        t.seconds * 1000 + u64::from(t.nanoseconds / 1_000_000)
    }

    fn log(&self, message: &str) {
        eprintln!("app: {message}");
    }
}

/// Spin's `default` key-value store through `wasi:keyvalue`.
struct KvStore {
    bucket: kv::Bucket,
}

fn kv_error(e: kv::Error) -> StoreError {
    match e {
        kv::Error::NoSuchStore => "no such store".into(),
        kv::Error::AccessDenied => "access denied (is `default` in key_value_stores?)".into(),
        kv::Error::Other(m) => m,
    }
}

impl KvStore {
    fn open() -> Result<KvStore, StoreError> {
        kv::open("default")
            .map(|bucket| KvStore { bucket })
            .map_err(kv_error)
    }
}

impl Store for KvStore {
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.bucket, key, delta).map_err(kv_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket.set(key, value).map_err(kv_error)
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor.as_deref()).map_err(kv_error)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let found = batch::get_many(&self.bucket, keys).map_err(kv_error)?;
        // Answer in request order, whatever order the store returns.
        Ok(keys
            .iter()
            .map(|k| {
                found
                    .iter()
                    .find(|(fk, _)| fk == k)
                    .and_then(|(_, v)| v.clone())
            })
            .collect())
    }
}

/// `(scheme, authority, base path)` of `http[s]://authority[/base]`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(format!("`{url}` is not an http(s) URL"));
    };
    let (authority, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok((scheme, authority, base.trim_end_matches('/')))
}

fn describe_error(e: &ErrorCode) -> Result<String, CallError> {
    Err(match e {
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout => return Err(CallError::Timeout),
        ErrorCode::HttpRequestDenied => {
            CallError::Unreachable("the request is not allowed (allowed_outbound_hosts)".into())
        }
        ErrorCode::DestinationNotFound | ErrorCode::DnsError(_) => {
            CallError::Unreachable("no such host".into())
        }
        ErrorCode::ConnectionRefused => CallError::Unreachable("connection refused".into()),
        other => CallError::Unreachable(format!("{other:?}")),
    })
}

/// Sends one request and reads the whole response, all within the configured timeout.
fn send(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), CallError> {
    let timeout_ns = config.timeout_ms * 1_000_000;
    let deadline = monotonic_clock::now() + timeout_ns;
    let (scheme, authority, base) =
        split_url(&config.model_service_url).map_err(CallError::Unreachable)?;
    let mut headers: Vec<(String, Vec<u8>)> = vec![("accept".into(), b"application/json".to_vec())];
    if let Some(bytes) = body {
        headers.push(("content-type".into(), b"application/json".to_vec()));
        headers.push((
            "content-length".into(),
            bytes.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&headers)
        .map_err(|e| CallError::Unreachable(format!("bad header: {e:?}")))?;
    let req = OutgoingRequest::new(fields);
    let m = if method == "GET" {
        Method::Get
    } else {
        Method::Post
    };
    let path = format!("{base}{path}");
    let set = req
        .set_method(&m)
        .and(req.set_scheme(Some(&scheme)))
        .and(req.set_authority(Some(authority)))
        .and(req.set_path_with_query(Some(&path)));
    if set.is_err() {
        return Err(CallError::Unreachable(format!(
            "invalid model_service_url `{}`",
            config.model_service_url
        )));
    }
    let out_body = req
        .body()
        .map_err(|_| CallError::Unreachable("request body unavailable".into()))?;
    // The whole body is written before the request is handed over, so head and body leave in
    // one write: sent after the head, a small body waits out the model-service's delayed
    // acknowledgement (40 ms on Linux) whenever the head has gone out first (what it cost under
    // the shim: benchmarks/README.md).
    let stream = out_body
        .write()
        .map_err(|_| CallError::Unreachable("request body stream unavailable".into()))?;
    let bytes = body.unwrap_or_default();
    let written_first = bytes.is_empty()
        || (matches!(stream.check_write(), Ok(n) if n >= bytes.len() as u64)
            && stream.write(bytes).is_ok());
    let finish = |stream, out_body| {
        drop(stream);
        OutgoingBody::finish(out_body, None)
            .map_err(|e| CallError::Unreachable(format!("sending the request failed: {e:?}")))
    };
    let unsent = if written_first {
        finish(stream, out_body)?;
        None
    } else {
        Some((stream, out_body))
    };
    let options = RequestOptions::new();
    // Hosts that support them enforce these too; the deadline below holds either way.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let future = match outgoing_handler::handle(req, Some(options)) {
        Ok(f) => f,
        Err(e) => return Err(describe_error(&e).err().unwrap_or(CallError::Timeout)),
    };
    if let Some((stream, out_body)) = unsent {
        // A body larger than the stream takes at once: streamed after the head.
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| {
                CallError::Unreachable(format!("sending the request failed: {e:?}"))
            })?;
        }
        finish(stream, out_body)?;
    }

    // Wait for the response head, or the deadline.
    let response: IncomingResponse = loop {
        if let Some(result) = future.get() {
            match result {
                Ok(Ok(resp)) => break resp,
                Ok(Err(code)) => {
                    return Err(describe_error(&code).err().unwrap_or(CallError::Timeout))
                }
                Err(()) => return Err(CallError::Unreachable("response already taken".into())),
            }
        }
        if monotonic_clock::now() >= deadline {
            return Err(CallError::Timeout);
        }
        let ready = future.subscribe();
        let timer = monotonic_clock::subscribe_instant(deadline);
        wasi::io::poll::poll(&[&ready, &timer]);
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|_| CallError::Unreachable("response body unavailable".into()))?;
    let stream = incoming
        .stream()
        .map_err(|_| CallError::Unreachable("response body unavailable".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.read(64 * 1024) {
            Ok(chunk) if !chunk.is_empty() => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > 1024 * 1024 {
                    return Err(CallError::Unreachable("response larger than 1 MiB".into()));
                }
            }
            Ok(_) => {
                if monotonic_clock::now() >= deadline {
                    return Err(CallError::Timeout);
                }
                let ready = stream.subscribe();
                let timer = monotonic_clock::subscribe_instant(deadline);
                wasi::io::poll::poll(&[&ready, &timer]);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(CallError::Unreachable(format!(
                    "reading the response failed: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    Ok((status, bytes))
}
