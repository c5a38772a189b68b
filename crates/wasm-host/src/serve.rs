//! Serving a [`Host`] over HTTP/1.1 on a loopback port.

use crate::host::Host;
use anyhow::Result;
use hyper::server::conn::http1;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

/// Binds `addr` and returns the bound address and a future that serves until dropped.
pub async fn bind(
    host: Host,
    addr: SocketAddr,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let serve = async move {
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                continue;
            };
            let host = host.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let host = host.clone();
                        async move { host.handle(req).await }
                    },
                );
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("wasm-host: connection error: {e}");
                }
            });
        }
    };
    Ok((local, serve))
}
