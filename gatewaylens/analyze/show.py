"""One exchange, read in the terminal: what the client sent, what reached the upstream, what the
client got back, and the translation map with severities.

Shared by ``gatewaylens probe`` (one request sent now) and ``analyze show RUN EXCHANGE`` (one
exchange of a captured run), so both print the same view; ``--json`` prints :func:`view_json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from gatewaylens.analyze.engine import ExchangeResult
from gatewaylens.analyze.values import elide, excerpt
from gatewaylens.capture.models import ClientFrame, Exchange
from gatewaylens.capture.rundir import EXCHANGES_FILE, iter_exchanges
from gatewaylens.errors import InputError
from gatewaylens.mock.models import SSEFrame

_SEV_ORDER = {"error": 0, "warn": 1, "info": 2}
_SEV_STYLE = {"error": "bold red", "warn": "yellow", "info": "green"}
_DIR_ORDER = {"request": 0, "headers": 1, "response": 2, "stream": 3, "call": 4}
#: frames listed per stream side; the rest are counted
MAX_FRAMES = 40


def terminal() -> Console:
    """A console for the view: at least 150 columns when the output is not a terminal (logs, CI)."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 150)
    return console


def find_exchange(run_dir: Path, wanted: str) -> Exchange:
    """The exchange of ``run_dir`` whose id is ``wanted``; else the only one whose id starts with it
    (``portkey/basic-chat`` when there is one upstream). One line (:class:`InputError`) otherwise."""
    warnings: list[str] = []
    exact: Exchange | None = None
    prefixed: list[Exchange] = []
    ids: list[str] = []
    for ex in iter_exchanges(run_dir, warnings):
        ids.append(ex.id)
        if ex.id == wanted:
            exact = ex
            break
        if ex.id.startswith(wanted.rstrip("/") + "/"):
            prefixed.append(ex)
    if exact is not None:
        return exact
    if len(prefixed) == 1:
        return prefixed[0]
    where = run_dir / EXCHANGES_FILE
    if prefixed:
        raise InputError(f"{where}: exchange {wanted!r} is ambiguous: "
                       + ", ".join(e.id for e in prefixed[:8]) + (" …" if len(prefixed) > 8 else ""))
    import difflib

    near = difflib.get_close_matches(wanted, ids, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f" ({len(ids)} exchanges; ids are GATEWAY/CASE/UPSTREAM[/VARIANT])"
    raise InputError(f"{where}: no exchange {wanted!r}{hint}")


def _sorted_findings(result: ExchangeResult) -> list[Any]:
    return sorted(result.findings, key=lambda f: (_SEV_ORDER[f.severity], _DIR_ORDER.get(f.direction, 9), f.path))


def view_json(result: ExchangeResult) -> dict[str, Any]:
    """The same view for scripts: the exchange whole (already redacted by capture), its outcome and
    score, and the findings (``kept`` fields omitted), worst first."""
    s = result.summary
    return {
        "exchange": result.exchange.model_dump(mode="json"),
        "outcome": s.outcome,
        "score": s.score,
        "findings": [f.as_dict() for f in _sorted_findings(result)],
        "counts": {sev: sum(1 for f in result.findings if f.severity == sev) for sev in ("error", "warn", "info")},
    }


def _body(value: Any) -> Syntax | Text:
    if value is None:
        return Text("(nothing)", style="dim")
    if isinstance(value, str):
        return Text(value)
    return Syntax(json.dumps(elide(value), indent=2, ensure_ascii=False), "json", theme="ansi_dark",
                  word_wrap=True, background_color="default")


def _frames(frames: list[ClientFrame] | list[SSEFrame] | None) -> Table:
    t = Table(show_header=True, header_style="dim", box=None, pad_edge=False)
    t.add_column("ms", justify="right", style="dim", no_wrap=True)
    t.add_column("event", no_wrap=True)
    t.add_column("data", overflow="fold")
    shown = (frames or [])[:MAX_FRAMES]
    for fr in shown:
        t.add_row(f"+{fr.offset_ms:.1f}", fr.event or "", fr.data)
    rest = len(frames or []) - len(shown)
    if rest > 0:
        t.add_row("", "", Text(f"… {rest} more frame(s)", style="dim"))
    return t


def render(console: Console, result: ExchangeResult, *, title: str | None = None) -> None:
    """Print the four parts of one exchange and its translation map."""
    ex, s = result.exchange, result.summary
    head = title or ex.id
    meta = [f"{ex.dialect} client{' stream' if ex.stream else ''} → {ex.gateway} → {ex.upstream} upstream"
            + (f" ({ex.variant})" if ex.variant else ""), f"outcome {s.outcome}",
            f"score {s.score:.0f}" if s.score is not None else "score —"]
    if ex.timings is not None:
        meta.append(f"{ex.timings.duration_ms:.0f} ms")
    line = Text(head, style="bold")
    line.append("  " + " · ".join(meta), style="dim")
    console.print(line)
    if ex.status == "unsupported":
        console.print(Text(f"not sent: {ex.unsupported_reason}", style="yellow"))
        return
    if ex.error is not None and ex.error.kind != "http":
        console.print(Text(f"capture error ({ex.error.kind}): {ex.error.message}", style="red"))
    for note in ex.notes:
        console.print(Text(f"note: {note}", style="dim"))

    cq = ex.client_request
    console.print(Panel(_body(cq.body if cq else None), title="1. client request"
                        + (f"  POST {cq.url}" if cq else ""), title_align="left", border_style="blue"))
    if ex.status == "error" and ex.client_response is None and not ex.upstream_requests:
        console.print(Text("nothing reached the upstream and the client got no answer: no translation to show", style="red"))
        return
    if not ex.upstream_requests:
        console.print(Panel(Text("no upstream call: the gateway answered by itself", style="yellow"),
                            title="2. reached the upstream", title_align="left", border_style="yellow"))
    for i, rec in enumerate(ex.upstream_requests):
        label = f"2. reached the upstream  {rec.method} {rec.path}" + (
            f"  (call {i + 1} of {len(ex.upstream_requests)})" if len(ex.upstream_requests) > 1 else "")
        body = rec.body_json if rec.body_is_json else rec.body_text
        answer: Any = _frames(rec.response.frames) if rec.response.stream else _body(rec.response.body)
        console.print(Panel(Group(_body(body), Text(f"the mock answered {rec.response.status}:", style="dim"), answer),
                            title=label, title_align="left", border_style="magenta"))
    cr = ex.client_response
    if cr is None:
        console.print(Panel(Text("(no answer)", style="red"), title="3. the client got back", title_align="left"))
    else:
        got: Any = _frames(cr.frames) if cr.frames is not None else _body(cr.body if cr.body is not None else cr.text)
        console.print(Panel(got, title=f"3. the client got back  HTTP {cr.status}", title_align="left",
                            border_style="green" if cr.status < 400 else "red"))

    rows = _sorted_findings(result)
    table = Table(title="4. translation map" + ("" if rows else ": nothing changed"), title_justify="left",
                  title_style="bold", show_lines=False)
    for col in ("sev", "side", "kind", "field", "before → after", "what"):
        table.add_column(col, overflow="fold", no_wrap=col in ("sev", "side", "kind"))
    for f in rows:
        field = f.path + (f" → {f.to_path}" if f.to_path and f.to_path != f.path else "")
        table.add_row(Text(f.severity, style=_SEV_STYLE[f.severity]), f.direction, f.kind, field,
                      f"{excerpt(f.before, 60)} → {excerpt(f.after, 60)}", f.message)
    console.print(table)
    n = {sev: sum(1 for f in rows if f.severity == sev) for sev in ("error", "warn", "info")}
    console.print(Text(f"{n['error']} error, {n['warn']} warn, {n['info']} info finding(s); unchanged fields not listed",
                       style="dim"))
