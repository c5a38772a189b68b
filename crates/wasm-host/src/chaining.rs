//! Where a component's outgoing requests go: `allowed_outbound_hosts` enforced, service
//! chaining to `http://<component>.spin.internal` in-process, the network otherwise.

use crate::dispatch::dispatch;
use crate::host::Inner;
use crate::outbound::is_allowed;
use crate::routes::{Match, Router};
use crate::state::Hooks;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

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
