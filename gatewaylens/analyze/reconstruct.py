"""The message a stream builds, rebuilt from its frames on both sides and compared by meaning.

Two streams of one answer never match frame by frame (gateways re-chunk), so each side's frames are
folded into the message a client SDK would end up with: per choice/block the text, refusal and
thinking (with its signature), each tool call with its id, name and *parsed* arguments, the
citations/annotations, and — for Responses — the final object ``response.completed`` closes with.
Re-chunking changes nothing here; a lost or altered delta, a dropped or injected tool call, a
rewritten tool-call id, a lost thinking signature, lost citations, or a final object that
disagrees with its own deltas are entries.

Text and thinking text as a whole are compared by :mod:`gatewaylens.analyze.streams`; this module
owns the tool calls (per call, so parallel calls interleaved in Chat Completions chunks are not
garbled by concatenation) and the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gatewaylens.analyze.translate import Entry
from gatewaylens.analyze.values import excerpt
from gatewaylens.dialects import Dialect

Frame = tuple[str | None, Any]


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


@dataclass(slots=True)
class ToolCall:
    id: str | None = None
    name: str | None = None
    args: str = ""
    final_args: str | None = None  # Responses: function_call_arguments.done / output_item.done


@dataclass(slots=True)
class Rebuilt:
    """What a client SDK would assemble from one stream."""

    dialect: Dialect | None
    text: dict[int, str] = field(default_factory=dict)  # per choice / output item / block index
    refusal: str = ""
    thinking: str = ""
    signatures: list[str] = field(default_factory=list)
    tools: list[ToolCall] = field(default_factory=list)
    annotations: int = 0
    final_text: str | None = None  # Responses: text of the final object's message items
    final_tools: list[ToolCall] | None = None
    done_text: str | None = None  # Responses: output_text.done


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def rebuild(dialect: Dialect | None, frames: Iterable[Frame]) -> Rebuilt:
    r = Rebuilt(dialect)
    if dialect == "chat":
        _chat(r, frames)
    elif dialect == "responses":
        _responses(r, frames)
    elif dialect == "messages":
        _messages(r, frames)
    return r


def rebuild_body(dialect: Dialect | None, body: Any) -> Rebuilt:
    """The same facts from a non-streamed answer (a gateway that buffers a stream, or fakes one)."""
    r = Rebuilt(dialect)
    if not isinstance(body, dict):
        return r
    if dialect == "chat":
        for ch in body.get("choices") or ():
            ch = _obj(ch)
            msg = _obj(ch.get("message"))
            ci = _int(ch.get("index"), 0)
            if isinstance(msg.get("content"), str):
                r.text[ci] = msg["content"]
            r.refusal += _s(msg.get("refusal"))
            r.annotations += len(msg.get("annotations") or ())
            for tc in msg.get("tool_calls") or ():
                tc = _obj(tc)
                fn = _obj(tc.get("function"))
                r.tools.append(ToolCall(id=tc.get("id"), name=fn.get("name"),
                                        args=_s(fn.get("arguments"))))
    elif dialect == "responses":
        for i, item in enumerate(body.get("output") or ()):
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                for p in item.get("content") or ():
                    if isinstance(p, dict):
                        r.text[i] = r.text.get(i, "") + _s(p.get("text"))
                        r.refusal += _s(p.get("refusal"))
                        r.annotations += len(p.get("annotations") or ())
            elif item.get("type") == "function_call":
                r.tools.append(ToolCall(id=item.get("call_id"), name=item.get("name"), args=_s(item.get("arguments"))))
            elif item.get("type") == "reasoning" and isinstance(item.get("encrypted_content"), str):
                r.signatures.append(item["encrypted_content"])
    elif dialect == "messages":
        for i, block in enumerate(body.get("content") or ()):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                r.text[i] = _s(block.get("text"))
                r.annotations += len(block.get("citations") or ())
            elif block.get("type") in ("tool_use", "server_tool_use"):
                inp = block.get("input")
                r.tools.append(ToolCall(id=block.get("id"), name=block.get("name"),
                                        args=json.dumps(inp) if inp is not None else ""))
            elif block.get("type") == "thinking":
                r.thinking += _s(block.get("thinking"))
                if isinstance(block.get("signature"), str):
                    r.signatures.append(block["signature"])
    return r


def _chat(r: Rebuilt, frames: Iterable[Frame]) -> None:
    calls: dict[tuple[int, int], ToolCall] = {}
    for _, data in frames:
        if not isinstance(data, dict):
            continue
        for ch in data.get("choices") or ():
            if not isinstance(ch, dict):
                continue
            ci = _int(ch.get("index"), 0)
            delta = _obj(ch.get("delta"))
            if isinstance(delta.get("content"), str):
                r.text[ci] = r.text.get(ci, "") + delta["content"]
            r.refusal += _s(delta.get("refusal"))
            r.thinking += _s(delta.get("reasoning_content")) or _s(delta.get("reasoning"))
            if isinstance(delta.get("annotations"), list):
                r.annotations += len(delta["annotations"])
            for tc in delta.get("tool_calls") or ():
                if not isinstance(tc, dict):
                    continue
                ti = _int(tc.get("index"), 0)
                call = calls.get((ci, ti))
                if call is None:
                    call = calls[(ci, ti)] = ToolCall()
                    r.tools.append(call)
                if tc.get("id") and call.id is None:
                    call.id = str(tc["id"])
                fn = _obj(tc.get("function"))
                if fn.get("name") and call.name is None:
                    call.name = str(fn["name"])
                call.args += _s(fn.get("arguments"))


def _responses(r: Rebuilt, frames: Iterable[Frame]) -> None:
    calls: dict[int, ToolCall] = {}
    done_text: list[str] = []
    for event, data in frames:
        if not isinstance(data, dict):
            continue
        t = data.get("type") or event
        oi = _int(data.get("output_index"), -1)
        if t == "response.output_item.added":
            item = _obj(data.get("item"))
            if item.get("type") == "function_call":
                calls[oi] = ToolCall(id=item.get("call_id"), name=item.get("name"), args=_s(item.get("arguments")))
                r.tools.append(calls[oi])
        elif t == "response.output_text.delta":
            r.text[oi] = r.text.get(oi, "") + _s(data.get("delta"))
        elif t == "response.output_text.done":
            done_text.append(_s(data.get("text")))
        elif t == "response.refusal.delta":
            r.refusal += _s(data.get("delta"))
        elif t in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            r.thinking += _s(data.get("delta"))
        elif t == "response.output_text.annotation.added":
            r.annotations += 1
        elif t == "response.function_call_arguments.delta" and oi in calls:
            calls[oi].args += _s(data.get("delta"))
        elif t == "response.function_call_arguments.done" and oi in calls:
            calls[oi].final_args = _s(data.get("arguments"))
        elif t == "response.output_item.done":
            item = _obj(data.get("item"))
            if item.get("type") == "reasoning" and isinstance(item.get("encrypted_content"), str):
                r.signatures.append(item["encrypted_content"])
        elif t in ("response.completed", "response.incomplete", "response.failed"):
            resp = _obj(data.get("response"))
            output = resp.get("output")
            if isinstance(output, list) and output:
                text: list[str] = []
                tools: list[ToolCall] = []
                for item in output:
                    if not isinstance(item, dict):
                        continue
                    if item.get("type") == "message":
                        text += [_s(p.get("text")) for p in item.get("content") or () if isinstance(p, dict)]
                    elif item.get("type") == "function_call":
                        tools.append(ToolCall(id=item.get("call_id"), name=item.get("name"), args=_s(item.get("arguments"))))
                r.final_text = "".join(text)
                r.final_tools = tools
    if done_text:
        r.done_text = "".join(done_text)


def _messages(r: Rebuilt, frames: Iterable[Frame]) -> None:
    blocks: dict[int, tuple[str, ToolCall | None]] = {}
    for event, data in frames:
        if not isinstance(data, dict):
            continue
        t = data.get("type") or event
        idx = _int(data.get("index"), -1)
        if t == "content_block_start":
            cb = _obj(data.get("content_block"))
            kind = str(cb.get("type") or "")
            call = None
            if kind in ("tool_use", "server_tool_use"):
                inp = cb.get("input")
                call = ToolCall(id=cb.get("id"), name=cb.get("name"),
                                args=json.dumps(inp) if isinstance(inp, dict) and inp else "")
                r.tools.append(call)
            elif kind == "text" and isinstance(cb.get("text"), str) and cb["text"]:
                r.text[idx] = r.text.get(idx, "") + cb["text"]
            elif kind == "thinking" and isinstance(cb.get("thinking"), str):
                r.thinking += cb["thinking"]
            if isinstance(cb.get("citations"), list):
                r.annotations += len(cb["citations"])
            blocks[idx] = (kind, call)
        elif t == "content_block_delta":
            delta = _obj(data.get("delta"))
            dt = delta.get("type")
            kind, call = blocks.get(idx, ("", None))
            if dt == "text_delta":
                r.text[idx] = r.text.get(idx, "") + _s(delta.get("text"))
            elif dt == "input_json_delta" and call is not None:
                call.args += _s(delta.get("partial_json"))
            elif dt == "thinking_delta":
                r.thinking += _s(delta.get("thinking"))
            elif dt == "signature_delta":
                r.signatures.append(_s(delta.get("signature")))
            elif dt == "citations_delta":
                r.annotations += 1


def _parsed(args: str) -> Any:
    if not args.strip():
        return {}
    try:
        return json.loads(args)
    except ValueError:
        return _Unparsable(args)


class _Unparsable:
    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unparsable) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _x(v: Any) -> Any:
    return excerpt(v, 200) if isinstance(v, str) and len(v) > 200 else v


def compare(up: Rebuilt, cl: Rebuilt) -> list[Entry]:
    """Entries (``src`` = upstream stream, ``dst`` = client stream) for what the client's rebuilt
    message lost, altered or gained."""
    out: list[Entry] = []
    same = up.dialect == cl.dialect
    # Tool calls, one by one, in order.
    for i in range(max(len(up.tools), len(cl.tools))):
        path = f"tool_calls[{i}]"
        if i >= len(cl.tools):
            u = up.tools[i]
            out.append(Entry("dropped", path, None, {"name": u.name, "arguments": _x(u.args)}, None, "error",
                             f"tool call {i + 1} ({u.name}) lost: the client's stream has {len(cl.tools)} of "
                             f"{len(up.tools)}"))
            continue
        c = cl.tools[i]
        if i >= len(up.tools):
            out.append(Entry("added", None, path, None, {"name": c.name, "arguments": _x(c.args)}, "error",
                             f"tool call {i + 1} ({c.name}) the upstream never sent"))
            continue
        u = up.tools[i]
        if u.name != c.name:
            out.append(Entry("changed", f"{path}.name", f"{path}.name", u.name, c.name, "error",
                             f"tool call {i + 1} name changed: {u.name} -> {c.name}"))
        pu, pc = _parsed(u.args), _parsed(c.args)
        if pu != pc:
            if isinstance(pc, _Unparsable):
                msg = f"tool call {i + 1} ({c.name}) arguments are not valid JSON on the client side"
            elif not c.args.strip() and u.args.strip():
                msg = f"tool call {i + 1} ({c.name}) arguments lost"
            else:
                msg = f"tool call {i + 1} ({c.name}) arguments differ"
            out.append(Entry("changed", f"{path}.arguments", f"{path}.arguments", _x(u.args), _x(c.args), "error", msg))
        if u.id and not c.id:
            out.append(Entry("dropped", f"{path}.id", None, u.id, None, "error",
                             f"tool call {i + 1} has no id: the client cannot send its result back"))
        elif u.id and c.id and u.id != c.id:
            out.append(Entry("changed", f"{path}.id", f"{path}.id", u.id, c.id, "warn" if same else "info",
                             f"tool call {i + 1} id rewritten ({u.id} -> {c.id}): the gateway must map it back when "
                             "the result comes in on the next turn"))
    # Refusal text.
    if up.refusal != cl.refusal and (same or cl.dialect != "messages"):
        if not cl.refusal:
            out.append(Entry("dropped", "refusal", None, _x(up.refusal), None, "error", "the refusal text was lost"))
        elif up.refusal:
            out.append(Entry("changed", "refusal", "refusal", _x(up.refusal), _x(cl.refusal), "error", "refusal text differs"))
    # Thinking signatures: only Anthropic-shaped clients can carry them back.
    if up.signatures and cl.dialect == "messages" and up.dialect == "messages":
        if not cl.signatures:
            out.append(Entry("dropped", "thinking.signature", None, _x(up.signatures[0]), None, "warn",
                             "thinking signature lost: the next turn cannot send this thinking block back"))
        elif cl.signatures != up.signatures:
            out.append(Entry("changed", "thinking.signature", "thinking.signature", _x(up.signatures[0]),
                             _x(cl.signatures[0]), "warn", "thinking signature altered: the upstream will reject it"))
    # Citations / annotations.
    if up.annotations > cl.annotations:
        out.append(Entry("dropped", "annotations", None, up.annotations, cl.annotations, "warn",
                         f"citations/annotations lost: {up.annotations} upstream, {cl.annotations} to the client"))
    # The client's final object against its own deltas; a disagreement the upstream's stream
    # already had (same dialect) is not the gateway's.
    inherited = {e.src_path for e in self_consistency(up)} if same else set()
    out.extend(e for e in self_consistency(cl) if e.src_path not in inherited)
    return out


def self_consistency(r: Rebuilt) -> list[Entry]:
    """A Responses stream's final object (and its ``*.done`` events) must match its own deltas."""
    out: list[Entry] = []
    if r.dialect != "responses":
        return out
    deltas = "".join(r.text[k] for k in sorted(r.text))
    if r.final_text is not None and r.final_text != deltas and (deltas or r.final_text):
        out.append(Entry("changed", "response.output", "response.output", _x(deltas), _x(r.final_text), "error",
                         f"the final response object's text ({len(r.final_text)} chars) disagrees with the streamed "
                         f"deltas ({len(deltas)} chars)"))
    if r.done_text is not None and r.done_text != deltas:
        out.append(Entry("changed", "output_text.done", "output_text.done", _x(deltas), _x(r.done_text), "error",
                         "response.output_text.done disagrees with the streamed deltas"))
    if r.final_tools is not None:
        for i, (d, f) in enumerate(zip(r.tools, r.final_tools, strict=False)):
            if _parsed(d.args) != _parsed(f.args):
                out.append(Entry("changed", f"response.output.tool_calls[{i}]", f"response.output.tool_calls[{i}]",
                                 _x(d.args), _x(f.args), "error",
                                 f"the final object's arguments of tool call {i + 1} disagree with the streamed deltas"))
        if len(r.final_tools) != len(r.tools):
            out.append(Entry("changed", "response.output", "response.output", len(r.tools), len(r.final_tools), "error",
                             f"the final object has {len(r.final_tools)} tool call(s), the deltas {len(r.tools)}"))
    for i, call in enumerate(r.tools):
        if call.final_args is not None and _parsed(call.final_args) != _parsed(call.args):
            out.append(Entry("changed", f"tool_calls[{i}].arguments.done", f"tool_calls[{i}].arguments.done",
                             _x(call.args), _x(call.final_args), "error",
                             "function_call_arguments.done disagrees with the streamed argument deltas"))
    return out
