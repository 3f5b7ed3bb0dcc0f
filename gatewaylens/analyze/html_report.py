"""``report.html``: the run as one self-contained page (CSS and JS inline, no network access).

Built from the same analysis as ``report.md``: one row per (gateway, case, upstream kind,
variant) — the unit a reader clicks on — with its findings (first exchange), the worst severity
over all its exchanges, and, for the first :data:`MAX_DETAILED` rows, the four bodies of its
first exchange (client request, upstream request, upstream answer, client response) and both
stream timelines.  The data goes into the page once, as JSON; the page's script draws the
heatmap and renders the long lists lazily, so a large run stays usable.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jinja2

from gatewaylens.analyze.models import KIND_HELP, Behaviour, ExchangeSummary, FindingRow, GatewayScore
from gatewaylens.analyze.values import elide, excerpt
from gatewaylens.capture.models import Exchange, RunInfo

#: Rows that carry their first exchange's bodies (the rest list their findings only).
MAX_DETAILED = 2000
#: Findings kept per row (distinct direction, kind, path, to_path, severity).
MAX_FINDINGS_PER_ROW = 400
#: Stream frames kept per side of a timeline.
MAX_FRAMES = 400
_SEV_RANK = {"error": 0, "warn": 1, "info": 2}

RowKey = tuple[str, str, str, str]


@dataclass
class _HtmlRow:
    key: RowKey
    dialect: str
    stream: bool
    first_id: str
    exchanges: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    score: float | None = None
    client_status: int | None = None
    worst: str | None = None
    findings: list[list[Any]] = field(default_factory=list)
    errors: int = 0
    warns: int = 0
    infos: int = 0
    detail: dict[str, Any] | None = None


def _body_of_frames(frames: list[Any] | None) -> list[list[Any]]:
    out: list[list[Any]] = []
    for fr in (frames or [])[:MAX_FRAMES]:
        data: Any = fr.data
        with contextlib.suppress(ValueError, TypeError):
            data = json.loads(fr.data)
        out.append([round(fr.offset_ms, 1), fr.event, elide(data, 400, 200)])
    return out


def exchange_detail(ex: Exchange) -> dict[str, Any]:
    """The four bodies, both header sets and both stream timelines of one exchange (long strings
    elided; capture already redacted credentials)."""
    up = ex.upstream_requests[0] if ex.upstream_requests else None
    cr = ex.client_response
    up_body: Any = None
    if up is not None:
        up_body = up.body_json if up.body_is_json else up.body_text
    up_answer: Any = None
    if up is not None:
        up_answer = up.response.body if not up.response.stream else None
    client_answer: Any = None
    if cr is not None:
        client_answer = cr.body if cr.body is not None else cr.text
    return {
        "id": ex.id,
        "calls": len(ex.upstream_requests),
        "error": ex.error.message if ex.error else None,
        "unsupported": ex.unsupported_reason,
        "cq": elide(ex.client_request.body) if ex.client_request else None,
        "uq": elide(up_body),
        "ur": elide(up_answer),
        "cr": elide(client_answer),
        "hq": dict(ex.client_request.headers) if ex.client_request else {},
        "hu": dict(up.headers) if up is not None else {},
        "us": up.response.status if up is not None else None,
        "cs": cr.status if cr is not None else None,
        "tu": _body_of_frames(up.response.frames) if up is not None and up.response.stream else [],
        "tc": _body_of_frames(cr.frames) if cr is not None and cr.frames else [],
    }


class HtmlCollector:
    """Collects the page's rows one analysed exchange at a time (bounded by the distinct
    (gateway, case, upstream, variant) keys, like the Markdown aggregator)."""

    def __init__(self) -> None:
        self.rows: dict[RowKey, _HtmlRow] = {}
        self.detailed = 0

    @staticmethod
    def key_of(s: ExchangeSummary) -> RowKey:
        # A conversation's turns are rows of their own (``<case>#t<N>``), each with its bodies.
        case = s.case_id if s.turn is None else f"{s.case_id}#t{s.turn}"
        return (s.gateway, case, s.upstream, s.variant)

    def wants(self, s: ExchangeSummary) -> bool:
        """True when this exchange's bodies would be kept (the first of its row, while there is room)."""
        return self.key_of(s) not in self.rows and self.detailed < MAX_DETAILED

    def add(self, findings: list[FindingRow], s: ExchangeSummary, exchange: Exchange | None) -> None:
        key = self.key_of(s)
        row = self.rows.get(key)
        first = row is None
        if row is None:
            row = self.rows[key] = _HtmlRow(key=key, dialect=s.dialect, stream=s.stream, first_id=s.id,
                                            score=s.score, client_status=s.client_status)
            if exchange is not None and self.detailed < MAX_DETAILED:
                row.detail = exchange_detail(exchange)
                self.detailed += 1
        row.exchanges += 1
        row.outcomes[s.outcome] += 1
        seen: set[tuple[Any, ...]] = set()
        for f in findings:
            if f.kind == "kept" and f.severity == "info":
                continue
            if row.worst is None or _SEV_RANK[f.severity] < _SEV_RANK[row.worst]:
                row.worst = f.severity
            if not first:
                continue
            k = (f.direction, f.kind, f.path, f.to_path, f.severity)
            if k in seen or len(row.findings) >= MAX_FINDINGS_PER_ROW:
                continue
            seen.add(k)
            if f.severity == "error":
                row.errors += 1
            elif f.severity == "warn":
                row.warns += 1
            else:
                row.infos += 1
            row.findings.append([f.direction, f.kind, f.path, f.to_path, f.severity, f.message,
                                 excerpt(f.before, 120), excerpt(f.after, 120), f.concept, f.behaviour])

    def data(self, run: RunInfo, behaviours: list[Behaviour], scores: list[GatewayScore]) -> dict[str, Any]:
        rows = []
        for r in sorted(self.rows.values(), key=lambda r: (r.key[1], r.key[0], r.key[2], r.key[3])):
            g, c, u, v = r.key
            rows.append({
                "g": g, "c": c, "u": u, "v": v, "d": r.dialect, "s": r.stream, "id": r.first_id, "n": r.exchanges,
                "o": dict(r.outcomes), "sc": r.score, "st": r.client_status, "w": r.worst,
                "e": r.errors, "wn": r.warns, "i": r.infos, "f": r.findings, "x": r.detail,
            })
        return {
            "run": {"id": run.id, "started": run.started.isoformat(),
                    "gateways": [{"name": g.name, "family": g.family or g.name, "version": g.version,
                                  "skipped": g.skipped, "not_run": g.not_run} for g in run.gateways]},
            "rows": rows,
            "behaviours": [{"id": b.id, "g": b.gateway, "p": b.profiles, "r": b.route, "d": b.dialect, "u": b.upstream,
                            "dir": b.direction, "path": b.path, "to": b.to_path, "k": b.kind, "sev": b.severity,
                            "m": b.message, "cc": b.concept, "cases": len(b.cases), "n": b.count,
                            "ex": b.example.exchange_id if b.example else None}
                           for b in behaviours],
            "scores": [s.model_dump() for s in scores],
            "kinds": KIND_HELP,
        }


def embed_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` or ``<!--`` can
    close or open anything (``<`` written as ``\\u003c``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(collector: HtmlCollector, run: RunInfo, behaviours: list[Behaviour],
                scores: list[GatewayScore]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("gatewaylens.analyze", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.get_template("report.html.j2")
    return tpl.render(run=run, data_json=embed_json(collector.data(run, behaviours, scores)))
