//! `wasm-host`: run a Spin application's components without Spin (see the crate docs).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use wasm_host::{Host, HostOptions};

/// Runs Spin components like Spin's HTTP trigger. Use `spin up` where Spin is installed.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application over HTTP.
    Serve {
        /// The Spin manifest.
        #[arg(long, short = 'f', default_value = "spin.toml")]
        manifest: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Only these components (like a SpinApp's `spec.components`); repeatable.
        #[arg(long = "component")]
        components: Vec<String>,
        /// Application variable `name=value`; repeatable.
        #[arg(long = "variable", value_parser = parse_kv)]
        variables: Vec<(String, String)>,
        /// Fault injection: `component=milliseconds` delays every request to the component.
        #[arg(long = "delay", value_parser = parse_delay)]
        delays: Vec<(String, Duration)>,
    },
    /// Run every component's `[component.<id>.build] command` from the manifest, as `spin build` does.
    Build {
        /// The Spin manifest.
        #[arg(long, short = 'f', default_value = "spin.toml")]
        manifest: PathBuf,
    },
    /// Pre-initialize a component: run its `wizer-initialize` export and snapshot the result.
    Prewarm {
        /// The component built by cargo.
        input: PathBuf,
        /// Where to write the pre-initialized component.
        output: PathBuf,
    },
}

fn parse_delay(s: &str) -> Result<(String, Duration), String> {
    let (c, ms) = parse_kv(s)?;
    let ms: u64 = ms
        .parse()
        .map_err(|_| format!("`{ms}` in `{s}` is not a number of milliseconds"))?;
    Ok((c, Duration::from_millis(ms)))
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not name=value"))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            manifest,
            listen,
            components,
            variables,
            delays,
        } => {
            let options = HostOptions {
                components: (!components.is_empty()).then_some(components),
                variables: variables.into_iter().collect::<BTreeMap<_, _>>(),
                delays: delays.into_iter().collect(),
                ..Default::default()
            };
            let host = Host::load(&manifest, options)?;
            let (addr, serve) = wasm_host::serve::bind(host.clone(), listen)
                .await
                .with_context(|| format!("failed to listen on {listen}"))?;
            eprintln!("serving `{}` on http://{addr} (wasm-host: a test host; use `spin up` where Spin is installed)", host.app_name());
            serve.await;
            Ok(())
        }
        Command::Build { manifest } => wasm_host::manifest::App::load(&manifest)?.build(),
        Command::Prewarm { input, output } => wasm_host::prewarm::prewarm(&input, &output).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
