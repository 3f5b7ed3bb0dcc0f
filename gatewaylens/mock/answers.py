"""Faithful answers in each dialect, with distinctive values an analyzer can follow.

Distinctive values (documented in the README):
- reply text ``REPLY_TEXT`` split into ``len(REPLY_DELTAS)`` stream deltas;
- usage: input tokens ``1009 + (body bytes // 4) % 8000``, output tokens 47 (61 for a tool call),
  cached input tokens 13, reasoning tokens 7, Anthropic cache creation tokens 19;
- ids unique per request: ``chatcmpl-gwl…``, ``resp_gwl…``, ``msg_gwl…``, ``call_gwl…``, ``toolu_gwl…``;
  thinking signatures ``gwlsig…``, encrypted reasoning ``gwlenc_…`` (when ``include`` asks for it);
- provider extras: ``system_fingerprint`` = ``fp_gwl_5e1f7a``, ``service_tier`` = ``default``
  (OpenAI) / ``standard`` (Anthropic usage), and ``x_provider_note`` = ``gwl-note-<seq>``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gatewaylens.dialects import Dialect, requested_tool

REPLY_DELTAS = ["Gatewaylens mock reply: ", "the quick brown fox ", "jumps over 7 lazy dogs ", "— ünïcødé ✓ ", "end."]
REPLY_TEXT = "".join(REPLY_DELTAS)
THINKING_TEXT = "GWL thinking: weigh the 3 options, pick the second."
SYSTEM_FINGERPRINT = "fp_gwl_5e1f7a"
OUTPUT_TOKENS = 47
TOOL_OUTPUT_TOKENS = 61
CACHED_TOKENS = 13
REASONING_TOKENS = 7
CACHE_CREATION_TOKENS = 19
DEFAULT_TOOL_ARGS: dict[str, Any] = {"city": "Oslo", "unit": "celsius", "gwl_probe": 4242}


@dataclass
class Plan:
    """Everything needed to render one answer (non-stream body or stream events)."""

    dialect: Dialect
    seq: int
    model: str
    input_tokens: int
    text: str = REPLY_TEXT
    deltas: list[str] = field(default_factory=lambda: list(REPLY_DELTAS))
    tool_name: str | None = None
    tool_args: str = ""
    thinking: bool = False
    include_usage: bool = False
    n: int = 1
    request: Mapping[str, Any] = field(default_factory=dict)
    #: Script stream shapes (``ScriptStep.shapes``, described in ``mock/models.py``).
    shapes: frozenset[str] = frozenset()
    #: Names of the tools called (two with the parallel-tools shape).
    tool_names: list[str] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        return TOOL_OUTPUT_TOKENS if self.tool_name else OUTPUT_TOKENS

    @property
    def tools(self) -> list[str]:
        return self.tool_names or ([self.tool_name] if self.tool_name else [])

    def half(self) -> int:
        """Where the error-mid shape breaks off: after half the text deltas."""
        return max(1, len(self.deltas) // 2)


def _rid(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _declared_tools(body: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for t in body.get("tools") or ():
        if isinstance(t, dict):
            fn = t.get("function")
            name = fn.get("name") if isinstance(fn, dict) else t.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def make_plan(dialect: Dialect, body: Any, seq: int, body_size: int, *, text: str | None = None,
              tool_name: str | None = None, tool_args: Any = None, force_tool: bool = False,
              shapes: Iterable[str] = ()) -> Plan:
    req: Mapping[str, Any] = body if isinstance(body, dict) else {}
    model = req.get("model") if isinstance(req.get("model"), str) else "gwl-unknown-model"
    name = tool_name or requested_tool(dialect, req)
    if force_tool and not name:
        name = requested_tool(dialect, {**req, "tool_choice": "required" if dialect != "messages" else {"type": "any"}}) or "tool"
    args = tool_args if tool_args is not None else DEFAULT_TOOL_ARGS
    args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    thinking = False
    if dialect == "messages":
        th = req.get("thinking")
        thinking = isinstance(th, dict) and th.get("type") in ("enabled", "adaptive")
    elif dialect == "responses":
        rs = req.get("reasoning")
        thinking = isinstance(rs, dict) and rs.get("effort") not in (None, "none", "minimal")
    so = req.get("stream_options")
    n_req = req.get("n")
    n = n_req if dialect == "chat" and isinstance(n_req, int) else 1
    reply = text if text is not None else REPLY_TEXT
    deltas = list(REPLY_DELTAS) if text is None else _split(reply)
    shape_set = frozenset(shapes)
    names: list[str] = []
    if "parallel-tools" in shape_set:
        declared = _declared_tools(req)
        first = name or (declared[0] if declared else "gwl_tool_a")
        second = next((d for d in declared if d != first), declared[0] if declared else "gwl_tool_b")
        name, names = first, [first, second]
    return Plan(
        dialect=dialect, seq=seq, model=str(model), input_tokens=1009 + (body_size // 4) % 8000,
        text=reply, deltas=deltas, tool_name=name, tool_args=args_text, thinking=thinking or "thinking" in shape_set,
        include_usage=isinstance(so, dict) and bool(so.get("include_usage")), n=max(1, min(int(n), 8)), request=req,
        shapes=shape_set, tool_names=names,
    )


def _split(text: str, parts: int = 5) -> list[str]:
    if not text:
        return [""]
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _args_deltas(args: str) -> list[str]:
    return _split(args, 4)


# --------------------------------------------------------------------------------------------
# Chat Completions
# --------------------------------------------------------------------------------------------


def _chat_usage(p: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": p.input_tokens,
        "completion_tokens": p.output_tokens,
        "total_tokens": p.input_tokens + p.output_tokens,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def chat_body(p: Plan) -> dict[str, Any]:
    choices = []
    for i in range(p.n):
        if p.tool_name:
            msg: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": [],
                                   "tool_calls": [{"id": _rid("call_gwl"), "type": "function",
                                                   "function": {"name": t, "arguments": p.tool_args}} for t in p.tools]}
            finish = "tool_calls"
        else:
            msg = {"role": "assistant", "content": p.text, "refusal": None, "annotations": []}
            finish = "stop"
        if "thinking" in p.shapes:
            msg["reasoning_content"] = THINKING_TEXT
        choices.append({"index": i, "message": msg, "logprobs": None, "finish_reason": finish})
    return {
        "id": _rid("chatcmpl-gwl"), "object": "chat.completion", "created": int(time.time()), "model": p.model,
        "choices": choices, "usage": _chat_usage(p), "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT, "x_provider_note": f"gwl-note-{p.seq}",
    }


def chat_events(p: Plan) -> list[tuple[str | None, Any]]:
    cid, created = _rid("chatcmpl-gwl"), int(time.time())
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": p.model,
            "service_tier": "default", "system_fingerprint": SYSTEM_FINGERPRINT}

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
        c: dict[str, Any] = {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if p.include_usage:
            c["usage"] = None
        return c

    out: list[tuple[str | None, Any]] = []
    for i in range(p.n):
        out.append((None, chunk({"role": "assistant", "content": "" if not p.tool_name else None, "refusal": None}, index=i)))
        if "thinking" in p.shapes:
            for d in _split(THINKING_TEXT, 3):
                out.append((None, chunk({"reasoning_content": d}, index=i)))
        if p.tool_name:
            for j, name in enumerate(p.tools):
                out.append((None, chunk({"tool_calls": [{"index": j, "id": _rid("call_gwl"), "type": "function",
                                                         "function": {"name": name, "arguments": ""}}]}, index=i)))
            # With several calls their argument deltas interleave by tool index, as the chunk format allows.
            for d in _args_deltas(p.tool_args):
                for j in range(len(p.tools)):
                    out.append((None, chunk({"tool_calls": [{"index": j, "function": {"arguments": d}}]}, index=i)))
            out.append((None, chunk({}, "tool_calls", index=i)))
        else:
            for k, d in enumerate(p.deltas):
                if "error-mid" in p.shapes and k == p.half():
                    out.append((None, {"error": {"message": "gatewaylens mock: scripted mid-stream error",
                                                 "type": "server_error", "param": None, "code": None}}))
                    return out
                out.append((None, chunk({"content": d}, index=i)))
            out.append((None, chunk({}, "stop", index=i)))
    if p.include_usage or "usage-final" in p.shapes:
        out.append((None, {**base, "choices": [], "usage": _chat_usage(p), "x_provider_note": f"gwl-note-{p.seq}"}))
    out.append((None, "[DONE]"))
    return out


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------

_RESPONSE_ECHO = ("instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "previous_response_id",
                  "reasoning", "store", "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user",
                  "background", "max_tool_calls", "prompt_cache_key", "safety_identifier", "top_logprobs")
_RESPONSE_DEFAULTS: dict[str, Any] = {
    "instructions": None, "max_output_tokens": None, "metadata": {}, "parallel_tool_calls": True,
    "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
    "truncation": "disabled", "user": None,
}


def _responses_usage(p: Plan) -> dict[str, Any]:
    return {"input_tokens": p.input_tokens, "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "output_tokens": p.output_tokens, "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
            "total_tokens": p.input_tokens + p.output_tokens}


def _response_items(p: Plan, ids: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if p.thinking:
        item: dict[str, Any] = {"type": "reasoning", "id": ids["rs"],
                                "summary": [{"type": "summary_text", "text": THINKING_TEXT}]}
        include = p.request.get("include")
        if isinstance(include, list) and "reasoning.encrypted_content" in include:
            # What the Responses API adds when asked (stateless reasoning round trips): opaque,
            # to be sent back unchanged with the next request's input.
            item["encrypted_content"] = ids["enc"]
        items.append(item)
    if p.tool_name:
        for j, name in enumerate(p.tools):
            suffix = "" if j == 0 else f"_{j}"
            items.append({"type": "function_call", "id": ids["fc"] + suffix, "call_id": ids["call"] + suffix,
                          "name": name, "arguments": p.tool_args, "status": "completed"})
    else:
        items.append({"type": "message", "id": ids["msg"], "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": p.text, "annotations": [], "logprobs": []}]})
    return items


def _response_obj(p: Plan, rid: str, created: int, status: str, output: list[dict[str, Any]],
                  usage: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": rid, "object": "response", "created_at": created, "status": status,
                           "background": False, "error": None, "incomplete_details": None, "model": p.model,
                           "output": output, "service_tier": "default", "usage": usage,
                           "x_provider_note": f"gwl-note-{p.seq}"}
    for k in _RESPONSE_ECHO:
        obj[k] = p.request.get(k, _RESPONSE_DEFAULTS.get(k))
    return obj


def _response_ids() -> dict[str, str]:
    return {"resp": _rid("resp_gwl"), "msg": _rid("msg_gwl"), "fc": _rid("fc_gwl"), "call": _rid("call_gwl"), "rs": _rid("rs_gwl"),
            "enc": _rid("gwlenc_")}


def responses_body(p: Plan) -> dict[str, Any]:
    ids = _response_ids()
    return _response_obj(p, ids["resp"], int(time.time()), "completed", _response_items(p, ids), _responses_usage(p))


def responses_events(p: Plan) -> list[tuple[str | None, Any]]:
    ids = _response_ids()
    created = int(time.time())
    final_items = _response_items(p, ids)
    ev: list[tuple[str | None, Any]] = []

    def emit(kind: str, **data: Any) -> None:
        ev.append((kind, {"type": kind, "sequence_number": len(ev), **data}))

    emit("response.created", response=_response_obj(p, ids["resp"], created, "in_progress", [], None))
    emit("response.in_progress", response=_response_obj(p, ids["resp"], created, "in_progress", [], None))
    for idx, item in enumerate(final_items):
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=idx, item={**item, "summary": []})
            if "thinking" in p.shapes:
                part = {"type": "summary_text", "text": ""}
                emit("response.reasoning_summary_part.added", item_id=item["id"], output_index=idx, summary_index=0,
                     part=part)
                for d in _split(THINKING_TEXT, 3):
                    emit("response.reasoning_summary_text.delta", item_id=item["id"], output_index=idx,
                         summary_index=0, delta=d)
                emit("response.reasoning_summary_text.done", item_id=item["id"], output_index=idx, summary_index=0,
                     text=THINKING_TEXT)
                emit("response.reasoning_summary_part.done", item_id=item["id"], output_index=idx, summary_index=0,
                     part={**part, "text": THINKING_TEXT})
            emit("response.output_item.done", output_index=idx, item=item)
        elif item["type"] == "function_call":
            emit("response.output_item.added", output_index=idx, item={**item, "arguments": "", "status": "in_progress"})
            for d in _args_deltas(p.tool_args):
                emit("response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=d)
            emit("response.function_call_arguments.done", item_id=item["id"], output_index=idx, arguments=p.tool_args)
            emit("response.output_item.done", output_index=idx, item=item)
        else:
            emit("response.output_item.added", output_index=idx,
                 item={**item, "status": "in_progress", "content": []})
            emit("response.content_part.added", item_id=item["id"], output_index=idx, content_index=0,
                 part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            for k, d in enumerate(p.deltas):
                if "error-mid" in p.shapes and k == p.half():
                    emit("error", code="server_error", message="gatewaylens mock: scripted mid-stream error", param=None)
                    return ev
                emit("response.output_text.delta", item_id=item["id"], output_index=idx, content_index=0, delta=d, logprobs=[])
            emit("response.output_text.done", item_id=item["id"], output_index=idx, content_index=0, text=p.text, logprobs=[])
            emit("response.content_part.done", item_id=item["id"], output_index=idx, content_index=0,
                 part=item["content"][0])
            emit("response.output_item.done", output_index=idx, item=item)
    emit("response.completed", response=_response_obj(p, ids["resp"], created, "completed", final_items, _responses_usage(p)))
    return ev


# --------------------------------------------------------------------------------------------
# Anthropic Messages
# --------------------------------------------------------------------------------------------


def _anthropic_usage(p: Plan, output_tokens: int | None = None) -> dict[str, Any]:
    return {"input_tokens": p.input_tokens, "cache_creation_input_tokens": CACHE_CREATION_TOKENS,
            "cache_read_input_tokens": CACHED_TOKENS, "output_tokens": p.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard"}


def _anthropic_blocks(p: Plan, tool_id: str, signature: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if p.thinking:
        blocks.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": signature})
    if p.tool_name:
        for j, name in enumerate(p.tools):
            blocks.append({"type": "tool_use", "id": tool_id + ("" if j == 0 else f"_{j}"), "name": name,
                           "input": json.loads(p.tool_args or "{}")})
    else:
        blocks.append({"type": "text", "text": p.text})
    return blocks


def messages_body(p: Plan) -> dict[str, Any]:
    return {"id": _rid("msg_gwl"), "type": "message", "role": "assistant", "model": p.model,
            "content": _anthropic_blocks(p, _rid("toolu_gwl"), _rid("gwlsig")),
            "stop_reason": "tool_use" if p.tool_name else "end_turn", "stop_sequence": None,
            "usage": _anthropic_usage(p), "x_provider_note": f"gwl-note-{p.seq}"}


def messages_events(p: Plan) -> list[tuple[str | None, Any]]:
    mid = _rid("msg_gwl")
    ev: list[tuple[str | None, Any]] = []

    def emit(kind: str, **data: Any) -> None:
        ev.append((kind, {"type": kind, **data}))

    final = "usage-final" in p.shapes
    start_usage = ({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                    "output_tokens": 0} if final else _anthropic_usage(p, 1))
    emit("message_start", message={"id": mid, "type": "message", "role": "assistant", "model": p.model, "content": [],
                                   "stop_reason": None, "stop_sequence": None, "usage": start_usage,
                                   "x_provider_note": f"gwl-note-{p.seq}"})
    pings = "pings" in p.shapes
    if pings:
        emit("ping")
    blocks = _anthropic_blocks(p, _rid("toolu_gwl"), _rid("gwlsig"))
    for idx, block in enumerate(blocks):
        if block["type"] == "thinking":
            emit("content_block_start", index=idx, content_block={"type": "thinking", "thinking": "", "signature": ""})
            if idx == 0:
                emit("ping")
            for d in _split(THINKING_TEXT, 3):
                emit("content_block_delta", index=idx, delta={"type": "thinking_delta", "thinking": d})
            emit("content_block_delta", index=idx, delta={"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "tool_use":
            emit("content_block_start", index=idx, content_block={**block, "input": {}})
            if idx == 0:
                emit("ping")
            for d in _args_deltas(p.tool_args):
                emit("content_block_delta", index=idx, delta={"type": "input_json_delta", "partial_json": d})
        else:
            emit("content_block_start", index=idx, content_block={"type": "text", "text": ""})
            if idx == 0:
                emit("ping")
            for k, d in enumerate(p.deltas):
                if "error-mid" in p.shapes and k == p.half():
                    emit("error", error={"type": "overloaded_error", "message": "gatewaylens mock: scripted mid-stream error"})
                    return ev
                emit("content_block_delta", index=idx, delta={"type": "text_delta", "text": d})
                if pings:
                    emit("ping")
        emit("content_block_stop", index=idx)
    # usage-final: every count in message_delta (cumulative, as the API documents them); default:
    # input and cache counts in message_start, output_tokens alone here.
    end_usage = {k: v for k, v in _anthropic_usage(p).items() if k != "service_tier"} if final else {
        "output_tokens": p.output_tokens}
    emit("message_delta", delta={"stop_reason": "tool_use" if p.tool_name else "end_turn", "stop_sequence": None},
         usage=end_usage)
    emit("message_stop")
    return ev


def render_body(p: Plan) -> dict[str, Any]:
    return {"chat": chat_body, "responses": responses_body, "messages": messages_body}[p.dialect](p)


def render_events(p: Plan) -> list[tuple[str | None, Any]]:
    return {"chat": chat_events, "responses": responses_events, "messages": messages_events}[p.dialect](p)


MODEL_IDS = ["gpt-4o-mini", "gpt-4.1", "o4-mini", "claude-3-5-haiku-latest", "claude-sonnet-4-5", "gwl-mock-model"]


def models_body() -> dict[str, Any]:
    """A model list both SDKs parse (OpenAI's and Anthropic's fields side by side)."""
    created = 1_700_000_000
    data = [{"id": m, "object": "model", "created": created, "owned_by": "gatewaylens-mock", "type": "model",
             "display_name": m, "created_at": "2023-11-14T22:13:20Z"} for m in MODEL_IDS]
    return {"object": "list", "data": data, "has_more": False, "first_id": MODEL_IDS[0], "last_id": MODEL_IDS[-1]}
