"""Aggregation of a run's analysis into the Markdown report (jinja2 templates in ``templates/``).

Everything here is bounded by the number of distinct (case, gateway, path) keys, not by the number
of exchanges, so analysing 100k exchanges takes no more memory than analysing 1k of the same cases.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jinja2

from gatewaylens.analyze.bugs import BugBoard
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


_INDEX = re.compile(r"\[\d+\]")


def support_status(kind: str, severity: str, to_path: str | None) -> str:
    """A support-matrix cell word for one finding: its kind, the place a renamed/moved value
    went, and its severity when it is not informational."""
    text = kind
    if kind in ("renamed", "moved", "converted") and to_path:
        text = f"{kind} to {to_path}"
    if severity != "info":
        text += f" ({severity})"
    return text


def _status_rank(status: str) -> int:
    return 0 if "(error)" in status else 1 if "(warn)" in status else 2


def _propagate_parent_drops(fields: dict[str, str], findings: list[FindingRow]) -> dict[str, str]:
    """A field whose parent object was dropped is dropped too (the engine's rows look only at the
    field's own path and its children, so ``thinking.budget_tokens`` read "kept" when
    ``thinking`` was dropped whole)."""
    if not fields:
        return fields
    drops = [f for f in findings if f.direction == "request" and f.kind == "dropped" and (f.upstream_index or 0) == 0]
    if not drops:
        return fields
    out = dict(fields)
    for row, status in fields.items():
        if status != "kept" and not status.startswith("omitted"):
            continue
        for f in drops:
            if row != f.path and (row.startswith(f.path + ".") or row.startswith(f.path + "[")):
                out[row] = f"dropped with its parent {f.path}" + (f" ({f.severity})" if f.severity != "info" else "")
                break
    return out


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
class _RouteAgg:
    first_id: str
    exchanges: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    score_sum: float = 0.0
    scored: int = 0


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
        #: the answer side of the support matrix: (dialect, direction) -> row -> gateway -> (upstream, status)
        self.support_out: dict[tuple[str, str], dict[str, dict[str, Counter[tuple[str, str]]]]] = {}
        #: per (case, gateway, upstream, variant): exchanges, outcomes, client statuses, first exchange id
        self.routes: dict[tuple[str, str, str, str], _RouteAgg] = {}
        #: dialects each gateway answered (a support cell without findings reads "kept" only there)
        self.answered: set[tuple[str, str]] = set()
        #: conversation cases: (case, gateway, upstream, variant) -> one entry per turn, in file order
        self.conversations: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
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
        rk = (s.case_id, s.gateway, s.upstream, s.variant)
        route = self.routes.get(rk)
        if route is None:
            route = self.routes[rk] = _RouteAgg(first_id=s.id)
        route.exchanges += 1
        route.outcomes[s.outcome] += 1
        route.statuses[str(s.client_status) if s.client_status is not None else "none"] += 1
        if s.score is not None:
            route.score_sum += s.score
            route.scored += 1
        if s.outcome in ("translated", "rejected"):
            self.answered.add((s.dialect, s.gateway))
        if s.turn is not None:
            self._add_turn(result)
        self._add_answer_support(result)
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
        for row_name, status in _propagate_parent_drops(result.fields, result.findings).items():
            per_gateway = dialect_rows.get(row_name)
            if per_gateway is None:
                per_gateway = dialect_rows[row_name] = {}
            counter = per_gateway.get(s.gateway)
            if counter is None:
                counter = per_gateway[s.gateway] = Counter()
            counter[(s.upstream, status)] += 1

    def _add_turn(self, result: AnalysedExchange) -> None:
        """One turn of a conversation: its outcome and its cross-turn findings (the report links the
        turns of each conversation in order)."""
        s = result.summary
        cross = [{"severity": f.severity, "kind": f.kind, "path": f.path, "message": f.message}
                 for f in result.findings if f.direction == "conversation" and not (f.kind == "kept" and f.severity == "info")]
        cross.sort(key=lambda f: _SEV_ORDER[f["severity"]])
        self.conversations.setdefault((s.case_id, s.gateway, s.upstream, s.variant), []).append({
            "turn": s.turn, "turns": s.turns, "id": s.id, "outcome": s.outcome, "status": s.client_status,
            "score": s.score, "error": s.error, "cross": cross})

    def conversation_rows(self, gateway: str | None = None, case: str | None = None) -> list[dict[str, Any]]:
        """Per conversation (case x gateway x upstream [x variant]): its turns in order, how many were
        sent, and the worst cross-turn finding."""
        out = []
        for (c, g, u, v), turns in sorted(self.conversations.items()):
            if (gateway is not None and g != gateway) or (case is not None and c != case):
                continue
            turns = sorted(turns, key=lambda t: t["turn"] or 0)
            cross = [f for t in turns for f in t["cross"]]
            worst = min(cross, key=lambda f: _SEV_ORDER[f["severity"]]) if cross else None
            out.append({"case": c, "gateway": g, "upstream": u, "variant": v, "turns": turns,
                        "total": max((t["turns"] or 0) for t in turns),
                        "sent": sum(1 for t in turns if t["outcome"] != "unsupported"),
                        "errors": sum(1 for f in cross if f["severity"] == "error"),
                        "warns": sum(1 for f in cross if f["severity"] == "warn"), "worst": worst})
        return out

    def _add_answer_support(self, result: AnalysedExchange) -> None:
        """Rows of the support matrix off the request side: each response, stream and header
        path a finding names (generic, list indexes as ``[*]``), once per exchange."""
        s = result.summary
        seen: dict[tuple[str, str], str] = {}
        for f in result.findings:
            if f.direction not in ("response", "stream", "headers") or (f.kind == "kept" and f.severity == "info"):
                continue
            row = _INDEX.sub("[*]", f.path)
            status = support_status(f.kind, f.severity, _INDEX.sub("[*]", f.to_path) if f.to_path else None)
            key = (f.direction, row)
            prev = seen.get(key)
            if prev is None or _status_rank(status) < _status_rank(prev):
                seen[key] = status
        for (direction, row), status in seen.items():
            rows = self.support_out.setdefault((s.dialect, direction), {})
            rows.setdefault(row, {}).setdefault(s.gateway, Counter())[(s.upstream, status)] += 1

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


UPSTREAMS = ("openai", "anthropic")
#: Behaviours listed per gateway on the report's first screen; the rest are in report/<gateway>.md.
FIRST_SCREEN_BEHAVIOURS = 25


def _matrix_cell(agg: Aggregator, case: str, gateway: str) -> str:
    """One cell of a per-gateway case summary, split by upstream kind when the kinds differ
    (two kinds are never averaged into one score)."""
    texts = {u: _cell_text(agg.up_cells.get((case, gateway, u))) for u in UPSTREAMS
             if (case, gateway, u) in agg.up_cells}
    if len(texts) == 1:
        return next(iter(texts.values()))
    return " · ".join(f"{u}: {t}" for u, t in texts.items()) if texts else "—"


def _support_cell(counter: Counter[tuple[str, str]] | None, *, empty: str = "—") -> str:
    """Every status a gateway showed for a field, with exchange counts when there are several,
    per upstream kind when the kinds differ; never cut."""
    if not counter:
        return empty
    by_upstream: dict[str, Counter[str]] = {}
    for (upstream, status), n in counter.items():
        by_upstream.setdefault(upstream, Counter())[status] += n

    def fmt(c: Counter[str]) -> str:
        items = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(items) == 1:
            return items[0][0]
        return "; ".join(f"{s} ×{n}" for s, n in items)

    texts = {u: fmt(c) for u, c in sorted(by_upstream.items(), key=lambda kv: UPSTREAMS.index(kv[0])
                                          if kv[0] in UPSTREAMS else 9)}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{u}: {t}" for u, t in texts.items())


def _quiet(row: Any) -> bool:
    """An informational finding counted in a case table rather than listed: anything off the
    request side, and list items that only shifted because an item before them moved away."""
    if row.severity != "info":
        return False
    return bool(row.direction != "request" or (row.kind == "moved" and row.message.startswith("list position shifted")))


def gateway_file(gateway: str) -> str:
    """``report/<gateway>.md`` (the name made safe for a file system)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", gateway).strip("._") or "gateway"
    return f"report/{safe}.md"


