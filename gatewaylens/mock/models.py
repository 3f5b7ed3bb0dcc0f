"""File formats written by the mock: the recorded exchange and the control API's script steps."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatewaylens.dialects import Dialect


class SSEFrame(BaseModel):
    """One server-sent event exactly as it went over the wire."""

    event: str | None = None
    data: str
    offset_ms: float = Field(0.0, description="milliseconds since the response started")


class MockAnswer(BaseModel):
    """Exactly what the mock answered to a recorded request."""

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any | None = Field(None, description="JSON body of a non-stream answer")
    frames: list[SSEFrame] | None = Field(None, description="every SSE frame of a stream answer, in order")
    stream: bool = False
    cut: bool = Field(False, description="the stream was cut off mid-way (scripted)")
    scripted: str | None = Field(None, description="short description of the script step that shaped the answer")


class RecordedExchange(BaseModel):
    """One request the mock received, with exactly what it answered.  Credentials are redacted."""

    seq: int = Field(description="global, strictly increasing sequence number (per mock process)")
    channel: str
    instance: str = Field("", description="id of the mock process; changes when the mock restarts")
    time: datetime
    duration_ms: float = 0.0
    method: str
    path: str = Field(description="request path without the /ch/<channel> prefix")
    raw_path: str = Field(description="request path as received")
    query: list[tuple[str, str]] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    dialect: Dialect | None = None
    body_text: str | None = Field(None, description="the raw body (secrets redacted in place); when it is not valid "
                                  "UTF-8, decoded with U+FFFD replacements")
    body_b64: str | None = Field(None, description="the exact raw bytes as base64 when the body is not valid UTF-8")
    body_size: int = 0
    body_json: Any | None = Field(None, description="the body parsed as JSON, when it is JSON")
    body_is_json: bool = False
    response: MockAnswer
    redacted: list[str] = Field(default_factory=list, description="where credentials were redacted: headers, query, "
                                "path, body (body_text and body_json redacted alike)")
    notes: list[str] = Field(default_factory=list, description="what could not be kept as is, and why")


class ScriptToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="tool name; default: the first tool of the request")
    arguments: dict[str, Any] | str = Field(default_factory=dict)


_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _no_line_breaks(value: str | None, what: str) -> str | None:
    if value is not None and any(c in value for c in "\r\n\x00"):
        raise ValueError(f"{what} must not contain CR, LF or NUL")
    return value


class ScriptEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str | None = None
    data: Any

    @field_validator("event")
    @classmethod
    def _one_line_event(cls, v: str | None) -> str | None:
        return _no_line_breaks(v, "an event name")


StreamShape = Literal["usage-final", "usage-start", "thinking", "parallel-tools", "pings", "error-mid"]
#: What each stream shape does (README "Control API").
STREAM_SHAPES: dict[str, str] = {
    "usage-final": "usage only in the final event: Messages' message_start carries zero counts and message_delta "
                   "all of them (input, cache read/write, output); Chat Completions sends the usage chunk even "
                   "without stream_options.include_usage (Responses always has it only in response.completed)",
    "usage-start": "Messages: input and cache counts only in message_start, message_delta carries output_tokens "
                   "alone (the mock's default, named for cases)",
    "thinking": "a thinking block with thinking_delta + signature_delta (Messages), a reasoning item with summary "
                "deltas (Responses), reasoning_content deltas (Chat Completions, as DeepSeek-style providers send)",
    "parallel-tools": "two tool calls: interleaved argument deltas by tool index (Chat Completions), two "
                      "function_call items (Responses), two tool_use blocks (Messages)",
    "pings": "Messages: a ping after message_start and between every two events of a block",
    "error-mid": "an error event after half the text deltas, then the stream ends (no terminal event)",
}


class ScriptStep(BaseModel):
    """One scripted answer for the next request on a channel (see README: control API)."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(None, ge=100, le=599, description="answer with this HTTP status and the dialect's error body")
    error_message: str | None = None
    error_type: str | None = None
    delay_ms: float = Field(0, ge=0, le=600_000, description="wait before answering")
    tool_call: ScriptToolCall | None = None
    text: str | None = Field(None, description="reply text instead of the default")
    body: Any | None = Field(None, description="a custom JSON body, sent as is")
    events: list[ScriptEvent] | None = Field(None, description="a custom SSE event list, sent as is")
    cut_after: int | None = Field(None, ge=0, description="cut a stream after this many frames")
    headers: dict[str, str] = Field(default_factory=dict)
    shapes: list[StreamShape] = Field(default_factory=list, description="stream shapes (see STREAM_SHAPES); "
                                      "parallel-tools and thinking shape non-stream answers too")
    times: int = Field(1, ge=1, le=10_000, description="how many requests this step answers")

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _HEADER_NAME_RE.match(name):
                raise ValueError(f"header name {name[:40]!r} is not a valid HTTP header name")
            _no_line_breaks(value, f"header {name!r} value")
        return v

    @model_validator(mode="after")
    def _one_shape(self) -> ScriptStep:
        if self.body is not None and self.events is not None:
            raise ValueError("a step has either 'body' or 'events', not both")
        return self

    def describe(self) -> str:
        parts = []
        if self.status:
            parts.append(f"status={self.status}")
        if self.delay_ms:
            parts.append(f"delay={self.delay_ms:g}ms")
        if self.tool_call:
            parts.append(f"tool_call={self.tool_call.name or '<first>'}")
        if self.text is not None:
            parts.append("text")
        if self.body is not None:
            parts.append("body")
        if self.events is not None:
            parts.append(f"events={len(self.events)}")
        if self.cut_after is not None:
            parts.append(f"cut_after={self.cut_after}")
        if self.shapes:
            parts.append("shapes=" + "+".join(self.shapes))
        return ",".join(parts) or "default"


class Script(BaseModel):
    """Body of ``POST /__mock/script``: steps answered in order, each ``times`` times."""

    model_config = ConfigDict(extra="forbid")
    steps: list[ScriptStep]
    mode: Literal["append", "replace"] = "append"
