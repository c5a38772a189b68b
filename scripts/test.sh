#!/usr/bin/env bash
# The project's one test command (README.md, and `.ci/run` calls exactly this).
# Installs what the checks need, idempotently, then runs every check; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml: pinned compiler, rustfmt, clippy, wasm32-wasip2)"
rustup show active-toolchain
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

step "format"
cargo fmt --all --check

step "lint (native: libraries, training, host, and the components' plain modules)"
cargo clippy --all-targets --locked -- -D warnings

step "lint (wasm32-wasip2: the components and what they link)"
cargo clippy -p lib-ml -p model-service --target wasm32-wasip2 --locked -- -D warnings

step "build the components as spin build does (spin.toml [component.*.build] commands)"
# Release profile throughout, so the host, tract and candle are compiled once, for tests too.
cargo run --release --locked -p wasm-host -- build

step "tests"
cargo test --release --locked

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked

printf '\nall checks passed\n'
