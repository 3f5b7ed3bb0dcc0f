"""``gatewaylens probe``: one request through one gateway, read at once.

    gatewaylens probe sampling-chat-full --gateway portkey            # a corpus case, built-in gateway launched
    gatewaylens probe body.json --gateway mygw=http://127.0.0.1:4000  # a JSON body, your running gateway
    echo '{"model": "m", ...}' | gatewaylens probe - --gateway litellm --dialect messages

The request (a corpus case id, a JSON file, or ``-`` for stdin; a bare request body, or a whole
corpus case with ``dialect`` and ``body``) goes through the same capture path as a full run: a
mock started for it on a free loopback port, the gateway pointed at its channel (a built-in one
launched and stopped), one exchange recorded whole and analyzed.  The terminal shows the client
request, what reached the upstream, what the client got back and the translation map with
severities (the view ``analyze show`` prints for a captured exchange); ``--json`` prints it for
scripts.

Exit codes: 0 the exchange was captured (a gateway's 4xx/5xx answer is data), 1 it could not be
(the gateway could not run here, refused, timed out, broke the stream), 2 bad input.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gatewaylens.capture.corpus import default_corpus_paths, load_corpus
from gatewaylens.capture.models import Case, Corpus, GatewayProfile, Route
from gatewaylens.dialects import DIALECTS, UPSTREAMS, Dialect, UpstreamKind
from gatewaylens.errors import InputError, one_line

EPILOG = """\b
Examples:
  gatewaylens probe sampling-chat-full --gateway portkey --upstream anthropic
  gatewaylens probe body.json --gateway mygw=http://127.0.0.1:4000 --dialect chat
  gatewaylens probe - --gateway mygw:anthropic=http://127.0.0.1:4000 -H 'authorization: Bearer sk-...' < body.json
Exit codes: 0 captured (4xx/5xx answers are data), 1 not captured (gateway cannot run,
refused, timeout, broken stream), 2 bad input.
"""


class ProbeError(click.ClickException):
    """Bad input: one line, exit 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"probe: {one_line(self.format_message(), 600)}", err=True)


