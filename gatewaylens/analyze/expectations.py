"""Case expectations (``Case.expect``) applied to findings, and what they say about reported bugs.

A case may state what a faithful gateway does with a field or concept (see
:class:`gatewaylens.capture.models.Expectation`).  Each finding of the case's exchanges that falls
under an expectation is judged against it:

* a finding that **violates** it (a drop where ``must_not_drop`` / ``honour`` / ``convert`` /
  ``reject_ok`` say it must arrive, an addition under ``must_not_add``, a change under
  ``must_not_change`` / ``honour``) is raised to the expectation's severity (default ``error``)
  and labelled ``violates <must> <field>``;
* a finding that **meets** it (a drop under ``may_drop``, a rejection under ``reject_ok``) is
  lowered to ``info`` and labelled ``meets <must> <field>``.

For a case of the **reported-bug pack** (it has a ``source``), an exchange *reproduces* the bug when
one of its findings violates an expectation.  Per gateway: ``reproduced`` (some exchange does),
``not reproduced`` (the request went through and nothing violates), ``not applicable`` (the
gateway has no route for it, or answered without calling the upstream, so the case could not
show the bug there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import ValidationError

from gatewaylens.analyze.engine import AnalysedExchange, _counts, exchange_score
from gatewaylens.analyze.models import FindingRow, Severity
from gatewaylens.capture.models import Expectation

_RANK: dict[str, int] = {"info": 0, "warn": 1, "error": 2}
VIOLATES = "violates "
MEETS = "meets "
BugStatus = Literal["reproduced", "not reproduced", "not applicable"]


@lru_cache(maxsize=1024)
def _path_re(pattern: str) -> re.Pattern[str]:
    body = re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]")
    return re.compile(rf"^{body}(?:$|[.\[])")


def covers(e: Expectation, f: FindingRow) -> bool:
    """The finding is about what the expectation names (same side; a path prefix, ``[*]`` any index;
    or the equivalence-table concept).  Response and stream expectations cover each other: the
    same answer, streamed or not."""
    sides = {e.direction} | ({"response", "stream"} if e.direction in ("response", "stream") else set())
    if f.direction not in sides:
        return False
    if e.concept is not None:
        return f.concept == e.concept
    assert e.path is not None
    if f.direction == "headers":
        return f.path.lower() == e.path.lower() or (f.to_path or "").lower() == e.path.lower()
    return bool(_path_re(e.path).match(f.path))


def judge(e: Expectation, f: FindingRow) -> str | None:
    """``"violates"``, ``"meets"`` or ``None`` (the finding says nothing about it)."""
    k = f.kind
    if e.must == "may_drop":
        return "meets" if k == "dropped" else None
    if e.must == "reject_ok":
        return "meets" if k == "rejected" else ("violates" if k == "dropped" else None)
    if e.must == "must_not_drop":
        return "violates" if k == "dropped" else None
    if e.must == "must_not_add":
        return "violates" if k == "added" else None
    if e.must == "must_not_change":
        return "violates" if k == "changed" else None
    # honour / convert: the value must reach the other side with its meaning
    if k == "dropped" or (k == "changed" and f.severity != "info"):
        return "violates"
    return None


def parse_expectations(raw: Any) -> list[Expectation]:
    out: list[Expectation] = []
    for item in raw if isinstance(raw, list) else ():
        try:
            out.append(Expectation.model_validate(item))
        except ValidationError:
            continue  # the corpus loader refuses bad ones; a hand-edited run copy is not fatal here
    return out


def apply_expectations(findings: list[FindingRow], expects: list[Expectation]) -> int:
    """Judge ``findings`` (in place) against a case's expectations; returns how many violate one."""
    violated = 0
    for f in findings:
        if f.kind == "kept" and f.severity == "info":
            continue
        for e in expects:
            if not covers(e, f):
                continue
            verdict = judge(e, f)
            if verdict is None:
                continue
            f.expectation = (VIOLATES if verdict == "violates" else MEETS) + e.label()
            if verdict == "violates":
                violated += 1
                if _RANK[e.severity] > _RANK[f.severity]:
                    f.severity = e.severity
            else:
                f.severity = "info"
            break
    return violated


