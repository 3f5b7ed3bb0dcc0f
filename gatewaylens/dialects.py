"""Dialect knowledge shared by every stage: paths, shapes, SSE framing, redaction and equivalences.

The three client/upstream dialects gatewaylens knows are OpenAI Chat Completions (``chat``),
OpenAI Responses (``responses``) and Anthropic Messages (``messages``).  Everything a stage needs
to know about them lives here, in one place, so the mock, capture and analyze never disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Dialect = Literal["chat", "responses", "messages"]
UpstreamKind = Literal["openai", "anthropic"]
DIALECTS: tuple[Dialect, ...] = ("chat", "responses", "messages")
UPSTREAMS: tuple[UpstreamKind, ...] = ("openai", "anthropic")

#: Standard path of each dialect (what real OpenAI / Anthropic serve).
DIALECT_PATHS: dict[Dialect, str] = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
}

#: Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy ``keep-alive``/``proxy-connection``):
#: they describe one connection, so a proxy never forwards them and a comparison ignores them.
HOP_BY_HOP_HEADERS: frozenset[str] = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization",
})


#: The provider family that natively speaks each dialect (the header policy's upstream kind).
NATIVE_UPSTREAM: dict[Dialect, UpstreamKind] = {
    "chat": "openai",
    "responses": "openai",
    "messages": "anthropic",
}


def dialect_for_path(path: str) -> Dialect | None:
    """Which dialect a request path belongs to (with or without the ``/v1`` prefix)."""
    p = path.rstrip("/")
    if p.startswith("/v1/"):
        p = p[3:]
    return {"/chat/completions": "chat", "/responses": "responses", "/messages": "messages"}.get(p)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Redaction: credentials never reach memory logs, disk or a terminal.  The one redactor lives in
# gatewaylens/redaction.py; its names are re-exported here for the stages that import them from here.
# --------------------------------------------------------------------------------------------

from gatewaylens.redaction import (  # noqa: E402
    CREDENTIAL_HEADERS,
    REDACTED_PREFIX,
    credential_key,
    fingerprint,
    is_marker,
    is_secret_name,
    looks_secret,
    printable,
    redact_header_value,
    redact_headers,
    redact_json,
    redact_json_text,
    redact_path,
    redact_query,
    redact_raw_text,
    redact_secret,
    redact_text,
    redact_url,
    redact_value,
    redaction_marker,
    replace_secrets,
)

__all__ = [
    "CREDENTIAL_HEADERS",
    "REDACTED_PREFIX",
    "credential_key",
    "encode_sse",
    "fingerprint",
    "is_marker",
    "is_secret_name",
    "iter_sse_text",
    "looks_secret",
    "printable",
    "redact_header_value",
    "redact_headers",
    "redact_json",
    "redact_json_text",
    "redact_path",
    "redact_query",
    "redact_raw_text",
    "redact_secret",
    "redact_text",
    "redact_url",
    "redact_value",
    "redaction_marker",
    "replace_secrets",
]


# SSE framing and parsing live in gatewaylens/sse.py; re-exported for the stages that import them from here.
from gatewaylens.sse import encode_sse, iter_sse_text  # noqa: E402


def parse_json(text: str | bytes | None) -> Any | None:
    """JSON value or None when the text is not JSON (never raises)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


#: Terminal stream marker per dialect: the event (or data) that says the stream is complete.
STREAM_TERMINAL: dict[Dialect, str] = {
    "chat": "[DONE]",
    "responses": "response.completed",
    "messages": "message_stop",
}


def frame_type(dialect: Dialect | None, event: str | None, data: Any) -> str:
    """The type of an SSE frame: its ``event:`` name, else the ``type`` inside the data, else 'chunk'."""
    if event:
        return event
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return str(data["type"])
    if data == "[DONE]":
        return "[DONE]"
    return "chunk" if dialect == "chat" else "data"


# --------------------------------------------------------------------------------------------
# Request shape knowledge.
# --------------------------------------------------------------------------------------------


