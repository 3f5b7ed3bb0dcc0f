"""The legal event sequences of each dialect's stream (shared dialect knowledge, like ``dialects.py``).

:func:`check` walks one SSE stream (``(event name, parsed data)`` pairs, data being a JSON value or
the raw text such as ``[DONE]``) and returns every :class:`Violation` of its dialect's grammar,
each with the index of the frame that breaks it.  The rules, and where they come from:

**Chat Completions** (``chat``) — OpenAI API reference, "The chat completion chunk object" and
``stream_options.include_usage`` (https://platform.openai.com/docs/api-reference/chat/streaming,
https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options):

* every frame is a JSON ``chat.completion.chunk`` except the last, ``data: [DONE]``, sent once;
  nothing follows it (the official SDK stops reading there: openai-python
  ``src/openai/_streaming.py`` ``Stream.__stream__`` breaks on ``[DONE]``, so anything later,
  usage included, never reaches the caller);
* "each chunk has the same ID" and "the same timestamp" (``id``, ``created``);
* per choice ``index``: nothing after its ``finish_reason``; a tool call's first delta (per
  ``tool_calls[].index``, contiguous from 0) carries its ``id`` and ``function.name``;
* with ``include_usage`` "an additional chunk will be streamed before the ``data: [DONE]``
  message … the ``choices`` field will always be an empty array": the usage chunk is the last one
  before ``[DONE]`` and has no choices;
* a chunk carrying ``error`` ends the stream (openai-python raises ``APIError`` on it).

**Responses** (``responses``) — OpenAI API reference, "Streaming events"
(https://platform.openai.com/docs/api-reference/responses-streaming):

* the first event is ``response.created``; each event has an ``event:`` line equal to its
  ``type`` (openai-python accepts a missing ``event:`` line, so a missing one is a warning, a
  different one an error) and a ``sequence_number`` that increases by one;
* ``response.output_item.added`` opens output ``output_index`` (contiguous from 0) and
  ``response.output_item.done`` closes it; ``content_part.added`` opens ``content_index`` inside
  it; every delta/done event names an opened, not yet closed item (and part) with the item's id;
* exactly one terminal event — ``response.completed``, ``response.incomplete`` or
  ``response.failed`` (an ``error`` event also ends it) — with every item closed; nothing after;
* the terminal event's ``response.usage`` carries the usage.

**Messages** (``messages``) — Anthropic, "Streaming Messages"
(https://docs.anthropic.com/en/docs/build-with-claude/streaming):

* "each event includes a named event type and associated JSON data … an SSE event name (e.g.
  ``event: message_stop``), and the matching event ``type`` in its data"; anthropic-sdk-python
  ``src/anthropic/_streaming.py`` ``Stream.__stream__`` dispatches on the ``event:`` name and
  silently skips frames without one, so a missing name loses the frame: an error;
* flow: ``message_start``; then per content block ``content_block_start``, one or more
  ``content_block_delta``, ``content_block_stop``, with ``index`` matching the block's position
  in the final ``content`` (contiguous from 0); then one or more ``message_delta``; then a final
  ``message_stop``; ``ping`` events anywhere; an ``error`` event ends the stream;
* a delta fits its block: ``text_delta``/``citations_delta`` in ``text``, ``input_json_delta``
  in ``tool_use`` (and server tool blocks), ``thinking_delta``/``signature_delta`` in
  ``thinking``;
* ``message_delta.usage`` carries the cumulative output token count.

A violation's ``code`` is stable (``first_event``, ``event_name``, ``event_name_missing``,
``not_json``, ``sequence_number``, ``after_terminal``, ``usage_after_done``, ``terminal_repeated``,
``index_gap``, ``delta_before_start``, ``delta_after_stop``, ``block_not_closed``,
``delta_type``, ``delta_after_finish``, ``tool_call_start``, ``id_inconsistent``,
``usage_position``, ``terminal_missing``); its ``severity`` says what a client loses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from gatewaylens.dialects import Dialect

Severity = Literal["info", "warn", "error"]
Frame = tuple[str | None, Any]


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default

#: Terminal events of a Responses stream.
RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
#: The delta types each Anthropic content block type accepts.
BLOCK_DELTAS: dict[str, frozenset[str]] = {
    "text": frozenset({"text_delta", "citations_delta"}),
    "tool_use": frozenset({"input_json_delta"}),
    "server_tool_use": frozenset({"input_json_delta"}),
    "mcp_tool_use": frozenset({"input_json_delta"}),
    "thinking": frozenset({"thinking_delta", "signature_delta"}),
}
#: Codes and what each means (README "Stream grammar checks" renders this table).
CODES: dict[str, str] = {
    "first_event": "the stream does not open with its dialect's first event",
    "event_name": "the SSE `event:` name differs from the data's `type`",
    "event_name_missing": "a frame has no SSE `event:` line where the dialect sends one",
    "not_json": "a data frame is not JSON",
    "sequence_number": "a Responses event lacks `sequence_number` or it does not increase by one",
    "after_terminal": "frames after the terminal event/marker",
    "usage_after_done": "the usage chunk comes after `data: [DONE]`, where SDKs have stopped reading",
    "terminal_repeated": "the terminal event/marker is sent twice",
    "terminal_missing": "the stream ends without its terminal event/marker",
    "index_gap": "a block/item/tool-call index is not the next one",
    "delta_before_start": "a delta for a block/item/part that was not opened",
    "delta_after_stop": "a delta or stop for a block/item that was already closed",
    "block_not_closed": "the message/response ends (message_delta, terminal) while a block/item is open",
    "delta_type": "a delta type that does not fit its block",
    "delta_after_finish": "content for a choice after its finish_reason",
    "tool_call_start": "a tool call's first delta lacks its id or function name",
    "id_inconsistent": "chunks/events of one stream disagree on the response or item id",
    "usage_position": "usage sent where the grammar does not put it (on a chunk with choices, "
                      "not the last before [DONE], a message_delta without usage)",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One break of the grammar at frame ``index`` (0-based over all frames of the stream)."""

    code: str
    index: int
    event: str
    message: str
    severity: Severity


