#!/usr/bin/env bash
# Install every gateway this machine can run into the project-local cache (.gateways/ and
# gateways/npm/node_modules, both git-ignored).  Each script is idempotent and pinned, and prints
# one line per gateway.  A missing toolchain (Node.js, Go) skips its gateways with the reason.
# A failed install is reported and the others go on; the exit code is non-zero for it only under
# CI (CI=true), where every gateway that can run here must install.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
run() { # label script
  if ! bash "$2"; then echo "gateways: $1: install FAILED (see above)"; failed+=("$1"); fi
}
run litellm scripts/install-litellm.sh
if command -v node >/dev/null && command -v npm >/dev/null; then
  run "portkey, claude-code-router" scripts/install-npm-gateways.sh
else
  echo "gateways: portkey, claude-code-router: skipped: Node.js/npm not found (install Node.js >= 18)"
fi
if command -v go >/dev/null; then
  run "gomodel, bifrost" scripts/install-go-gateways.sh
  run bricksllm scripts/install-bricksllm.sh
else
  echo "gateways: gomodel, bifrost, bricksllm: skipped: Go toolchain not found (install Go >= 1.24)"
fi
if ((${#failed[@]})); then
  echo "gateways: not installed: ${failed[*]} (their captures and tests are skipped with the reason)"
  [[ "${CI:-}" == "true" ]] && exit 1
fi
exit 0
