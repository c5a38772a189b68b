#!/usr/bin/env bash
# The project's one test command (README.md, and `.ci/run` calls exactly this).
# Installs what the checks need, idempotently, then runs every check; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml: pinned compiler, rustfmt, clippy, wasm32-wasip2)"
rustup show active-toolchain
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

step "system tools: Chromium (UI test), Prometheus/promtool (metrics), Node (playwright-core), Vagrant, Redis (the spin-up store test), a registry and containerd (the shim check), procps"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v vagrant >/dev/null || missing+=(vagrant)
command -v redis-server >/dev/null || missing+=(redis-server)
# kill and ps: the spin-up tests stop `spin up` and its trigger as one process group.
{ command -v ps && { [ -x /usr/bin/kill ] || [ -x /bin/kill ]; }; } >/dev/null || missing+=(procps)
command -v docker-registry >/dev/null || missing+=(docker-registry)
[ -e /usr/lib/x86_64-linux-gnu/libseccomp.so.2 ] || [ -e /lib/x86_64-linux-gnu/libseccomp.so.2 ] || missing+=(libseccomp2)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package also starts a Prometheus server where systemd runs; the checks start their own.
# containerd >= 1.7.7 pulls Spin's OCI artifacts (bookworm has 1.6.20): Debian trixie's package,
# downloaded with a private package list and unpacked (not installed) under the cache.
CONTAINERD_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/phishing-spin/containerd"
if [ ! -x "$CONTAINERD_DIR/usr/bin/containerd" ]; then
    apt_dir="$(mktemp -d)"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb http://deb.debian.org/debian trixie main" >"$apt_dir/sources.list"
    apt_opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update -qq
    (cd "$apt_dir" && apt-get "${apt_opts[@]}" download containerd >/dev/null)
    mkdir -p "$CONTAINERD_DIR"
    dpkg-deb -x "$apt_dir"/containerd_*.deb "$CONTAINERD_DIR"
    rm -rf "$apt_dir"
fi
export CONTAINERD_BIN_DIR="$CONTAINERD_DIR/usr/bin"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
# kubectl (for `kubectl kustomize`), Kubernetes schemas, JSON Schema, YAML: the manifest checks.
python3 -m pip install --quiet --disable-pip-version-check -r kubernetes/requirements.txt

step "format"
cargo fmt --all --check

step "provisioning: yamllint, ansible-lint, syntax, inventory, templates, Vagrantfile (ansible/check.sh)"
# Ansible and its linters in a virtualenv outside the checkout (reused by later runs).
ANSIBLE_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/phishing-spin/ansible-venv"
[ -x "$ANSIBLE_VENV/bin/python" ] || python3 -m venv "$ANSIBLE_VENV"
"$ANSIBLE_VENV/bin/pip" install --quiet --disable-pip-version-check -r ansible/requirements.txt
ANSIBLE_VENV="$ANSIBLE_VENV" ansible/check.sh

step "lint (native: libraries, training, host, and the components' plain modules)"
cargo clippy --all-targets --locked -- -D warnings

step "lint (wasm32-wasip2: the components and what they link)"
cargo clippy -p lib-ml -p inference -p model-service -p app --target wasm32-wasip2 --locked -- -D warnings
# The model-service without its wasm tuning (the variant benchmarks/tuning.sh measures) keeps building.
cargo clippy -p model-service --no-default-features --target wasm32-wasip2 --locked -- -D warnings

step "build the components as spin build does (spin.toml [component.*.build] commands)"
# Release profile throughout, so the host, tract and candle are compiled once, for tests too.
cargo run --release --locked -p wasm-host -- build

step "tests"
cargo test --release --locked
python3 -m unittest discover -s training -p 'test_*.py'

step "UI in headless Chromium (tests/browser: the built components served by spin up)"
node tests/browser/ui.test.mjs

step "Kubernetes manifests: render, schemas, cross-references, Prometheus rules, a real scrape"
python3 kubernetes/check.py --scrape
python3 -m unittest discover -s kubernetes -p 'test_*.py'

step "SpinKube runtime: every SpinApp of every overlay under containerd + containerd-shim-spin (kubernetes/shim_check.py)"
python3 kubernetes/shim_check.py

step "fuzz smoke (cargo-fuzz/libFuzzer, 15 s per target): lib-ml and both components' request handling"
# model_service_request builds tract with coverage instrumentation (about 7 minutes cold).
CARGO_TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/phishing-spin/cargo-tools"
[ -x "$CARGO_TOOLS/bin/cargo-fuzz" ] || cargo install --locked --quiet --root "$CARGO_TOOLS" cargo-fuzz --version 0.13.2
mkdir -p target/test-output
for target in tokenizer_encode url_encode tokenizer_json dataset_lines app_request model_service_request allocator; do
    log="$PWD/target/test-output/fuzz-$target.log"
    features=()
    case $target in model_service_request | allocator) features=(--features model-service) ;; esac
    if ! (cd fuzz && PATH="$CARGO_TOOLS/bin:$PATH" cargo fuzz run --sanitizer none "${features[@]}" "$target" -- -max_total_time=15 -seed=1 >"$log" 2>&1); then
        tail -n 40 "$log"
        echo "fuzz target $target failed (artifact under fuzz/artifacts/$target)" >&2
        exit 1
    fi
    echo "$target: $(grep '^Done' "$log")"
done

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked

printf '\nall checks passed\n'
