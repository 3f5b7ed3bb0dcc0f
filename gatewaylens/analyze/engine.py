"""Per-exchange analysis: request, response, stream and headers of one exchange (the run directory is read by :mod:`gatewaylens.capture.rundir`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from gatewaylens.analyze import severity as sev
from gatewaylens.analyze.behaviours import generic
from gatewaylens.analyze.calls import call_entries
from gatewaylens.analyze.expectations import apply as apply_expectations
from gatewaylens.analyze.headers import compare_headers
from gatewaylens.analyze.leaks import leak_entries
from gatewaylens.analyze.models import Direction, ExchangeSummary, FindingRow, Severity
from gatewaylens.analyze.paths import root, under
from gatewaylens.analyze.streamcheck import refine, refine_response
from gatewaylens.analyze.streams import compare_extracts, extract_body, extract_frames, parse_frames
from gatewaylens.analyze.substitution import header_policy, model_entries
from gatewaylens.analyze.translate import Entry, Translator, declared_tools, is_default
from gatewaylens.analyze.values import STRUCTURAL_STRINGS, excerpt
from gatewaylens.capture.models import ClientResponse, Exchange, Expectation, RunInfo
from gatewaylens.dialects import DIALECTS, NATIVE_UPSTREAM, REQUEST_EQUIVALENCES, Dialect, dialect_for_path
from gatewaylens.errors import InputError, validation_line
from gatewaylens.mock.models import RecordedExchange

#: the analyzer's older names for the shared vocabulary (other modules and branches import them)
BadInput = InputError
one_line_error = validation_line


def load_case_notes(run_dir: Path, run: RunInfo) -> dict[str, dict[str, Any]]:
    """Case id -> {note, tags, expect, source, summary} from the run's corpus copy or its corpus path,
    when readable."""
    candidates = [run_dir / "corpus.json"]
    if run.corpus_path:
        cp = Path(run.corpus_path)
        candidates += [cp] if cp.is_absolute() else [cp, run_dir / cp]
    for cand in candidates:
        try:
            data = json.loads(cand.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cases = data.get("cases") if isinstance(data, dict) else data
        if not isinstance(cases, list):
            continue
        out: dict[str, dict[str, Any]] = {}
        for case in cases:
            if isinstance(case, dict) and isinstance(case.get("id"), str):
                out[case["id"]] = {"note": str(case.get("note") or ""), "tags": case.get("tags") or [],
                                   "expect": _expectations(case.get("expect")), "source": case.get("source"),
                                   "summary": case.get("summary")}
        return out
    return {}


def _expectations(raw: Any) -> list[Expectation]:
    """A case's ``expect`` list (capture validated it; one that no longer parses is left out)."""
    out: list[Expectation] = []
    for item in raw if isinstance(raw, list) else ():
        try:
            out.append(Expectation.model_validate(item))
        except ValidationError:
            continue
    return out


def case_expectations(notes: dict[str, dict[str, Any]]) -> dict[str, list[Expectation]]:
    """Case id -> its expectations, for the cases that have any."""
    return {cid: n["expect"] for cid, n in notes.items() if n.get("expect")}


# --------------------------------------------------------------------------------------------
# One exchange.
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ExchangeResult:
    exchange: Exchange
    findings: list[FindingRow]
    summary: ExchangeSummary
    fields: dict[str, str] = field(default_factory=dict)


class AnalysedExchange(Protocol):
    """What the report needs of an analysed exchange (an :class:`ExchangeResult`, or a worker's
    result that left the Exchange itself in the worker)."""

    @property
    def findings(self) -> list[FindingRow]: ...
    @property
    def summary(self) -> ExchangeSummary: ...
    @property
    def fields(self) -> dict[str, str]: ...


def upstream_dialect(rec: RecordedExchange) -> Dialect | None:
    return rec.dialect or dialect_for_path(rec.path)


def answer_index(ex: Exchange) -> int | None:
    """The upstream call whose answer the client response derives from: the last successful one."""
    if not ex.upstream_requests:
        return None
    for i in range(len(ex.upstream_requests) - 1, -1, -1):
        if ex.upstream_requests[i].response.status < 400:
            return i
    return len(ex.upstream_requests) - 1


