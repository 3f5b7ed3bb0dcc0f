#!/usr/bin/env bash
# Install the pinned LiteLLM proxy into its own venv, .gateways/litellm (git-ignored), so its many
# pins never clash with gatewaylens's own dependencies.  Idempotent: does nothing when the pinned
# version is already there.  Prints one line; exits non-zero on failure.
#   GATEWAYLENS_TOOLS  install cache (default <repo>/.gateways)
#   PYTHON             interpreter to build the venv from (default python3.11, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${GATEWAYLENS_TOOLS:-$ROOT/.gateways}"
VENV="$TOOLS/litellm"
REQ="$ROOT/gateways/litellm/requirements.txt"
CONSTRAINTS="$ROOT/gateways/litellm/constraints.txt"
PIN="$(sed -n 's/^litellm\[proxy\]==\([^ ]*\).*/\1/p' "$REQ")"

installed_version() {
  [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/litellm" ] || return 0
  "$VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.metadata as m
print(m.version("litellm"))
PY
}

if [ "$(installed_version)" = "$PIN" ]; then
  echo "litellm $PIN: already installed in $VENV"
  exit 0
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  PY="$(command -v python3.11 || command -v python3 || true)"
fi
if [ -z "$PY" ]; then
  echo "litellm $PIN: FAILED: no python3 found (set PYTHON)" >&2
  exit 1
fi

start=$(date +%s)
log="$(mktemp -t gatewaylens-litellm-install.XXXXXX)"
# A venv left by an interrupted or older install is rebuilt from scratch.
rm -rf "$VENV"
mkdir -p "$TOOLS"
if ! { "$PY" -m venv "$VENV" \
       && "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ" -c "$CONSTRAINTS"; } >"$log" 2>&1; then
  echo "litellm $PIN: FAILED (pip log: $log): $(tail -n 1 "$log")" >&2
  exit 1
fi
got="$(installed_version)"
if [ "$got" != "$PIN" ]; then
  echo "litellm $PIN: FAILED: found '${got:-nothing}' after install (pip log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "litellm $PIN: installed in $VENV in $(( $(date +%s) - start ))s"
