//! One request into one fresh instance, as Spin's HTTP trigger runs it.

use crate::host::Inner;
use crate::routes::Match;
use crate::state::{new_store, Body, State};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{Error as HttpError, WasiHttpView};

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
pub(crate) async fn dispatch<B>(
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

pub(crate) fn plain(status: u16, text: &'static str) -> hyper::Response<Body> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    resp
}