def requested_tool(dialect: Dialect, body: Mapping[str, Any]) -> str | None:
    """Name of the tool the request's tool choice *requires*, or None when no tool is required.

    ``required`` / ``any`` pick the first tool; a named tool picks that tool.
    """
    tools = body.get("tools") or []
    choice = body.get("tool_choice")

    def tool_name(tool: Any) -> str | None:
        if not isinstance(tool, dict):
            return None
        if isinstance(tool.get("function"), dict):
            fname = tool["function"].get("name")
            return fname if isinstance(fname, str) else None
        name = tool.get("name")
        return name if isinstance(name, str) else None

    first = next((n for n in (tool_name(t) for t in tools) if n), None)
    if dialect == "messages":
        if isinstance(choice, dict):
            if choice.get("type") == "any":
                return first or "tool"
            if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
                return str(choice["name"])
        return None
    if choice == "required":
        return first or "tool"
    if isinstance(choice, dict):
        if isinstance(choice.get("function"), dict) and choice["function"].get("name"):
            return str(choice["function"]["name"])
        if choice.get("type") == "function" and isinstance(choice.get("name"), str):
            return str(choice["name"])
        if choice.get("type") == "allowed_tools" and choice.get("mode") == "required":
            return first or "tool"
    return None


def error_body(dialect: Dialect | None, status: int, message: str, err_type: str | None = None) -> dict[str, Any]:
    """The dialect's own error body for an HTTP status."""
    if dialect == "messages":
        types = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                 500: "api_error", 529: "overloaded_error"}
        return {"type": "error", "error": {"type": err_type or types.get(status, "api_error"), "message": message}}
    types_oa = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "rate_limit_exceeded", 500: "server_error", 529: "server_error"}
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "not_found"}.get(status)
    return {"error": {"message": message, "type": err_type or types_oa.get(status, "server_error"), "param": None, "code": code}}


# --------------------------------------------------------------------------------------------
# Dialect equivalence table: where the same meaning lives in each dialect.
# Used by analyze to report a correct cross-dialect translation as the rename/move it is.
# Paths are dotted with ``[]`` for "any list index".  Each row is one concept.
# --------------------------------------------------------------------------------------------

