//! The runtime: one compiled component and `InstancePre` per Spin component, a fresh instance
//! (and store) per request ([`crate::dispatch`]), Spin's routing, variables and key-value store.

use crate::dispatch::{dispatch, plain};
use crate::engine::{compile, engine, linker, WasmtimeContext};
use crate::kv::KeyValue;
use crate::manifest::{expand_template, App};
use crate::outbound::AllowedHost;
use crate::routes::Router;
use crate::state::{new_store, Body, State};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::Error as HttpError;

/// A loaded component.
pub struct Loaded {
    pub(crate) pre: ProxyPre<State>,
    pub(crate) allowed: Vec<AllowedHost>,
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

/// What every request of a [`Host`] shares.
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) app: App,
    pub(crate) router: Router,
    pub(crate) components: HashMap<String, Loaded>,
    /// Component instances still running (a component may run on after its response has left).
    pub(crate) running: tokio::sync::watch::Sender<usize>,
    pub(crate) linker: Linker<State>,
    pub(crate) kv: Arc<KeyValue>,
    pub(crate) delays: BTreeMap<String, Duration>,
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
