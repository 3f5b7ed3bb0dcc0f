"""Real LiteLLM launched by ``capture --launch``, all three dialects, stream and not (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_checks import skip_unless_launchable
from tests.support.capture import ROOT, case, free_port

TERMINAL = {"chat": "[DONE]", "responses": "response.completed", "messages": "message_stop"}


@pytest.mark.slow
def test_real_litellm_all_dialects(tmp_path: Path) -> None:
    skip_unless_launchable("litellm")
    cases = [case(f"{d}-{'s' if s else 'n'}", d, s, upstream=["openai", "anthropic"])
             for d in ("chat", "responses", "messages") for s in (False, True)]
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": cases}))
    res = subprocess.run([sys.executable, "-m", "gatewaylens.capture", "--gateways", "litellm", "--launch",
                          "--corpus", "corpus.json", "--mock", f"http://127.0.0.1:{free_port()}", "--out", "run",
                          "--json", "--timeout", "60"], cwd=tmp_path, capture_output=True, text=True, timeout=400,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    exs: list[dict[str, Any]] = [json.loads(x) for x in (tmp_path / "run" / "exchanges.jsonl").read_text().splitlines()]
    captured = [e for e in exs if e["status"] != "unsupported"]
    assert {(e["dialect"], e["stream"]) for e in captured} == {(d, s) for d in TERMINAL for s in (False, True)}
    for e in captured:
        assert e["status"] == "ok" and e["error"] is None, (e["id"], e["error"])
        assert e["upstream_requests"], f"{e['id']}: no upstream request recorded"
        assert all(r["channel"] == "litellm" for r in e["upstream_requests"])
        cr = e["client_response"]
        assert cr["status"] == 200
        if e["stream"]:
            kinds = {f["event"] or (f["json_data"].get("type") if isinstance(f["json_data"], dict) else f["data"])
                     for f in cr["frames"]}
            assert TERMINAL[e["dialect"]] in kinds, f"{e['id']}: stream incomplete"
        else:
            assert isinstance(cr["body"], dict)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["gateways"][0]["launched"] == "local" and info["gateways"][0]["version"]