#: Request-side equivalences.  A row maps dialect -> list of paths that carry the concept.
REQUEST_EQUIVALENCES: list[dict[str, Any]] = [
    {"concept": "model", "chat": ["model"], "responses": ["model"], "messages": ["model"]},
    {"concept": "max output tokens", "chat": ["max_tokens", "max_completion_tokens"],
     "responses": ["max_output_tokens"], "messages": ["max_tokens"]},
    {"concept": "stop sequences", "chat": ["stop", "stop[]"], "responses": [], "messages": ["stop_sequences", "stop_sequences[]"]},
    {"concept": "temperature", "chat": ["temperature"], "responses": ["temperature"], "messages": ["temperature"]},
    {"concept": "top_p", "chat": ["top_p"], "responses": ["top_p"], "messages": ["top_p"]},
    # top_k is no OpenAI field: a Chat request carries it only as a provider extension.
    {"concept": "top_k", "chat": [], "responses": [], "messages": ["top_k"]},
    {"concept": "stream", "chat": ["stream"], "responses": ["stream"], "messages": ["stream"]},
    {"concept": "system prompt", "chat": ["messages[].content", "messages[].content[].text"],
     "responses": ["instructions", "input[].content", "input[].content[].text"],
     "messages": ["system", "system[].text"]},
    {"concept": "user id", "chat": ["user", "safety_identifier"], "responses": ["user", "safety_identifier"],
     "messages": ["metadata.user_id"]},
    {"concept": "tools", "chat": ["tools[].function.name", "tools[].function.description", "tools[].function.parameters"],
     "responses": ["tools[].name", "tools[].description", "tools[].parameters"],
     "messages": ["tools[].name", "tools[].description", "tools[].input_schema"]},
    {"concept": "tool choice", "chat": ["tool_choice", "tool_choice.function.name"],
     "responses": ["tool_choice", "tool_choice.name"], "messages": ["tool_choice.type", "tool_choice.name"],
     "values": "map"},
    # Anthropic says the opposite: `disable_parallel_tool_use: true` is `parallel_tool_calls: false`.
    {"concept": "parallel tool calls", "chat": ["parallel_tool_calls"], "responses": ["parallel_tool_calls"],
     "messages": ["tool_choice.disable_parallel_tool_use"], "negated": ["messages"]},
    # An effort level becomes a token budget and back: any value is a conversion (a unit map).
    {"concept": "reasoning effort", "chat": ["reasoning_effort"], "responses": ["reasoning.effort"],
     "messages": ["thinking.budget_tokens", "output_config.effort"], "values": "map"},
    {"concept": "structured output", "chat": ["response_format"], "responses": ["text.format"],
     "messages": ["output_format", "output_config.format"], "values": "map"},
    # Structured output emulated with a forced tool (LiteLLM's json_tool_call): the schema becomes
    # the tool's input schema.
    {"concept": "structured output schema", "chat": ["response_format.json_schema.schema"],
     "responses": ["text.format.schema"], "messages": ["output_config.format.schema", "tools[].input_schema"]},
    # Image parts: a URL or a base64 payload (a data URL in the OpenAI dialects).
    {"concept": "image", "chat": ["messages[].content[].image_url.url"], "responses": ["input[].content[].image_url"],
     "messages": ["messages[].content[].source.url", "messages[].content[].source.data"]},
    {"concept": "metadata", "chat": ["metadata"], "responses": ["metadata"], "messages": ["metadata"]},
    # Added for analyze: tool calls and results in the conversation history.
    {"concept": "tool call (history)",
     "chat": ["messages[].tool_calls[].id", "messages[].tool_calls[].function.name", "messages[].tool_calls[].function.arguments"],
     "responses": ["input[].call_id", "input[].name", "input[].arguments"],
     "messages": ["messages[].content[].id", "messages[].content[].name", "messages[].content[].input"]},
    {"concept": "tool result (history)", "chat": ["messages[].tool_call_id", "messages[].content"],
     "responses": ["input[].call_id", "input[].output"],
     "messages": ["messages[].content[].tool_use_id", "messages[].content[].content"]},
    # Added for analyze: the conversation itself (Responses `input` may be a bare string).
    {"concept": "conversation", "chat": ["messages", "messages[].content", "messages[].content[].text"],
     "responses": ["input", "input[].content", "input[].content[].text"],
     "messages": ["messages", "messages[].content", "messages[].content[].text"]},
]

#: Rename pairs known to be a faithful translation (client path, upstream path), any dialect pair.
KNOWN_RENAMES: set[tuple[str, str]] = {
    ("max_tokens", "max_completion_tokens"),
    ("max_completion_tokens", "max_tokens"),
    ("max_output_tokens", "max_tokens"),
    ("max_tokens", "max_output_tokens"),
    ("max_output_tokens", "max_completion_tokens"),
    ("max_completion_tokens", "max_output_tokens"),
    ("stop_sequences", "stop"),
    ("stop", "stop_sequences"),
    ("user", "metadata.user_id"),
    ("metadata.user_id", "user"),
    ("instructions", "system"),
    ("system", "instructions"),
    ("reasoning.effort", "reasoning_effort"),
    ("reasoning_effort", "reasoning.effort"),
    ("response_format", "text.format"),
    ("text.format", "response_format"),
    ("input_tokens", "prompt_tokens"),
    ("prompt_tokens", "input_tokens"),
    ("output_tokens", "completion_tokens"),
    ("completion_tokens", "output_tokens"),
    ("stop_reason", "finish_reason"),
    ("finish_reason", "stop_reason"),
}

