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

step "lint (native crates, all targets)"
cargo clippy --all-targets --locked -- -D warnings

step "lint (wasm32-wasip2: crates that run inside the components)"
cargo clippy -p lib-ml --target wasm32-wasip2 --locked -- -D warnings

step "tests"
cargo test --locked

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked

step "wasm build of lib-ml"
cargo build -p lib-ml --target wasm32-wasip2 --release --locked

printf '\nall checks passed\n'