def violations(findings: Iterable[FindingRow]) -> list[FindingRow]:
    return [f for f in findings if f.expectation and f.expectation.startswith(VIOLATES)]


@dataclass(slots=True)
class CaseExpect:
    expect: list[Expectation]
    source: str | None = None
    summary: str | None = None
    tags: list[str] = field(default_factory=list)


def case_expectations(notes: Mapping[str, Mapping[str, Any]]) -> dict[str, CaseExpect]:
    """Case id -> its expectations and bug report, from :func:`~gatewaylens.analyze.engine.load_case_notes`."""
    out: dict[str, CaseExpect] = {}
    for cid, n in notes.items():
        expect = parse_expectations(n.get("expect"))
        source = n.get("source") if isinstance(n.get("source"), str) else None
        if expect or source:
            out[cid] = CaseExpect(expect, source, n.get("summary") if isinstance(n.get("summary"), str) else None,
                                  [t for t in n.get("tags") or [] if isinstance(t, str)])
    return out


def with_expectations(result: AnalysedExchange, cases: Mapping[str, CaseExpect]) -> bool:
    """Apply the exchange's case expectations; its counts and score follow.  True when something changed."""
    info = cases.get(result.summary.case_id)
    if info is None or not info.expect or not result.findings:
        return False
    before = [(f.severity, f.expectation) for f in result.findings]
    apply_expectations(result.findings, info.expect)
    if before == [(f.severity, f.expectation) for f in result.findings]:
        return False
    result.summary.counts = _counts(result.findings)
    result.summary.score = exchange_score(result.summary.outcome, result.findings)
    return True


# --------------------------------------------------------------------------------------------
# Reported bugs: per case and gateway, reproduced or not
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _BugCell:
    outcomes: dict[str, str] = field(default_factory=dict)  # exchange id -> outcome
    client_status: dict[str, int | None] = field(default_factory=dict)
    reproduced_on: set[str] = field(default_factory=set)  # upstream kinds
    evidence: FindingRow | None = None


def bug_status(cell: _BugCell, expects: list[Expectation]) -> tuple[BugStatus, str]:
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

    def __init__(self, cases: Mapping[str, CaseExpect]) -> None:
        self.cases = {cid: c for cid, c in cases.items() if c.source}
        self.cells: dict[tuple[str, str], _BugCell] = {}

    def add(self, result: AnalysedExchange) -> None:
        s = result.summary
        if s.case_id not in self.cases:
            return
        cell = self.cells.setdefault((s.case_id, s.gateway), _BugCell())
        cell.outcomes[s.id] = s.outcome
        cell.client_status[s.id] = s.client_status
        bad = violations(result.findings)
        if bad:
            cell.reproduced_on.add(s.upstream)
            if cell.evidence is None or _RANK[bad[0].severity] > _RANK[cell.evidence.severity]:
                cell.evidence = bad[0]

    def rows(self, gateways: list[str]) -> list[dict[str, Any]]:
        out = []
        for cid in sorted(self.cases, key=_bug_sort_key):
            c = self.cases[cid]
            cells = []
            for g in gateways:
                cell = self.cells.get((cid, g))
                status, why = bug_status(cell, c.expect) if cell is not None else ("not applicable", "not run")
                cells.append({"gateway": g, "status": status, "why": why})
            out.append({"case": cid, "source": c.source, "summary": c.summary or "", "number": bug_number(c.source),
                        "reported_against": next((t for t in c.tags if t not in ("reported-bug",)), ""),
                        "cells": cells})
        return out


def bug_number(source: str | None) -> str:
    m = re.search(r"github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", source or "")
    return f"{m.group(1)}#{m.group(2)}" if m else (source or "")


def _bug_sort_key(cid: str) -> tuple[str, int, str]:
    m = re.match(r"bug-(.+)-(\d+)$", cid)
    return (m.group(1), int(m.group(2)), cid) if m else (cid, 0, cid)


def exchange_bug(findings: Iterable[FindingRow]) -> bool:
    """The exchange reproduces its case's reported bug."""
    return bool(violations(findings))


def severity_of(findings: Iterable[FindingRow]) -> Severity:
    worst: Severity = "info"
    for f in findings:
        if _RANK[f.severity] > _RANK[worst]:
            worst = f.severity
    return worst