#: Response-side usage field names per dialect.
USAGE_FIELDS: dict[Dialect, dict[str, str]] = {
    "chat": {"input": "prompt_tokens", "output": "completion_tokens", "total": "total_tokens"},
    "responses": {"input": "input_tokens", "output": "output_tokens", "total": "total_tokens"},
    "messages": {"input": "input_tokens", "output": "output_tokens"},
}

#: Finish reason equivalences: OpenAI finish_reason <-> Anthropic stop_reason <-> Responses status.
FINISH_REASONS: list[dict[str, str]] = [
    {"chat": "stop", "messages": "end_turn", "responses": "completed"},
    {"chat": "length", "messages": "max_tokens", "responses": "incomplete"},
    {"chat": "tool_calls", "messages": "tool_use", "responses": "completed"},
    {"chat": "stop", "messages": "stop_sequence", "responses": "completed"},
    # Anthropic's refusal stop is the chat API's content filter (LiteLLM 1.106.12 maps it so:
    # litellm/litellm_core_utils/core_helpers.py:234).
    {"chat": "content_filter", "messages": "refusal", "responses": "incomplete"},
]

#: Event types of a stream, mapped between dialects (which event carries the same moment).
STREAM_EVENT_EQUIVALENCES: list[dict[str, str]] = [
    {"moment": "start", "chat": "chunk", "responses": "response.created", "messages": "message_start"},
    {"moment": "text delta", "chat": "chunk", "responses": "response.output_text.delta", "messages": "content_block_delta"},
    {"moment": "finish", "chat": "chunk", "responses": "response.completed", "messages": "message_delta"},
    {"moment": "end", "chat": "[DONE]", "responses": "response.completed", "messages": "message_stop"},
]


