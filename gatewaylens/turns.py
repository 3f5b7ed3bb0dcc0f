"""Multi-turn conversations: turn templates, what a client ends up holding after an answer, and
where a later turn puts it.

A corpus case with ``turns`` is a conversation: turn 1 is a plain request, every later turn is a
*template* built, at capture time, from what the client actually received through that gateway
(never from a canned history).  Three directives may appear anywhere in a template body:

* ``{"$ref": "prev.choices[0].message"}`` — replaced by that value;
* ``{"$splice": "prev.output"}`` — inside a list: replaced by the items of that list;
* ``"... {{prev.id}} ..."`` — inside a string: the value, as text.

A reference is ``<source>[.<path>]``.  Sources: ``prev`` (the answer the client received on the
previous turn, a stream reassembled into the body a non-stream answer would have — see
:func:`assemble`), ``sent`` (the body the client sent on the previous turn, directives expanded),
``turnN`` / ``sentN`` (the same for turn N, 1-based, earlier than this one).  A path is dotted
keys with list selectors: ``[0]``, ``[-1]`` (last), ``[type=tool_use]`` (first item whose
``type`` is ``tool_use``).

A reference to an answer field that the dialect's answer cannot have (``prev.choices`` in a
Messages conversation) is refused when the corpus is loaded; a field the answer could have but
did not (the gateway returned no tool call) leaves the turn unbuilt at capture time, with the
reason recorded.

This module belongs to no stage: capture builds turns with it, analyze reads answers with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gatewaylens.dialects import Dialect

# =============================================================================================
# References
# =============================================================================================

_SOURCE_RE = re.compile(r"^(prev|sent|turn(\d{1,3})|sent(\d{1,3}))$")
_KEY_RE = re.compile(r"[A-Za-z0-9_$-]+")
_SELECTOR_RE = re.compile(r"\[(-?\d{1,6}|[A-Za-z0-9_-]+=[^\]]*)\]")
_INTERP_RE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")

#: The keys of a directive object, each alone in its object.
DIRECTIVES = ("$ref", "$splice")


class RefError(ValueError):
    """A reference that cannot be parsed or cannot point anywhere (corpus-load time)."""


class Unresolved(Exception):
    """A reference the turn's inputs do not have at capture time (the gateway answered something
    else): the turn cannot be built.  ``str()`` says what was missing."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: a key, a list index, or a ``key=value`` selector."""

    key: str | None = None
    index: int | None = None
    match: tuple[str, str] | None = None

    def text(self) -> str:
        if self.key is not None:
            return self.key
        if self.index is not None:
            return f"[{self.index}]"
        assert self.match is not None
        return f"[{self.match[0]}={self.match[1]}]"


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: ``kind`` is ``answer`` (prev/turnN) or ``sent`` (sent/sentN); ``turn`` is
    the absolute turn it points at (1-based) or ``None`` for "the previous one"."""

    text: str
    kind: str
    turn: int | None
    steps: tuple[Step, ...]

    def turn_for(self, current: int) -> int:
        return self.turn if self.turn is not None else current - 1

    def path(self) -> str:
        return join_steps(self.steps)


def join_steps(steps: Iterable[Step]) -> str:
    out = ""
    for s in steps:
        t = s.text()
        out += t if t.startswith("[") or not out else f".{t}"
    return out


def parse_path(path: str) -> tuple[Step, ...]:
    """``choices[0].message.tool_calls[type=function].id`` -> steps; raises :class:`RefError`."""
    steps: list[Step] = []
    i = 0
    expect_key = True
    while i < len(path):
        if path[i] == "[":
            m = _SELECTOR_RE.match(path, i)
            if not m:
                raise RefError(f"bad list selector at {path[i:i + 20]!r} (use [0], [-1] or [type=value])")
            inner = m.group(1)
            if "=" in inner:
                k, _, v = inner.partition("=")
                steps.append(Step(match=(k, v)))
            else:
                steps.append(Step(index=int(inner)))
            i = m.end()
            expect_key = False
            continue
        if path[i] == ".":
            if expect_key:
                raise RefError(f"empty key in path {path!r}")
            i += 1
            expect_key = True
            if i >= len(path):
                raise RefError(f"path {path!r} ends with '.'")
            continue
        if not expect_key:
            raise RefError(f"expected '.' or '[' at {path[i:i + 20]!r} in {path!r}")
        m = _KEY_RE.match(path, i)
        if not m:
            raise RefError(f"bad key at {path[i:i + 20]!r} in {path!r}")
        steps.append(Step(key=m.group(0)))
        i = m.end()
        expect_key = False
    return tuple(steps)


def parse_ref(text: str) -> Ref:
    """``prev.id``, ``sent.messages``, ``turn1.content[0]``, ``sent2`` -> :class:`Ref`."""
    if not isinstance(text, str) or not text.strip():
        raise RefError("a reference must be a non-empty string such as 'prev.id'")
    text = text.strip()
    m = re.match(r"^([a-z]+\d*)(.*)$", text)
    head, rest = (m.group(1), m.group(2)) if m else ("", text)
    sm = _SOURCE_RE.match(head)
    if not sm:
        raise RefError(f"{text!r}: a reference starts with prev, sent, turnN or sentN")
    if rest and rest[0] not in ".[":
        raise RefError(f"{text!r}: a reference starts with prev, sent, turnN or sentN")
    if rest == ".":
        raise RefError(f"{text!r}: nothing after '.'")
    kind = "answer" if head.startswith(("prev", "turn")) else "sent"
    n = sm.group(2) or sm.group(3)
    turn = int(n) if n else None
    if turn is not None and turn < 1:
        raise RefError(f"{text!r}: turns are numbered from 1")
    steps = parse_path(rest[1:] if rest.startswith(".") else rest) if rest else ()
    return Ref(text=text, kind=kind, turn=turn, steps=steps)


# =============================================================================================
# What an answer can hold, per client dialect (for load-time checks of references)
# =============================================================================================

#: Anything below this point is accepted (an open object, or a value of several types).
ANY: Any = "*"

_USAGE = ANY
_CHAT_TOOL_CALL = {"id": None, "type": None, "index": None, "function": {"name": None, "arguments": None}}
_THINKING_BLOCK = {"type": None, "thinking": None, "signature": None, "data": None, "text": None, "index": None,
                   "delta": ANY, "citations": ANY, "cache_control": ANY}
_CHAT_MESSAGE = {
    "role": None, "content": ANY, "refusal": None, "tool_calls": [_CHAT_TOOL_CALL], "function_call": ANY,
    "audio": ANY, "annotations": [ANY],
    # Gateway extensions a client passes back as they came (LiteLLM: reasoning_content,
    # thinking_blocks, provider_specific_fields; Portkey: content_blocks; OpenRouter-style: reasoning).
    "reasoning_content": None, "reasoning": ANY, "reasoning_details": [ANY], "thinking_blocks": [_THINKING_BLOCK],
    "content_blocks": [_THINKING_BLOCK], "provider_specific_fields": ANY,
}
_CHAT_ANSWER = {
    "id": None, "object": None, "created": None, "model": None, "system_fingerprint": None, "service_tier": None,
    "usage": _USAGE, "provider_specific_fields": ANY,
    "choices": [{"index": None, "message": _CHAT_MESSAGE, "finish_reason": None, "logprobs": ANY,
                 "provider_specific_fields": ANY}],
}
_MESSAGES_BLOCK = {
    "type": None, "text": None, "citations": [ANY], "id": None, "name": None, "input": ANY, "thinking": None,
    "signature": None, "data": None, "tool_use_id": None, "content": ANY, "is_error": None, "caller": ANY,
    "cache_control": ANY,
}
_MESSAGES_ANSWER = {
    "id": None, "type": None, "role": None, "model": None, "content": [_MESSAGES_BLOCK], "stop_reason": None,
    "stop_sequence": None, "stop_details": ANY, "usage": _USAGE, "container": ANY, "context_management": ANY,
}
_RESPONSES_ITEM = {
    "type": None, "id": None, "status": None, "role": None,
    "content": [{"type": None, "text": None, "annotations": [ANY], "logprobs": [ANY], "refusal": None}],
    "name": None, "call_id": None, "arguments": None, "output": ANY, "summary": [{"type": None, "text": None}],
    "encrypted_content": None, "namespace": None, "action": ANY, "queries": ANY, "results": ANY, "input": ANY,
    "server_label": None,
}
_RESPONSES_ANSWER = {
    "id": None, "object": None, "created_at": None, "completed_at": None, "status": None, "error": ANY,
    "incomplete_details": ANY, "model": None, "output": [_RESPONSES_ITEM], "output_text": None, "usage": _USAGE,
    "previous_response_id": None, "conversation": ANY, "instructions": ANY, "max_output_tokens": None,
    "max_tool_calls": None, "metadata": ANY, "parallel_tool_calls": None, "reasoning": ANY, "store": None,
    "temperature": None, "text": ANY, "tool_choice": ANY, "tools": [ANY], "top_p": None, "top_logprobs": None,
    "truncation": None, "user": None, "background": None, "service_tier": None, "prompt_cache_key": None,
    "safety_identifier": None, "prompt": ANY,
}
#: The keys each client dialect's answer may hold (documented fields plus the gateway extensions
#: clients pass back); ``None`` marks a leaf, ``ANY`` an open value, ``[shape]`` a list.
ANSWER_SHAPES: dict[Dialect, dict[str, Any]] = {
    "chat": _CHAT_ANSWER, "messages": _MESSAGES_ANSWER, "responses": _RESPONSES_ANSWER,
}


def check_answer_path(dialect: Dialect, steps: tuple[Step, ...]) -> str | None:
    """``None`` when a ``dialect`` answer can have something at ``steps``, else why not."""
    return _check_shape(ANSWER_SHAPES[dialect], steps, f"a {dialect} answer")


def _check_shape(shape: Any, steps: tuple[Step, ...], what: str) -> str | None:
    here: list[Step] = []
    for s in steps:
        where = join_steps(here) or "its top level"
        if shape is ANY:
            return None
        if shape is None:
            return f"{what} holds a plain value at {where}, which has no {s.text()!r}"
        if isinstance(shape, list):
            if s.key is not None:
                return f"{what} holds a list at {where}: select an item with [0], [-1] or [type=...] before {s.key!r}"
            if s.match is not None and isinstance(shape[0], dict) and shape[0] is not ANY and s.match[0] not in shape[0]:
                return f"{what} has list items at {where} with no {s.match[0]!r} to select by"
            shape = shape[0]
        elif isinstance(shape, dict):
            if s.key is None:
                return f"{what} holds an object at {where}, not a list ({s.text()} cannot select in it)"
            if s.key not in shape:
                known = ", ".join(sorted(shape))
                return f"{what} has no {s.key!r} at {where} (it can have: {known})"
            shape = shape[s.key]
        here.append(s)
    return None


def check_template_path(template: Any, steps: tuple[Step, ...], what: str) -> str | None:
    """Like :func:`check_answer_path`, against an earlier turn's own template (``sent`` refs): a path
    that runs into a directive or an open value cannot be checked before capture, and is accepted."""
    node = template
    here: list[Step] = []
    for s in steps:
        where = join_steps(here) or "its top level"
        if is_directive(node) or (isinstance(node, str) and _INTERP_RE.search(node)):
            return None
        if isinstance(node, list):
            if any(is_directive(x) and "$splice" in x for x in node):
                return None
            if s.key is not None:
                return f"{what} holds a list at {where}: select an item before {s.key!r}"
            if s.index is not None:
                if not -len(node) <= s.index < len(node):
                    return f"{what} has {len(node)} item(s) at {where}, no [{s.index}]"
                node = node[s.index]
            else:
                assert s.match is not None
                found = [x for x in node if isinstance(x, dict) and str(x.get(s.match[0])) == s.match[1]]
                if not found:
                    return f"{what} has no item with {s.match[0]}={s.match[1]} at {where}"
                node = found[0]
        elif isinstance(node, dict):
            if s.key is None:
                return f"{what} holds an object at {where}, not a list"
            if s.key not in node:
                return f"{what} has no {s.key!r} at {where}"
            node = node[s.key]
        else:
            return f"{what} holds a plain value at {where}, which has no {s.text()!r}"
        here.append(s)
    return None


# =============================================================================================
# Walking a template
# =============================================================================================


def is_directive(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DIRECTIVES


@dataclass(frozen=True, slots=True)
class Use:
    """One reference inside a template: where it sits, how it is used, what it says."""

    at: str
    how: str  # "ref", "splice" or "text"
    ref: str


def uses(template: Any, at: str = "") -> Iterator[Use]:
    """Every reference in a template, with its place (``messages[2].tool_call_id``)."""
    if is_directive(template):
        (how, ref), = template.items()
        yield Use(at or "(body)", how[1:], ref if isinstance(ref, str) else json.dumps(ref))
    elif isinstance(template, dict):
        for k, v in template.items():
            if isinstance(k, str) and k.startswith("$") and k in DIRECTIVES:
                yield Use(f"{at}.{k}" if at else k, "bad", "a directive must be alone in its object")
                continue
            yield from uses(v, f"{at}.{k}" if at else str(k))
    elif isinstance(template, list):
        for i, v in enumerate(template):
            yield from uses(v, f"{at}[{i}]")
    elif isinstance(template, str):
        for m in _INTERP_RE.finditer(template):
            yield Use(at or "(body)", "text", m.group(1))


def check_turn(template: Any, turn: int, dialect: Dialect, earlier: list[Any]) -> tuple[str, str] | None:
    """Load-time check of turn ``turn`` (1-based) of a conversation: ``(field, message)`` of the first
    problem (``field`` is the place in the body), or ``None``.  ``earlier`` holds the templates of
    turns 1..turn-1."""
    for u in uses(template):
        if u.how == "bad":
            return u.at, u.ref
        try:
            ref = parse_ref(u.ref)
        except RefError as e:
            return u.at, str(e)
        if turn == 1:
            return u.at, f"{u.how} {ref.text!r}: turn 1 has no earlier turn to refer to"
        target = ref.turn_for(turn)
        if target >= turn:
            return u.at, f"{ref.text!r}: turn {turn} can only refer to earlier turns (1..{turn - 1})"
        if ref.kind == "answer":
            why = check_answer_path(dialect, ref.steps)
        else:
            why = check_template_path(earlier[target - 1], ref.steps, f"the body sent on turn {target}")
        if why:
            return u.at, f"{ref.text!r}: {why}"
        if u.how == "splice" and not _may_be_list(dialect, ref, earlier):
            return u.at, f"$splice {ref.text!r}: the value there is not a list"
    return None


def _may_be_list(dialect: Dialect, ref: Ref, earlier: list[Any]) -> bool:
    if ref.kind == "answer":
        shape: Any = ANSWER_SHAPES[dialect]
        for s in ref.steps:
            if shape is ANY or shape is None:
                return shape is ANY
            shape = shape[0] if isinstance(shape, list) else shape.get(s.key or "")
        return shape is ANY or isinstance(shape, list)
    return True  # checked at capture time


# =============================================================================================
# Building a turn
# =============================================================================================


@dataclass(slots=True)
class Resolved:
    """What one reference was replaced with (kept with the exchange: how the turn was built)."""

    at: str
    ref: str
    how: str
    value: Any = None


@dataclass(slots=True)
class TurnInputs:
    """What earlier turns of one conversation left the client with: for each turn, the body it sent
    and the answer it ended up holding (``None`` when it got no usable answer)."""

    sent: list[Any] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)

    def source(self, ref: Ref, current: int) -> Any:
        n = ref.turn_for(current)
        pool = self.answers if ref.kind == "answer" else self.sent
        if not 1 <= n <= len(pool):
            raise Unresolved(f"{ref.text}: turn {n} was not captured")
        value = pool[n - 1]
        if value is None:
            raise Unresolved(f"{ref.text}: the client got no usable answer on turn {n}")
        return value


def lookup(value: Any, steps: tuple[Step, ...]) -> Any:
    """Follow ``steps`` into ``value``; raises :class:`Unresolved` naming the missing part."""
    here: list[Step] = []
    for s in steps:
        where = join_steps(here) or "the top level"
        if s.key is not None:
            if not isinstance(value, dict) or s.key not in value:
                raise Unresolved(f"no {s.key!r} at {where}")
            value = value[s.key]
        elif s.index is not None:
            if not isinstance(value, list) or not -len(value) <= s.index < len(value):
                size = len(value) if isinstance(value, list) else "no"
                raise Unresolved(f"no item [{s.index}] at {where} ({size} item(s))")
            value = value[s.index]
        else:
            assert s.match is not None
            k, want = s.match
            found = [x for x in value if isinstance(x, dict) and _as_text(x.get(k)) == want] if isinstance(value, list) else []
            if not found:
                raise Unresolved(f"no item with {k}={want} at {where}")
            value = found[0]
        here.append(s)
    return value


def _as_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def build_turn(template: Any, turn: int, inputs: TurnInputs) -> tuple[Any, list[Resolved]]:
    """The body of turn ``turn``: ``template`` with every directive replaced from ``inputs``.
    Raises :class:`Unresolved` ("<place>: <ref>: <what is missing>") when a reference cannot be met."""
    resolved: list[Resolved] = []

    def get(ref_text: str, at: str) -> Any:
        ref = parse_ref(ref_text)
        try:
            return lookup(inputs.source(ref, turn), ref.steps)
        except Unresolved as e:
            msg = str(e)
            raise Unresolved(f"{at}: {msg}" if msg.startswith(ref.text) else f"{at}: {ref.text}: {msg}") from None

    def walk(node: Any, at: str) -> Any:
        if is_directive(node):
            (how, ref_text), = node.items()
            value = get(ref_text, at or "(body)")
            resolved.append(Resolved(at or "(body)", ref_text, how[1:], value))
            return _copy(value)
        if isinstance(node, dict):
            return {k: walk(v, f"{at}.{k}" if at else k) for k, v in node.items()}
        if isinstance(node, list):
            out: list[Any] = []
            for i, v in enumerate(node):
                where = f"{at}[{i}]"
                if is_directive(v) and "$splice" in v:
                    items = get(v["$splice"], where)
                    if not isinstance(items, list):
                        raise Unresolved(f"{where}: {v['$splice']}: the value there is not a list "
                                         f"({type(items).__name__})")
                    resolved.append(Resolved(where, v["$splice"], "splice", items))
                    out.extend(_copy(items))
                else:
                    out.append(walk(v, where))
            return out
        if isinstance(node, str) and "{{" in node:
            def sub(m: re.Match[str]) -> str:
                value = get(m.group(1), at)
                resolved.append(Resolved(at, m.group(1), "text", value))
                return _as_text(value)
            return _INTERP_RE.sub(sub, node)
        return node

    return walk(template, ""), resolved


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


# =============================================================================================
# What the client holds after an answer
# =============================================================================================

Frame = tuple[str | None, Any]  # (event name, parsed data: JSON value or the raw text)


def answer_body(dialect: Dialect | None, body: Any, frames: Iterable[Frame] | None) -> Any | None:
    """The answer as a client holds it: the JSON body, or a stream reassembled by :func:`assemble`."""
    if frames is not None:
        return assemble(dialect, list(frames))
    return body if isinstance(body, dict) else None


def assemble(dialect: Dialect | None, frames: list[Frame]) -> dict[str, Any] | None:
    """A stream reassembled into the body a non-stream answer would have, the way the official
    SDKs' stream helpers accumulate it (``openai`` ChatCompletionStreamState / ResponseStream,
    ``anthropic`` MessageStream).  ``None`` when the frames hold nothing of that dialect."""
    fn: dict[str, Callable[[list[Frame]], dict[str, Any] | None]] = {
        "chat": _assemble_chat, "responses": _assemble_responses, "messages": _assemble_messages}
    return fn[dialect](frames) if dialect in fn else None


def _merge_delta(acc: dict[str, Any], delta: dict[str, Any]) -> None:
    """The OpenAI SDK's rule for chat deltas: strings concatenate, objects merge, lists of objects
    with an ``index`` merge by index, other lists extend, anything else is replaced."""
    for k, v in delta.items():
        cur = acc.get(k)
        if cur is None:
            if isinstance(v, list):
                acc[k] = []
                _merge_list(acc[k], v)
            else:
                acc[k] = _copy(v) if isinstance(v, dict) else v
        elif k in ("index", "type"):  # discriminators are replaced, as the SDK does
            acc[k] = v
        elif k in ("id", "role"):  # sent once; a gateway repeating them must not double them
            acc[k] = cur or v
        elif isinstance(cur, str) and isinstance(v, str):
            acc[k] = cur + v
        elif isinstance(cur, dict) and isinstance(v, dict):
            _merge_delta(cur, v)
        elif isinstance(cur, list) and isinstance(v, list):
            _merge_list(cur, v)
        elif v is not None:
            acc[k] = v


def _merge_list(acc: list[Any], items: list[Any]) -> None:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            same = next((x for x in acc if isinstance(x, dict) and x.get("index") == item["index"]), None)
            if same is not None:
                _merge_delta(same, item)
                continue
            new: dict[str, Any] = {}
            _merge_delta(new, item)
            acc.append(new)
        else:
            acc.append(_copy(item))


def _assemble_chat(frames: list[Frame]) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    choices: dict[int, dict[str, Any]] = {}
    for _event, data in frames:
        if not isinstance(data, dict) or ("choices" not in data and "usage" not in data):
            continue
        if out is None:
            out = {k: v for k, v in data.items() if k not in ("choices", "usage", "object")}
            out["object"] = "chat.completion"
        for k in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if data.get(k) is not None and out.get(k) is None:
                out[k] = data[k]
        if data.get("usage"):
            out["usage"] = data["usage"]
        for ch in data.get("choices") or ():
            if not isinstance(ch, dict):
                continue
            idx = ch.get("index", 0) if isinstance(ch.get("index", 0), int) else 0
            acc = choices.setdefault(idx, {"index": idx, "message": {}, "finish_reason": None, "logprobs": None})
            delta = ch.get("delta")
            if isinstance(delta, dict):
                _merge_delta(acc["message"], delta)
            if ch.get("finish_reason"):
                acc["finish_reason"] = ch["finish_reason"]
    if out is None:
        return None
    for acc in choices.values():
        _finish_chat_message(acc["message"])
    out["choices"] = [choices[i] for i in sorted(choices)]
    return out


def _finish_chat_message(msg: dict[str, Any]) -> None:
    for tc in msg.get("tool_calls") or ():
        if isinstance(tc, dict):
            tc.pop("index", None)
    # LiteLLM streams thinking_blocks as fragments: text in some, the signature in the last; its own
    # stream_chunk_builder joins them into one block per signature (litellm 1.106.12,
    # litellm_core_utils/streaming_chunk_builder_utils.py get_combined_thinking_content).
    if isinstance(msg.get("thinking_blocks"), list):
        msg["thinking_blocks"] = _join_thinking(msg["thinking_blocks"])
    # Portkey streams content_blocks as [{index, delta: {thinking|signature|text|data}}]
    # (@portkey-ai/gateway 1.15.2, build/start-server.js, anthropic chatComplete stream transform);
    # non-streamed it sends the blocks themselves: rebuild those.
    blocks = msg.get("content_blocks")
    if isinstance(blocks, list) and any(isinstance(b, dict) and isinstance(b.get("delta"), dict) for b in blocks):
        msg["content_blocks"] = [_portkey_block(b) for b in blocks if isinstance(b, dict)]
    if msg.get("role") is None:
        msg["role"] = "assistant"
    msg.setdefault("content", None)


def _join_thinking(fragments: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    text: list[str] = []
    for frag in fragments:
        if not isinstance(frag, dict):
            continue
        if frag.get("type") == "redacted_thinking":
            if text:
                out.append({"type": "thinking", "thinking": "".join(text)})
                text = []
            out.append(dict(frag))
            continue
        if isinstance(frag.get("thinking"), str):
            text.append(frag["thinking"])
        if frag.get("signature"):
            out.append({"type": "thinking", "thinking": "".join(text), "signature": frag["signature"]})
            text = []
    if text:  # thinking the client got without any signature: kept as received
        out.append({"type": "thinking", "thinking": "".join(text)})
    return out


def _portkey_block(b: dict[str, Any]) -> dict[str, Any]:
    delta = b.get("delta") if isinstance(b.get("delta"), dict) else b
    assert isinstance(delta, dict)
    block = {k: v for k, v in delta.items() if k != "index"}
    if "type" not in block:
        block["type"] = ("thinking" if "thinking" in block or "signature" in block
                         else "redacted_thinking" if "data" in block else "text")
    return block


def _assemble_responses(frames: list[Frame]) -> dict[str, Any] | None:
    base: dict[str, Any] | None = None
    items: dict[int, dict[str, Any]] = {}
    final: dict[str, Any] | None = None
    for event, data in frames:
        if not isinstance(data, dict):
            continue
        t = event or data.get("type")
        resp = data.get("response")
        if t in ("response.completed", "response.incomplete", "response.failed") and isinstance(resp, dict):
            final = resp
        elif t in ("response.created", "response.in_progress") and isinstance(resp, dict):
            base = resp
        elif t == "response.output_item.done" and isinstance(data.get("item"), dict):
            idx = data.get("output_index")
            items[idx if isinstance(idx, int) else len(items)] = data["item"]
    if final is not None:
        out = _copy(final)
        if not out.get("output") and items:  # a terminal event without its items: use the done items
            out["output"] = [items[i] for i in sorted(items)]
        return dict(out)
    if base is None and not items:
        return None
    out = _copy(base or {})
    out["output"] = [items[i] for i in sorted(items)]
    return dict(out)


def _assemble_messages(frames: list[Frame]) -> dict[str, Any] | None:
    msg: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, list[str]] = {}
    for event, data in frames:
        if not isinstance(data, dict):
            continue
        t = event or data.get("type")
        if t == "message_start" and isinstance(data.get("message"), dict):
            msg = _copy(data["message"])
        elif t == "content_block_start" and isinstance(data.get("content_block"), dict):
            idx = data.get("index", len(blocks))
            blocks[idx] = _copy(data["content_block"])
        elif t == "content_block_delta" and isinstance(data.get("delta"), dict):
            idx = data.get("index", 0)
            block = blocks.setdefault(idx, {})
            d = data["delta"]
            dt = d.get("type")
            if dt == "text_delta":
                block["text"] = str(block.get("text") or "") + str(d.get("text") or "")
            elif dt == "input_json_delta":
                partial.setdefault(idx, []).append(str(d.get("partial_json") or ""))
            elif dt == "thinking_delta":
                block["thinking"] = str(block.get("thinking") or "") + str(d.get("thinking") or "")
            elif dt == "signature_delta":
                block["signature"] = str(d.get("signature") or "")
            elif dt == "citations_delta" and isinstance(d.get("citation"), dict):
                block.setdefault("citations", []).append(d["citation"])
        elif t == "message_delta":
            if msg is None:
                msg = {}
            if isinstance(data.get("delta"), dict):
                msg.update(data["delta"])
            if isinstance(data.get("usage"), dict):
                usage = msg.setdefault("usage", {})
                if isinstance(usage, dict):
                    usage.update(data["usage"])
    if msg is None and not blocks:
        return None
    for idx, parts in partial.items():
        text = "".join(parts)
        try:
            blocks[idx]["input"] = json.loads(text) if text.strip() else {}
        except ValueError:
            blocks[idx]["input"] = text  # what a client holds from a half tool call
    out = msg or {}
    out["content"] = [blocks[i] for i in sorted(blocks)]
    return out
