#!/usr/bin/env bash
# Regenerate the sample report in docs/ from a real run of every gateway that runs on this machine
# over the shipped corpus (what `make sample-report` calls):
#   docs/sample-report.md     the run's report.md
#   docs/report/<gateway>.md  its per-gateway detail files (the links in sample-report.md stay valid)
#   docs/sample-findings.json its findings.json
#   docs/report.png, docs/report-detail.png  report.html as Debian's Chromium shows it
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-browser.sh
run="$(mktemp -d)/sample-run"
# a free port of our own, so a mock someone else runs on the default port is not shared
port="$(.venv/bin/python -c 'from gatewaylens.capture.launch import free_port; print(free_port())')"
.venv/bin/capture --launch --gateways all --mock "http://127.0.0.1:$port" --out "$run" || [ $? -eq 1 ]   # 1: some exchange not captured (reported)
.venv/bin/analyze "$run"
mkdir -p docs
rm -rf docs/report
cp -r "$run/report" docs/report
# report.html is not kept in docs/ (it embeds every body); the screenshots show it.
sed -e 's#\[report.html\](report.html)#report.html (in the run directory; screenshots: [report.png](report.png), [report-detail.png](report-detail.png))#' \
  "$run/report.md" >docs/sample-report.md
sed -i -e 's#](\.\./report\.md)#](../sample-report.md)#g' docs/report/*.md
cp "$run/findings.json" docs/sample-findings.json
.venv/bin/python scripts/report_screenshot.py "$run/report.html" docs
echo "sample report: docs/sample-report.md ($(wc -l <docs/sample-report.md) lines), docs/report/ ($(ls docs/report | wc -l) files), findings: docs/sample-findings.json"