def frame_kind(dialect: Dialect | None, event: str | None, data: Any) -> str:
    """The event type of a frame: its data's ``type``, else its ``event:`` name, else ``chunk``."""
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return str(data["type"])
    if event:
        return event
    if data == "[DONE]":
        return "[DONE]"
    return "chunk"


def check(dialect: Dialect | None, frames: Iterable[Frame], *, usage_expected: bool = False) -> list[Violation]:
    """Every violation of ``dialect``'s stream grammar in ``frames``.  ``usage_expected``: the
    client asked for usage in the stream (Chat Completions ``stream_options.include_usage``)."""
    fl = list(frames)
    if dialect == "chat":
        return _Chat(fl, usage_expected).run()
    if dialect == "responses":
        return _Responses(fl).run()
    if dialect == "messages":
        return _Messages(fl).run()
    return []


class _Walk:
    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.out: list[Violation] = []
        self._seen: set[tuple[str, str]] = set()

    def v(self, code: str, i: int, event: str, message: str, severity: Severity, *, key: str = "") -> None:
        """Record a violation; one per (code, key) so a broken pattern repeated on every frame is one finding."""
        k = (code, key)
        if k in self._seen:
            return
        self._seen.add(k)
        self.out.append(Violation(code, i, event, f"frame {i} ({event}): {message}", severity))


