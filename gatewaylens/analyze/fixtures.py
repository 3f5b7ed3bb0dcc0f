"""Regression fixtures: ``analyze fixtures RUN --out DIR`` and ``analyze check RUN --fixtures DIR``.

A fixture holds the *behaviours* of one (gateway, case, upstream, variant): the exchange's leaf
findings folded by (direction, generic path, kind, severity), each with its other-side path, how
many leaves show it and one masked example (ids, timestamps, ``created``, fingerprints of per-run
keys, long texts as digests), written sorted with sorted keys, so that a diff of two fixture
directories reads like a changelog of the gateway's translation.  Unchanged leaves (``kept``,
info) are not behaviours and are not stored: a field that starts being dropped shows up as a new
``dropped`` behaviour.

``check`` compares behaviours: a new error/warn behaviour or a worse severity is a REGRESSION, a
behaviour that went away or got milder an IMPROVEMENT, anything else that moved a CHANGE.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gatewaylens.analyze.behaviours import counts_as_behaviour, generic, severity_rank
from gatewaylens.analyze.engine import (
    BadInput,
    ExchangeResult,
    analyze_exchange,
    iter_exchanges,
    load_run,
    one_line_error,
)
from gatewaylens.analyze.models import (
    FIXTURE_FORMAT_VERSION,
    Fixture,
    FixtureBehaviour,
    FixtureExample,
    FixtureOutcome,
)
from gatewaylens.analyze.values import last_key, mask

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BKey = tuple[str, str, str]  # direction, generic path, kind


def _bkey(b: FixtureBehaviour) -> _BKey:
    return (b.direction, b.path, b.kind)


def fixture_of(result: ExchangeResult) -> Fixture:
    """The behaviours of an exchange analysed with ``include_kept=True`` (a warned ``kept`` is a
    behaviour; an unchanged leaf is not)."""
    s = result.summary
    folded: dict[tuple[str, str, str, str], FixtureBehaviour] = {}
    for f in result.findings:
        if not counts_as_behaviour(f):
            continue
        gpath = generic(f.path) or ""
        key = (f.direction, gpath, f.kind, f.severity)
        b = folded.get(key)
        if b is not None:
            b.count += 1
            continue
        leaf = last_key(f.to_path or f.path) if f.direction != "headers" else f.path
        folded[key] = FixtureBehaviour(
            direction=f.direction, path=gpath, kind=f.kind, severity=f.severity, to_path=generic(f.to_path),
            example=FixtureExample(path=f.path, to_path=f.to_path, before=mask(f.before, leaf),
                                   after=mask(f.after, leaf), upstream_index=f.upstream_index),
        )
    behaviours = sorted(folded.values(), key=lambda b: (b.direction, b.path, b.kind, severity_rank(b.severity)))
    return Fixture(
        gateway=s.gateway, case_id=s.case_id, dialect=s.dialect, stream=s.stream, upstream=s.upstream, variant=s.variant,
        outcome=FixtureOutcome(status=s.status, outcome=s.outcome, client_status=s.client_status, upstream_calls=s.upstream_calls),
        behaviours=behaviours,
    )


def fixture_relpath(f: Fixture) -> Path:
    name = f"{f.case_id}.{f.upstream}" + (f".{f.variant}" if f.variant else "") + ".json"
    return Path(_SAFE.sub("_", f.gateway)) / _SAFE.sub("_", name)


def dump_fixture(f: Fixture) -> str:
    return json.dumps(f.model_dump(mode="json"), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def iter_run_fixtures(run_dir: Path, warnings: list[str]) -> Any:
    load_run(run_dir)
    for ex in iter_exchanges(run_dir, warnings):
        yield fixture_of(analyze_exchange(ex, include_kept=True))


def write_fixtures(run_dir: Path, out_dir: Path) -> tuple[int, list[str]]:
    warnings: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: set[Path] = set()
    count = 0
    for fx in iter_run_fixtures(run_dir, warnings):
        rel = fixture_relpath(fx)
        if rel in seen:
            warnings.append(f"{rel}: several exchanges share this key; the last one was kept")
        seen.add(rel)
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_fixture(fx), encoding="utf-8")
        count += 1
    return count, warnings


def read_fixture(path: Path) -> Fixture:
    """One fixture file; an old (v1) or foreign file is one line naming it, its version and ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    version = data.get("fixture_version") if isinstance(data, dict) else None
    if version != FIXTURE_FORMAT_VERSION:
        found = "no fixture_version (not a gatewaylens fixture)" if version is None else f"fixture_version {version!r}"
        raise BadInput(f"{path}: {found}; this gatewaylens reads fixture_version {FIXTURE_FORMAT_VERSION} "
                       "(regenerate with: analyze fixtures RUN --out DIR)")
    try:
        return Fixture.model_validate(data)
    except ValidationError as e:
        raise BadInput(f"{path}: {one_line_error(e)}") from None


