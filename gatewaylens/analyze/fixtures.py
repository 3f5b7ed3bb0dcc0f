"""Regression fixtures: ``analyze fixtures RUN --out DIR`` and ``analyze check RUN --fixtures DIR``.

A fixture is the full translation map of one (gateway, case, upstream, variant), ``kept`` entries
included, with volatile values (ids, timestamps, ``created``, fingerprints of per-run keys, long
texts as digests) masked, written with sorted keys so that a diff of two fixture directories reads
like a changelog of the gateway's translation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gatewaylens.analyze.engine import (
    BadInput,
    ExchangeResult,
    analyze_exchange,
    iter_exchanges,
    load_run,
    one_line_error,
)
from gatewaylens.analyze.models import Fixture, FixtureEntry, FixtureOutcome
from gatewaylens.analyze.values import last_key, mask

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SEV_RANK = {"info": 0, "warn": 1, "error": 2}


def fixture_of(result: ExchangeResult) -> Fixture:
    """The masked translation map of an exchange analysed with ``include_kept=True``."""
    s = result.summary
    entries = []
    for f in result.findings:
        key = last_key(f.to_path or f.path) if f.direction != "headers" else f.path
        before = mask(f.before, key)
        after = mask(f.after, key)
        if f.kind == "kept" and after == before:
            after = None
        entries.append(FixtureEntry(direction=f.direction, kind=f.kind, path=f.path, to_path=f.to_path,
                                    before=before, after=after, severity=f.severity, upstream_index=f.upstream_index))
    entries.sort(key=lambda e: (e.direction, e.path, -1 if e.upstream_index is None else e.upstream_index, e.kind,
                                e.to_path or "", json.dumps(e.before, sort_keys=True), json.dumps(e.after, sort_keys=True)))
    return Fixture(
        gateway=s.gateway, case_id=s.case_id, dialect=s.dialect, stream=s.stream, upstream=s.upstream, variant=s.variant,
        outcome=FixtureOutcome(status=s.status, outcome=s.outcome, client_status=s.client_status, upstream_calls=s.upstream_calls),
        translation=entries,
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


def load_fixtures(fdir: Path) -> dict[tuple[str, str, str, str], tuple[Path, Fixture]]:
    if not fdir.is_dir():
        raise BadInput(f"{fdir}: fixtures directory not found")
    out: dict[tuple[str, str, str, str], tuple[Path, Fixture]] = {}
    for path in sorted(fdir.rglob("*.json")):
        try:
            fx = Fixture.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as e:
            raise BadInput(f"{path}: {one_line_error(e)}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(f"{path}: cannot read ({e})") from None
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


_Slot = tuple[str, str, int]


def _slots(fx: Fixture) -> dict[_Slot, list[FixtureEntry]]:
    out: dict[_Slot, list[FixtureEntry]] = {}
    for e in fx.translation:
        out.setdefault((e.direction, e.path, -1 if e.upstream_index is None else e.upstream_index), []).append(e)
    return out


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:59] + "…"


def _stream_name(path: str) -> str | None:
    return {"usage": "stream usage", "text": "stream text", "terminal": "stream terminal marker",
            "finish_reason": "stream finish reason", "tool_arguments": "stream tool arguments"}.get(path)


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
    a, b = _slots(old), _slots(new)
    for slot in sorted(set(a) | set(b)):
        direction, path, _ = slot
        where = f"{label}: {direction} {path}"
        name = _stream_name(path) if direction == "stream" else None
        olds, news = a.get(slot, []), b.get(slot, [])
        okinds = {e.kind for e in olds}
        nkinds = {e.kind for e in news}
        if not news:
            if okinds & {"dropped", "rejected"} or all(e.severity != "info" for e in olds):
                res.improvements.append(f"{where}: no longer {'/'.join(sorted(okinds))}")
            else:
                res.changes.append(f"{where}: gone from the translation map (was {'/'.join(sorted(okinds))})")
            continue
        if not olds:
            worst = max(news, key=lambda e: _SEV_RANK[e.severity])
            if nkinds & {"dropped", "rejected"}:
                res.regressions.append(f"{where}: new {'drop' if 'dropped' in nkinds else 'rejection'}"
                                       + (f" ({name} lost)" if name and "dropped" in nkinds else ""))
            elif worst.severity != "info":
                res.regressions.append(f"{where}: new {worst.kind} ({worst.severity})")
            else:
                res.changes.append(f"{where}: new {'/'.join(sorted(nkinds))}")
            continue
        if okinds != nkinds:
            if "dropped" in nkinds and "dropped" not in okinds:
                what = f"{name} lost" if name else "new drop"
                res.regressions.append(f"{where}: {what} (was {'/'.join(sorted(okinds))})")
            elif "rejected" in nkinds and "rejected" not in okinds:
                res.regressions.append(f"{where}: newly rejected (was {'/'.join(sorted(okinds))})")
            elif okinds & {"dropped", "rejected"} and not nkinds & {"dropped", "rejected"}:
                res.improvements.append(f"{where}: {'/'.join(sorted(okinds))} -> {'/'.join(sorted(nkinds))}")
            else:
                res.changes.append(f"{where}: {'/'.join(sorted(okinds))} -> {'/'.join(sorted(nkinds))}")
            continue
        old_to = sorted(e.to_path or "" for e in olds)
        new_to = sorted(e.to_path or "" for e in news)
        if old_to != new_to:
            res.regressions.append(f"{where}: rename changed: -> {', '.join(old_to)} now -> {', '.join(new_to)}")
            continue
        old_vals = sorted(_short([e.before, e.after]) for e in olds)
        new_vals = sorted(_short([e.before, e.after]) for e in news)
        if old_vals != new_vals:
            target = res.regressions if name else res.changes
            target.append(f"{where}: value changed: {old_vals[0]} -> {new_vals[0]}")
            continue
        osev = max(_SEV_RANK[e.severity] for e in olds)
        nsev = max(_SEV_RANK[e.severity] for e in news)
        if nsev > osev:
            res.regressions.append(f"{where}: severity rose to {max(news, key=lambda e: _SEV_RANK[e.severity]).severity}")
        elif nsev < osev:
            res.improvements.append(f"{where}: severity fell")


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
