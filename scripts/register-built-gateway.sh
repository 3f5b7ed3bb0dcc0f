#!/usr/bin/env bash
# Register a GoModel or Bifrost binary you built yourself from your own source tree, so that
# `capture --launch` and the slow tests can run it:
#
#   scripts/register-built-gateway.sh gomodel BINARY SOURCE_DIR
#   scripts/register-built-gateway.sh bifrost BINARY SOURCE_DIR     (BINARY: bifrost-http)
#
# Neither can come from the Go module proxy here (GoModel's go.mod says `module gomodel`; the proxy
# refuses github.com/maximhq/bifrost/*), so build it with the gateway's own instructions in your
# checkout. This script builds nothing and changes nothing in SOURCE_DIR: it checks the binary's Go
# build info against the tree, reads the version the tree declares (GoModel: the binary's -version,
# else `git describe --tags`; Bifrost: transports/version), and writes into .gateways/bin (or
# $GATEWAYLENS_TOOLS/bin): the binary, <binary>.version, <binary>.source.json (tree, commit, Go
# version, SHA-256) and, for Bifrost, bifrost-http.schema.json. One line on success; on bad
# input one line naming what is wrong, exit 2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
if [[ ! -x "$PY" ]]; then
  echo "register-built-gateway: $ROOT/.venv is missing: run 'make setup' first" >&2
  exit 2
fi
exec "$PY" -m gatewaylens.capture.register_gateway "$@"
