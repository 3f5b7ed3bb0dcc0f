"""Aggregation of a run's analysis into the Markdown report (jinja2 templates in ``templates/``).

Everything here is bounded by the number of distinct (case, gateway, path) keys, not by the number
of exchanges, so analysing 100k exchanges takes no more memory than analysing 1k of the same cases.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jinja2

from gatewaylens.analyze.engine import ERROR_WEIGHT, REJECTED_SCORE, WARN_WEIGHT, AnalysedExchange
from gatewaylens.analyze.models import (
    KINDS,
    Behaviour,
    FindingRow,
    GatewayScore,
    StreamSummary,
    Verdict,
)
from gatewaylens.analyze.values import excerpt, mask, md_cell, pretty_json
from gatewaylens.capture.models import RunInfo

MAX_ROWS_PER_TABLE = 80
_SEV_ORDER = {"error": 0, "warn": 1, "info": 2}
_KIND_ORDER = {k: i for i, k in enumerate(("dropped", "rejected", "changed", "renamed", "moved", "added", "kept"))}

FIDELITY_DEFINITION = (
    f"Fidelity (0-100) is the mean of per-exchange scores over a gateway's exchanges (unsupported routes "
    f"excluded). A translated exchange scores 100 - {ERROR_WEIGHT} x error findings - {WARN_WEIGHT} x warn "
    f"findings (distinct direction+path+kind, a retried upstream call counted once; info findings are free), "
    f"floored at 0. A request the gateway refused with a 4xx naming a client field, without calling the "
    f"upstream, scores {REJECTED_SCORE:g} (an honest refusal beats a silent loss); any other exchange without "
    f"an upstream call, or one that could not be captured, scores 0."
)


def finding_key(f: FindingRow) -> tuple[str, ...]:
    """Identity of a finding across runs: volatile values masked, exchange ids left out."""
    return (f.gateway, f.case_id, f.upstream, f.variant, f.direction, f.kind, f.path, f.to_path or "",
            json.dumps(mask(f.before), sort_keys=True, ensure_ascii=False)[:200],
            json.dumps(mask(f.after), sort_keys=True, ensure_ascii=False)[:200])


@dataclass
class _Row:
    direction: str
    kind: str
    path: str
    to_path: str | None
    severity: str
    before: Any
    after: Any
    message: str
    count: int = 0
    upstreams: set[str] = field(default_factory=set)


@dataclass
class _Cell:
    score_sum: float = 0.0
    scored: int = 0
    exchanges: int = 0
    errors: int = 0
    warns: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class _StreamAgg:
    first: StreamSummary
    exchanges: int = 0
    text_equal: int = 0
    usage_equal: int = 0
    terminal: int = 0


class Aggregator:
    """Collects what the report shows, one exchange at a time."""

    def __init__(self, *, track_keys: bool = False) -> None:
        self.scores: dict[str, GatewayScore] = {}
        self._score_sum: dict[str, float] = {}
        self._score_n: Counter[str] = Counter()
        self.cells: dict[tuple[str, str], _Cell] = {}
        #: the same, per upstream kind: the matrix splits a cell when the two kinds fared differently
        self.up_cells: dict[tuple[str, str, str], _Cell] = {}
        self.cases: dict[str, tuple[str, bool]] = {}
        self.tables: dict[tuple[str, str], dict[tuple[Any, ...], _Row]] = {}
        self.overflow: Counter[tuple[str, str]] = Counter()
        self.streams: dict[tuple[str, str, str], _StreamAgg] = {}
        self.support: dict[str, dict[str, dict[str, Counter[tuple[str, str]]]]] = {}
        self.track_keys = track_keys
        self.keys: set[tuple[str, ...]] = set()
        self.exchanges = 0
        self.case_rows: dict[str, list[str]] = {}
        self.unsupported: Counter[tuple[str, str, str, str]] = Counter()
        self._filled = False

    def fill_unsupported(self) -> None:
        """Give unsupported routes their "not supported" cells (once, at the end)."""
        if self._filled:
            return
        self._filled = True
        for (dialect, case, gateway, upstream), n in self.unsupported.items():
            rows = self.support.setdefault(dialect, {})
            for row_name in self.case_rows.get(case, []):
                rows.setdefault(row_name, {}).setdefault(gateway, Counter())[(upstream, "not supported")] += n

    def gateways(self) -> list[str]:
        return sorted(self.scores)

    def add(self, result: AnalysedExchange) -> None:
        s = result.summary
        self.exchanges += 1
        self.cases.setdefault(s.case_id, (s.dialect, s.stream))
        gs = self.scores.get(s.gateway)
        if gs is None:
            gs = self.scores[s.gateway] = GatewayScore(gateway=s.gateway)
        gs.exchanges += 1
        if s.outcome == "unsupported":
            gs.unsupported += 1
        elif s.outcome == "capture_error":
            gs.capture_errors += 1
        elif s.outcome == "rejected":
            gs.rejected += 1
        elif s.outcome == "no_upstream_call":
            gs.no_upstream_call += 1
        else:
            gs.translated += 1
        if s.client_status is not None and not 200 <= s.client_status < 300:
            gs.client_non_2xx += 1
        cell = self.cells.setdefault((s.case_id, s.gateway), _Cell())
        up_cell = self.up_cells.setdefault((s.case_id, s.gateway, s.upstream), _Cell())
        if s.score is not None:
            self._score_sum[s.gateway] = self._score_sum.get(s.gateway, 0.0) + s.score
            self._score_n[s.gateway] += 1
        for c in (cell, up_cell):
            c.exchanges += 1
            c.outcomes[s.outcome] += 1
            if s.score is not None:
                c.score_sum += s.score
                c.scored += 1
        table = self.tables.setdefault((s.case_id, s.gateway), {})
        for f in result.findings:
            if f.kind != "kept" or f.severity != "info":
                gs.findings[f.kind] = gs.findings.get(f.kind, 0) + 1
                gs.severities[f.severity] = gs.severities.get(f.severity, 0) + 1
                if f.severity == "error":
                    cell.errors += 1
                    up_cell.errors += 1
                elif f.severity == "warn":
                    cell.warns += 1
                    up_cell.warns += 1
            if f.kind == "kept" and f.severity == "info":
                continue
            key = (f.direction, f.kind, f.path, f.to_path, f.severity)
            row = table.get(key)
            if row is None:
                if len(table) >= MAX_ROWS_PER_TABLE:
                    self.overflow[(s.case_id, s.gateway)] += 1
                else:
                    row = table[key] = _Row(f.direction, f.kind, f.path, f.to_path, f.severity, f.before, f.after, f.message)
            if row is not None:
                row.count += 1
                row.upstreams.add(s.upstream)
            if self.track_keys:
                self.keys.add(finding_key(f))
        if s.stream_summary is not None:
            sk = (s.case_id, s.gateway, s.upstream)
            agg = self.streams.get(sk)
            if agg is None:
                agg = self.streams[sk] = _StreamAgg(first=s.stream_summary)
            agg.exchanges += 1
            agg.text_equal += s.stream_summary.text_equal
            agg.usage_equal += s.stream_summary.usage_equal
            agg.terminal += s.stream_summary.terminal
        dialect_rows = self.support.setdefault(s.dialect, {})
        if s.outcome == "unsupported":
            # Its rows are the case's fields, known from any gateway that did take the request.
            self.unsupported[(s.dialect, s.case_id, s.gateway, s.upstream)] += 1
        elif result.fields and s.case_id not in self.case_rows:
            self.case_rows[s.case_id] = list(result.fields)
        for row_name, status in result.fields.items():
            per_gateway = dialect_rows.get(row_name)
            if per_gateway is None:
                per_gateway = dialect_rows[row_name] = {}
            counter = per_gateway.get(s.gateway)
            if counter is None:
                counter = per_gateway[s.gateway] = Counter()
            counter[(s.upstream, status)] += 1

    def finish_scores(self) -> list[GatewayScore]:
        out = []
        for g in self.gateways():
            gs = self.scores[g]
            n = self._score_n[g]
            gs.fidelity = round(self._score_sum.get(g, 0.0) / n, 1) if n else None
            gs.findings = dict(sorted(gs.findings.items(), key=lambda kv: KINDS.index(kv[0])))
            gs.severities = dict(sorted(gs.severities.items()))
            out.append(gs)
        return out


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gatewaylens.analyze", "templates"),
        autoescape=False,  # Markdown, not HTML: cells are escaped by the `cell` filter instead.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = md_cell
    env.filters["excerpt"] = excerpt
    env.filters["tojson_pretty"] = pretty_json
    env.filters["tojson_indent"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    env.filters["anchor"] = github_anchor
    return env


def github_anchor(heading: str) -> str:
    """The anchor GitHub derives from a heading: lower case, spaces to '-', punctuation dropped."""
    out = []
    for ch in heading.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def _cell_text(cell: _Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.outcomes.get("unsupported", 0) == cell.exchanges:
        return "not supported"
    score = f"{cell.score_sum / cell.scored:.0f}" if cell.scored else "—"
    parts = [score]
    flags = []
    if cell.errors:
        flags.append(f"{cell.errors}E")
    if cell.warns:
        flags.append(f"{cell.warns}W")
    for outcome, label in (("rejected", "rejected"), ("no_upstream_call", "no upstream call"), ("capture_error", "capture error")):
        if cell.outcomes.get(outcome):
            flags.append(label)
    if flags:
        parts.append(f"({', '.join(flags)})")
    return " ".join(parts)


def _matrix_cell(agg: Aggregator, case: str, gateway: str) -> str:
    """One cell of the cases x gateways matrix, split by upstream kind when the kinds differ."""
    texts = {u: _cell_text(agg.up_cells.get((case, gateway, u))) for u in ("openai", "anthropic")
             if (case, gateway, u) in agg.up_cells}
    if len(set(texts.values())) > 1:
        return " · ".join(f"{u}: {t}" for u, t in texts.items())
    return _cell_text(agg.cells.get((case, gateway)))


def _support_cell(counter: Counter[tuple[str, str]] | None) -> str:
    if not counter:
        return "—"
    by_upstream: dict[str, Counter[str]] = {}
    for (upstream, status), n in counter.items():
        by_upstream.setdefault(upstream, Counter())[status] += n

    def fmt(c: Counter[str]) -> str:
        items = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(items) == 1:
            return items[0][0]
        return "; ".join(f"{s} ×{n}" for s, n in items[:3]) + (" …" if len(items) > 3 else "")

    texts = {u: fmt(c) for u, c in sorted(by_upstream.items())}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{u}: {t}" for u, t in texts.items())


def _quiet(row: Any) -> bool:
    """An informational finding counted in a case table rather than listed: anything off the
    request side, and list items that only shifted because an item before them moved away."""
    if row.severity != "info":
        return False
    return bool(row.direction != "request" or (row.kind == "moved" and row.message.startswith("list position shifted")))


def render_report(agg: Aggregator, run: RunInfo, *, notes: dict[str, dict[str, Any]],
                  verdicts: dict[str, list[Verdict]], verdict_errors: list[str],
                  baseline: dict[str, Any] | None, warnings: list[str], include_kept: bool,
                  behaviours: list[Behaviour] | None = None) -> str:
    scores = agg.finish_scores()
    by_gateway: dict[str, list[Behaviour]] = {}
    for b in behaviours or ():
        listed = by_gateway.setdefault(b.gateway, [])
        if b.severity != "info":
            listed.append(b)
    agg.fill_unsupported()
    gateways = agg.gateways()
    cases = sorted(agg.cases)
    matrix = [{"case": c, "cells": [_matrix_cell(agg, c, g) for g in gateways]} for c in cases]
    case_sections = []
    for c in cases:
        dialect, stream = agg.cases[c]
        tables = []
        for g in gateways:
            rows = sorted(agg.tables.get((c, g), {}).values(),
                          key=lambda r: (_SEV_ORDER[r.severity], _KIND_ORDER.get(r.kind, 9), r.direction, r.path))
            cell = agg.cells.get((c, g))
            if cell is None:
                continue
            # Harmless omissions (explicit nulls, defaults, fields the other dialect has no place for):
            # one line, not one row each.
            omitted = [r for r in rows if r.kind == "dropped" and r.severity == "info"]
            rows = [r for r in rows if r not in omitted]
            # Informational findings off the request side (faithful usage/finish-reason renames,
            # fields the gateway added on the way back, credential swaps) are counted, not listed:
            # they are in findings.json and the case's prompt, and listing each made the report
            # several megabytes.  Every warning and error, and the request's whole map, stay rows.
            quiet = [r for r in rows if _quiet(r)]
            rows = [r for r in rows if not _quiet(r)]
            quiet_counts = Counter(f"{r.direction} {r.kind}" for r in quiet)
            tables.append({"gateway": g, "summary": _cell_text(cell), "rows": rows,
                           "quiet": sorted(quiet_counts.items()),
                           "omitted": sorted({f"{r.direction} {r.path}" for r in omitted}),
                           "overflow": agg.overflow.get((c, g), 0),
                           "outcomes": dict(cell.outcomes)})
        streams = [{"gateway": g, "upstream": u, "agg": a} for (cc, g, u), a in sorted(agg.streams.items()) if cc == c]
        case_sections.append({"id": c, "dialect": dialect, "stream": stream, "note": notes.get(c, {}).get("note", ""),
                              "tables": tables, "streams": streams, "verdicts": verdicts.get(c, [])})
    support = []
    for dialect in sorted(agg.support):
        field_rows = agg.support[dialect]
        support.append({"dialect": dialect, "rows": [
            {"field": name, "cells": [_support_cell(field_rows[name].get(g)) for g in gateways]}
            for name in sorted(field_rows)]})
    tpl = environment().get_template("report.md.j2")
    return tpl.render(
        run=run, scores=scores, gateways=gateways, matrix=matrix, cases=case_sections, support=support,
        fidelity_definition=FIDELITY_DEFINITION, baseline=baseline, verdict_errors=verdict_errors,
        warnings=warnings, include_kept=include_kept, exchanges=agg.exchanges,
        verdict_count=sum(len(v) for v in verdicts.values()), behaviours_by_gateway=sorted(by_gateway.items()),
    )


def baseline_diff(current: set[tuple[str, ...]], previous: set[tuple[str, ...]], *, limit: int = 40) -> dict[str, Any]:
    """Findings that appeared or disappeared, grouped per gateway and case."""
    appeared = current - previous
    gone = previous - current
    groups: dict[tuple[str, str], dict[str, list[tuple[str, ...]]]] = {}
    for k in appeared:
        groups.setdefault((k[0], k[1]), {"appeared": [], "disappeared": []})["appeared"].append(k)
    for k in gone:
        groups.setdefault((k[0], k[1]), {"appeared": [], "disappeared": []})["disappeared"].append(k)
    sections = []
    for (g, c), d in sorted(groups.items()):
        def rows(keys: list[tuple[str, ...]]) -> list[dict[str, str]]:
            return [{"upstream": k[2], "direction": k[4], "kind": k[5], "path": k[6], "to_path": k[7],
                     "before": k[8], "after": k[9]} for k in sorted(keys)[:limit]]
        sections.append({"gateway": g, "case": c, "appeared": rows(d["appeared"]), "disappeared": rows(d["disappeared"]),
                         "more": max(0, len(d["appeared"]) - limit) + max(0, len(d["disappeared"]) - limit)})
    return {"appeared": len(appeared), "disappeared": len(gone), "sections": sections}
