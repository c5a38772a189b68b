#!/usr/bin/env bash
# The model-service's wasm tuning, on and off, in one benchmark run: builds the component without
# its `tuning` feature (components/model-service/src/tuning), pre-initializes it as `spin build`
# does, rebuilds the shipped (tuned) component, then runs the inference benchmark, which measures
# both in alternation (figures: target/bench-results/inference.json, "tuning").
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/wasm32-wasip2/component
cargo build --target wasm32-wasip2 --profile component --locked -p model-service --no-default-features
cp "$out/model_service.wasm" "$out/model_service.untuned.wasm"
cargo run --release --locked --quiet -p wasm-host -- prewarm "$out/model_service.untuned.wasm" "$out/model_service.untuned.prewarmed.wasm"
cargo run --release --locked --quiet -p wasm-host -- build
cargo bench --locked -p wasm-host --bench inference
