#!/usr/bin/env bash
# Install every gateway this machine can run into the project-local cache (.gateways/, gateways/npm/).
# One line per gateway; a missing toolchain skips its gateways with the reason. Exit non-zero only
# when an install that should work here fails.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
run() { # name script
  if ! bash "$2"; then echo "gateways: $1 install FAILED (see above)"; status=1; fi
}
run litellm scripts/install-litellm.sh
if command -v node >/dev/null && command -v npm >/dev/null; then
  run "portkey, claude-code-router" scripts/install-npm-gateways.sh
else
  echo "gateways: portkey, claude-code-router skipped: Node.js/npm not found (install Node.js >= 18)"
fi
if command -v go >/dev/null; then
  run "gomodel, bifrost" scripts/install-go-gateways.sh
  run bricksllm scripts/install-bricksllm.sh
else
  echo "gateways: gomodel, bifrost, bricksllm skipped: Go toolchain not found (install Go >= 1.24)"
fi
exit $status
