#!/usr/bin/env bash
# Proves the image's production install path without a Docker engine: a clean directory with only
# package.json, the lock file, bin/ and the built dist/, `npm ci` of production dependencies
# exactly as the Dockerfile runs it, then `--version` and `validate` on the example config.
# Run after `npm run build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
config="${1:-$root/examples/production/tributary.yaml}"
prod="$(mktemp -d)"
trap 'chmod -R u+w "$prod"; rm -rf "$prod"' EXIT
cp "$root/package.json" "$root/package-lock.json" "$prod/"
cp -R "$root/bin" "$root/dist" "$prod/"
cd "$prod"
npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund
if [ -d node_modules/typescript ] || [ -d node_modules/vitest ] || [ -d node_modules/@duckdb ]; then
  echo "production install contains dev or optional dependencies" >&2
  exit 1
fi
node bin/tributary.js --version
# The image runs as a non-root user on a read-only root filesystem: nothing may need to write here.
chmod -R a-w "$prod"
env -u GOOGLE_CLOUD_PROJECT node bin/tributary.js validate --config "$config"
chmod -R u+w "$prod"
