"""Case expectations (issue 11, item 3): a finding that contradicts its case's ``expect`` is
escalated, one that meets it is downgraded, and the finding says which expectation decided."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gatewaylens.analyze.expectations import apply
from gatewaylens.analyze.models import FindingRow
from gatewaylens.analyze.pipeline import analyze_run
from gatewaylens.capture.models import Expectation
from tests.support.ground_truth import DATA_DIR


def _row(kind: str, path: str, severity: str = "warn", direction: str = "request", to_path: str | None = None) -> FindingRow:
    return FindingRow(gateway="gw", case_id="c", dialect="chat", stream=False, upstream="anthropic",
                      direction=direction, kind=kind, path=path, to_path=to_path, before=1, after=None,  # type: ignore[arg-type]
                      severity=severity, message="m")  # type: ignore[arg-type]


def _x(**kw: Any) -> Expectation:
    return Expectation.model_validate(kw)


@pytest.mark.parametrize(("must", "kind", "path", "severity", "how"), [
    ("must_not_drop", "dropped", "usage.prompt_tokens", "error", "violated"),  # subtree
    ("must_not_drop", "renamed", "usage", "info", "met"),
    ("honour", "dropped", "usage", "error", "violated"),
    ("honour", "dropped", "usage.detail", "warn", None),  # a part inside: keeps its own severity
    ("honour", "rejected", "usage", "warn", "rejected (a 4xx naming it)"),
    ("may_drop", "dropped", "usage", "info", "met"),
    ("must_not_add", "added", "usage.extra", "error", "violated"),
    ("must_not_change", "dropped", "usage.x", "error", "violated"),
    ("reject_ok", "rejected", "usage", "info", "met"),
    ("reject_ok", "dropped", "usage", "error", "violated"),
])
def test_each_kind_of_expectation(must: str, kind: str, path: str, severity: str, how: str | None) -> None:
    row = _row(kind, path)
    apply([row], [_x(must=must, path="usage")], cross=True)
    assert row.severity == severity
    assert row.expectation == (f"{must} usage (request): {how}" if how else None)


def test_convert_kept_verbatim_across_dialects_is_a_violation_but_not_within_one() -> None:
    x = _x(must="convert", path="stop")
    across, same = _row("kept", "stop", "info"), _row("kept", "stop", "info")
    apply([across], [x], cross=True)
    apply([same], [x], cross=False)
    assert (across.severity, same.severity) == ("error", "info")


def test_direction_list_index_and_header_case() -> None:
    rows = [_row("dropped", "tools[1].function.parameters", "warn"),
            _row("dropped", "Anthropic-Beta".lower(), "info", direction="headers"),
            _row("dropped", "tools[1].function.parameters", "warn", direction="response")]
    apply(rows, [_x(must="must_not_drop", path="tools[*].function"),
                 _x(must="must_not_drop", path="Anthropic-Beta", direction="headers", severity="warn")], cross=True)
    assert [r.severity for r in rows] == ["error", "warn", "warn"]
    assert rows[2].expectation is None  # a request expectation says nothing about the response


def test_expectations_reach_findings_through_analyze_run(tmp_path: Path) -> None:
    """A real recorded exchange (LiteLLM 1.106.12 drops json_schema.strict building its forced
    tool, a warn) meets a case's may_drop and contradicts its must_not_drop."""
    for name in ("run.json", "corpus.json"):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    shutil.copy(DATA_DIR / "litellm.jsonl", tmp_path / "exchanges.jsonl")
    corpus = json.loads((tmp_path / "corpus.json").read_text(encoding="utf-8"))
    case = next(c for c in corpus["cases"] if c["id"] == "format-chat-json-schema")
    case["expect"] = [{"must": "may_drop", "path": "response_format.json_schema.strict"},
                      {"must": "must_not_drop", "path": "response_format.json_schema.name", "severity": "error"}]
    (tmp_path / "corpus.json").write_text(json.dumps(corpus), encoding="utf-8")
    analyze_run(tmp_path)
    doc = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    got = {(f["path"], f["severity"], f["expectation"]) for f in doc["findings"]
           if f["exchange_id"] == "litellm/format-chat-json-schema/anthropic" and f["expectation"]}
    assert ("response_format.json_schema.strict", "info",
            "may_drop response_format.json_schema.strict (request): met") in got
    assert ("response_format.json_schema.name", "error",
            "must_not_drop response_format.json_schema.name (request): violated") in got
    behaviour = next(b for b in doc["behaviours"] if b["path"] == "response_format.json_schema.name"
                     and b["gateway"] == "litellm" and b["route"] == "chat->anthropic")
    assert behaviour["severity"] == "error" and behaviour["expectation"]