def load_fixtures(fdir: Path) -> dict[tuple[str, str, str, str], tuple[Path, Fixture]]:
    if not fdir.is_dir():
        raise BadInput(f"{fdir}: fixtures directory not found")
    out: dict[tuple[str, str, str, str], tuple[Path, Fixture]] = {}
    for path in sorted(fdir.rglob("*.json")):
        fx = read_fixture(path)
        out[fx.key()] = (path, fx)
    if not out:
        raise BadInput(f"{fdir}: no fixture files (*.json) found")
    return out


@dataclass
class CheckResult:
    regressions: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compared: int = 0

    @property
    def unchanged(self) -> bool:
        return not (self.regressions or self.changes or self.improvements)

    def lines(self) -> list[str]:
        return ([f"REGRESSION {r}" for r in self.regressions] + [f"CHANGED {c}" for c in self.changes]
                + [f"IMPROVED {i}" for i in self.improvements])


def _label(key: tuple[str, str, str, str]) -> str:
    g, c, u, v = key
    return f"{g}/{c}[{u}{'/' + v if v else ''}]"


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:59] + "…"


def _by_key(fx: Fixture) -> dict[_BKey, FixtureBehaviour]:
    """One entry per (direction, path, kind): the worst severity when several (rare) share it."""
    out: dict[_BKey, FixtureBehaviour] = {}
    for b in fx.behaviours:
        k = _bkey(b)
        if k not in out or severity_rank(b.severity) < severity_rank(out[k].severity):
            out[k] = b
    return out


def _serious(b: FixtureBehaviour) -> bool:
    return b.severity in ("error", "warn")


def compare_fixture(old: Fixture, new: Fixture, res: CheckResult) -> None:
    label = _label(old.key())
    oo, no = old.outcome, new.outcome
    if oo.outcome != no.outcome:
        res.regressions.append(f"{label}: outcome {oo.outcome} -> {no.outcome}")
    if oo.client_status != no.client_status:
        target = res.regressions if (no.client_status or 0) >= 400 or no.client_status is None else res.changes
        target.append(f"{label}: client status {oo.client_status} -> {no.client_status}")
    if oo.upstream_calls != no.upstream_calls:
        res.changes.append(f"{label}: upstream calls {oo.upstream_calls} -> {no.upstream_calls}")
    a, b = _by_key(old), _by_key(new)
    for k in sorted(set(a) | set(b)):
        direction, path, kind = k
        where = f"{label}: {direction} {path or '(body)'} {kind}"
        ob, nb = a.get(k), b.get(k)
        if nb is None and ob is not None:
            (res.improvements if _serious(ob) else res.changes).append(f"{where} ({ob.severity}): gone")
        elif ob is None and nb is not None:
            example = f" e.g. {nb.example.path}" + (f" -> {nb.example.to_path}" if nb.example.to_path else "")
            (res.regressions if _serious(nb) else res.changes).append(f"{where}: new ({nb.severity}){example}")
        elif ob is not None and nb is not None:
            osev, nsev = severity_rank(ob.severity), severity_rank(nb.severity)
            if nsev < osev:
                res.regressions.append(f"{where}: severity {ob.severity} -> {nb.severity}")
            elif nsev > osev:
                res.improvements.append(f"{where}: severity {ob.severity} -> {nb.severity}")
            elif ob.to_path != nb.to_path:
                res.changes.append(f"{where}: now -> {nb.to_path} (was -> {ob.to_path})")
            elif ob.kind in ("changed", "converted", "added") and \
                    _short([ob.example.before, ob.example.after]) != _short([nb.example.before, nb.example.after]) \
                    and ob.example.path == nb.example.path:
                res.changes.append(f"{where}: value {_short(ob.example.after)} -> {_short(nb.example.after)}")


def check_run(run_dir: Path, fixtures_dir: Path) -> CheckResult:
    fixtures = load_fixtures(fixtures_dir)
    res = CheckResult()
    seen: set[tuple[str, str, str, str]] = set()
    for fx in iter_run_fixtures(run_dir, res.warnings):
        key = fx.key()
        seen.add(key)
        if key not in fixtures:
            res.changes.append(f"{_label(key)}: no fixture for this exchange (new case or gateway)")
            continue
        res.compared += 1
        compare_fixture(fixtures[key][1], fx, res)
    for key, (path, _fx) in sorted(fixtures.items()):
        if key not in seen:
            res.regressions.append(f"{_label(key)}: exchange missing from the run (fixture {path.name})")
    return res