class _Chat(_Walk):
    def __init__(self, frames: list[Frame], usage_expected: bool) -> None:
        super().__init__(frames)
        self.usage_expected = usage_expected

    def run(self) -> list[Violation]:
        done_at: int | None = None
        ids: set[str] = set()
        created: set[Any] = set()
        finished: dict[int, int] = {}
        tool_started: dict[tuple[int, int], bool] = {}
        tool_next: dict[int, int] = {}
        usage_at: int | None = None
        errored = False
        for i, (event, data) in enumerate(self.frames):
            kind = frame_kind("chat", event, data)
            if data == "[DONE]":
                if done_at is not None:
                    self.v("terminal_repeated", i, kind, "[DONE] sent again", "warn")
                done_at = i if done_at is None else done_at
                continue
            if done_at is not None:
                if isinstance(data, dict) and data.get("usage"):
                    self.v("usage_after_done", i, kind, f"usage arrives after [DONE] (frame {done_at}); SDKs stop "
                           "reading at [DONE], so the client never sees it", "error")
                else:
                    self.v("after_terminal", i, kind, f"a frame after [DONE] (frame {done_at})", "error")
                continue
            if not isinstance(data, dict):
                self.v("not_json", i, kind, "data is not a JSON object", "error")
                continue
            if "error" in data and not data.get("choices"):
                errored = True
                continue
            if isinstance(data.get("id"), str):
                ids.add(data["id"])
                if len(ids) == 2:
                    self.v("id_inconsistent", i, kind, f"chunk id changed mid-stream ({sorted(ids)})", "warn")
            if "created" in data:
                created.add(data["created"])
                if len(created) == 2:
                    self.v("id_inconsistent", i, kind, "chunk `created` changed mid-stream", "info", key="created")
            choices = data.get("choices")
            if data.get("usage"):
                usage_at = i
                if choices:
                    self.v("usage_position", i, kind, "usage rides on a chunk with choices (the grammar sends it "
                           "on its own chunk with `choices: []`)", "info", key="choices")
            for ch in choices if isinstance(choices, list) else ():
                if not isinstance(ch, dict):
                    continue
                idx = ch.get("index", 0)
                idx = idx if isinstance(idx, int) else 0
                delta = _obj(ch.get("delta"))
                has_content = any(delta.get(k) not in (None, "", []) for k in ("content", "tool_calls", "refusal",
                                                                                  "reasoning_content", "reasoning"))
                if idx in finished and has_content:
                    self.v("delta_after_finish", i, kind, f"content for choice {idx} after its finish_reason "
                           f"(frame {finished[idx]})", "error", key=str(idx))
                for tc in delta.get("tool_calls") or ():
                    if not isinstance(tc, dict):
                        continue
                    ti = tc.get("index", 0)
                    ti = ti if isinstance(ti, int) else 0
                    if (idx, ti) not in tool_started:
                        expected = tool_next.get(idx, 0)
                        if ti != expected:
                            self.v("index_gap", i, kind, f"tool call index {ti} where {expected} comes next", "error",
                                   key=f"{idx}.{ti}")
                        tool_next[idx] = max(expected, ti + 1)
                        fn = _obj(tc.get("function"))
                        tool_started[(idx, ti)] = True
                        if not tc.get("id") or not fn.get("name"):
                            self.v("tool_call_start", i, kind, f"tool call {ti} starts without its id or name", "error",
                                   key=f"{idx}.{ti}")
                if ch.get("finish_reason") and idx not in finished:
                    finished[idx] = i
        if done_at is None and not errored:
            self.v("terminal_missing", len(self.frames) - 1, "end", "the stream ends without data: [DONE]", "error")
        if usage_at is not None and done_at is not None:
            # The usage chunk is the last chunk before [DONE].
            last_chunk = max((i for i, (_, d) in enumerate(self.frames[:done_at]) if isinstance(d, dict)), default=None)
            if last_chunk is not None and usage_at != last_chunk:
                self.v("usage_position", usage_at, "chunk", f"the usage chunk is not the last before [DONE] (frame "
                       f"{last_chunk} is)", "warn", key="last")
        return self.out


