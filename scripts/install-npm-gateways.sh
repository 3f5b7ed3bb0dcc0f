#!/usr/bin/env bash
# Install the pinned Node.js gateways (Portkey gateway, claude-code-router) from
# gateways/npm/package.json + package-lock.json with `npm ci` into gateways/npm/node_modules
# (git-ignored).  Idempotent: skips npm when every pinned version is already installed.
# Prints one line per gateway.  Exit codes: 0 ok, 1 install failed, 2 Node.js/npm missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/gateways/npm"
# package name -> short label printed for it
GATEWAYS=("@portkey-ai/gateway:portkey" "@musistudio/claude-code-router:claude-code-router")

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  for g in "${GATEWAYS[@]}"; do echo "${g##*:}: SKIPPED: Node.js and npm are needed (apt-get install nodejs npm)"; done
  exit 2
fi

# Prints "ok" when node_modules holds exactly what the lock file pins (the gateways and the
# @hono/node-server override), else the first mismatch.
check() {
  node - "$DIR" <<'JS'
const fs = require("fs"), path = require("path");
const dir = process.argv[2];
const lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8")).packages;
for (const key of ["node_modules/@portkey-ai/gateway", "node_modules/@musistudio/claude-code-router",
                   "node_modules/@hono/node-server"]) {
  let have = null;
  try { have = JSON.parse(fs.readFileSync(path.join(dir, key, "package.json"), "utf8")).version; } catch {}
  if (have !== lock[key].version) { console.log(`${key.slice(13)} ${have ?? "missing"} != ${lock[key].version}`); process.exit(0); }
}
console.log("ok");
JS
}

version_of() {
  node -e 'console.log(require(process.argv[1]).version)' "$DIR/node_modules/$1/package.json"
}

state="$(check)"
if [ "$state" = "ok" ]; then
  for g in "${GATEWAYS[@]}"; do
    echo "${g##*:} $(version_of "${g%%:*}"): already installed in $DIR/node_modules"
  done
  exit 0
fi

start=$(date +%s)
log="$(mktemp -t gatewaylens-npm-install.XXXXXX)"
# --ignore-scripts: the gateways ship prebuilt; Portkey's postinstall only runs patch-package for
# its own development checkout.
if ! (cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  for g in "${GATEWAYS[@]}"; do echo "${g##*:}: FAILED: npm ci failed (log: $log): $(tail -n 1 "$log")" >&2; done
  exit 1
fi
state="$(check)"
if [ "$state" != "ok" ]; then
  echo "npm gateways: FAILED after npm ci: $state (log: $log)" >&2
  exit 1
fi
rm -f "$log"
secs=$(( $(date +%s) - start ))
for g in "${GATEWAYS[@]}"; do
  echo "${g##*:} $(version_of "${g%%:*}"): installed in $DIR/node_modules (npm ci, ${secs}s)"
done
