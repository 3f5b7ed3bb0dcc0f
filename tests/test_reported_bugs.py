"""The reported-bug pack: the report's "reported bugs" section, and ``analyze check`` / known gaps
pinning "bug #N stays fixed" (how findings are judged against ``expect``: test_analyze_expectations).

The end-to-end test sends a reported-bug-style case through the independent test gateway
(tests/capture_testgw.py) and the real mock: the test gateway rewrites ``model``, so a case that
expects ``model`` unchanged reproduces its "bug" there, and one that expects ``messages`` kept
does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gatewaylens.analyze.bugs import bug_number
from gatewaylens.analyze.fixtures import check_run, write_fixtures
from gatewaylens.analyze.models import KnownGap, KnownGaps
from gatewaylens.analyze.pipeline import analyze_run
from gatewaylens.capture.launch import free_port
from tests.support.capture import Gateways
from tests.support.conversations import run_capture


def test_known_gaps_name_a_bug_or_a_behaviour() -> None:
    gap = KnownGap(gateway="g", bug="BerriAI/litellm#8964")
    assert gap.names_bug("https://github.com/BerriAI/litellm/issues/8964")
    assert not gap.names_bug("https://github.com/BerriAI/litellm/issues/89640")
    assert KnownGaps(gaps=[gap]).accepts_bug("g", "https://github.com/BerriAI/litellm/issues/8964")
    assert not KnownGaps(gaps=[gap]).accepts("g", "chat->openai", "request", "x", "dropped")
    with pytest.raises(ValidationError, match="either a bug, or route"):
        KnownGap(gateway="g", route="chat->openai")
    assert bug_number("https://github.com/Portkey-AI/gateway/pull/1593") == "Portkey-AI/gateway#1593"


# ---------------------------------------------------------------------------------------------
# End to end through the test gateway
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def gws(tmp_path: Path) -> Iterator[Gateways]:
    g = Gateways(free_port(), signal_dir=tmp_path)
    yield g
    g.stop()


def bug_case(cid: str, expect: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": cid, "dialect": "chat", "stream": False, "note": "Reported: a test bug", "upstream": "openai",
            "tags": ["reported-bug", "testgw"], "source": f"https://github.com/example/gw/issues/{cid[-2:]}",
            "summary": "a test bug", "expect": expect,
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"[gwl:{cid}] hi"}]}}


def test_reported_bugs_in_report_fixtures_and_check(tmp_path: Path, gws: Gateways) -> None:
    cases = [bug_case("bug-testgw-11", [{"path": "model", "must": "must_not_change"}]),  # the gateway rewrites model
             bug_case("bug-testgw-12", [{"path": "messages", "must": "must_not_drop"}])]
    (tmp_path / "corpus.json").write_text(json.dumps({"cases": cases}))
    gw = gws.start("bugsgw")[0]
    run = tmp_path / "run"
    proc = run_capture(tmp_path, gws.mock_port, [gw], "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    analyze_run(run)
    findings = json.loads((run / "findings.json").read_text())["findings"]
    model = [f for f in findings if f["case_id"] == "bug-testgw-11" and f["path"] == "model"]
    assert model and model[0]["severity"] == "error" and model[0]["expectation"] == "must_not_change model (request): violated"
    report = (run / "report.md").read_text()
    section = report.split("## Reported bugs", 1)[1].split("\n## ", 1)[0]
    assert "[example/gw#11](https://github.com/example/gw/issues/11)" in section
    line11 = next(ln for ln in section.splitlines() if "example/gw#11" in ln)
    line12 = next(ln for ln in section.splitlines() if "example/gw#12" in ln)
    assert "**reproduced**" in line11 and "not reproduced" in line12
    assert "**reproduced** on bugsgw" in (run / "report" / "bugsgw.md").read_text()

    # pin it: fixtures record the status, check is clean against them ...
    fx = tmp_path / "fx"
    write_fixtures(run, fx)
    pinned = json.loads((fx / "bugsgw" / "bug-testgw-12.openai.json").read_text())["reported_bug"]
    assert pinned == {"source": "https://github.com/example/gw/issues/12", "reproduced": False, "evidence": None}
    assert check_run(run, fx).unchanged
    # ... a fixed bug that comes back is a regression, unless the known-gaps file names it ...
    path12 = fx / "bugsgw" / "bug-testgw-11.openai.json"
    data = json.loads(path12.read_text())
    data["reported_bug"].update(reproduced=False, evidence=None)
    path12.write_text(json.dumps(data))
    res = check_run(run, fx)
    assert [r for r in res.regressions if "reported bug example/gw#11 is reproduced again" in r], res.regressions
    gaps = tmp_path / "gaps.yml"
    gaps.write_text("format_version: 1\ngaps:\n  - {gateway: bugsgw, bug: 'example/gw#11', reason: wontfix}\n"
                    "  - {gateway: bugsgw, bug: 'https://github.com/example/gw/issues/12'}\n")
    res = check_run(run, fx, gaps)
    assert not res.regressions and any("known gap" in k for k in res.known)
    # ... and a known bug that no longer shows is reported so the file can shrink.
    assert any("bugsgw[https://github.com/example/gw/issues/12]" in i and "no longer reproduced" in i
               for i in res.improvements), res.improvements
