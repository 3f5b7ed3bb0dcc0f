"""The stream side's exact checks, on top of :mod:`gatewaylens.analyze.streams`' reassembled meaning:

* **grammar** (:mod:`gatewaylens.streamgrammar`): each violation of the client dialect's event
  sequence is a ``malformed`` entry at ``grammar.<code>`` naming the frame index — unless the
  upstream's own stream broke the same rule (the gateway is blamed only for what it broke), or the
  upstream was cut (a stream that ends early may end unclosed: that is failure handling, reported
  as ``warn`` at most);
* **content** (:mod:`gatewaylens.analyze.reconstruct`): tool calls one by one (id, name, parsed
  arguments), refusal, thinking signatures, citations, the final object against its deltas;
* **usage** (:mod:`gatewaylens.analyze.usage`): every counter with its dialect's semantics.

:func:`refine` takes the entries ``streams.compare_extracts`` made and returns the stream side's
entries: its ``usage`` and ``tool_arguments`` entries are replaced by the exact ones here.
"""

from __future__ import annotations

from typing import Any

from gatewaylens.analyze import reconstruct, usage
from gatewaylens.analyze.translate import Entry
from gatewaylens.dialects import Dialect
from gatewaylens.streamgrammar import Frame, Violation, check

#: Codes a cut upstream explains on the client side (the stream had to end early).
_CUT_EXPLAINS = frozenset({"terminal_missing", "block_not_closed", "usage_position"})
#: Reported by streams.compare_extracts already (the terminal marker finding).
_REPORTED_ELSEWHERE = frozenset({"terminal_missing"})


def grammar_entries(up_dialect: Dialect | None, up_frames: list[Frame] | None, cl_dialect: Dialect | None,
                    cl_frames: list[Frame], *, usage_expected: bool, upstream_cut: bool) -> list[Entry]:
    """``malformed`` entries for what the gateway broke in the client's stream."""
    inherited: set[str] = set()
    if up_frames:
        inherited = {v.code for v in check(up_dialect, up_frames, usage_expected=usage_expected)}
    client = check(cl_dialect, cl_frames, usage_expected=usage_expected)
    errored = _has_error_event(cl_dialect, cl_frames)
    out: list[Entry] = []
    for v in client:
        if v.code in _REPORTED_ELSEWHERE or v.code in inherited:
            continue
        if (upstream_cut or errored) and v.code in _CUT_EXPLAINS:
            continue
        out.append(_entry(v, upstream_cut))
    return out


def _has_error_event(dialect: Dialect | None, frames: list[Frame]) -> bool:
    """The stream says it failed: an ``error`` event, a Chat chunk carrying ``error``, Responses'
    ``response.failed`` terminal."""
    for event, data in frames:
        kind = data.get("type") if isinstance(data, dict) else None
        if event in ("error", "response.failed") or kind in ("error", "response.failed") or (
                dialect == "chat" and isinstance(data, dict) and "error" in data):
            return True
    return False


def _error_passed_on(dialect: Dialect | None, frames: list[Frame]) -> list[Entry]:
    """The upstream's stream failed mid-way with an error event: the client must learn it."""
    if _has_error_event(dialect, frames):
        return []
    terminal = {"chat": "[DONE]", "responses": "response.completed", "messages": "message_stop"}.get(dialect or "")
    ended_normally = any((d == "[DONE]" if dialect == "chat" else isinstance(d, dict) and d.get("type") == terminal)
                         for _, d in frames)
    if ended_normally:
        reason = _last_finish(dialect, frames)
        if reason and "error" in reason:
            # e.g. Portkey 1.15.2 turns Anthropic's error event into finish_reason: "overloaded_error"
            # followed by [DONE] (build/start-server.js, its Anthropic stream transform).
            return [Entry("dropped", "error_event", None, "error", reason, "warn",
                          f"the upstream's stream failed with an error event; the client learns it only from the "
                          f"non-standard finish reason {reason!r}, and the stream ends with {terminal}")]
        return [Entry("dropped", "error_event", None, "error", terminal, "error",
                      f"the upstream's stream failed with an error event, but the client's stream ends with "
                      f"{terminal} as if the answer were complete")]
    return [Entry("dropped", "error_event", None, "error", None, "error",
                  "the upstream's stream failed with an error event; the client's stream just stops, with no error")]