def usage_requested(ex: Exchange) -> bool:
    if ex.dialect != "chat":
        return True
    body = ex.client_request.body if ex.client_request else None
    if not isinstance(body, dict):
        return False
    if not ex.stream:
        return True
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


def stream_usage_expected(ex: Exchange) -> bool:
    """The client asked for a usage chunk in its Chat Completions stream."""
    body = ex.client_request.body if ex.client_request else None
    opts = body.get("stream_options") if isinstance(body, dict) else None
    return ex.dialect == "chat" and isinstance(opts, dict) and opts.get("include_usage") is True


def analyze_exchange(ex: Exchange, *, include_kept: bool = False,
                     expectations: Sequence[Expectation] = ()) -> ExchangeResult:
    """What the gateway did in one exchange.  ``expectations``: the case's ``expect`` list, which
    escalates the findings that contradict it and downgrades those that meet it."""
    findings: list[FindingRow] = []
    summary = ExchangeSummary(
        id=ex.id, gateway=ex.gateway, case_id=ex.case_id, dialect=ex.dialect, stream=ex.stream,
        upstream=ex.upstream, variant=ex.variant, status=ex.status,
        client_status=ex.client_response.status if ex.client_response else None,
        upstream_calls=len(ex.upstream_requests), outcome="translated",
        error=f"{ex.error.kind}: {ex.error.message}" if ex.error else None,
        conversation=ex.conversation, turn=ex.turn, turns=ex.turns,
    )

    def emit(direction: Direction, entries: list[Entry], upstream_index: int | None) -> None:
        client_side_src = direction in ("request", "headers")
        for e in entries:
            if e.kind == "kept" and e.severity == "info" and not include_kept and not expectations:
                continue
            if client_side_src:
                path = e.src_path if e.src_path is not None else (e.dst_path or "")
                other = e.dst_path
            else:
                path = e.dst_path if e.dst_path is not None else (e.src_path or "")
                other = e.src_path
            severity: Severity = e.severity
            if ex.passthrough and direction == "request" and e.kind != "kept" and severity == "info":
                severity = "warn"  # a passthrough route promises the body unchanged
            findings.append(FindingRow(
                gateway=ex.gateway, case_id=ex.case_id, dialect=ex.dialect, stream=ex.stream,
                upstream=ex.upstream, direction=direction, kind=e.kind, path=path,
                to_path=other if other != path else None, before=e.before, after=e.after,
                severity=severity, message=e.message, exchange_id=ex.id, variant=ex.variant,
                upstream_index=upstream_index, concept=e.concept, turn=ex.turn,
            ))

    if ex.status == "unsupported":
        summary.outcome = "unsupported"
        if ex.turn is not None and ex.unsupported_reason:  # a conversation turn not sent: say why
            summary.error = ex.unsupported_reason
        return ExchangeResult(ex, findings, summary)
    client_body = ex.client_request.body if ex.client_request else None
    # An exchange whose upstream records are incomplete or not its own (the mock restarted, another
    # client disturbed the channel, capture was stopped mid-way) is never reported as a translation.
    if ex.client_request is None or (ex.status == "error" and ex.error is not None
                                     and ex.error.kind in ("mock_lost", "disturbed", "interrupted")):
        summary.outcome = "capture_error"
        summary.score = 0.0
        return ExchangeResult(ex, findings, summary)

    emit("call", call_entries(ex), None)  # call-level behaviours (gatewaylens/analyze/calls.py)
    emit("call", model_entries(ex, answer_index(ex)), None)  # model_substituted (analyze/substitution.py)
    emit("call", leak_entries(ex), None)  # gateway internals in the answer (gatewaylens/analyze/leaks.py)
    if not ex.upstream_requests:
        cr = ex.client_response
        if cr is not None and 400 <= cr.status < 500:
            entries = rejected_entries(client_body, cr, ex.dialect, target_dialect(ex))
            emit("request", entries, None)
            summary.outcome = "rejected" if entries else "no_upstream_call"
        else:
            summary.outcome = "capture_error" if cr is None else "no_upstream_call"
    else:
        for i, rec in enumerate(ex.upstream_requests):
            dst = upstream_dialect(rec)
            if rec.body_is_json:
                entries = Translator("request", ex.dialect, dst, include_kept=include_kept).compare(client_body, rec.body_json)
            else:
                entries = [Entry("changed", "", "", excerpt(client_body), excerpt(rec.body_text), "error",
                                 "the upstream request body is not JSON")]
            emit("request", entries, i)
            up_kind = NATIVE_UPSTREAM[dst] if dst else ex.upstream
            emit("headers", compare_headers(ex.client_request.headers, rec.headers, upstream_kind=up_kind,
                                            policy=header_policy(ex), include_kept=include_kept), i)
        _response_side(ex, emit, summary, include_kept)

    if expectations:
        cross = any(upstream_dialect(r) not in (None, ex.dialect) for r in ex.upstream_requests)
        apply_expectations(findings, expectations, cross=cross)
        if not include_kept:
            findings = [f for f in findings if not (f.kind == "kept" and f.severity == "info" and f.expectation is None)]
    summary.counts = _counts(findings)
    summary.score = exchange_score(summary.outcome, findings)
    result = ExchangeResult(ex, findings, summary)
    result.fields = field_statuses(client_body, findings, summary)
    return result