@dataclass
class BehaviourGroup:
    """Behaviours of one gateway that differ only by route, shown as one first-screen line."""

    severity: str
    direction: str
    path: str
    to_path: str | None
    kind: str
    message: str
    routes: dict[str, set[str]] = field(default_factory=dict)
    cases: set[str] = field(default_factory=set)
    count: int = 0

    def route_text(self) -> str:
        """``chat->openai (3 variants), messages->anthropic``."""
        parts = []
        for route, variants in self.routes.items():
            named = variants - {""}
            parts.append(route + (f" ({len(variants)} variants)" if named and len(variants) > 1
                                  else f" /{next(iter(named))}" if named else ""))
        return ", ".join(parts)


def group_behaviours(behaviours: list[Behaviour]) -> list[BehaviourGroup]:
    """Fold the routes of one (severity, side, generic path, kind) together: error first, then
    the behaviours seen in most cases."""
    groups: dict[tuple[str, ...], BehaviourGroup] = {}
    for b in behaviours:
        key = (b.severity, b.direction, b.path, b.to_path or "", b.kind)
        g = groups.get(key)
        if g is None:
            g = groups[key] = BehaviourGroup(b.severity, b.direction, b.path, b.to_path, b.kind, b.message)
        g.routes.setdefault(f"{b.dialect}->{b.upstream}", set()).add(b.variant)
        g.cases.update(b.cases)
        g.count += b.count
    out = list(groups.values())
    out.sort(key=lambda g: (_SEV_ORDER[g.severity], -len(g.cases), g.direction, g.path, g.kind))
    return out


