"""Case expectations applied to findings (issue 11, item 3).

A corpus case may say what a faithful gateway must do with a field or concept (``expect``, see
:class:`gatewaylens.capture.models.Expectation`).  A finding that contradicts the expectation is
escalated to the expectation's severity (``error`` unless it says otherwise); one that meets it is
downgraded to ``info``.  Either way the finding's ``expectation`` field records which expectation
decided and how (``"must_not_drop anthropic-beta (headers): violated"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from gatewaylens.analyze.models import FindingRow, Severity
from gatewaylens.analyze.paths import matches, star
from gatewaylens.capture.models import Expectation

Verdict = Literal["met", "violated"]

#: Kinds that carry the value across with its meaning (in place, elsewhere or in another form).
_CARRIED = frozenset({"kept", "renamed", "moved", "converted", "merged", "split", "reordered"})


def label(x: Expectation) -> str:
    return f"{x.must} {x.path or x.concept} ({x.direction})"


def applies(x: Expectation, f: FindingRow) -> bool:
    if x.direction != f.direction or (x.upstream is not None and x.upstream != f.upstream):
        return False
    if x.concept is not None:
        return f.concept == x.concept
    assert x.path is not None
    pattern = x.path.lower() if f.direction == "headers" else x.path
    return matches(pattern, f.path) or (f.to_path is not None and f.direction == "response" and matches(pattern, f.to_path))


def _at(x: Expectation, f: FindingRow) -> bool:
    """The finding is about the expectation's value itself, not a part inside it."""
    if x.concept is not None:
        return True
    assert x.path is not None
    return star(f.path) == x.path or (f.to_path is not None and f.direction == "response" and star(f.to_path) == x.path)


def verdict(x: Expectation, f: FindingRow, *, cross: bool) -> Verdict | Literal["rejected"] | None:
    """How finding ``f`` stands against expectation ``x`` (None: it says nothing about it).

    ``honour`` and ``convert`` are about the value as a whole: only a finding at the value itself
    can contradict them (a minor part left out inside, such as a tool's ``strict``, keeps its own
    severity).  The ``must_not_*`` expectations hold for every part of the subtree."""
    k = f.kind
    match x.must:
        case "honour":
            if k in ("dropped", "changed") and _at(x, f):
                return "violated"
            if k == "rejected":
                return "rejected"
            return "met" if k in _CARRIED else None
        case "convert":
            if (k in ("dropped", "changed") or (k == "kept" and cross)) and _at(x, f):
                return "violated"
            return "met" if k in ("renamed", "moved", "converted", "merged", "split") else None
        case "reject_ok":
            if k == "dropped":
                return "violated"
            return "met" if k == "rejected" or k in _CARRIED else None
        case "must_not_drop":
            if k == "dropped":
                return "violated"
            return "met" if k in _CARRIED else None
        case "must_not_add":
            return "violated" if k == "added" else None
        case "must_not_change":
            if k in ("changed", "dropped", "added"):
                return "violated"
            return "met" if k in _CARRIED else None
        case "may_drop":
            return "met" if k == "dropped" else None
    return None


def apply(findings: Sequence[FindingRow], expectations: Sequence[Expectation], *, cross: bool) -> None:
    """Escalate or downgrade each finding some expectation of its case judges (first one wins)."""
    if not expectations:
        return
    for f in findings:
        for x in expectations:
            if not applies(x, f):
                continue
            v = verdict(x, f, cross=cross)
            if v is None:
                continue
            new: Severity
            if v == "violated":
                new, how = x.severity, "violated"
                # The case's word replaces analyze's own guess at why it matters.
                f.message = f"{f.kind} although the case expects {x.must} {x.path or x.concept}" + (
                    f": {x.note}" if x.note else "")
            elif v == "rejected":
                new, how = "warn", "rejected (a 4xx naming it)"
            else:
                new, how = "info", "met"
            f.severity = new
            f.expectation = f"{label(x)}: {how}"
            break