def _last_finish(dialect: Dialect | None, frames: list[Frame]) -> str | None:
    reason: str | None = None
    for _, d in frames:
        if not isinstance(d, dict):
            continue
        for ch in d.get("choices") or ():
            if isinstance(ch, dict) and isinstance(ch.get("finish_reason"), str):
                reason = ch["finish_reason"]
        delta = d.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            reason = delta["stop_reason"]
    return reason


def _entry(v: Violation, upstream_cut: bool) -> Entry:
    severity = v.severity
    message = v.message
    if upstream_cut and severity == "error":
        severity = "warn"
        message += " (the upstream's stream ended early)"
    return Entry("malformed", None, f"grammar.{v.code}", None, {"frame": v.index, "event": v.event}, severity, message)


def refine(entries: list[Entry], *, up_dialect: Dialect | None, up_frames: list[Frame] | None, up_body: Any,
           cl_dialect: Dialect | None, cl_frames: list[Frame] | None, cl_body: Any, usage_requested: bool,
           usage_expected: bool, upstream_cut: bool, include_kept: bool = False) -> list[Entry]:
    """The stream side's entries: ``entries`` (from ``streams.compare_extracts``) with its usage and
    tool-argument entries replaced by the exact checks, plus grammar violations."""
    out = [e for e in entries if not usage.is_usage_entry(e) and (e.src_path or e.dst_path) != "tool_arguments"]
    # An upstream stream that failed with an error event ends early like a cut one; what matters
    # then is whether the client was told.
    up_error = up_frames is not None and _has_error_event(up_dialect, up_frames)
    if up_error and cl_frames is not None:
        out = [e for e in out if (e.src_path or e.dst_path) != "terminal"]
        out.extend(_error_passed_on(cl_dialect, cl_frames))
        upstream_cut = True
    # Usage, as each side's SDK ends up with it.
    up_usage = usage.stream_usage(up_dialect, up_frames) if up_frames is not None else (
        up_body.get("usage") if isinstance(up_body, dict) else None)
    cl_usage = usage.stream_usage(cl_dialect, cl_frames) if cl_frames is not None else (
        cl_body.get("usage") if isinstance(cl_body, dict) else None)
    out.extend(usage.compare(up_usage, up_dialect, cl_usage, cl_dialect, requested=usage_requested, cut=upstream_cut,
                             include_kept=include_kept))
    # Content, rebuilt.
    up_r = reconstruct.rebuild(up_dialect, up_frames) if up_frames is not None else reconstruct.rebuild_body(up_dialect, up_body)
    cl_r = reconstruct.rebuild(cl_dialect, cl_frames) if cl_frames is not None else reconstruct.rebuild_body(cl_dialect, cl_body)
    content = reconstruct.compare(up_r, cl_r)
    if upstream_cut:
        for e in content:
            if e.severity == "error":
                e.severity = "warn"
                e.message += " (the upstream's stream ended early)"
    out.extend(content)
    # Grammar.
    if cl_frames is not None:
        out.extend(grammar_entries(up_dialect, up_frames, cl_dialect, cl_frames, usage_expected=usage_expected,
                                   upstream_cut=upstream_cut))
    return out


def refine_response(entries: list[Entry], *, up_dialect: Dialect | None, up_body: Any, cl_dialect: Dialect | None,
                    cl_body: Any, include_kept: bool = False) -> list[Entry]:
    """A non-streamed answer: the structural diff's usage entries replaced by the exact usage check."""
    up_usage = up_body.get("usage") if isinstance(up_body, dict) else None
    cl_usage = cl_body.get("usage") if isinstance(cl_body, dict) else None
    if up_usage is None and cl_usage is None:
        return entries
    out = [e for e in entries if not usage.judged(e)]
    out.extend(usage.compare(up_usage, up_dialect, cl_usage, cl_dialect, include_kept=include_kept))
    return out