def dotted(path: Iterable[str | int]) -> str:
    """``["messages", 0, "content"]`` -> ``messages[0].content``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def generic_path(path: str) -> str:
    """Replace list indexes with ``[]``: ``messages[0].content`` -> ``messages[].content``."""
    return re.sub(r"\[\d+\]", "[]", path)


def is_known_translation(src_path: str, dst_path: str, src_dialect: Dialect | None = None,
                         dst_dialect: Dialect | None = None) -> bool:
    """True when moving a value from ``src_path`` to ``dst_path`` is a faithful dialect translation."""
    a, b = generic_path(src_path), generic_path(dst_path)
    leaf_a, leaf_b = a.rsplit(".", 1)[-1], b.rsplit(".", 1)[-1]
    if (a, b) in KNOWN_RENAMES or (leaf_a, leaf_b) in KNOWN_RENAMES:
        return True
    if src_dialect and dst_dialect:
        for row in REQUEST_EQUIVALENCES:
            if a in row.get(src_dialect, []) and b in row.get(dst_dialect, []):
                return True
    return False


# --------------------------------------------------------------------------------------------
# Response-side equivalences and value equivalences (added for analyze; additive).
# --------------------------------------------------------------------------------------------

#: Response-side equivalences: where the same meaning lives in each dialect's answer body.
RESPONSE_EQUIVALENCES: list[dict[str, Any]] = [
    {"concept": "id", "chat": ["id"], "responses": ["id"], "messages": ["id"]},
    {"concept": "model", "chat": ["model"], "responses": ["model"], "messages": ["model"]},
    {"concept": "created", "chat": ["created"], "responses": ["created_at"], "messages": []},
    {"concept": "text", "chat": ["choices[].message.content"],
     "responses": ["output[].content[].text", "output_text"], "messages": ["content[].text"]},
    {"concept": "tool call name", "chat": ["choices[].message.tool_calls[].function.name"],
     "responses": ["output[].name"], "messages": ["content[].name"]},
    {"concept": "tool call arguments", "chat": ["choices[].message.tool_calls[].function.arguments"],
     "responses": ["output[].arguments"], "messages": ["content[].input"]},
    {"concept": "tool call id", "chat": ["choices[].message.tool_calls[].id"],
     "responses": ["output[].call_id"], "messages": ["content[].id"]},
    {"concept": "reasoning text", "chat": ["choices[].message.reasoning_content"],
     "responses": ["output[].summary[].text"], "messages": ["content[].thinking"]},
    {"concept": "finish reason", "chat": ["choices[].finish_reason"],
     "responses": ["status", "incomplete_details.reason"], "messages": ["stop_reason"]},
    {"concept": "input tokens", "chat": ["usage.prompt_tokens"], "responses": ["usage.input_tokens"],
     "messages": ["usage.input_tokens"]},
    {"concept": "output tokens", "chat": ["usage.completion_tokens"], "responses": ["usage.output_tokens"],
     "messages": ["usage.output_tokens"]},
    {"concept": "total tokens", "chat": ["usage.total_tokens"], "responses": ["usage.total_tokens"], "messages": []},
    {"concept": "cached tokens", "chat": ["usage.prompt_tokens_details.cached_tokens"],
     "responses": ["usage.input_tokens_details.cached_tokens"], "messages": ["usage.cache_read_input_tokens"]},
    {"concept": "cache write tokens", "chat": ["usage.prompt_tokens_details.cache_write_tokens"],
     "responses": ["usage.input_tokens_details.cache_write_tokens"], "messages": ["usage.cache_creation_input_tokens"]},
    {"concept": "reasoning tokens", "chat": ["usage.completion_tokens_details.reasoning_tokens"],
     "responses": ["usage.output_tokens_details.reasoning_tokens"], "messages": []},
]


def equivalent_concept(table: list[dict[str, Any]], src_dialect: Dialect | None, src_path: str,
                       dst_dialect: Dialect | None, dst_path: str) -> str | None:
    """The concept of an equivalence table row holding ``src_path`` (in ``src_dialect``) and
    ``dst_path`` (in ``dst_dialect``), or None.  Paths are matched with list indexes generalised."""
    if src_dialect is None or dst_dialect is None:
        return None
    a, b = generic_path(src_path), generic_path(dst_path)
    for row in table:
        if a in row.get(src_dialect, []) and b in row.get(dst_dialect, []):
            return str(row["concept"])
    return None


def concept_row(table: list[dict[str, Any]], concept: str) -> dict[str, Any] | None:
    for row in table:
        if row["concept"] == concept:
            return row
    return None


def concept_values(table: list[dict[str, Any]], concept: str, src: Dialect | None, dst: Dialect | None) -> str:
    """How a concept's value travels between two dialects: ``same`` (must be equal), ``map``
    (another vocabulary or unit: any value is a conversion) or ``negated`` (the opposite boolean)."""
    row = concept_row(table, concept)
    if row is None:
        return "same"
    negated = set(row.get("negated", ()))
    if src is not None and dst is not None and (src in negated) != (dst in negated):
        return "negated"
    return str(row.get("values", "same"))


def finish_reasons_equivalent(a_dialect: Dialect | None, a: Any, b_dialect: Dialect | None, b: Any) -> bool:
    """True when two finish/stop reasons (or Responses statuses) mean the same end of a turn."""
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str) or a_dialect is None or b_dialect is None:
        return False
    return any(row.get(a_dialect) == a and row.get(b_dialect) == b for row in FINISH_REASONS)


def tool_choice_mode(dialect: Dialect | None, value: Any) -> str | None:
    """Dialect-neutral meaning of a tool choice: ``auto``, ``none``, ``required`` or ``tool:<name>``."""
    if isinstance(value, str):
        return {"auto": "auto", "none": "none", "required": "required", "any": "required"}.get(value)
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if isinstance(value.get("function"), dict) and value["function"].get("name"):
        return f"tool:{value['function']['name']}"
    if kind in ("tool", "function") and isinstance(value.get("name"), str):
        return f"tool:{value['name']}"
    if kind == "any":
        return "required"
    if kind in ("auto", "none"):
        return str(kind)
    if kind == "allowed_tools":
        return "required" if value.get("mode") == "required" else "auto"
    return None
