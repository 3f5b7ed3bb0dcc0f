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
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gatewaylens.analyze.behaviours import counts_as_behaviour, generic, route_of, severity_rank
from gatewaylens.analyze.bugs import bug_cases, bug_number, violations
from gatewaylens.analyze.conversations import analyze_exchanges
from gatewaylens.analyze.engine import ExchangeResult, case_expectations, load_case_notes
from gatewaylens.analyze.models import (
    FIXTURE_FORMAT_VERSION,
    KNOWN_GAPS_FORMAT_VERSION,
    CheckResultFile,
    CheckTestcase,
    Fixture,
    FixtureBehaviour,
    FixtureBug,
    FixtureExample,
    FixtureOutcome,
    KnownGaps,
)
from gatewaylens.analyze.values import last_key, mask
from gatewaylens.capture.rundir import iter_exchanges, load_run
from gatewaylens.errors import InputError, validation_line

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BKey = tuple[str, str, str]  # direction, generic path, kind


def _bkey(b: FixtureBehaviour) -> _BKey:
    return (b.direction, b.path, b.kind)


def fixture_of(result: ExchangeResult, bug_source: str | None = None) -> Fixture:
    """The behaviours of an exchange analysed with ``include_kept=True`` (a warned ``kept`` is a
    behaviour; an unchanged leaf is not).  ``bug_source``: the case is a reported bug (its URL);
    the fixture then records whether this exchange reproduces it."""
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
        if f.direction == "conversation":
            leaf = "id"  # cross-turn values are ids, signatures and response ids: new every run
        folded[key] = FixtureBehaviour(
            direction=f.direction, path=gpath, kind=f.kind, severity=f.severity, to_path=generic(f.to_path),
            example=FixtureExample(path=f.path, to_path=f.to_path, before=mask(f.before, leaf),
                                   after=mask(f.after, leaf), upstream_index=f.upstream_index),
        )
    behaviours = sorted(folded.values(), key=lambda b: (b.direction, b.path, b.kind, severity_rank(b.severity)))
    return Fixture(
        gateway=s.gateway, case_id=s.case_id, dialect=s.dialect, stream=s.stream, upstream=s.upstream, variant=s.variant,
        turn=s.turn, reported_bug=_bug_of(result, bug_source), outcome=FixtureOutcome(status=s.status, outcome=s.outcome, client_status=s.client_status, upstream_calls=s.upstream_calls),
        behaviours=behaviours,
    )


def fixture_relpath(f: Fixture) -> Path:
    name = (f"{f.case_id}.{f.upstream}" + (f".{f.variant}" if f.variant else "")
            + (f".t{f.turn}" if f.turn is not None else "") + ".json")
    return Path(_SAFE.sub("_", f.gateway)) / _SAFE.sub("_", name)


def _bug_of(result: ExchangeResult, source: str | None) -> FixtureBug | None:
    if source is None or result.summary.outcome == "unsupported":
        return None
    bad = violations(result.findings)
    evidence = f"{bad[0].direction} {bad[0].path} {bad[0].kind}: {bad[0].message}" if bad else None
    return FixtureBug(source=source, reproduced=bool(bad), evidence=evidence)


def dump_fixture(f: Fixture) -> str:
    data = f.model_dump(mode="json")
    for optional in ("turn", "reported_bug"):  # absent from a plain case's fixture, as before
        if data.get(optional) is None:
            data.pop(optional, None)
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def iter_run_fixtures(run_dir: Path, warnings: list[str]) -> Any:
    run = load_run(run_dir)
    notes = load_case_notes(run_dir, run)
    bugs = bug_cases(notes)
    for result in analyze_exchanges(iter_exchanges(run_dir, warnings), include_kept=True,
                                    expects=case_expectations(notes)):
        info = bugs.get(result.summary.case_id)
        yield fixture_of(result, info.source if info else None)


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


_M = TypeVar("_M", bound=BaseModel)