class _Responses(_Walk):
    def run(self) -> list[Violation]:
        terminal_at: int | None = None
        expect_seq: int | None = None
        opened: dict[int, str | None] = {}
        closed: set[int] = set()
        parts: set[tuple[int, int]] = set()
        resp_ids: set[str] = set()
        ended = False
        for i, (event, data) in enumerate(self.frames):
            kind = frame_kind("responses", event, data)
            if data == "[DONE]" and (terminal_at is not None or ended):
                # Chat Completions' end marker after the real terminal event: the OpenAI SDK stops
                # on it, the Anthropic SDK ignores it; harmless but not this dialect's.
                self.v("after_terminal", i, kind, "data: [DONE] (Chat Completions' marker) after the terminal event",
                       "info", key="done")
                continue
            if not isinstance(data, dict):
                self.v("not_json", i, kind, "data is not a JSON object", "error")
                continue
            dtype = data.get("type")
            if event is None:
                self.v("event_name_missing", i, kind, "no `event:` line (OpenAI sends one per event)", "warn")
            elif isinstance(dtype, str) and event != dtype:
                self.v("event_name", i, kind, f"`event: {event}` but type {dtype!r}", "error", key=event)
            seq = data.get("sequence_number")
            if not isinstance(seq, int) or isinstance(seq, bool):
                self.v("sequence_number", i, kind, "no sequence_number", "warn", key="missing")
            else:
                if expect_seq is not None and seq != expect_seq:
                    self.v("sequence_number", i, kind, f"sequence_number {seq} where {expect_seq} comes next", "warn",
                           key="order")
                expect_seq = seq + 1
            if i == 0 and kind != "response.created":
                self.v("first_event", i, kind, "the first event is not response.created", "error")
            if terminal_at is not None:
                if kind in RESPONSES_TERMINAL:
                    self.v("terminal_repeated", i, kind, "a second terminal event", "warn")
                else:
                    self.v("after_terminal", i, kind, f"an event after the terminal event (frame {terminal_at})", "error")
                continue
            resp = data.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("id"), str):
                resp_ids.add(resp["id"])
                if len(resp_ids) == 2:
                    self.v("id_inconsistent", i, kind, f"the response id changed mid-stream ({sorted(resp_ids)})", "warn")
            oi = data.get("output_index")
            if kind == "response.output_item.added":
                expected = len(opened)
                if oi != expected:
                    self.v("index_gap", i, kind, f"output_index {oi} where {expected} comes next", "error", key=str(oi))
                item = _obj(data.get("item"))
                if isinstance(oi, int):
                    opened[oi] = item.get("id") if isinstance(item.get("id"), str) else None
            elif isinstance(oi, int) and kind.startswith("response."):
                if oi not in opened:
                    self.v("delta_before_start", i, kind, f"output {oi} was never added", "error", key=str(oi))
                elif oi in closed:
                    self.v("delta_after_stop", i, kind, f"output {oi} was already done", "error", key=str(oi))
                else:
                    item_id = data.get("item_id")
                    if item_id is not None and opened[oi] is not None and item_id != opened[oi]:
                        self.v("id_inconsistent", i, kind, f"item_id {item_id!r} but output {oi} is {opened[oi]!r}",
                               "warn", key=f"item{oi}")
                    ci = data.get("content_index")
                    if kind == "response.content_part.added" and isinstance(ci, int):
                        parts.add((oi, ci))
                    elif isinstance(ci, int) and ".delta" in kind and "output_text" in kind and (oi, ci) not in parts:
                        self.v("delta_before_start", i, kind, f"content part {ci} of output {oi} was never added",
                               "error", key=f"{oi}.{ci}")
                    if kind == "response.output_item.done":
                        closed.add(oi)
            if kind in RESPONSES_TERMINAL:
                terminal_at = i
                still = sorted(set(opened) - closed)
                if still:
                    self.v("block_not_closed", i, kind, f"output item(s) {still} never done", "error")
            elif kind == "error":
                ended = True
                terminal_at = i
        if terminal_at is None and not ended and self.frames:
            self.v("terminal_missing", len(self.frames) - 1, "end",
                   "the stream ends without response.completed/incomplete/failed", "error")
        return self.out


