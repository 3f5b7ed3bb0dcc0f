#!/usr/bin/env bash
# Install the Go gateways gatewaylens launches into the project-local cache, pinned:
#   GoModel  v0.1.22 -> .gateways/bin/gomodel
#   Bifrost  v1.6.6  -> .gateways/bin/bifrost-http   (its HTTP transport)
# (BricksLLM has its own script.)
#
# Usage: scripts/install-go-gateways.sh [gomodel] [bifrost]     (default: both)
# Prints one line per gateway; exits 1 when any selected gateway could not be installed.
# Idempotent: a gateway whose binary and version stamp (<binary>.version) match the pin is skipped.
#
# Why not a plain `go install <module>/<main>@<version>`:
# - GoModel's go.mod declares `module gomodel` (not github.com/enterpilot/gomodel), so the Go
#   module proxy cannot serve it under its repository path and `go install` is impossible here.
#   The script says so and skips it; a binary you built in your own checkout is registered with
#   scripts/register-built-gateway.sh (which also records where it came from).
# - Bifrost's transports/bifrost-http/main.go embeds `ui/` (`//go:embed all:ui`), which the
#   published module does not contain, so `go install` fails on the embed pattern. The module is
#   taken from the Go module proxy (`go mod download`), copied to .gateways/build, given a
#   one-file UI stub (gatewaylens never uses Bifrost's web UI) and built there.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${GATEWAYLENS_TOOLS:-$ROOT/.gateways}"
BIN="$TOOLS/bin"
BUILD="$TOOLS/build"

# Pins (gatewaylens/capture/gateways/gomodel.py and bifrost.py hold the same values; a test checks).
GOMODEL_VERSION="v0.1.22"
GOMODEL_COMMIT="a26fbd1cdef96c6aec71ce7e350ed7444bb4111c"
BIFROST_MODULE="github.com/maximhq/bifrost/transports"
BIFROST_VERSION="v1.6.6"
# The one newer Go toolchain this project may use when a module's go.mod needs it.
NEWER_GO="go1.27.3"

mkdir -p "$BIN" "$BUILD"

say() { printf '%s\n' "$*"; }

installed() {  # installed <binary> <version>
  [[ -x "$BIN/$1" && -f "$BIN/$1.version" && "$(cat "$BIN/$1.version")" == "$2" ]]
}

# Use go1.27.3 only when the module being built asks for a Go newer than the local one.
toolchain_for() {  # toolchain_for <dir with go.mod>
  local need have
  need="$(awk '$1 == "go" {print $2; exit}' "$1/go.mod" 2>/dev/null)"
  have="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
  if [[ -n "$need" && -n "$have" && "$(printf '%s\n%s\n' "$need" "$have" | sort -V | tail -1)" != "$have" ]]; then
    echo "$NEWER_GO"
  else
    echo "local"
  fi
}

install_gomodel() {
  if installed gomodel "$GOMODEL_VERSION"; then
    say "gomodel $GOMODEL_VERSION: already installed ($BIN/gomodel)"; return 0
  fi
  # Not a failure of this machine: the module cannot be had from the Go module proxy at all.
  if [[ -f "$BIN/gomodel.source.json" ]]; then
    say "gomodel: registered from your source tree at $(cat "$BIN/gomodel.version" 2>/dev/null) ($BIN/gomodel.source.json)"; return 0
  fi
  say "gomodel $GOMODEL_VERSION: skipped: cannot be installed from the Go module proxy (its go.mod declares 'module gomodel', so github.com/enterpilot/gomodel is not served); build it in your own checkout and register it: scripts/register-built-gateway.sh gomodel BINARY SOURCE_DIR"
  return 0
}

install_bifrost() {
  local started=$SECONDS moddir="" dl err work tc
  if installed bifrost-http "$BIFROST_VERSION" && [[ -f "$BIN/bifrost-http.schema.json" ]]; then
    say "bifrost $BIFROST_VERSION: already installed ($BIN/bifrost-http)"; return 0
  fi
  if [[ -f "$BIN/bifrost-http.source.json" ]]; then
    say "bifrost: registered from your source tree at $(cat "$BIN/bifrost-http.version" 2>/dev/null) ($BIN/bifrost-http.source.json)"; return 0
  fi
  dl="$(cd "$BUILD" && GOFLAGS=-mod=mod go mod download -json "$BIFROST_MODULE@$BIFROST_VERSION" 2>&1)"
  moddir="$(printf '%s' "$dl" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -1)"
  if [[ -z "$moddir" || ! -d "$moddir" ]]; then
    err="$(printf '%s' "$dl" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | head -1 | sed 's/\\n.*//; s/\\t//g')"
    # The proxy refusing the module is a fact of this machine, not a broken install: skip, say why.
    say "bifrost $BIFROST_VERSION: skipped: the Go module proxy does not serve $BIFROST_MODULE@$BIFROST_VERSION (${err:-$dl}); a binary built in your own checkout can be registered: scripts/register-built-gateway.sh bifrost BINARY SOURCE_DIR"
    return 0
  fi
  work="$BUILD/bifrost-transports-$BIFROST_VERSION"
  rm -rf "$work" && mkdir -p "$work" && cp -R "$moddir/." "$work/" && chmod -R u+w "$work"
  # The embedded web UI is built by Bifrost's npm pipeline and is not in the Go module.
  mkdir -p "$work/bifrost-http/ui"
  [[ -n "$(ls -A "$work/bifrost-http/ui")" ]] || \
    printf '%s\n' '<!doctype html><title>bifrost</title><p>UI not built (gatewaylens build).' >"$work/bifrost-http/ui/index.html"
  tc="$(toolchain_for "$work")"
  # CGO: the SQLite driver Bifrost links (mattn/go-sqlite3) needs a C compiler.
  if ! (cd "$work/bifrost-http" && GOTOOLCHAIN="$tc" CGO_ENABLED=1 GOFLAGS="-buildvcs=false -mod=mod" GOWORK=off \
        go build -trimpath -ldflags "-X main.Version=$BIFROST_VERSION" -o "$BIN/bifrost-http.tmp" .) \
        >"$BUILD/bifrost.log" 2>&1; then
    say "bifrost $BIFROST_VERSION: FAILED: go build failed: $(tail -1 "$BUILD/bifrost.log")"; return 1
  fi
  # Bifrost reads its config schema from its working directory, else downloads it at every start;
  # the launcher copies this file there (bifrost.py).
  cp -f "$work/config.schema.json" "$BIN/bifrost-http.schema.json" || { say "bifrost $BIFROST_VERSION: FAILED: no config.schema.json in the module"; return 1; }
  mv -f "$BIN/bifrost-http.tmp" "$BIN/bifrost-http" && echo "$BIFROST_VERSION" >"$BIN/bifrost-http.version"
  say "bifrost $BIFROST_VERSION: installed in $((SECONDS - started))s ($BIN/bifrost-http)"
}

selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=(gomodel bifrost)

if ! command -v go >/dev/null 2>&1; then
  for g in "${selected[@]}"; do say "$g: skipped: no Go toolchain (go) on PATH"; done
  exit 1
fi

status=0
for g in "${selected[@]}"; do
  case "$g" in
    gomodel) install_gomodel || status=1 ;;
    bifrost) install_bifrost || status=1 ;;
    *) say "$g: unknown gateway (known: gomodel, bifrost)"; status=2 ;;
  esac
done
exit "$status"