def _response_side(ex: Exchange, emit: Any, summary: ExchangeSummary, include_kept: bool) -> None:
    cr = ex.client_response
    ai = answer_index(ex)
    if ai is None:
        return
    if cr is None:
        # The gateway called the upstream but the client got nothing usable (timeout, refused...).
        why = f" ({ex.error.kind}: {excerpt(ex.error.message, 120)})" if ex.error else ""
        emit("response", [Entry("dropped", "(response)", None, ex.upstream_requests[ai].response.status, None, "error",
                                f"the client received no response{why}")], ai)
        return
    rec = ex.upstream_requests[ai]
    ans = rec.response
    up_dialect = upstream_dialect(rec)
    client_stream = bool(cr.frames) or cr.stream
    if ans.status != cr.status:
        same_class = ans.status // 100 == cr.status // 100
        emit("response", [Entry("changed", "(status)", "(status)", ans.status, cr.status, "info" if same_class else "warn",
                                f"HTTP status {ans.status} from the upstream reached the client as {cr.status}")], ai)
    if client_stream or ans.frames:
        up_frames = parse_frames((f.event, f.data, None) for f in ans.frames) if ans.frames is not None else None
        cl_frames = parse_frames((f.event, f.data, f.json_data) for f in cr.frames) if cr.frames is not None else None
        up_ex = extract_frames(up_dialect, up_frames) if up_frames is not None else extract_body(up_dialect, ans.body)
        cl_ex = extract_frames(ex.dialect, cl_frames) if cl_frames is not None else extract_body(ex.dialect, cr.body)
        entries, ss = compare_extracts(up_ex, cl_ex, client_stream=client_stream,
                                       usage_requested=usage_requested(ex), upstream_cut=ans.cut,
                                       client_error=cr.status >= 400)
        if not (ans.cut and cr.status >= 400 and not client_stream):
            # Grammar, rebuilt content, exact usage (gatewaylens/analyze/streamcheck.py).
            entries = refine(entries, up_dialect=up_dialect, up_frames=up_frames, up_body=ans.body,
                             cl_dialect=ex.dialect, cl_frames=cl_frames, cl_body=cr.body,
                             usage_requested=usage_requested(ex), usage_expected=stream_usage_expected(ex),
                             upstream_cut=ans.cut, include_kept=include_kept)
        emit("stream" if client_stream else "response", entries, ai)
        if client_stream:
            summary.stream_summary = ss
        return
    if isinstance(ans.body, dict | list) and isinstance(cr.body, dict | list):
        client_body = ex.client_request.body if ex.client_request else None
        artefacts = declared_tools(rec.body_json) - declared_tools(client_body)
        entries = Translator("response", up_dialect, ex.dialect, include_kept=include_kept,
                             artefact_tools=frozenset(artefacts)).compare(ans.body, cr.body)
        emit("response", refine_response(entries, up_dialect=up_dialect, up_body=ans.body, cl_dialect=ex.dialect,
                                         cl_body=cr.body, include_kept=include_kept), ai)
    elif ans.body is not None and cr.body is None:
        emit("response", [Entry("changed", "", "", excerpt(ans.body), excerpt(cr.text), "error",
                                "the client response is not JSON")], ai)


