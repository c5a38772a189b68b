//! The runtime: one compiled component and `InstancePre` per Spin component, a fresh instance
//! (and store) per request, Spin's routing and request headers, service chaining to
//! `http://<component>.spin.internal` in-process, and `allowed_outbound_hosts` enforced.

use crate::kv::{KeyValue, SpinCtx, SpinView};
use crate::manifest::{expand_template, App};
use crate::outbound::{is_allowed, AllowedHost};
use crate::routes::{Match, Router};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// `with_context` for wasmtime's own error type, which anyhow's `Context` does not accept.
pub trait WasmtimeContext<T> {
    /// Converts to an anyhow error with `f()` as context.
    fn ctx<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> WasmtimeContext<T> for wasmtime::Result<T> {
    fn ctx<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(anyhow::Error::from).with_context(f)
    }
}

/// The body type responses carry.
pub type Body = HyperOutgoingBody;

/// Per-request state of one instance.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    spin: SpinCtx,
}

impl SpinView for State {
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable) {
        (&mut self.spin, &mut self.table)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// What a request from a component may reach, and how it gets there.
struct Hooks {
    host: Arc<Inner>,
    component: String,
}

/// A loaded component.
pub struct Loaded {
    pre: ProxyPre<State>,
    allowed: Vec<AllowedHost>,
    /// Resolved component variables.
    pub variables: BTreeMap<String, String>,
    /// Key-value stores it may open.
    pub key_value_stores: Vec<String>,
    /// Size of the `.wasm` in bytes.
    pub size_bytes: u64,
    /// Time it took Cranelift to compile it (when first compiled in this process).
    pub compile_seconds: f64,
    /// The compiled component (for callers that instantiate other worlds of it, e.g. benchmarks).
    pub component: Component,
}

struct Inner {
    engine: Engine,
    app: App,
    router: Router,
    components: HashMap<String, Loaded>,
    /// Component instances still running (a component may run on after its response has left).
    running: tokio::sync::watch::Sender<usize>,
    linker: Linker<State>,
    kv: Arc<KeyValue>,
    delays: BTreeMap<String, Duration>,
}

/// A running application: call [`Host::handle`] per request, or serve it with [`crate::serve`].
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

/// How to build a [`Host`].
#[derive(Default, Clone)]
pub struct HostOptions {
    /// Load only these components (like a SpinApp's `spec.components`); `None` = all.
    pub components: Option<Vec<String>>,
    /// Values for application variables, overriding defaults (like `spin up --variable`).
    pub variables: BTreeMap<String, String>,
    /// The key-value stores; pass the same one to several hosts to share it (like pods sharing
    /// one Redis). `None` = a fresh in-memory one.
    pub key_value: Option<Arc<KeyValue>>,
    /// Fault injection: wait this long before running a request for the component.
    pub delays: BTreeMap<String, Duration>,
}

/// How instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Spin's pooling allocator, keeping the first `keep_resident` bytes of each linear memory
    /// resident between instances (reset in place instead of returned to the kernel).
    Pooling {
        /// Bytes kept resident (Spin's default: 2 MiB).
        keep_resident: usize,
    },
    /// A fresh memory mapping per instance (wasmtime's default).
    OnDemand,
}

impl Allocation {
    /// Spin's default: pooling, 2 MiB resident.
    pub const SPIN_DEFAULT: Allocation = Allocation::Pooling {
        keep_resident: 2 << 20,
    };

    /// What Spin would use under this process's environment: `SPIN_WASMTIME_POOLING=0` turns
    /// pooling off, `SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT` (bytes) sizes the resident part.
    pub fn from_env() -> Result<Allocation> {
        Allocation::from_vars(
            std::env::var("SPIN_WASMTIME_POOLING").ok().as_deref(),
            std::env::var("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT")
                .ok()
                .as_deref(),
        )
    }

