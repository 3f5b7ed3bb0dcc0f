"""What a response says, in any dialect, streamed or not: text, tool arguments, usage, finish reason.

Streams are compared on their reassembled meaning (text, usage, finish reason, terminal marker,
event types) and on the fields each chunk carries, because two streams of the same answer never
match frame by frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gatewaylens.analyze.models import Severity, StreamSummary
from gatewaylens.analyze.translate import Entry, cache_counts
from gatewaylens.analyze.values import excerpt
from gatewaylens.dialects import (
    STREAM_EVENT_EQUIVALENCES,
    STREAM_TERMINAL,
    USAGE_FIELDS,
    Dialect,
    finish_reasons_equivalent,
    frame_type,
)

Frame = tuple[str | None, Any]  # (event name, parsed data: JSON value or the raw string)


@dataclass(slots=True)
class Extract:
    dialect: Dialect | None
    text: str = ""
    tool_args: str = ""
    reasoning: str = ""
    usage: dict[str, int] | None = None
    finish: str | None = None
    terminal: bool = False
    frames: int = 0
    types: list[str] = field(default_factory=list)
    chunk_keys: set[str] = field(default_factory=set)
    error_event: bool = False


def _usage(dialect: Dialect | None, usage: Any, into: dict[str, int] | None = None) -> dict[str, int] | None:
    if not isinstance(usage, dict) or dialect is None:
        return into
    out = dict(into or {})
    for norm, name in USAGE_FIELDS[dialect].items():
        v = usage.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            out[norm] = v
    cache = cache_counts({"usage": usage})
    if cache:
        out["cache"] = max(cache)  # the sum when several cache counts are reported
    return out or into


def _present(v: Any) -> bool:
    return v is not None and v != [] and v != {}


def parse_data(data: str) -> Any:
    """An SSE data field as JSON when it is JSON, else the raw text (``[DONE]``)."""
    if data[:1] in ("{", "["):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def parse_frames(frames: Iterable[tuple[str | None, str, Any | None]]) -> list[Frame]:
    """``(event, data text, parsed or None)`` -> ``(event, JSON value or raw text)``."""
    return [(event, parsed if parsed is not None else parse_data(data)) for event, data, parsed in frames]


def extract_frames(dialect: Dialect | None, frames: list[Frame]) -> Extract:
    ex = Extract(dialect, frames=len(frames))
    text: list[str] = []
    args: list[str] = []
    think: list[str] = []
    seen: set[str] = set()
    for event, data in frames:
        if event:
            t = event
        elif data.__class__ is dict and data.get("type").__class__ is str:
            t = data["type"]
        else:
            t = frame_type(dialect, event, data)
        if t not in seen:
            seen.add(t)
            ex.types.append(t)
        if t == "error" or (isinstance(data, dict) and "error" in data and dialect == "chat"):
            ex.error_event = True
        if data == "[DONE]":
            ex.terminal = ex.terminal or dialect == "chat"
            continue
        if not isinstance(data, dict):
            continue
        if not ex.chunk_keys.issuperset(data):  # most chunks repeat the same keys
            ex.chunk_keys.update(k for k in data.keys() - ex.chunk_keys if _present(data[k]))
        if dialect == "chat":
            if data.get("usage"):
                ex.usage = _usage(dialect, data["usage"], ex.usage)
            for choice in data.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if isinstance(delta, dict):
                    content = delta.get("content")
                    if content.__class__ is str:
                        text.append(content)
                    if "reasoning_content" in delta or "reasoning" in delta:
                        for rk in ("reasoning_content", "reasoning"):
                            if isinstance(delta.get(rk), str):
                                think.append(delta[rk])
                    for tc in delta.get("tool_calls") or ():
                        fn = tc.get("function") if isinstance(tc, dict) else None
                        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                            args.append(fn["arguments"])
                if choice.get("finish_reason"):
                    ex.finish = str(choice["finish_reason"])
        elif dialect == "responses":
            if t == "response.output_text.delta" and isinstance(data.get("delta"), str):
                text.append(data["delta"])
            elif t == "response.function_call_arguments.delta" and isinstance(data.get("delta"), str):
                args.append(data["delta"])
            elif t in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta") and isinstance(
                    data.get("delta"), str):
                think.append(data["delta"])
            elif t in ("response.completed", "response.incomplete", "response.failed"):
                resp = data.get("response") or {}
                if isinstance(resp, dict):
                    ex.usage = _usage(dialect, resp.get("usage"), ex.usage)
                    ex.finish = str(resp.get("status") or t.rsplit(".", 1)[-1])
                if isinstance(resp, dict):
                    ex.chunk_keys.update(f"response.{k}" for k, v in resp.items() if _present(v))
            elif t in ("response.created",):
                resp = data.get("response") or {}
                if isinstance(resp, dict):
                    ex.chunk_keys.update(f"response.{k}" for k, v in resp.items() if _present(v))
            if t == STREAM_TERMINAL["responses"]:
                ex.terminal = True
        elif dialect == "messages":
            if t == "message_start":
                msg = data.get("message") or {}
                if isinstance(msg, dict):
                    ex.usage = _usage(dialect, msg.get("usage"), ex.usage)
                    ex.chunk_keys.update(f"message.{k}" for k, v in msg.items() if _present(v))
            elif t == "content_block_delta":
                delta = data.get("delta") or {}
                if isinstance(delta, dict):
                    if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                        text.append(delta["text"])
                    elif delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                        args.append(delta["partial_json"])
                    elif delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                        think.append(delta["thinking"])
            elif t == "message_delta":
                ex.usage = _usage(dialect, data.get("usage"), ex.usage)
                delta = data.get("delta") or {}
                if isinstance(delta, dict) and delta.get("stop_reason"):
                    ex.finish = str(delta["stop_reason"])
            elif t == STREAM_TERMINAL["messages"]:
                ex.terminal = True
    ex.text = "".join(text)
    ex.tool_args = "".join(args)
    ex.reasoning = "".join(think)
    return ex


def extract_body(dialect: Dialect | None, body: Any) -> Extract:
    """The same facts from a non-streamed answer."""
    ex = Extract(dialect, terminal=True)
    if not isinstance(body, dict):
        return ex
    text: list[str] = []
    args: list[str] = []
    think: list[str] = []
    if dialect == "chat":
        choices = body.get("choices") or []
        if choices and isinstance(choices[0], dict):
            msg = choices[0].get("message") or {}
            if isinstance(msg, dict):
                if isinstance(msg.get("content"), str):
                    text.append(msg["content"])
                for rk in ("reasoning_content", "reasoning"):
                    if isinstance(msg.get(rk), str):
                        think.append(msg[rk])
                for tc in msg.get("tool_calls") or ():
                    fn = tc.get("function") if isinstance(tc, dict) else None
                    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                        args.append(fn["arguments"])
            if choices[0].get("finish_reason"):
                ex.finish = str(choices[0]["finish_reason"])
    elif dialect == "responses":
        for item in body.get("output") or ():
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                for part in item.get("content") or ():
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        text.append(part["text"])
            elif item.get("type") == "function_call" and isinstance(item.get("arguments"), str):
                args.append(item["arguments"])
            elif item.get("type") == "reasoning":
                for part in (item.get("summary") or []) + (item.get("content") or []):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        think.append(part["text"])
        if body.get("status"):
            ex.finish = str(body["status"])
    elif dialect == "messages":
        for block in body.get("content") or ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                text.append(block["text"])
            elif block.get("type") == "tool_use":
                args.append(json.dumps(block.get("input"), separators=(",", ":"), sort_keys=True))
            elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                think.append(block["thinking"])
        if body.get("stop_reason"):
            ex.finish = str(body["stop_reason"])
    ex.usage = _usage(dialect, body.get("usage"))
    ex.text = "".join(text)
    ex.tool_args = "".join(args)
    ex.reasoning = "".join(think)
    return ex


def _args_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def _usage_equal(a: dict[str, int] | None, b: dict[str, int] | None) -> bool:
    """Same counts; input counts may differ by exactly the cache tokens (OpenAI counts them in,
    Anthropic reports them apart)."""
    if not a or not b:
        return False
    common = [k for k in ("input", "output") if k in a and k in b]
    if not common:
        return False
    cache = {a.get("cache", 0), b.get("cache", 0)} - {0}
    return all(a[k] == b[k] or (k == "input" and abs(a[k] - b[k]) in cache) for k in common)


def compare_extracts(up: Extract, cl: Extract, *, client_stream: bool, usage_requested: bool,
                     upstream_cut: bool, client_error: bool = False) -> tuple[list[Entry], StreamSummary]:
    """Findings (as entries: src = upstream answer, dst = client response) and the summary."""
    out: list[Entry] = []
    if upstream_cut and client_error and not client_stream:
        # The upstream broke off and the gateway said so with an error status: the honest outcome.
        summary_only = StreamSummary(upstream_dialect=up.dialect, upstream_frames=up.frames, upstream_text_chars=len(up.text),
                                     upstream_usage=up.usage, upstream_finish=up.finish, upstream_cut=True,
                                     upstream_event_types=up.types)
        if up.text:
            out.append(Entry("dropped", "text", None, _x(up.text), None, "info",
                             "the upstream stream was cut; the gateway answered with an error status instead"))
        return out, summary_only
    # Text.
    if up.text or cl.text:
        if up.text == cl.text:
            out.append(Entry("kept", "text", "text", _x(up.text), _x(cl.text), "info", "reassembled text identical"))
        elif not cl.text:
            out.append(Entry("dropped", "text", None, _x(up.text), None, "error", "text lost: the client received none"))
        else:
            out.append(Entry("changed", "text", "text", _x(up.text), _x(cl.text), "error",
                             f"reassembled text differs ({len(up.text)} chars upstream, {len(cl.text)} to the client)"))
    if up.tool_args or cl.tool_args:
        if _args_equal(up.tool_args, cl.tool_args):
            out.append(Entry("kept", "tool_arguments", "tool_arguments", _x(up.tool_args), _x(cl.tool_args), "info",
                             "tool call arguments identical"))
        elif not cl.tool_args:
            out.append(Entry("dropped", "tool_arguments", None, _x(up.tool_args), None, "error", "tool call arguments lost"))
        else:
            out.append(Entry("changed", "tool_arguments", "tool_arguments", _x(up.tool_args), _x(cl.tool_args), "error",
                             "tool call arguments differ"))
    if up.reasoning or cl.reasoning:
        if up.reasoning == cl.reasoning:
            out.append(Entry("kept", "reasoning", "reasoning", _x(up.reasoning), _x(cl.reasoning), "info",
                             "reasoning/thinking text identical"))
        elif not cl.reasoning:
            out.append(Entry("dropped", "reasoning", None, _x(up.reasoning), None, "warn",
                             "reasoning/thinking text not passed to the client"))
        elif not up.reasoning:
            out.append(Entry("added", None, "reasoning", None, _x(cl.reasoning), "info", "reasoning text added by the gateway"))
        else:
            out.append(Entry("changed", "reasoning", "reasoning", _x(up.reasoning), _x(cl.reasoning), "warn",
                             "reasoning/thinking text differs"))
    # Usage.
    usage_sev: Severity = "error" if usage_requested else "info"
    if up.usage and cl.usage:
        if _usage_equal(up.usage, cl.usage):
            out.append(Entry("kept", "usage", "usage", up.usage, cl.usage, "info", "usage forwarded with the same counts"))
        else:
            out.append(Entry("changed", "usage", "usage", up.usage, cl.usage, "error",
                             f"usage counts differ: {excerpt(up.usage, 400)} -> {excerpt(cl.usage, 400)}"))
    elif up.usage and not cl.usage:
        msg = "usage lost: the upstream reported it, the client got none"
        if not usage_requested:
            msg = "usage not passed on (the client did not ask for it)"
        out.append(Entry("dropped", "usage", None, up.usage, None, usage_sev, msg))
    elif cl.usage and not up.usage:
        out.append(Entry("added", None, "usage", None, cl.usage, "info", "usage reported to the client though the upstream sent none"))
    # Finish reason.
    mapped = False
    if up.finish and cl.finish:
        mapped = finish_reasons_equivalent(up.dialect, up.finish, cl.dialect, cl.finish)
        if up.finish == cl.finish:
            out.append(Entry("kept", "finish_reason", "finish_reason", up.finish, cl.finish, "info", "finish reason forwarded"))
        elif mapped:
            out.append(Entry("renamed", "finish_reason", "finish_reason", up.finish, cl.finish, "info",
                             f"finish reason mapped: {up.finish} -> {cl.finish}"))
        else:
            out.append(Entry("changed", "finish_reason", "finish_reason", up.finish, cl.finish, "warn",
                             f"finish reason not equivalent: {up.finish} -> {cl.finish}"))
    elif up.finish and not cl.finish:
        out.append(Entry("dropped", "finish_reason", None, up.finish, None, "warn", "finish reason lost"))
    if client_stream:
        # Terminal marker.
        marker = STREAM_TERMINAL[cl.dialect] if cl.dialect else "?"
        if cl.terminal:
            out.append(Entry("kept", "terminal", "terminal", marker, marker, "info", f"stream ends with {marker}"))
        elif upstream_cut:
            sev: Severity = "info" if cl.error_event else "warn"
            how = "signalled with an error event" if cl.error_event else "no error event"
            out.append(Entry("dropped", "terminal", None, marker, None, sev, f"upstream stream was cut; client stream ended without {marker} ({how})"))
        else:
            out.append(Entry("dropped", "terminal", None, marker, None, "error", f"client stream ended without its terminal marker {marker}"))
        out.extend(_event_entries(up, cl))
    if upstream_cut:
        # The upstream itself broke off: what the client missed is the gateway's handling of a
        # failure, not a translation loss.
        for e in out:
            if e.severity == "error":
                e.severity = "warn"
                e.message += " (the upstream stream was cut)"
    summary = StreamSummary(
        upstream_dialect=up.dialect, upstream_frames=up.frames, client_frames=cl.frames,
        upstream_text_chars=len(up.text), client_text_chars=len(cl.text), text_equal=up.text == cl.text,
        upstream_usage=up.usage, client_usage=cl.usage, usage_equal=_usage_equal(up.usage, cl.usage),
        upstream_finish=up.finish, client_finish=cl.finish, finish_mapped=mapped, terminal=cl.terminal,
        upstream_cut=upstream_cut, upstream_event_types=up.types, client_event_types=cl.types,
    )
    return out, summary


_IGNORED_CHUNK_KEYS = frozenset({"usage", "sequence_number", "obfuscation"})
_IGNORED_EVENTS = frozenset({"ping"})


def _event_entries(up: Extract, cl: Extract) -> list[Entry]:
    out: list[Entry] = []
    if up.frames == 0:
        return out
    if up.dialect == cl.dialect:
        client_types = set(cl.types)
        terminal = STREAM_TERMINAL.get(up.dialect) if up.dialect else None
        for t in up.types:
            if t not in client_types and t != terminal:  # the terminal marker has its own finding
                sev: Severity = "info" if t in _IGNORED_EVENTS else "warn"
                out.append(Entry("dropped", f"events.{t}", None, t, None, sev, f"event type {t} not passed to the client"))
        up_types = set(up.types)
        for t in cl.types:
            if t not in up_types and t != "error":
                out.append(Entry("added", None, f"events.{t}", None, t, "info", f"event type {t} added by the gateway"))
        for key in sorted(up.chunk_keys - cl.chunk_keys - _IGNORED_CHUNK_KEYS):
            out.append(Entry("dropped", f"chunks.{key}", None, key, None, "warn", f"field {key} dropped from the stream's chunks"))
        return out
    if up.dialect is None or cl.dialect is None:
        return out
    up_types, cl_types = set(up.types), set(cl.types)
    for row in STREAM_EVENT_EQUIVALENCES:
        src, dst = row[up.dialect], row[cl.dialect]
        if src in up_types and dst not in cl_types:
            out.append(Entry("dropped", f"events.{row['moment']}", None, src, None, "warn",
                             f"no {dst} event for the upstream's {src} ({row['moment']})"))
        elif src in up_types and src != dst:
            out.append(Entry("renamed", f"events.{row['moment']}", f"events.{row['moment']}", src, dst, "info",
                             f"event mapped ({row['moment']}): {src} -> {dst}"))
    return out


def _x(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…[elided: {len(text)} chars total]"
