"""The reported-bug pack: per case and gateway, is the bug reproduced?

A case of the pack (it has a ``source``, the bug report's URL) states the correct behaviour in
``expect``; :mod:`gatewaylens.analyze.expectations` marks each finding that violates an
expectation (``expectation: "... : violated"``).  An exchange *reproduces* the bug when one of its
findings does.  Per gateway: ``reproduced`` (some exchange does), ``not reproduced`` (the request
went through and nothing violates), ``not applicable`` (the gateway has no route for the case, or
answered without calling the upstream, so the case could not show the bug there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gatewaylens.analyze.engine import AnalysedExchange
from gatewaylens.analyze.models import FindingRow
from gatewaylens.capture.models import Expectation

BugStatus = Literal["reproduced", "not reproduced", "not applicable"]
_RANK: dict[str, int] = {"info": 0, "warn": 1, "error": 2}


def violations(findings: Iterable[FindingRow]) -> list[FindingRow]:
    """The findings that violate one of their case's expectations."""
    return [f for f in findings if f.expectation and f.expectation.endswith(": violated")]


def bug_number(source: str | None) -> str:
    """``https://github.com/o/r/issues/12`` -> ``o/r#12`` (any other source as it is)."""
    m = re.search(r"github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", source or "")
    return f"{m.group(1)}#{m.group(2)}" if m else (source or "")


@dataclass(slots=True)
class BugCase:
    source: str
    summary: str
    tags: list[str]
    expect: list[Expectation]


def bug_cases(notes: Mapping[str, Mapping[str, Any]]) -> dict[str, BugCase]:
    """Case id -> its bug report, for the cases that name one (from ``load_case_notes``)."""
    out: dict[str, BugCase] = {}
    for cid, n in notes.items():
        source = n.get("source")
        if isinstance(source, str) and source:
            summary = n.get("summary")
            out[cid] = BugCase(source, summary if isinstance(summary, str) else "",
                               [t for t in n.get("tags") or [] if isinstance(t, str)], list(n.get("expect") or []))
    return out


@dataclass(slots=True)
class _Cell:
    outcomes: dict[str, str] = field(default_factory=dict)  # exchange id -> outcome
    client_status: dict[str, int | None] = field(default_factory=dict)
    reproduced_on: set[str] = field(default_factory=set)  # upstream kinds
    evidence: FindingRow | None = None


def bug_status(cell: _Cell, expects: list[Expectation]) -> tuple[BugStatus, str]:
    """Status and a one-line reason."""
    if cell.evidence is not None:
        f = cell.evidence
        ups = ", ".join(sorted(cell.reproduced_on))
        return "reproduced", f"{f.direction} {f.path} {f.kind} ({ups}): {f.message}"
    outcomes = set(cell.outcomes.values())
    if "translated" in outcomes or ("rejected" in outcomes and any(e.must == "reject_ok" for e in expects)):
        return "not reproduced", "the request went through and nothing violates the expected behaviour"
    if not outcomes or outcomes == {"unsupported"}:
        return "not applicable", "the gateway has no route for this case"
    statuses = sorted({str(s) for s in cell.client_status.values() if s is not None})
    why = {"rejected": "refused the request", "no_upstream_call": "answered without calling the upstream",
           "capture_error": "could not be captured"}
    what = ", ".join(why.get(o, o) for o in sorted(outcomes - {"unsupported"}))
    return "not applicable", f"the gateway {what}" + (f" (HTTP {', '.join(statuses)})" if statuses else "")


class BugBoard:
    """Collects, exchange by exchange, what the report's "reported bugs" section shows."""

    def __init__(self, notes: Mapping[str, Mapping[str, Any]]) -> None:
        self.cases = bug_cases(notes)
        self.cells: dict[tuple[str, str], _Cell] = {}

    def add(self, result: AnalysedExchange) -> None:
        s = result.summary
        if s.case_id not in self.cases:
            return
        cell = self.cells.setdefault((s.case_id, s.gateway), _Cell())
        cell.outcomes[s.id] = s.outcome
        cell.client_status[s.id] = s.client_status
        bad = violations(result.findings)
        if bad:
            cell.reproduced_on.add(s.upstream)
            worst = max(bad, key=lambda f: _RANK[f.severity])
            if cell.evidence is None or _RANK[worst.severity] > _RANK[cell.evidence.severity]:
                cell.evidence = worst

    def rows(self, gateways: list[str]) -> list[dict[str, Any]]:
        out = []
        for cid in sorted(self.cases, key=_sort_key):
            c = self.cases[cid]
            cells = []
            for g in gateways:
                cell = self.cells.get((cid, g))
                status, why = bug_status(cell, c.expect) if cell is not None else ("not applicable", "not run")
                cells.append({"gateway": g, "status": status, "why": why})
            out.append({"case": cid, "source": c.source, "summary": c.summary, "number": bug_number(c.source),
                        "reported_against": next((t for t in c.tags if t != "reported-bug"), ""), "cells": cells})
        return out


def _sort_key(cid: str) -> tuple[str, int, str]:
    m = re.match(r"bug-(.+)-(\d+)$", cid)
    return (m.group(1), int(m.group(2)), cid) if m else (cid, 0, cid)