    /// [`Allocation::from_env`] from the two variables' values.
    pub fn from_vars(pooling: Option<&str>, keep_resident: Option<&str>) -> Result<Allocation> {
        match pooling {
            None | Some("1") => {}
            Some("0") => return Ok(Allocation::OnDemand),
            Some(other) => bail!("SPIN_WASMTIME_POOLING={other:?}: only 1 or 0 are supported"),
        }
        match keep_resident {
            Some(v) => Ok(Allocation::Pooling {
                keep_resident: v.parse().map_err(|e| {
                    anyhow!(
                        "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT={v:?} is not a byte count: {e}"
                    )
                })?,
            }),
            None => Ok(Allocation::SPIN_DEFAULT),
        }
    }
}

/// The wasmtime engine every component shares: Cranelift, SIMD, async, and instance allocation
/// as Spin configures it under this process's environment ([`Allocation::from_env`]). One per
/// process, so compiled components can be reused by every [`Host`] loaded in it.
pub fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let engine = engine_with(Allocation::from_env()?)?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// A new engine like [`engine`]'s with the given allocation (benchmarks compare them). If the
/// machine cannot reserve the pool's address space, it falls back to on-demand allocation.
pub fn engine_with(allocation: Allocation) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).wasm_simd(true);
    match allocation {
        Allocation::Pooling { keep_resident } => {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
                keep_resident,
            )));
            Ok(Engine::new(&config).or_else(|_| {
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config)
            })?)
        }
        Allocation::OnDemand => Ok(Engine::new(&config)?),
    }
}

/// Spin's pooling defaults (spin-core), sized for this host: at most [`MAX_INSTANCES`] live
/// instances; memories may grow to 4 GiB.
fn pooling_config(keep_resident: usize) -> PoolingAllocationConfig {
    const MIB: usize = 1 << 20;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(MIB / 2);
    pool
}

/// The most component instances alive at once (requests in flight across all components).
pub const MAX_INSTANCES: u32 = 1_000;

/// Compiles `bytes` read from `path`, reusing an earlier compilation of the same file (same
/// path, size and modification time) in this process. Returns the component and compile seconds.
fn compile(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<(Component, f64)> {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: OnceLock<Mutex<HashMap<Key, (Component, f64)>>> = OnceLock::new();
    let key = (
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        bytes.len() as u64,
        std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    );
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let t = Instant::now();
    let component = Component::new(engine, bytes).ctx(|| "compilation failed")?;
    let compiled = (component, t.elapsed().as_secs_f64());
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, compiled.clone());
    Ok(compiled)
}

/// A linker with the WASI and WASI-HTTP interfaces Spin components import.
pub fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::kv::add_to_linker(&mut linker)?;
    Ok(linker)
}