def guess_dialect(body: dict[str, Any]) -> tuple[Dialect, bool]:
    """The client dialect a bare request body is written in, and whether the body says so for sure.

    ``input`` only exists in Responses; a top-level ``system``, ``stop_sequences``, ``thinking``,
    ``top_k`` or Anthropic content blocks only in Messages; anything else reads as Chat."""
    if "input" in body or "instructions" in body or "previous_response_id" in body:
        return "responses", True
    if any(k in body for k in ("system", "stop_sequences", "thinking", "top_k", "anthropic_version")):
        return "messages", True
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(
                (isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result", "thinking", "document"))
                or (isinstance(b, dict) and b.get("type") == "image" and "source" in b) for b in content):
            return "messages", True
        if isinstance(m, dict) and m.get("role") in ("system", "developer", "tool"):
            return "chat", True
    return "chat", False


def case_from_json(text: str, label: str, dialect: Dialect | None) -> tuple[Case, str | None]:
    """A :class:`Case` from JSON text: a whole case (``dialect`` + ``body``) or a bare request body.
    Returns the case and, when the dialect was guessed, a note saying so."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProbeError(f"{label}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise ProbeError(f"{label}: expected a JSON object (a request body or a corpus case), got {type(data).__name__}")
    note: str | None = None
    if "body" in data and "dialect" in data:
        raw = {"id": "probe", "note": "gatewaylens probe", **data}
        if "stream" not in raw and isinstance(data["body"], dict):
            raw["stream"] = bool(data["body"].get("stream", False))
        if dialect is not None:
            raw["dialect"] = dialect
    else:
        if dialect is None:
            dialect, sure = guess_dialect(data)
            if not sure:
                note = f"dialect {dialect} guessed from the body (give --dialect to choose)"
        raw = {"id": "probe", "note": "gatewaylens probe: a request given on the command line", "dialect": dialect,
               "stream": bool(data.get("stream", False)), "body": data}
    try:
        return Case.model_validate(raw), note
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "case"
        raise ProbeError(f"{label}: {where}: {err.get('msg', 'invalid')}") from None


def corpus_case(case_id: str, corpus_paths: tuple[Path, ...]) -> Case:
    try:
        loaded = load_corpus(list(corpus_paths) or default_corpus_paths())
    except InputError as e:
        raise ProbeError(str(e)) from None
    by_id = {c.id: c for c in loaded.corpus.cases}
    if case_id in by_id:
        return by_id[case_id]
    near = difflib.get_close_matches(case_id, list(by_id), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise ProbeError(f"{case_id!r} is neither a file nor a case id of the corpus "
                     f"({', '.join(str(p) for p in loaded.paths)}){hint}")


def choose_route(profile: GatewayProfile, case: Case, upstream: UpstreamKind | None,
                 variant: str | None) -> tuple[UpstreamKind, Route]:
    """The one (upstream kind, route) the probe sends the case through."""
    kinds = [upstream] if upstream else case.upstreams()
    if upstream and case.upstream and upstream not in case.upstream:
        raise ProbeError(f"case {case.id!r} runs only against {', '.join(case.upstream)}, not --upstream {upstream}")
    reasons = []
    for u in kinds:
        reason = profile.unsupported_reason(case.dialect, u)
        if reason:
            reasons.append(reason)
            continue
        routes = profile.route_for(case.dialect, u)
        if variant is not None:
            routes = [r for r in routes if r.variant == variant or (variant == "passthrough" and r.passthrough)]
            if not routes:
                known = [r.variant or ("passthrough" if r.passthrough else "(default)") for r in profile.route_for(case.dialect, u)]
                raise ProbeError(f"--variant {variant}: {profile.name} has no such route for {case.dialect} -> {u} "
                                 f"(routes: {', '.join(known)})")
        else:
            routes = sorted(routes, key=lambda r: (r.passthrough, r.variant != ""))
        return u, routes[0]
    raise ProbeError("; ".join(dict.fromkeys(reasons)) or f"{profile.name} has no route for this case")


def _apply_overrides(case: Case, stream: bool | None, headers: tuple[str, ...]) -> Case:
    body = dict(case.body)
    if stream is not None:
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
    extra = dict(case.headers)
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise ProbeError(f"--header {name.strip() or h!r}: expected 'NAME: VALUE'")
        extra[name.strip().lower()] = value.strip()
    try:
        return Case.model_validate({**case.model_dump(exclude_none=True), "body": body,
                                    "stream": bool(body.get("stream", False)), "headers": extra})
    except ValidationError as e:
        raise ProbeError(f"case {case.id!r}: {e.errors()[0].get('msg', 'invalid')}") from None


async def probe_once(case: Case, profile: GatewayProfile, custom: bool, *, mock_url: str | None,
                     timeout_s: float, workdir: Path) -> tuple[Any, list[str], str | None]:
    """Send ``case`` through ``profile`` (its routes cut to one) with the capture machinery.

    Returns (the exchange or None, capture's progress lines, the reason the gateway was skipped)."""
    from gatewaylens.capture.launch import free_port
    from gatewaylens.capture.rundir import load_done
    from gatewaylens.capture.runner import CaptureOptions, run_capture

    corpus_file = workdir / "probe-corpus.json"
    corpus_file.write_text(Corpus(description="gatewaylens probe", cases=[case]).model_dump_json(exclude_none=True),
                           encoding="utf-8")
    run_dir = workdir / "run"
    lines: list[str] = []
    sink = io.StringIO()
    opts = CaptureOptions(
        corpus=load_corpus(corpus_file), profiles=[profile], custom={profile.name} if custom else set(),
        mock_url=(mock_url or f"http://127.0.0.1:{free_port()}").rstrip("/"), start_mock=True, launch=not custom,
        out=run_dir, timeout_s=timeout_s, recorded_options={"probe": True})
    outcome = await run_capture(opts, say=lines.append, stdout=sink, progress=sink)
    row = outcome.summary["gateways"][0]
    exchanges = load_done(run_dir)
    return (exchanges[0] if exchanges else None), lines, row.get("skipped") or row.get("aborted")


@click.command("probe", context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.argument("request", required=False, metavar="CASE_ID|FILE|-")
@click.option("--gateway", "gateway_spec", required=True, metavar="NAME | NAME[:KIND]=URL",
              help="A built-in gateway (launched for the probe, then stopped) or yours at URL; KIND "
                   "(openai|anthropic) is the upstream it is configured for.")
@click.option("--dialect", type=click.Choice(DIALECTS), help="Client dialect of a bare JSON body (default: guessed).")
@click.option("--upstream", type=click.Choice(UPSTREAMS),
              help="Upstream kind to probe (default: the first the case and gateway both allow).")
@click.option("--variant", help="A second route of the gateway, e.g. passthrough (LiteLLM's pass-through routes).")
@click.option("--stream/--no-stream", "stream", default=None, help="Send the request streaming / not streaming.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="An extra client header (e.g. your gateway's key; redacted in every output). Repeatable.")
@click.option("--corpus", "corpus_paths", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Corpus to find CASE_ID in (default: corpus.json + corpus.d/).")
@click.option("--mock", "mock_url", metavar="URL",
              help="A running mock to use (default: one started for the probe on a free loopback port).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1, max=3600), default=60.0, show_default=True,
              metavar="SECONDS", help="For the request, whole answer included.")
@click.option("--json", "as_json", is_flag=True, help="Print the exchange, its outcome and findings as JSON.")
def main(request: str | None, gateway_spec: str, dialect: Dialect | None, upstream: UpstreamKind | None,
         variant: str | None, stream: bool | None, headers: tuple[str, ...], corpus_paths: tuple[Path, ...],
         mock_url: str | None, timeout_s: float, as_json: bool) -> None:
    """Send one request through one gateway and show what it did to it."""
    from gatewaylens.analyze.engine import analyze_exchange
    from gatewaylens.analyze.show import render, view_json
    from gatewaylens.capture.selection import select

    t0 = time.monotonic()
    note: str | None = None
    if request is None and sys.stdin.isatty():
        raise ProbeError("give the request: a corpus case id, a JSON file, or - to read JSON from stdin")
    if request is None or request == "-":
        case, note = case_from_json(sys.stdin.read(), "stdin", dialect)
    elif Path(request).is_file():
        try:
            text = Path(request).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ProbeError(f"{request}: cannot read: {e}") from None
        case, note = case_from_json(text, request, dialect)
    else:
        case = corpus_case(request, corpus_paths)
        if dialect is not None and dialect != case.dialect:
            raise ProbeError(f"case {case.id!r} is a {case.dialect} request; --dialect {dialect} does not apply")
    case = _apply_overrides(case, stream, headers)

    custom = "=" in gateway_spec
    try:
        sel = select(None if custom else gateway_spec, [gateway_spec] if custom else [], [], upstream or "openai")
    except InputError as e:
        raise ProbeError(str(e).replace("--gateways", "--gateway")) from None
    (profile,) = sel.profiles
    kind, route = choose_route(profile, case, upstream, variant)
    profile = profile.model_copy(update={"routes": [route], "unsupported": []})
    case = case.model_copy(update={"upstream": [kind]})

    with tempfile.TemporaryDirectory(prefix="gatewaylens-probe-") as tmp:
        try:
            ex, lines, skipped = asyncio.run(probe_once(case, profile, custom, mock_url=mock_url, timeout_s=timeout_s,
                                                        workdir=Path(tmp)))
        except InputError as e:
            raise ProbeError(str(e)) from None
    if ex is None:
        click.echo(f"probe: {profile.name}: {'cannot run here: ' + skipped if skipped else 'nothing captured'}", err=True)
        for line in lines[-5:]:
            click.echo(f"probe: {line}", err=True)
        sys.exit(1)
    result = analyze_exchange(ex)
    if as_json:
        doc = view_json(result)
        doc["note"] = note
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        from rich.text import Text

        from gatewaylens.analyze.show import terminal

        console = terminal()
        if note:
            console.print(Text(note, style="dim"))
        render(console, result, title=f"probe {case.id}: {ex.id}")
        console.print(Text(f"{time.monotonic() - t0:.1f} s in all, gateway launch included", style="dim"))
    sys.exit(1 if ex.status == "error" else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
