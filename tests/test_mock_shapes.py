"""The mock's scripted stream shapes (ScriptStep.shapes) as the official SDKs see them, and each
recorded stream legal under its dialect's grammar (gatewaylens/streamgrammar.py)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gatewaylens.mock.answers import CACHE_CREATION_TOKENS, CACHED_TOKENS, REPLY_TEXT, THINKING_TEXT
from gatewaylens.mock.server import MockServer
from gatewaylens.streamgrammar import check
from tests.support.mock import an, log, oa

TOOLS_CHAT: Any = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                   for n in ("tool_a_gwl", "tool_b_gwl")]
TOOLS_RESP: Any = [{"type": "function", "name": n, "parameters": {"type": "object", "properties": {}}, "strict": False}
                   for n in ("tool_a_gwl", "tool_b_gwl")]
TOOLS_MSG: Any = [{"name": n, "input_schema": {"type": "object"}} for n in ("tool_a_gwl", "tool_b_gwl")]
MSG: Any = [{"role": "user", "content": "hi"}]


async def script(server: MockServer, *shapes: str) -> None:
    async with httpx.AsyncClient(headers=server.control_headers) as c:
        r = await c.post(f"{server.url}/__mock/script", params={"channel": "sdk"}, json={"shapes": list(shapes)})
        r.raise_for_status()


async def last_frames(server: MockServer) -> list[tuple[str | None, Any]]:
    rec = (await log(server, "sdk"))["records"][-1]
    return [(f["event"], f["data"] if f["data"] == "[DONE]" else json.loads(f["data"])) for f in rec["response"]["frames"]]


async def grammatical(server: MockServer, dialect: str) -> list[tuple[str | None, Any]]:
    frames = await last_frames(server)
    assert check(dialect, frames) == []  # type: ignore[arg-type]
    return frames


async def test_parallel_tools_in_each_dialect(mock_server: MockServer) -> None:
    await script(mock_server, "parallel-tools")
    async with oa(mock_server).chat.completions.stream(model="gpt-4o-mini", messages=MSG, tools=TOOLS_CHAT,
                                                       tool_choice="required") as s:
        final = await s.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["tool_a_gwl", "tool_b_gwl"]
    assert all(json.loads(c.function.arguments)["gwl_probe"] == 4242 for c in calls)
    frames = await grammatical(mock_server, "chat")
    indexes = [tc["index"] for _, d in frames if isinstance(d, dict)
               for ch in d.get("choices") or () for tc in ch["delta"].get("tool_calls") or ()]
    assert indexes[2:6] == [0, 1, 0, 1]  # argument deltas interleave by tool index

    await script(mock_server, "parallel-tools")
    async with oa(mock_server).responses.stream(model="gpt-4o-mini", input="hi", tools=TOOLS_RESP,
                                                tool_choice="required") as rs:
        resp = await rs.get_final_response()
    assert [o.name for o in resp.output if o.type == "function_call"] == ["tool_a_gwl", "tool_b_gwl"]
    await grammatical(mock_server, "responses")

    await script(mock_server, "parallel-tools")
    async with an(mock_server).messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=MSG,
                                               tools=TOOLS_MSG, tool_choice={"type": "any"}) as ms:
        msg = await ms.get_final_message()
    assert [b.name for b in msg.content if b.type == "tool_use"] == ["tool_a_gwl", "tool_b_gwl"]
    await grammatical(mock_server, "messages")


async def test_usage_final_and_usage_start(mock_server: MockServer) -> None:
    await script(mock_server, "usage-final")
    async with an(mock_server).messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=MSG) as ms:
        msg = await ms.get_final_message()
    # The SDK folds message_delta's cumulative counts into the final usage.
    assert msg.usage.cache_read_input_tokens == CACHED_TOKENS and msg.usage.input_tokens > 1000
    frames = await grammatical(mock_server, "messages")
    assert frames[0][1]["message"]["usage"]["input_tokens"] == 0
    assert frames[-2][1]["usage"]["cache_creation_input_tokens"] == CACHE_CREATION_TOKENS

    await script(mock_server, "usage-start")
    async with an(mock_server).messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=MSG) as ms:
        await ms.get_final_message()
    frames = await grammatical(mock_server, "messages")
    assert frames[0][1]["message"]["usage"]["cache_read_input_tokens"] == CACHED_TOKENS
    assert frames[-2][1]["usage"] == {"output_tokens": 47}

    await script(mock_server, "usage-final")
    chunks = [c async for c in await oa(mock_server).chat.completions.create(model="gpt-4o-mini", messages=MSG,
                                                                             stream=True)]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # sent without include_usage
    await grammatical(mock_server, "chat")


async def test_thinking_pings_and_signature(mock_server: MockServer) -> None:
    await script(mock_server, "thinking", "pings")
    async with an(mock_server).messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=MSG) as ms:
        msg = await ms.get_final_message()
    assert msg.content[0].type == "thinking" and msg.content[0].thinking == THINKING_TEXT
    assert msg.content[0].signature.startswith("gwlsig")
    frames = await grammatical(mock_server, "messages")
    assert sum(1 for e, _ in frames if e == "ping") > 3

    await script(mock_server, "thinking")
    async with oa(mock_server).responses.stream(model="o4-mini", input="hi") as rs:
        types = [e.type async for e in rs]
    assert "response.reasoning_summary_text.delta" in types
    await grammatical(mock_server, "responses")

    await script(mock_server, "thinking")
    chunks = [c async for c in await oa(mock_server).chat.completions.create(model="gpt-4o-mini", messages=MSG,
                                                                             stream=True)]
    assert "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices) == THINKING_TEXT
    await grammatical(mock_server, "chat")


async def test_error_mid_stream_raises_in_each_sdk(mock_server: MockServer) -> None:
    await script(mock_server, "error-mid")
    with pytest.raises(anthropic.APIStatusError):
        async with an(mock_server).messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=MSG) as ms:
            await ms.get_final_message()
    assert (await grammatical(mock_server, "messages"))[-1][0] == "error"
    await script(mock_server, "error-mid")
    with pytest.raises(openai.APIError):
        [c async for c in await oa(mock_server).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)]
    assert "error" in (await grammatical(mock_server, "chat"))[-1][1]
    await script(mock_server, "error-mid")
    # Responses' documented `error` event (type, code, message, param) carries no `error` key, so
    # openai-python yields it as an event instead of raising (src/openai/_streaming.py).
    got = [e.type async for e in await oa(mock_server).responses.create(model="gpt-4o-mini", input="hi", stream=True)]
    assert got[-1] == "error"
    frames = await grammatical(mock_server, "responses")
    assert frames[-1][0] == "error" and "".join(d.get("delta", "") for _, d in frames if isinstance(d, dict)) != REPLY_TEXT