impl Host {
    /// Loads the application in `manifest` (a `spin.toml`), compiling its components.
    pub fn load(manifest: &Path, options: HostOptions) -> Result<Host> {
        let app = App::load(manifest)?;
        let engine = engine()?;
        let linker = linker(&engine)?;
        // Resolve application variables: overrides, then defaults; required ones must be set.
        let mut vars = BTreeMap::new();
        for (name, v) in &app.variables {
            match options
                .variables
                .get(name)
                .cloned()
                .or_else(|| v.default.clone())
            {
                Some(value) => {
                    vars.insert(name.clone(), value);
                }
                None if v.required => {
                    bail!("application variable `{name}` is required but has no value")
                }
                None => {}
            }
        }
        for name in options.variables.keys() {
            if !app.variables.contains_key(name) {
                bail!("variable `{name}` is not declared in `[variables]` of the manifest");
            }
        }
        let lookup = |n: &str| vars.get(n).cloned();
        let mut components = HashMap::new();
        for (id, def) in &app.components {
            if options
                .components
                .as_ref()
                .is_some_and(|keep| !keep.contains(id))
            {
                continue;
            }
            let path = app.source_path(id);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "failed to read component `{id}` from `{}`; build it first (spin build)",
                    path.display()
                )
            })?;
            let (component, compile_seconds) = compile(&engine, &path, &bytes)
                .with_context(|| format!("failed to compile component `{id}`"))?;
            let pre = ProxyPre::new(linker.instantiate_pre(&component).ctx(|| {
                format!("component `{id}` imports something this host does not provide")
            })?)
            .ctx(|| format!("component `{id}` does not export wasi:http/incoming-handler"))?;
            let allowed = def
                .allowed_outbound_hosts
                .iter()
                .map(|h| AllowedHost::parse(&expand_template(h, lookup)?))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("invalid allowed_outbound_hosts of component `{id}`"))?;
            for label in &def.key_value_stores {
                if !crate::kv::STORES.contains(&label.as_str()) {
                    bail!("component `{id}` uses key-value store `{label}`, which is not defined (this host has: {})", crate::kv::STORES.join(", "));
                }
            }
            let variables = def
                .variables
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand_template(v, lookup)?)))
                .collect::<Result<_>>()?;
            components.insert(
                id.clone(),
                Loaded {
                    pre,
                    allowed,
                    variables,
                    key_value_stores: def.key_value_stores.clone(),
                    size_bytes: bytes.len() as u64,
                    compile_seconds,
                    component,
                },
            );
        }
        if let Some(keep) = &options.components {
            for id in keep {
                if !components.contains_key(id) {
                    bail!("component `{id}` is not in the manifest");
                }
            }
        }
        // Routes of components not loaded stay unrouted, as in a SpinApp retaining a subset.
        let router = Router::new(app.triggers.iter().filter_map(|t| {
            let route = t.route.clone()?;
            components
                .contains_key(&t.component)
                .then(|| (route, t.component.clone()))
        }));
        Ok(Host {
            inner: Arc::new(Inner {
                engine,
                app,
                router,
                components,
                running: tokio::sync::watch::Sender::new(0),
                linker,
                kv: options.key_value.clone().unwrap_or_default(),
                delays: options.delays.clone(),
            }),
        })
    }

    /// The engine components were compiled with.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// A loaded component by id.
    pub fn component(&self, id: &str) -> Option<&Loaded> {
        self.inner.components.get(id)
    }

    /// The application name.
    pub fn app_name(&self) -> &str {
        &self.inner.app.name
    }

    /// A fresh store for `component`, as a request gets.
    pub fn new_store(&self, component: &str) -> Store<State> {
        new_store(&self.inner, component)
    }

    /// The application's key-value stores.
    pub fn key_value(&self) -> &Arc<KeyValue> {
        &self.inner.kv
    }

    /// The linker used for every component.
    pub fn linker(&self) -> &Linker<State> {
        &self.inner.linker
    }

    /// Routes `req` by path and runs the matching component in a fresh instance.
    pub async fn handle<B>(&self, req: hyper::Request<B>) -> Result<hyper::Response<Body>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<HttpError>,
    {
        let path = req.uri().path().to_string();
        match self.inner.router.route(&path) {
            Some(m) => dispatch(self.inner.clone(), m, req, "127.0.0.1:0").await,
            None => Ok(plain(404, "Not Found")),
        }
    }

    /// Convenience for tests: sends `method path` with `body` and collects the response.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<TestResponse> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(
            Full::new(body.into())
                .map_err(|never: std::convert::Infallible| -> HttpError { match never {} }),
        )?;
        let resp = self.handle(req).await?;
        let collected = TestResponse::collect(resp).await?;
        self.settled().await;
        Ok(collected)
    }

    /// Waits until no component instance is running: a component may go on after its response
    /// has left (the app records its metrics then), as on Spin.
    pub async fn settled(&self) {
        let mut idle = self.inner.running.subscribe();
        let _ = idle.wait_for(|n| *n == 0).await;
    }
}

