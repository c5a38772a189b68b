#!/usr/bin/env bash
# Cut a release: bump the workspace version, commit, tag vX.Y.Z.
#   scripts/release.sh 0.2.0
# Then `git push --follow-tags`. A build from the tag embeds it (lib-version), and the test
# `release_tag_agrees_with_cargo_version` fails if the tag and the Cargo version ever disagree.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

new=${1:-}
if ! [[ $new =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "error: version \`$new\` is not semantic (X.Y.Z[-pre]); usage: scripts/release.sh X.Y.Z" >&2
  exit 2
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "error: the work tree has uncommitted changes; commit or stash them first" >&2
  exit 1
fi
if git rev-parse -q --verify "refs/tags/v$new" >/dev/null; then
  echo "error: tag \`v$new\` already exists" >&2
  exit 1
fi
old=$(awk '/^\[workspace.package\]/{s=1;next} /^\[/{s=0} s && /^version *=/{gsub(/[" ]/,"",$3); print $3; exit}' Cargo.toml)
[ -n "$old" ] || { echo "error: no version in [workspace.package] of Cargo.toml" >&2; exit 1; }

awk -v new="$new" '/^\[workspace.package\]/{s=1} /^\[/&&!/^\[workspace.package\]/{s=0}
  s && /^version *=/ && !done {print "version = \"" new "\""; done=1; next} {print}' Cargo.toml > Cargo.toml.tmp
mv Cargo.toml.tmp Cargo.toml
if [ -f Cargo.lock ] && command -v cargo >/dev/null; then
  cargo update --workspace --offline >/dev/null 2>&1 || cargo metadata --format-version 1 >/dev/null
fi
git add Cargo.toml $( [ -f Cargo.lock ] && echo Cargo.lock )
git commit -q -m "Release v$new"
git tag -a "v$new" -m "Release v$new"
echo "released v$new (was $old): push with \`git push --follow-tags\`"