def _counts(findings: list[FindingRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        if f.kind != "kept":
            out[f.kind] = out.get(f.kind, 0) + 1
        out[f"severity.{f.severity}"] = out.get(f"severity.{f.severity}", 0) + (0 if f.kind == "kept" and f.severity == "info" else 1)
    return {k: v for k, v in sorted(out.items()) if v}


#: Fidelity score weights (documented in the report and README).
ERROR_WEIGHT = 25
WARN_WEIGHT = 5
REJECTED_SCORE = 50.0


def exchange_score(outcome: str, findings: list[FindingRow]) -> float | None:
    """0..100.  Translated: 100 - 25 per error - 5 per warn behaviour (distinct direction + generic
    path + kind + severity, retries counted once), floor 0.  Rejected with a field named: 50.  No upstream call / capture error: 0."""
    if outcome == "unsupported":
        return None
    if outcome == "rejected":
        return REJECTED_SCORE
    if outcome in ("no_upstream_call", "capture_error"):
        return 0.0
    seen: set[tuple[str, str, str, str]] = set()
    penalty = 0
    for f in findings:
        if f.severity == "info":
            continue
        # One penalty per behaviour (generic path: the same loss in three messages counts once).
        key = (f.direction, generic(f.path) or "", f.kind, f.severity)
        if key in seen:
            continue
        seen.add(key)
        penalty += ERROR_WEIGHT if f.severity == "error" else WARN_WEIGHT
    return float(max(0, 100 - penalty))


# --------------------------------------------------------------------------------------------
# Field support: what happened to each client field (rows of the report's support matrix).
# --------------------------------------------------------------------------------------------


def field_rows(body: Any) -> list[str]:
    """Top-level fields, and the keys of object-valued fields (``thinking.budget_tokens``)."""
    rows: list[str] = []
    if not isinstance(body, dict):
        return rows
    for k, v in body.items():
        if isinstance(v, dict) and v:
            rows.extend(f"{k}.{sub}" for sub in v)
        else:
            rows.append(k)
    return rows


def field_statuses(body: Any, findings: list[FindingRow], summary: ExchangeSummary) -> dict[str, str]:
    rows = field_rows(body)
    if summary.outcome in ("no_upstream_call", "capture_error", "rejected"):
        rejected = {f.path for f in findings if f.kind == "rejected"}
        code = f" {summary.client_status}" if summary.client_status else ""
        out = {}
        for r in rows:
            if any(under(r, p) or under(p, r) for p in rejected):
                out[r] = f"rejected{code}"
            elif summary.outcome == "capture_error":
                out[r] = "capture error"
            else:
                out[r] = f"no upstream call{code}"
        return out
    if not any(f.direction == "request" and f.kind != "kept" for f in findings):
        return dict.fromkeys(rows, "kept")
    by_root: dict[str, list[FindingRow]] = {}
    for f in findings:
        if f.direction == "request" and (f.upstream_index or 0) == 0 and f.kind != "kept":
            by_root.setdefault(root(f.path), []).append(f)
    out = {}
    for r in rows:
        near = by_root.get(root(r), ())
        exact = [f for f in near if f.path == r]
        nested = [f for f in near if f.path != r and under(f.path, r)]
        status = "kept"
        kinds = {f.kind for f in exact}
        if "dropped" in kinds:
            drop = next(f for f in exact if f.kind == "dropped")
            if drop.severity != "info":
                status = "dropped"
            elif is_default(r, drop.before):
                status = "omitted (null/default)"
            else:
                status = "dropped (no equivalent)"
        elif kinds & {"renamed", "moved"}:
            f = next(f for f in exact if f.kind in ("renamed", "moved"))
            status = f"{f.kind} to {f.to_path}"
        elif "changed" in kinds:
            status = "changed (equivalent)" if all(f.severity == "info" for f in exact) else "changed"
        elif nested:
            nk = {f.kind for f in nested}
            if "dropped" in nk and any(f.severity != "info" for f in nested if f.kind == "dropped"):
                status = "partly dropped"
            elif nk - {"added"}:
                status = "translated" if all(f.severity == "info" for f in nested) else "changed"
        out[r] = status
    return out


# --------------------------------------------------------------------------------------------
# Rejections.  (Headers: gatewaylens/analyze/headers.py.)
# --------------------------------------------------------------------------------------------

_COMMON_KEYS = STRUCTURAL_STRINGS | {"model", "messages", "input", "stream", "content"}
_GENERIC_FIELDS = frozenset({"model", "messages", "input", "stream", "system", "max_tokens"})


def error_message(cr: ClientResponse) -> str:
    body = cr.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "detail", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key])
        return json.dumps(body, ensure_ascii=False)[:2000]
    return (cr.text or "")[:2000]


