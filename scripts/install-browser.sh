#!/usr/bin/env bash
# Install the headless browser the report's browser tests drive (tests/test_report_browser.py):
# Debian's `chromium` package. Playwright's own browser download cannot work on these machines, so
# the tests launch this binary through Playwright (from PyPI) with executable_path.
# fonts-dejavu-core gives screenshots real glyphs on a bare machine (no Recommends are pulled).
# Idempotent: does nothing when /usr/bin/chromium is there. Prints one line. Without root or apt the
# browser tests skip with that reason; under CI (CI=true) a failed install fails the build.
set -uo pipefail
BROWSER=/usr/bin/chromium
if [[ -x "$BROWSER" ]]; then
  echo "browser: chromium $("$BROWSER" --version 2>/dev/null | awk '{print $2}') already installed"
  exit 0
fi
fail() {
  echo "browser: chromium not installed: $1 (the browser tests skip)"
  [[ "${CI:-}" == "true" ]] && exit 1
  exit 0
}
command -v apt-get >/dev/null || fail "no apt-get on this machine (install Chromium at $BROWSER yourself)"
[[ "$(id -u)" == 0 ]] || fail "needs root for apt-get (run: sudo apt-get install -y chromium)"
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# A fresh machine may have no package lists yet, or stale ones: refresh once, then install.
if ! apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >"$log" 2>&1; then
  apt-get update -q >>"$log" 2>&1 || true
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >>"$log" 2>&1 || { tail -5 "$log"; fail "apt-get install chromium failed"; }
fi
[[ -x "$BROWSER" ]] || fail "the chromium package did not provide $BROWSER"
echo "browser: chromium $("$BROWSER" --version 2>/dev/null | awk '{print $2}') installed"
