"""docs/ci/gatewaylens.yml: its capture, analyze and check steps, run verbatim against the test gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from gatewaylens.capture.launch import free_port
from tests.support.capture import Gateways, case

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "gatewaylens.yml"


def steps() -> dict[str, str]:
    wf: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["translation"]
    return {s["id"]: s["run"] for s in job["steps"] if "id" in s}


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def test_workflow_steps_run_against_the_test_gateway(tmp_path: Path) -> None:
    run = steps()
    assert set(run) == {"capture", "analyze", "check"}
    mock_port = free_port()
    gws = Gateways(mock_port)
    try:
        (spec,) = gws.start("ci-gw")
        repo = tmp_path / "repo"
        gl = repo / "tests" / "gatewaylens"
        gl.mkdir(parents=True)
        (gl / "corpus.json").write_text(json.dumps({"cases": [
            case("ci-chat"), case("ci-chat-stream", stream=True), case("ci-messages", dialect="messages")]}))
        env = {**os.environ, "GATEWAY_NAME": "ci-gw", "GATEWAY_URL": spec.split("=", 1)[1],
               "MOCK_PORT": str(mock_port), "GL_DIR": "tests/gatewaylens",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md")}
        for step in ("capture", "analyze"):
            r = run_step(run[step], repo, env)
            assert r.returncode == 0, (step, r.stdout[-800:], r.stderr[-800:])
        assert (repo / "runs" / "ci" / "report.md").is_file()
        # bootstrap the fixtures the way the workflow's header says, then the check step passes
        subprocess.run([sys.executable, "-m", "gatewaylens.analyze", "fixtures", "runs/ci", "--out",
                        "tests/gatewaylens/fixtures"], cwd=repo, check=True, capture_output=True)
        r = run_step(run["check"], repo, env)
        assert r.returncode == 0, (r.stdout[-800:], r.stderr[-800:])
        assert "ok: 3 exchange(s) match their fixtures" in r.stdout
        root = ET.parse(repo / "reports" / "gatewaylens.xml").getroot()
        assert root.tag == "testsuites" and len(root.findall("testsuite/testcase")) == 3
        assert (repo / "reports" / "gatewaylens.md").read_text().startswith("## gatewaylens check: ✅ unchanged")
        assert "gatewaylens check" in (tmp_path / "step-summary.md").read_text()

        # the fixture lacks the model rewrite (info): a CHANGED line, the build still passes
        fx = repo / "tests" / "gatewaylens" / "fixtures" / "ci-gw" / "ci-chat.openai.json"
        data = json.loads(fx.read_text())
        assert any(b["path"] == "model" for b in data["behaviours"])  # the test gateway rewrites model
        data["behaviours"] = [b for b in data["behaviours"] if b["path"] != "model"]
        fx.write_text(json.dumps(data))
        r = run_step(run["check"], repo, env)
        assert r.returncode == 0, r.stderr
        assert "CHANGED ci-gw/ci-chat[openai]: request model changed: new (info) e.g. model" in r.stdout.splitlines()

        # a fixture whose exchange the run no longer has: a regression, the step fails, JUnit names it
        data["case_id"] = "ci-gone"
        (fx.parent / "ci-gone.openai.json").write_text(json.dumps(data))
        r = run_step(run["check"], repo, env)
        assert r.returncode == 1
        failed = [c.get("name") for c in ET.parse(repo / "reports" / "gatewaylens.xml").getroot().iter("testcase")
                  if c.find("failure") is not None]
        assert failed == ["ci-gw/ci-gone[openai]"]
    finally:
        gws.stop()