def target_dialect(ex: Exchange) -> Dialect:
    """The dialect the gateway would have spoken upstream (for an exchange with no upstream call)."""
    if ex.upstream == "anthropic":
        return "messages"
    if ex.variant == "responses" or (ex.dialect == "responses" and not ex.variant):
        return "responses"
    return "chat"


def rejected_entries(body: Any, cr: ClientResponse, dialect: Dialect | None = None,
                     target: Dialect | None = None) -> list[Entry]:
    """Client fields named in a 4xx answered without any upstream call."""
    message = error_message(cr)
    if not message or not isinstance(body, dict):
        return []
    out: list[Entry] = []
    seen: set[str] = set()

    def named(key: str) -> bool:
        if key in _GENERIC_FIELDS:
            # "model" appears in most error texts: count it only when written as a field name.
            return re.search(rf"[`'\"]{re.escape(key)}[`'\"]|(?<![A-Za-z0-9_]){re.escape(key)}\s*[:=]", message) is not None
        return re.search(rf"(?<![A-Za-z0-9_.]){re.escape(key)}(?![A-Za-z0-9_])", message) is not None

    def named_as_equivalent(path: str) -> bool:
        """The error may name the field as the gateway's target dialect calls it
        (`thinking.budget_tokens` rejected as `reasoning.effort`)."""
        return any(named(other) for other in _equivalent_names(dialect, path))

    def visit(value: Any, path: str, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                p = f"{path}.{k}" if path else k
                generic = re.sub(r"\[\d+\]", "[]", p)
                if generic not in seen and (
                        ((depth == 0 or (len(k) >= 4 and k.lower() not in _COMMON_KEYS)) and named(k))
                        or named_as_equivalent(generic)):
                    seen.add(generic)
                    out.append(Entry("rejected", p, None, v if not isinstance(v, dict | list) else excerpt(v, 120), None,
                                     sev.rejection(p, src=dialect, dst=target),
                                     f"gateway answered {cr.status} without calling upstream: {excerpt(message, 160)}"))
                visit(v, p, depth + 1)
        elif isinstance(value, list):
            for i, v in enumerate(value[:50]):
                visit(v, f"{path}[{i}]", depth + 1)

    visit(body, "", 0)
    # Generic fields count only when nothing more specific is named.
    specific = [e for e in out if (e.src_path or "") not in _GENERIC_FIELDS]
    return specific or out


def _equivalent_names(dialect: Dialect | None, generic: str) -> list[str]:
    """Names of the same concept in the other dialects (full dotted path and last key)."""
    if dialect is None:
        return []
    out: list[str] = []
    for row in REQUEST_EQUIVALENCES:
        if generic in row.get(dialect, []) and "[]" not in generic:
            for d in DIALECTS:
                if d == dialect:
                    continue
                out.extend(p for p in row.get(d, []) if "[]" not in p and p != generic and len(p) >= 4)
    return out