class _Messages(_Walk):
    def run(self) -> list[Violation]:
        started = False
        stop_at: int | None = None
        blocks: dict[int, str] = {}
        closed: set[int] = set()
        delta_at: int | None = None
        ended = False
        for i, (event, data) in enumerate(self.frames):
            kind = frame_kind("messages", event, data)
            if data == "[DONE]" and (stop_at is not None or ended):
                # Chat Completions' end marker after the real terminal event: the OpenAI SDK stops
                # on it, the Anthropic SDK ignores it; harmless but not this dialect's.
                self.v("after_terminal", i, kind, "data: [DONE] (Chat Completions' marker) after the terminal event",
                       "info", key="done")
                continue
            if not isinstance(data, dict):
                self.v("not_json", i, kind, "data is not a JSON object", "error")
                continue
            dtype = data.get("type")
            if event is None:
                self.v("event_name_missing", i, kind, "no `event:` line: Anthropic's SDK dispatches on it and skips "
                       "the frame", "error")
            elif isinstance(dtype, str) and event != dtype:
                self.v("event_name", i, kind, f"`event: {event}` but type {dtype!r}", "error", key=event)
            if kind == "ping":
                continue
            if stop_at is not None:
                what = "the error event" if ended else "message_stop"
                if kind == "message_stop" and not ended:
                    self.v("terminal_repeated", i, kind, "message_stop sent again", "warn")
                else:
                    self.v("after_terminal", i, kind, f"an event after {what} (frame {stop_at})", "error")
                continue
            if not started and kind not in ("message_start", "error"):
                self.v("first_event", i, kind, "the stream does not open with message_start", "error")
                started = True
            if kind == "message_start":
                if started:
                    self.v("first_event", i, kind, "a second message_start", "error", key="again")
                started = True
                continue
            idx = data.get("index")
            if kind == "content_block_start":
                expected = len(blocks)
                if idx != expected:
                    self.v("index_gap", i, kind, f"content block index {idx} where {expected} comes next", "error",
                           key=str(idx))
                if delta_at is not None:
                    self.v("block_not_closed", i, kind, f"a content block starts after message_delta (frame {delta_at})",
                           "error", key="order")
                cb = _obj(data.get("content_block"))
                if isinstance(idx, int):
                    blocks[idx] = str(cb.get("type") or "")
            elif kind in ("content_block_delta", "content_block_stop"):
                if not isinstance(idx, int) or idx not in blocks:
                    self.v("delta_before_start", i, kind, f"block {idx} was never started", "error", key=str(idx))
                elif idx in closed:
                    self.v("delta_after_stop", i, kind, f"block {idx} was already stopped", "error", key=str(idx))
                elif kind == "content_block_delta":
                    delta = _obj(data.get("delta"))
                    dt = delta.get("type")
                    allowed = BLOCK_DELTAS.get(blocks[idx])
                    if allowed is not None and dt not in allowed:
                        self.v("delta_type", i, kind, f"{dt} in a {blocks[idx]} block", "error", key=f"{idx}")
                else:
                    closed.add(idx)
                    if delta_at is not None:
                        self.v("block_not_closed", i, kind, f"block {idx} stops after message_delta (frame {delta_at}): "
                               "the message was over while the block was open", "error", key="order")
            elif kind == "message_delta":
                delta_at = i if delta_at is None else delta_at
                if not isinstance(data.get("usage"), dict):
                    self.v("usage_position", i, kind, "message_delta without usage (the cumulative output count "
                           "belongs there)", "warn")
            elif kind == "message_stop":
                stop_at = i
                still = sorted(set(blocks) - closed)
                if still:
                    self.v("block_not_closed", i, kind, f"block(s) {still} never stopped", "error", key="order")
                if delta_at is None:
                    self.v("block_not_closed", i, kind, "message_stop without a message_delta (no stop_reason, no "
                           "final usage)", "error", key="delta")
            elif kind == "error":
                ended = True
                stop_at = i
        if stop_at is None and not ended and self.frames:
            self.v("terminal_missing", len(self.frames) - 1, "end", "the stream ends without message_stop", "error")
        return self.out