def _versioned(path: Path, data: Any, field: str, supported: int, what: str, reads: str, hint: str,
               model: type[_M]) -> _M:
    """A parsed file whose ``field`` must equal ``supported``; else one line naming the file, its
    version and ours.  Then the model's validation, also in one line."""
    version = data.get(field) if isinstance(data, dict) else None
    if version != supported:
        found = f"no {field} (not a gatewaylens {what})" if version is None else f"{field} {version!r}"
        raise InputError(f"{path}: {found}; this gatewaylens reads {reads}{field} {supported}{hint}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputError(f"{path}: {validation_line(e)}") from None


def read_fixture(path: Path) -> Fixture:
    """One fixture file; an old (v1) or foreign file is one line naming it, its version and ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    return _versioned(path, data, "fixture_version", FIXTURE_FORMAT_VERSION, "fixture", "",
                      " (regenerate with: analyze fixtures RUN --out DIR)", Fixture)


def load_fixtures(fdir: Path) -> dict[tuple[str, str, str, str], tuple[Path, Fixture]]:
    if not fdir.is_dir():
        raise InputError(f"{fdir}: fixtures directory not found")
    out: dict[tuple[str, str, str, str], tuple[Path, Fixture]] = {}
    for path in sorted(fdir.rglob("*.json")):
        fx = read_fixture(path)
        out[fx.key()] = (path, fx)
    if not out:
        raise InputError(f"{fdir}: no fixture files (*.json) found")
    return out


@dataclass
class CheckResult:
    regressions: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compared: int = 0
    testcases: dict[str, list[str]] = field(default_factory=dict)
    """One entry per gateway x case x upstream[/variant] label: its REGRESSION/CHANGED/IMPROVED/KNOWN lines."""

    @property
    def unchanged(self) -> bool:
        return not (self.regressions or self.changes or self.improvements)

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def add(self, category: str, label: str, text: str) -> None:
        target = {"REGRESSION": self.regressions, "CHANGED": self.changes, "IMPROVED": self.improvements,
                  "KNOWN": self.known}[category]
        target.append(f"{label}: {text}")
        self.testcases.setdefault(label, []).append(f"{category} {label}: {text}")

    def lines(self) -> list[str]:
        return ([f"REGRESSION {r}" for r in self.regressions] + [f"CHANGED {c}" for c in self.changes]
                + [f"IMPROVED {i}" for i in self.improvements])


def exchange_label(key: tuple[str, str, str, str]) -> str:
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


def compare_fixture(old: Fixture, new: Fixture, res: CheckResult, gaps: KnownGaps | None = None) -> None:
    label = exchange_label(old.key())
    res.testcases.setdefault(label, [])
    oo, no = old.outcome, new.outcome
    if oo.outcome != no.outcome:
        res.add("REGRESSION", label, f"outcome {oo.outcome} -> {no.outcome}")
    if oo.client_status != no.client_status:
        bad = (no.client_status or 0) >= 400 or no.client_status is None
        res.add("REGRESSION" if bad else "CHANGED", label, f"client status {oo.client_status} -> {no.client_status}")
    if oo.upstream_calls != no.upstream_calls:
        res.add("CHANGED", label, f"upstream calls {oo.upstream_calls} -> {no.upstream_calls}")
    _compare_bug(old, new, label, res, gaps)
    a, b = _by_key(old), _by_key(new)
    route = route_of(new.dialect, new.upstream, new.variant)
    for k in sorted(set(a) | set(b)):
        direction, path, kind = k
        where = f"{direction} {path or '(body)'} {kind}"
        ob, nb = a.get(k), b.get(k)
        if nb is None and ob is not None:
            res.add("IMPROVED" if _serious(ob) else "CHANGED", label, f"{where} ({ob.severity}): gone")
            continue
        if ob is None and nb is not None:
            example = f" e.g. {nb.example.path}" + (f" -> {nb.example.to_path}" if nb.example.to_path else "")
            cat = "REGRESSION" if _serious(nb) else "CHANGED"
            text = f"{where}: new ({nb.severity}){example}"
        elif ob is not None and nb is not None:
            osev, nsev = severity_rank(ob.severity), severity_rank(nb.severity)
            if nsev < osev:
                cat, text = "REGRESSION", f"{where}: severity {ob.severity} -> {nb.severity}"
            elif nsev > osev:
                cat, text = "IMPROVED", f"{where}: severity {ob.severity} -> {nb.severity}"
            elif ob.to_path != nb.to_path:
                cat, text = "CHANGED", f"{where}: now -> {nb.to_path} (was -> {ob.to_path})"
            elif ob.kind in ("changed", "converted", "added") and \
                    _short([ob.example.before, ob.example.after]) != _short([nb.example.before, nb.example.after]) \
                    and ob.example.path == nb.example.path:
                cat, text = "CHANGED", f"{where}: value {_short(ob.example.after)} -> {_short(nb.example.after)}"
            else:
                continue
        else:  # pragma: no cover - k comes from a or b
            continue
        if cat == "REGRESSION" and gaps is not None and gaps.accepts(new.gateway, route, direction, path, kind):
            cat, text = "KNOWN", f"{text} (known gap)"
        res.add(cat, label, text)


def _compare_bug(old: Fixture, new: Fixture, label: str, res: CheckResult, gaps: KnownGaps | None) -> None:
    """A reported bug pinned by the fixture: fixed must stay fixed (``REGRESSION`` when it is back,
    unless the known-gaps file names it), a bug gone is an improvement."""
    ob, nb = old.reported_bug, new.reported_bug
    if ob is None or nb is None or ob.reproduced == nb.reproduced:
        return
    number = bug_number(nb.source)
    if nb.reproduced:
        text = f"reported bug {number} is reproduced again: {nb.evidence}"
        if gaps is not None and gaps.accepts_bug(new.gateway, nb.source):
            res.add("KNOWN", label, f"{text} (known gap)")
        else:
            res.add("REGRESSION", label, text)
    else:
        res.add("IMPROVED", label, f"reported bug {number} no longer reproduced")


def check_run(run_dir: Path, fixtures_dir: Path, known_gaps: Path | None = None) -> CheckResult:
    res = CheckResult()
    fixtures = load_fixtures(fixtures_dir)
    gaps = load_known_gaps(known_gaps) if known_gaps is not None else None
    return check_fixtures(iter_run_fixtures(run_dir, res.warnings), fixtures, gaps, res, known_gaps)


def check_fixtures(current: Iterable[Fixture], fixtures: dict[tuple[str, str, str, str], tuple[Path, Fixture]],
                   gaps: KnownGaps | None = None, res: CheckResult | None = None,
                   gaps_name: Path | str | None = None) -> CheckResult:
    """Compare the fixtures of a run (``fixture_of`` each exchange) with the accepted ones."""
    res = res if res is not None else CheckResult()
    seen: set[tuple[str, str, str, str]] = set()
    present: set[tuple[str, str, str, str, str]] = set()
    bugs_seen: set[tuple[str, str]] = set()
    for fx in current:
        key = fx.key()
        seen.add(key)
        if fx.reported_bug is not None and fx.reported_bug.reproduced:
            bugs_seen.add((fx.gateway, fx.reported_bug.source))
        route = route_of(fx.dialect, fx.upstream, fx.variant)
        present.update((fx.gateway, route, b.direction, b.path, b.kind) for b in fx.behaviours if _serious(b))
        if key not in fixtures:
            res.add("CHANGED", exchange_label(key), "no fixture for this exchange (new case or gateway)")
            continue
        res.compared += 1
        compare_fixture(fixtures[key][1], fx, res, gaps)
    for key, (path, _fx) in sorted(fixtures.items()):
        if key not in seen:
            res.add("REGRESSION", exchange_label(key), f"exchange missing from the run (fixture {path.name})")
    if gaps is not None:
        for g in gaps.gaps:
            if g.bug is not None:
                if not any(gw == g.gateway and g.names_bug(src) for gw, src in bugs_seen):
                    res.add("IMPROVED", f"known-gaps/{g.gateway}[{g.bug}]",
                            f"reported bug no longer reproduced (remove it from {gaps_name or 'the known-gaps file'})")
                continue
            if (g.gateway, g.route, g.direction, g.path, g.kind) not in present:
                res.add("IMPROVED", f"known-gaps/{g.gateway}[{g.route}]",
                        f"{g.direction} {g.path or '(body)'} {g.kind}: known gap no longer seen "
                        f"(remove it from {gaps_name or 'the known-gaps file'})")
    return res


def load_known_gaps(path: Path) -> KnownGaps:
    """A known-gaps file (YAML or JSON); its ``format_version`` is checked like a fixture's."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not YAML/JSON ({str(e).splitlines()[0]})") from None
    return _versioned(path, data, "format_version", KNOWN_GAPS_FORMAT_VERSION, "known-gaps file", "known-gaps ", "",
                      KnownGaps)


# ---------------------------------------------------------------------------------------------
# CI outputs: JUnit XML, Markdown summary, JSON result.
# ---------------------------------------------------------------------------------------------


def junit_xml(res: CheckResult, name: str = "gatewaylens") -> str:
    """JUnit XML (the common ``testsuites/testsuite/testcase/failure`` shape read by GitHub, GitLab,
    Jenkins): one testcase per gateway x case x upstream; a regression is a failure carrying its lines."""
    suite = ET.Element("testsuite", name=name)
    failures = 0
    for label in sorted(res.testcases):
        lines = res.testcases[label]
        gateway = label.split("/", 1)[0]
        tc = ET.SubElement(suite, "testcase", classname=f"{name}.{gateway}", name=label, time="0")
        bad = [ln for ln in lines if ln.startswith("REGRESSION")]
        if bad:
            failures += 1
            fail = ET.SubElement(tc, "failure", message=bad[0][:200], type="regression")
            fail.text = "\n".join(lines)
        elif lines:
            out = ET.SubElement(tc, "system-out")
            out.text = "\n".join(lines)
    suite.set("tests", str(len(res.testcases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    root = ET.Element("testsuites", name=name, tests=str(len(res.testcases)), failures=str(failures), errors="0")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def markdown_summary(res: CheckResult) -> str:
    verdict = "❌ regressions" if res.failed else ("✅ unchanged" if res.unchanged else "✅ no regression")
    out = [f"## gatewaylens check: {verdict}", "",
           f"{res.compared} exchange(s) compared: {len(res.regressions)} regression(s), {len(res.changes)} change(s), "
           f"{len(res.improvements)} improvement(s), {len(res.known)} known gap(s).", ""]
    for title, items in (("Regressions", res.regressions), ("Improvements", res.improvements),
                         ("Changes", res.changes), ("Known gaps (accepted)", res.known)):
        if items:
            out += [f"### {title}", ""] + [f"- `{_md(i)}`" for i in items] + [""]
    return "\n".join(out)


def result_json(res: CheckResult) -> dict[str, Any]:
    """The ``--json`` document (model :class:`CheckResultFile`)."""
    doc = CheckResultFile(ok=not res.failed, compared=res.compared, regressions=res.regressions, changes=res.changes,
                          improvements=res.improvements, known=res.known, warnings=res.warnings,
                          testcases=[CheckTestcase(name=k, lines=v) for k, v in sorted(res.testcases.items())])
    return doc.model_dump(mode="json")