def _support_sections(agg: Aggregator, gateways: list[str]) -> list[dict[str, Any]]:
    """The support matrix, one table per client dialect and side; rows where every gateway kept
    the field are named in one line instead of a row each."""
    sections = []
    dialects = sorted(set(agg.support) | {d for d, _ in agg.support_out})
    for dialect in dialects:
        sides = []
        req = agg.support.get(dialect, {})
        if req:
            rows, all_kept = [], []
            for name in sorted(req):
                cells = [_support_cell(req[name].get(g)) for g in gateways]
                if all(c in ("kept", "—") for c in cells):
                    all_kept.append(name)
                else:
                    rows.append({"field": name, "cells": cells})
            sides.append({"direction": "request", "rows": rows, "all_kept": all_kept})
        for direction in ("response", "stream", "headers"):
            out_rows = agg.support_out.get((dialect, direction))
            if not out_rows:
                continue
            rows = []
            for name in sorted(out_rows):
                cells = [_support_cell(out_rows[name].get(g),
                                       empty="kept" if (dialect, g) in agg.answered else "—") for g in gateways]
                rows.append({"field": name, "cells": cells})
            sides.append({"direction": direction, "rows": rows, "all_kept": []})
        sections.append({"dialect": dialect, "sides": sides})
    return sections


@dataclass
class RenderedReport:
    main: str
    #: ``report/<gateway>.md`` relative path -> text
    gateway_files: dict[str, str]


def render_reports(agg: Aggregator, run: RunInfo, *, notes: dict[str, dict[str, Any]],
                   verdicts: dict[str, list[Verdict]], verdict_errors: list[str],
                   baseline: dict[str, Any] | None, warnings: list[str], include_kept: bool,
                   behaviours: list[Behaviour] | None = None, html_name: str | None = None,
                   bugs: BugBoard | None = None) -> RenderedReport:
    """``report.md`` (behaviours first, then summaries) and one detail file per gateway."""
    scores = agg.finish_scores()
    agg.fill_unsupported()
    gateways = agg.gateways()
    families = {g.name: g.family or g.name for g in run.gateways}
    by_family: dict[str, list[Behaviour]] = {}
    for b in behaviours or ():
        by_family.setdefault(b.gateway, []).append(b)
    # First screen: every gateway family seen in the run, its error and warn behaviours.
    family_names = sorted({families.get(g, g) for g in gateways} | set(by_family))
    first_screen = []
    for fam in family_names:
        listed = [b for b in by_family.get(fam, []) if b.severity != "info"]
        groups = group_behaviours(listed)
        profiles = [g for g in gateways if families.get(g, g) == fam]
        first_screen.append({
            "family": fam, "profiles": profiles, "files": [(p, gateway_file(p)) for p in profiles],
            "errors": sum(1 for b in listed if b.severity == "error"),
            "warns": sum(1 for b in listed if b.severity == "warn"),
            "groups": groups[:FIRST_SCREEN_BEHAVIOURS], "more": max(0, len(groups) - FIRST_SCREEN_BEHAVIOURS),
        })
    cases = sorted(agg.cases)
    columns = [(g, u) for g in gateways for u in UPSTREAMS if any((c, g, u) in agg.up_cells for c in cases)]
    matrix = []
    for c in cases:
        cells = []
        for g, u in columns:
            cell = agg.up_cells.get((c, g, u))
            text = _cell_text(cell)
            cells.append(f"[{md_cell(text, 10_000)}]({gateway_file(g)}#{github_anchor(c)})" if cell is not None else "—")
        matrix.append({"case": c, "cells": cells})
    skipped = [(g.name, g.skipped) for g in run.gateways if g.skipped]
    bug_section = _bug_section(bugs, gateways, run)
    bug_cells = {(r["case"], c["gateway"]): {"number": r["number"], "source": r["source"], **c}
                 for r in (bug_section or {}).get("rows", []) for c in r["cells"]}
    main = environment().get_template("report.md.j2").render(
        run=run, scores=scores, gateways=gateways, columns=columns, matrix=matrix,
        support=_support_sections(agg, gateways), fidelity_definition=FIDELITY_DEFINITION, baseline=baseline,
        verdict_errors=verdict_errors, warnings=warnings, include_kept=include_kept, exchanges=agg.exchanges,
        verdict_count=sum(len(v) for v in verdicts.values()), first_screen=first_screen, skipped=skipped,
        html_name=html_name, files=[(g, gateway_file(g)) for g in gateways],
        conversations=[{**r, "link": f"{gateway_file(r['gateway'])}#{github_anchor(r['case'])}"}
                       for r in agg.conversation_rows()],
        bugs=bug_section,
    )
    files = {}
    tpl = environment().get_template("report_gateway.md.j2")
    for g in gateways:
        fam = families.get(g, g)
        files[gateway_file(g)] = tpl.render(
            run=run, gateway=g, family=fam, behaviours=[b for b in by_family.get(fam, []) if g in b.profiles],
            cases=_gateway_cases(agg, g, cases, notes, verdicts, bug_cells), score=next(s for s in scores if s.gateway == g),
        )
    return RenderedReport(main=main, gateway_files=files)


