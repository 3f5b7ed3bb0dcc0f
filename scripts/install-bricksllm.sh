#!/usr/bin/env bash
# Install BricksLLM (pinned) and what its local launch needs, idempotently:
#   - PostgreSQL and redis-server from Debian's packages (BricksLLM needs both; the launcher starts
#     private instances per run) plus the namespace/TLS tools the launcher uses;
#   - the BricksLLM binary, built from the Go module proxy through gateways/go/bricksllm/go.mod
#     (`go install github.com/bricks-cloud/bricksllm/cmd/bricksllm@v1.45.2` is refused: the proxy
#     answers 403 for the module's version list, which `go install pkg@version` reads to check for
#     deprecation), into .gateways/bin with a version stamp;
#   - tiktoken BPE files from the Go module github.com/pkoukk/tiktoken-go-loader into
#     .gateways/share/tiktoken, named as tiktoken-go's cache expects, so BricksLLM does not try to
#     download them from the internet at start.
# One line per step; exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${GATEWAYLENS_TOOLS:-$ROOT/.gateways}"
BIN="$TOOLS/bin"
WRAP="$ROOT/gateways/go/bricksllm"
MODULE="github.com/bricks-cloud/bricksllm"
PINNED="v1.45.2"
LOADER="github.com/pkoukk/tiktoken-go-loader"
TIKTOKEN_DIR="$TOOLS/share/tiktoken"

step() { printf 'install-bricksllm: %s\n' "$*"; }
fail() { printf 'install-bricksllm: FAILED: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v unshare >/dev/null && command -v nsenter >/dev/null && command -v setpriv >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || fail "need ${missing[*]} (Debian packages) and apt-get is not available"
  [[ $(id -u) -eq 0 ]] || fail "need ${missing[*]}: run as root (apt-get install)"
  step "apt-get update"
  apt-get update -qq >/dev/null || fail "apt-get update"
  step "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]}"
  # Debian's postinst may start a system-wide cluster/server where an init system runs; the
  # launcher never uses them (it starts its own), so they are left as the package set them up.
else
  step "postgresql, redis-server, util-linux, iproute2, openssl: already installed"
fi

# --- BricksLLM binary ------------------------------------------------------------------------
command -v go >/dev/null || fail "Go toolchain not found (needed to build BricksLLM)"
required="$(cd "$WRAP" && go list -m -f '{{.Version}}' "$MODULE")" || fail "reading $WRAP/go.mod"
[[ "$required" == "$PINNED" ]] || fail "$WRAP/go.mod requires $MODULE $required, expected $PINNED"
if [[ -x "$BIN/bricksllm" && "$(cat "$BIN/bricksllm.version" 2>/dev/null)" == "$PINNED" ]]; then
  step "bricksllm $PINNED: already built in $BIN"
else
  mkdir -p "$BIN"
  step "go build $MODULE/cmd/bricksllm@$PINNED -> $BIN/bricksllm (a few minutes the first time)"
  rm -f "$BIN/bricksllm.version"
  (cd "$WRAP" && go build -trimpath -o "$BIN/bricksllm" "$MODULE/cmd/bricksllm") || fail "go build bricksllm"
  printf '%s\n' "$PINNED" >"$BIN/bricksllm.version"
fi

# --- tiktoken BPE files ----------------------------------------------------------------------
encodings=(r50k_base p50k_base cl100k_base o200k_base)
cache_name() { printf '%s' "https://openaipublic.blob.core.windows.net/encodings/$1.tiktoken" | sha1sum | cut -d' ' -f1; }
have=1
for e in "${encodings[@]}"; do [[ -s "$TIKTOKEN_DIR/$(cache_name "$e")" ]] || have=0; done
if ((have)); then
  step "tiktoken BPE files: already in $TIKTOKEN_DIR"
else
  step "go mod download $LOADER (tiktoken BPE files) -> $TIKTOKEN_DIR"
  dir="$(cd "$WRAP" && go mod download -json "$LOADER" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir/assets" ]] || fail "go mod download $LOADER"
  mkdir -p "$TIKTOKEN_DIR"
  for e in "${encodings[@]}"; do
    install -m 0644 "$dir/assets/$e.tiktoken" "$TIKTOKEN_DIR/$(cache_name "$e")" || fail "copying $e"
  done
fi
step "done: $BIN/bricksllm ($PINNED)"
