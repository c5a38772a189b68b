#!/usr/bin/env bash
# Pins the sha256 of a containerd-shim-spin release in roles/spin_shim/defaults/main.yml.
# Needs network access to GitHub; run it once per shim upgrade and commit the result.
#   ansible/scripts/pin-shim-checksums.sh v0.25.1
set -euo pipefail
version="${1:?usage: $0 <version, e.g. v0.25.1>}"
cd "$(dirname "$0")/.."
defaults=roles/spin_shim/defaults/main.yml
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for arch in x86_64 aarch64; do
    url="https://github.com/spinframework/containerd-shim-spin/releases/download/${version}/containerd-shim-spin-v2-linux-${arch}.tar.gz"
    curl -fsSL -o "$tmp/$arch.tar.gz" "$url"
    tar -tzf "$tmp/$arch.tar.gz" | grep -qx 'containerd-shim-spin-v2' \
        || { echo "error: $url has no containerd-shim-spin-v2" >&2; exit 1; }
    sum="$(sha256sum "$tmp/$arch.tar.gz" | cut -d' ' -f1)"
    sed -i -E "s/^(  ${arch}: ).*/\1\"${sum}\"/" "$defaults"
    echo "$arch $sum"
done
sed -i -E "s/^spin_shim_version: .*/spin_shim_version: ${version}/" "$defaults"
echo "pinned containerd-shim-spin ${version} in ${defaults}"
