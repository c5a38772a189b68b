//! What one instance's store holds: WASI, WASI-HTTP, Spin's key-value store and variables, and
//! the hooks its outgoing requests go through.

use crate::host::Inner;
use crate::kv::{SpinCtx, SpinView};
use crate::manifest::App;
use crate::routes::Router;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
pub(crate) struct Hooks {
    pub(crate) host: Arc<Inner>,
    pub(crate) component: String,
}

/// A store outside any application (for pre-initialization): WASI only, outbound HTTP denied.
pub fn bare_store(engine: &Engine) -> Store<State> {
    let app = App {
        name: "prewarm".into(),
        ..App::default()
    };
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

pub(crate) fn new_store(inner: &Arc<Inner>, component: &str) -> Store<State> {
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
