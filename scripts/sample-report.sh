#!/usr/bin/env bash
# Regenerate docs/sample-report.md and docs/sample-findings.json from a real run of every gateway
# that runs on this machine over the shipped corpus (what `make sample-report` calls).
set -euo pipefail
cd "$(dirname "$0")/.."
run="$(mktemp -d)/sample-run"
.venv/bin/capture --launch --gateways all --out "$run" || [ $? -eq 1 ]   # 1: some exchange not captured (reported)
.venv/bin/analyze "$run"
mkdir -p docs
cp "$run/report.md" docs/sample-report.md
cp "$run/findings.json" docs/sample-findings.json
# report.md links each case to report/<gateway>.md: keep the detail files beside it.
rm -rf docs/report && cp -r "$run/report" docs/report
echo "sample report: docs/sample-report.md ($(wc -c <docs/sample-report.md) bytes), findings: docs/sample-findings.json"