/// A response with its body collected.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl TestResponse {
    /// Collects a streaming response.
    pub async fn collect(resp: hyper::Response<Body>) -> Result<TestResponse> {
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("response body failed: {e:?}"))?
            .to_bytes();
        Ok(TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Body> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    resp
}

/// A store outside any application (for pre-initialization): WASI only, outbound HTTP denied.
pub fn bare_store(engine: &Engine) -> Store<State> {
    let app = App::parse(
        "spin_manifest_version = 2\n[application]\nname = \"prewarm\"\n",
        Path::new("."),
    )
    .expect("valid");
    let inner = Arc::new(Inner {
        engine: engine.clone(),
        app,
        router: Router::default(),
        components: HashMap::new(),
        running: tokio::sync::watch::Sender::new(0),
        linker: Linker::new(engine),
        kv: Arc::default(),
        delays: BTreeMap::new(),
    });
    new_store(&inner, "")
}

fn new_store(inner: &Arc<Inner>, component: &str) -> Store<State> {
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stderr();
    let (allowed_stores, variables) = inner
        .components
        .get(component)
        .map(|c| (c.key_value_stores.clone(), c.variables.clone()))
        .unwrap_or_default();
    Store::new(
        &inner.engine,
        State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Hooks {
                host: inner.clone(),
                component: component.to_string(),
            },
            spin: SpinCtx {
                kv: inner.kv.clone(),
                allowed_stores,
                variables,
            },
        },
    )
}

/// Where a component's response to an [`incoming_request`] arrives.
pub type ResponseReceiver = tokio::sync::oneshot::Receiver<
    std::result::Result<hyper::Response<HyperOutgoingBody>, ErrorCode>,
>;

/// Puts `req` into `store` as Spin's HTTP trigger does before calling a component's
/// `wasi:http/incoming-handler.handle`: the request, the response out-parameter to pass with it,
/// and where the response will arrive.
pub fn incoming_request<B>(
    store: &mut Store<State>,
    req: hyper::Request<B>,
) -> Result<(
    wasmtime::component::Resource<HostIncomingRequest>,
    wasmtime::component::Resource<HostResponseOutparam>,
    ResponseReceiver,
)>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<HttpError>,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    Ok((req, out, receiver))
}

/// Runs `m.component` on `req` in a fresh instance, with Spin's request headers.
async fn dispatch<B>(
    inner: Arc<Inner>,
    m: Match,
    req: hyper::Request<B>,
    client_addr: &str,
) -> Result<hyper::Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<HttpError>,
{
    let loaded = inner
        .components
        .get(&m.component)
        .with_context(|| format!("component `{}` is not loaded", m.component))?;
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let full_url = format!("http://{host}{path_and_query}");
    parts.uri = full_url.parse().context("invalid request URI")?;
    for (name, value) in [
        ("spin-full-url", full_url.as_str()),
        ("spin-path-info", m.path_info.as_str()),
        ("spin-matched-route", m.route.as_str()),
        ("spin-raw-component-route", m.route.as_str()),
        ("spin-component-route", m.base.as_str()),
        ("spin-base-path", "/"),
        ("spin-client-addr", client_addr),
    ] {
        parts.headers.insert(name, value.parse()?);
    }
    if !parts.headers.contains_key(http::header::HOST) {
        parts.headers.insert(http::header::HOST, host.parse()?);
    }
    let req = hyper::Request::from_parts(parts, body);

    if let Some(delay) = inner.delays.get(&m.component) {
        tokio::time::sleep(*delay).await;
    }
    let mut store = new_store(&inner, &m.component);
    let (req, out, receiver) = incoming_request(&mut store, req)?;
    let pre = loaded.pre.clone();
    let running = Running::start(&inner.running);
    let task = tokio::task::spawn(async move {
        let _running = running;
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    match receiver.await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(code)) => Ok(error_response(&format!(
            "component `{}` failed: {code:?}",
            m.component
        ))),
        Err(_) => {
            let why = match task.await {
                Ok(Ok(())) => "the component returned without setting a response".to_string(),
                Ok(Err(e)) => format!("{e:?}"),
                Err(e) => e.to_string(),
            };
            eprintln!("wasm-host: component `{}` trapped: {why}", m.component);
            // Spin answers a trapped component with a 500.
            Ok(error_response(&format!(
                "component `{}` trapped",
                m.component
            )))
        }
    }
}

