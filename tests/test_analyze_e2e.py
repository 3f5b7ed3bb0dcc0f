"""End to end (slow): real LiteLLM captured through the mock, then analyzed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gatewaylens.analyze.cli import main
from gatewaylens.analyze.pipeline import load_findings_file
from tests.gateway_checks import skip_unless_launchable
from tests.support.capture import ROOT, free_port

CASES = ["basic-chat", "basic-messages", "basic-responses-stream", "roundtrip-chat-parallel",
         "thinking-messages-budget-stream", "sampling-chat-full"]


@pytest.mark.slow
def test_real_litellm_run_is_analyzed(tmp_path: Path) -> None:
    skip_unless_launchable("litellm")
    run = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "gatewaylens.capture", "--gateways", "litellm", "--launch",
                          "--corpus", str(ROOT / "corpus.json"), "--cases", ",".join(CASES),
                          "--mock", f"http://127.0.0.1:{free_port()}", "--out", str(run), "--timeout", "60"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=500, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]

    out = CliRunner().invoke(main, [str(run), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["exchanges"] >= len(CASES)
    assert [g["gateway"] for g in summary["gateways"]] == ["litellm"]

    ff = load_findings_file(run / "findings.json")
    # Cross-dialect exchanges are reported as the translations they are...
    cross = [f for f in ff.findings if f.case_id == "basic-messages" and f.upstream == "openai"]
    assert any(f.kind == "moved" and f.path == "system" and f.severity == "info" for f in cross), cross
    # ...and the report and the prompts name real findings.
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "| litellm |" in report and "## Field support matrix" in report
    named = [f for f in ff.findings if f.severity != "info"]
    assert named and any(f"`{f.path}`" in report for f in named)
    for case in CASES:
        prompt = (run / "prompts" / f"{case}.md").read_text(encoding="utf-8")
        assert "### litellm →" in prompt and '"verdict"' in prompt
    assert "Deterministic findings" in (run / "prompts" / "basic-messages.md").read_text(encoding="utf-8")
