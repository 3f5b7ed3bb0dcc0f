"""Behaviours: what a gateway *does*, however many leaves and exchanges show it.

A leaf finding says what happened to one value of one exchange.  A behaviour is the set of leaf
findings that share a (gateway family, route, direction, generic path, kind, severity): "LiteLLM
drops `top_k` on chat->openai" is one behaviour seen in 4 cases and 8 exchanges, not 8 findings.
Its id is a hash of that key, so a worker process can label a finding without shared state and
the same behaviour has the same id in every run (fixtures and known-gaps files rely on that).

Two profiles of one gateway (``litellm`` and ``litellm-chat``) that behave identically on a
route share the behaviour: the key holds the family, and ``profiles`` lists the profiles seen.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gatewaylens.analyze.models import Behaviour, BehaviourExample, FindingRow, Severity

_INDEX = re.compile(r"\[\d+\]")
_SEVERITY_RANK: dict[str, int] = {"error": 0, "warn": 1, "info": 2}


def generic(path: str | None) -> str | None:
    """``messages[3].content[0].text`` -> ``messages[*].content[*].text``."""
    return None if path is None else _INDEX.sub("[*]", path)


def route_of(dialect: str, upstream: str, variant: str = "") -> str:
    return f"{dialect}->{upstream}" + (f"/{variant}" if variant else "")


def behaviour_key(f: FindingRow, family: str) -> tuple[str, ...]:
    return (family, route_of(f.dialect, f.upstream, f.variant), f.direction, generic(f.path) or "", f.kind, f.severity)


def behaviour_id(key: tuple[str, ...]) -> str:
    return "b-" + hashlib.sha1("\x1f".join(key).encode("utf-8")).hexdigest()[:12]


def counts_as_behaviour(f: FindingRow) -> bool:
    """Unchanged leaves (listed with ``--include-kept``) are not behaviours; a warned ``kept``
    (a client key forwarded verbatim) is."""
    return not (f.kind == "kept" and f.severity == "info")


def label(rows: Iterable[FindingRow], families: Mapping[str, str]) -> None:
    """Give every finding its behaviour id (in place)."""
    for f in rows:
        if counts_as_behaviour(f):
            f.behaviour = behaviour_id(behaviour_key(f, families.get(f.gateway, f.gateway)))


@dataclass(slots=True)
class _Acc:
    first: FindingRow
    family: str
    profiles: set[str] = field(default_factory=set)
    cases: dict[str, None] = field(default_factory=dict)
    exchanges: dict[str, None] = field(default_factory=dict)
    count: int = 0
    expectation: str | None = None


class BehaviourBuilder:
    """Folds labelled leaf findings into :class:`Behaviour` entries (memory grows with the number
    of distinct behaviours and the exchanges they appear in, not with the findings)."""

    def __init__(self, families: Mapping[str, str]) -> None:
        self.families = dict(families)
        self._acc: dict[str, _Acc] = {}

    def family(self, gateway: str) -> str:
        return self.families.get(gateway, gateway)

    def add(self, rows: Iterable[FindingRow]) -> None:
        for f in rows:
            if not counts_as_behaviour(f):
                continue
            fam = self.family(f.gateway)
            if not f.behaviour:
                f.behaviour = behaviour_id(behaviour_key(f, fam))
            acc = self._acc.get(f.behaviour)
            if acc is None:
                acc = self._acc[f.behaviour] = _Acc(first=f, family=fam)
            acc.profiles.add(f.gateway)
            acc.cases[f.case_id] = None
            acc.exchanges[f.exchange_id] = None
            acc.count += 1
            if f.expectation and acc.expectation is None:
                acc.expectation = f.expectation

    def finish(self) -> list[Behaviour]:
        """Sorted: gateway, severity (error first), route, direction, path."""
        out: list[Behaviour] = []
        for bid, acc in self._acc.items():
            f = acc.first
            out.append(Behaviour(
                id=bid, gateway=acc.family, profiles=sorted(acc.profiles),
                route=route_of(f.dialect, f.upstream, f.variant), dialect=f.dialect, upstream=f.upstream,
                variant=f.variant, direction=f.direction, path=generic(f.path) or "", to_path=generic(f.to_path),
                kind=f.kind, severity=f.severity, message=f.message, concept=f.concept,
                cases=list(acc.cases), exchanges=list(acc.exchanges), count=acc.count,
                example=BehaviourExample(case_id=f.case_id, exchange_id=f.exchange_id, path=f.path,
                                         to_path=f.to_path, before=f.before, after=f.after),
                expectation=acc.expectation,
            ))
        out.sort(key=sort_key)
        return out


def sort_key(b: Behaviour) -> tuple[Any, ...]:
    return (b.gateway, _SEVERITY_RANK[b.severity], b.route, b.direction, b.path, b.kind)


def severity_rank(s: Severity | str) -> int:
    return _SEVERITY_RANK.get(s, 3)