_BUG_MARK = {"reproduced": "**reproduced**", "not reproduced": "not reproduced", "not applicable": "n/a"}


def _bug_section(bugs: BugBoard | None, gateways: list[str], run: RunInfo) -> dict[str, Any] | None:
    """The "reported bugs" table: one row per reported-bug case, one column per gateway (and version)."""
    if bugs is None or not bugs.cases:
        return None
    versions = {g.name: g.version for g in run.gateways}
    rows = bugs.rows(gateways)
    for r in rows:
        for c in r["cells"]:
            c["text"] = _BUG_MARK[c["status"]]
            c["link"] = f"{gateway_file(c['gateway'])}#{github_anchor(r['case'])}"
    counts = {g: Counter(r["cells"][i]["status"] for r in rows) for i, g in enumerate(gateways)}
    return {"rows": rows, "columns": [(g, versions.get(g)) for g in gateways], "counts": counts}


def _gateway_cases(agg: Aggregator, g: str, cases: list[str], notes: dict[str, dict[str, Any]],
                   verdicts: dict[str, list[Verdict]],
                   bug_cells: dict[tuple[str, str], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    out = []
    for c in cases:
        cell = agg.cells.get((c, g))
        if cell is None:
            continue
        dialect, stream = agg.cases[c]
        rows = sorted(agg.tables.get((c, g), {}).values(),
                      key=lambda r: (_SEV_ORDER[r.severity], _KIND_ORDER.get(r.kind, 9), r.direction, r.path))
        # Harmless omissions (explicit nulls, defaults, fields the other dialect has no place for):
        # one line, not one row each.  Informational findings off the request side are counted,
        # not listed (they are in findings.json and the case's prompt).
        omitted = [r for r in rows if r.kind == "dropped" and r.severity == "info"]
        rows = [r for r in rows if r not in omitted]
        quiet = [r for r in rows if _quiet(r)]
        rows = [r for r in rows if not _quiet(r)]
        routes = [{"upstream": u, "variant": v, "agg": a} for (cc, gg, u, v), a in sorted(
            agg.routes.items(), key=lambda kv: (UPSTREAMS.index(kv[0][2]) if kv[0][2] in UPSTREAMS else 9, kv[0][3]))
            if cc == c and gg == g]
        out.append({
            "id": c, "dialect": dialect, "stream": stream, "note": notes.get(c, {}).get("note", ""),
            "summary": _matrix_cell(agg, c, g), "rows": rows, "routes": routes,
            "quiet": sorted(Counter(f"{r.direction} {r.kind}" for r in quiet).items()),
            "omitted": sorted({f"{r.direction} {r.path}" for r in omitted}),
            "overflow": agg.overflow.get((c, g), 0), "outcomes": dict(cell.outcomes),
            "streams": [{"upstream": u, "agg": a} for (cc, gg, u), a in sorted(agg.streams.items()) if cc == c and gg == g],
            "verdicts": [(v.reviewer, gv) for v in verdicts.get(c, []) for gv in v.gateways if gv.gateway == g],
            "conversations": agg.conversation_rows(g, c),
            "bug": (bug_cells or {}).get((c, g)),
        })
    return out


def render_report(agg: Aggregator, run: RunInfo, *, notes: dict[str, dict[str, Any]],
                  verdicts: dict[str, list[Verdict]], verdict_errors: list[str],
                  baseline: dict[str, Any] | None, warnings: list[str], include_kept: bool,
                  behaviours: list[Behaviour] | None = None) -> str:
    """``report.md`` alone (see :func:`render_reports` for the per-gateway files)."""
    return render_reports(agg, run, notes=notes, verdicts=verdicts, verdict_errors=verdict_errors, baseline=baseline,
                          warnings=warnings, include_kept=include_kept, behaviours=behaviours).main


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