/// One running instance in [`Inner::running`], until dropped (however the task ends).
struct Running(tokio::sync::watch::Sender<usize>);

impl Running {
    fn start(count: &tokio::sync::watch::Sender<usize>) -> Running {
        count.send_modify(|n| *n += 1);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

fn error_response(text: &str) -> hyper::Response<Body> {
    let body = Full::new(Bytes::from(text.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

type SendResult = Result<
    (
        http::Response<wasmtime_wasi_http::WasiBody>,
        Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        drop(fut);
        let inner = self.host.clone();
        let from = self.component.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("http").to_string();
            let host = uri.host().unwrap_or("").to_string();
            let port = uri.port_u16();
            let allowed = inner
                .components
                .get(&from)
                .map_or(&[][..], |c| &c.allowed[..]);
            if !is_allowed(allowed, &scheme, &host, port) {
                eprintln!("wasm-host: component `{from}` may not send to `{scheme}://{host}` (not in allowed_outbound_hosts)");
                return Err(HttpError::HttpRequestDenied);
            }
            let first_byte = options.and_then(|o| o.first_byte_timeout);
            if let Some(target) = host.strip_suffix(".spin.internal") {
                // Service chaining: straight to the target component, no network.
                let Some(target_routes) = inner
                    .components
                    .contains_key(target)
                    .then(|| routes_of(&inner, target))
                else {
                    return Err(HttpError::DestinationNotFound);
                };
                let path = uri.path().to_string();
                let m = target_routes.route(&path).unwrap_or(Match {
                    component: target.to_string(),
                    route: "/...".into(),
                    base: String::new(),
                    path_info: path,
                });
                let call = dispatch(inner.clone(), m, request, "127.0.0.1:0");
                let resp = match first_byte {
                    Some(t) => tokio::time::timeout(t, call)
                        .await
                        .map_err(|_| HttpError::ConnectionReadTimeout)?,
                    None => call.await,
                }
                .map_err(|e| {
                    eprintln!("wasm-host: chained request failed: {e:?}");
                    HttpError::DestinationUnavailable
                })?;
                let io: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send> =
                    Box::new(async { Ok(()) });
                return Ok((resp, io));
            }
            let (resp, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send> =
                Box::new(io);
            Ok((resp.map(|b| b.boxed_unsync()), io))
        })
    }
}

fn routes_of(inner: &Inner, component: &str) -> Router {
    Router::new(
        inner
            .app
            .triggers
            .iter()
            .filter(|t| t.component == component)
            .map(|t| {
                (
                    t.route.clone().unwrap_or_else(|| "/...".into()),
                    t.component.clone(),
                )
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::Allocation;

    #[test]
    fn allocation_follows_spins_environment_knobs() {
        let a = |p, k| Allocation::from_vars(p, k);
        assert_eq!(a(None, None).unwrap(), Allocation::SPIN_DEFAULT);
        assert_eq!(a(Some("1"), None).unwrap(), Allocation::SPIN_DEFAULT);
        assert_eq!(a(Some("0"), Some("99")).unwrap(), Allocation::OnDemand);
        assert_eq!(
            a(None, Some("33554432")).unwrap(),
            Allocation::Pooling {
                keep_resident: 32 << 20
            }
        );
        let e = a(Some("yes"), None).unwrap_err().to_string();
        assert!(e.contains("SPIN_WASMTIME_POOLING=\"yes\""), "{e}");
        let e = a(None, Some("32M")).unwrap_err().to_string();
        assert!(e.contains("\"32M\" is not a byte count"), "{e}");
    }
}
