"""The mock as the official SDKs see it, and its recording, redaction and control API."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx
import pytest

from gatewaylens.mock.answers import CACHED_TOKENS, REPLY_TEXT, SYSTEM_FINGERPRINT
from gatewaylens.mock.server import MockServer
from tests.conftest import CANARIES
from tests.support.mock import an, log, oa

TOOLS_CHAT = [{"type": "function", "function": {"name": "get_weather_gwl", "description": "w",
                                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
              {"type": "function", "function": {"name": "second_tool", "parameters": {"type": "object", "properties": {}}}}]



async def test_chat_non_stream_and_stream(mock_server: MockServer) -> None:
    client = oa(mock_server)
    r = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == REPLY_TEXT
    assert r.system_fingerprint == SYSTEM_FINGERPRINT
    assert r.usage is not None and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.total_tokens not in (10, 20, 30)
    chunks = [c async for c in await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY_TEXT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens_details is not None
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == CACHED_TOKENS
    # Without include_usage there is no usage chunk.
    plain = [c async for c in await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)]
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


async def test_chat_tool_call_stream_helper(mock_server: MockServer) -> None:
    client = oa(mock_server)
    async with client.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS_CHAT,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "second_tool"}},
    ) as stream:
        final = await stream.get_final_completion()
    call = final.choices[0].message.tool_calls
    assert call and call[0].function.name == "second_tool"  # type: ignore[union-attr]
    assert json.loads(call[0].function.arguments)["city"] == "Oslo"  # type: ignore[union-attr]
    assert final.choices[0].finish_reason == "tool_calls"
    r = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                                             tools=TOOLS_CHAT, tool_choice="required")  # type: ignore[arg-type]
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather_gwl"  # type: ignore[index,union-attr]
    auto = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                                                tools=TOOLS_CHAT, tool_choice="auto")  # type: ignore[arg-type]
    assert auto.choices[0].message.tool_calls is None and auto.choices[0].message.content == REPLY_TEXT


async def test_responses_non_stream_stream_and_tools(mock_server: MockServer) -> None:
    client = oa(mock_server)
    r = await client.responses.create(model="gpt-4o-mini", input="hi", instructions="be brief", max_output_tokens=173)
    assert r.output_text == REPLY_TEXT and r.max_output_tokens == 173 and r.instructions == "be brief"
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == CACHED_TOKENS
    async with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        types = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert final.output_text == REPLY_TEXT
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-1] == "response.completed" and "response.output_text.done" in types
    events = [e async for e in await client.responses.create(
        model="gpt-4o-mini", input="hi", stream=True, tool_choice="required",
        tools=[{"type": "function", "name": "lookup_gwl", "parameters": {"type": "object", "properties": {}}, "strict": False}])]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1]
    assert done.type == "response.completed"
    item = done.response.output[0]  # type: ignore[union-attr]
    assert item.type == "function_call" and item.name == "lookup_gwl"
    assert any(e.type == "response.function_call_arguments.delta" for e in events)


async def test_messages_non_stream_stream_thinking_and_tool(mock_server: MockServer) -> None:
    client = an(mock_server)
    m = await client.messages.create(model="claude-3-5-haiku-latest", max_tokens=211,
                                     messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].type == "text" and m.content[0].text == REPLY_TEXT
    assert m.usage.cache_read_input_tokens == CACHED_TOKENS and m.stop_reason == "end_turn"
    async with client.messages.stream(model="claude-3-5-haiku-latest", max_tokens=211,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        assert await stream.get_final_text() == REPLY_TEXT
    async with client.messages.stream(
        model="claude-3-5-haiku-latest", max_tokens=3001, thinking={"type": "enabled", "budget_tokens": 1999},
        tools=[{"name": "first_gwl", "input_schema": {"type": "object"}}, {"name": "picked_gwl", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "picked_gwl"}, messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].name == "picked_gwl" and final.content[1].input["unit"] == "celsius"  # type: ignore[union-attr,index]
    assert final.stop_reason == "tool_use"
    rec = (await log(mock_server, "sdk"))["records"][-1]
    kinds = [f["event"] for f in rec["response"]["frames"]]
    assert kinds[0] == "message_start" and "ping" in kinds and kinds[-2:] == ["message_delta", "message_stop"]


async def test_models_and_health_for_both_sdks(mock_server: MockServer) -> None:
    assert (await oa(mock_server).models.list()).data[0].id
    page = await an(mock_server).models.list()
    assert page.data[0].id
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        assert (await c.get(f"{mock_server.url}/health")).json()["status"] == "ok"
        assert (await c.get(f"{mock_server.url}/ch/x/health")).status_code == 200


async def test_record_fields_and_raw_body(mock_server: MockServer) -> None:
    body = b'{"model": "gpt-4o-mini",   "messages": [{"role":"user","content":"caf\xc3\xa9"}], "x_unknown": null}'
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        r = await c.post(f"{mock_server.url}/ch/rec/chat/completions?trace=abc", content=body,
                         headers={"content-type": "application/json", "x-trace": "t1"})
    assert r.status_code == 200
    rec = (await log(mock_server, "rec"))["records"][0]
    assert rec["channel"] == "rec" and rec["path"] == "/chat/completions" and rec["dialect"] == "chat"
    assert rec["raw_path"] == "/ch/rec/chat/completions"
    assert rec["body_text"].encode() == body  # kept exactly, whitespace and all
    assert rec["body_json"]["x_unknown"] is None and rec["body_is_json"] is True
    assert rec["query"] == [["trace", "abc"]] and rec["headers"]["x-trace"] == "t1"
    assert rec["response"]["status"] == 200 and rec["response"]["body"]["choices"][0]["message"]["content"] == REPLY_TEXT


async def test_bad_traffic_is_recorded_and_answered(mock_server: MockServer) -> None:
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        r1 = await c.post(f"{mock_server.url}/ch/bad/v1/messages", content=b"not json at all")
        r2 = await c.post(f"{mock_server.url}/ch/bad/v1/chat/completions", content=b"")
        r3 = await c.post(f"{mock_server.url}/ch/bad/v1/unknown/route", content=b"{}")
        r4 = await c.post(f"{mock_server.url}/ch/bad/v1/responses", content=b"\xff\xfe\x00garbage")
        r5 = await c.post(f"{mock_server.url}/ch/bad/v1/chat/completions", content=b"[1, 2]")
    assert r1.status_code == 400 and r1.json()["type"] == "error" and r1.json()["error"]["type"] == "invalid_request_error"
    assert r2.status_code == 400 and "empty" in r2.json()["error"]["message"]
    assert r3.status_code == 404
    assert r4.status_code == 400 and r5.status_code == 400
    recs = (await log(mock_server, "bad"))["records"]
    assert [x["response"]["status"] for x in recs] == [400, 400, 404, 400, 400]
    assert recs[0]["body_text"] == "not json at all" and recs[0]["body_is_json"] is False
    # Not UTF-8: the exact bytes as base64, next to the decoded text, with a note.
    assert base64.b64decode(recs[3]["body_b64"]) == b"\xff\xfe\x00garbage"
    assert recs[3]["body_text"] == "\ufffd\ufffd\x00garbage" and "not valid UTF-8" in recs[3]["notes"][0]


async def test_scripts_errors_delay_cut_and_custom(mock_server: MockServer) -> None:
    url = mock_server.url
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        await c.post(f"{url}/__mock/script?channel=s", json={"steps": [
            {"status": 429}, {"status": 529}, {"delay_ms": 300}, {"cut_after": 2},
            {"events": [{"event": "custom", "data": {"x": 1}}, {"data": "[DONE]"}]},
            {"body": {"hello": "gwl"}, "status": 201}, {"tool_call": {"name": "forced_gwl", "arguments": {"a": 1}}},
        ]})
        queued = (await c.get(f"{url}/__mock/script?channel=s")).json()["steps"]
        assert len(queued) == 7
    aclient = an(mock_server, "s")
    with pytest.raises(anthropic.RateLimitError) as rl:
        await aclient.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert rl.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as ov:
        await aclient.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ov.value.status_code == 529 and ov.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await aclient.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert loop.time() - t0 >= 0.29
    with pytest.raises(Exception, match=r"incomplete|[Cc]onnection"):  # SDKs differ in what they raise
        async with aclient.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as st:
            await st.get_final_message()
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        r = await c.post(f"{url}/ch/s/v1/chat/completions", json={"model": "m", "messages": [], "stream": True})
        assert r.text == 'event: custom\ndata: {"x": 1}\n\ndata: [DONE]\n\n'
        r = await c.post(f"{url}/ch/s/v1/chat/completions", json={"model": "m", "messages": []})
        assert r.status_code == 201 and r.json() == {"hello": "gwl"}
        r = await c.post(f"{url}/ch/s/v1/responses", json={"model": "m", "input": "x"})
        assert r.json()["output"][0]["name"] == "forced_gwl"
        r = await c.post(f"{url}/ch/s/v1/responses", json={"model": "m", "input": "x"})
        assert r.json()["output"][0]["type"] == "message"  # script exhausted: default answer
    recs = (await log(mock_server, "s"))["records"]
    cut = recs[3]["response"]
    assert cut["cut"] is True and len(cut["frames"]) == 2
    assert recs[0]["response"]["scripted"] == "status=429"


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/__mock/script?channel=c", b"{nope", 400),
    ("POST", "/__mock/script?channel=c", b'{"steps": [{"status": "x"}]}', 400),
    ("POST", "/__mock/script?channel=c", b'{"steps": [{"bogus": 1}]}', 400),
    ("POST", "/__mock/script?channel=c", b'{"steps": [{"status": 99}]}', 400),
    ("POST", "/__mock/script?channel=bad%20name", b"[]", 400),
    ("GET", "/__mock/log?since=abc", b"", 400),
    ("GET", "/__mock/log?since=-4", b"", 400),
    ("GET", "/__mock/nothing", b"", 404),
    ("DELETE", "/__mock/log", b"", 405),
    ("GET", "/__mock/last?channel=empty", b"", 404),
])
async def test_malformed_control_calls_get_4xx(mock_server: MockServer, method: str, path: str, body: bytes,
                                               status: int) -> None:
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        r = await c.request(method, f"{mock_server.url}{path}", content=body)
    assert r.status_code == status
    assert r.json()["error"]["message"]


async def test_reset_and_since(mock_server: MockServer) -> None:
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        for ch in ("a", "a", "b"):
            await c.post(f"{mock_server.url}/ch/{ch}/v1/messages", json={"model": "m", "max_tokens": 3, "messages": []})
        first = await log(mock_server, "a")
        assert len(first["records"]) == 2
        assert (await log(mock_server, "a", since=first["records"][0]["seq"]))["records"][0]["seq"] == first["records"][1]["seq"]
        r = await c.post(f"{mock_server.url}/__mock/reset?channel=a")
        assert r.json()["cleared"] == 2
        assert (await log(mock_server, "a"))["records"] == []
        assert len((await log(mock_server, "b"))["records"]) == 1
        assert (await c.get(f"{mock_server.url}/__mock/last?channel=b")).json()["channel"] == "b"


async def test_concurrent_requests_attributed_to_their_channel(mock_server: MockServer) -> None:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        async def one(i: int) -> None:
            ch = f"ch{i % 10}"
            dialect = ("chat/completions", "responses", "messages")[i % 3]
            r = await c.post(f"{mock_server.url}/ch/{ch}/v1/{dialect}",
                             json={"model": "m", "max_tokens": 5, "stream": i % 2 == 0, "input": "x",
                                   "messages": [{"role": "user", "content": f"req-{i}"}]})
            assert r.status_code == 200

        await asyncio.gather(*(one(i) for i in range(200)))
    all_recs = (await log(mock_server))["records"]
    assert len(all_recs) == 200
    assert len({r["seq"] for r in all_recs}) == 200
    for r in all_recs:
        i = int(r["body_json"]["messages"][0]["content"].split("-")[1])
        assert r["channel"] == f"ch{i % 10}"


async def test_memory_bound_per_channel(tmp_path: Path) -> None:
    async with MockServer("127.0.0.1", 0, max_records=5) as server, httpx.AsyncClient(headers=server.control_headers) as c:
        for _ in range(8):
            await c.get(f"{server.url}/ch/m/v1/models")
        recs = (await log(server, "m"))["records"]
        assert len(recs) == 5 and recs[-1]["seq"] == 8


async def test_canaries_never_stored(mock_server: MockServer, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {CANARIES[0]}", "x-api-key": CANARIES[1], "x-custom-token": CANARIES[2],
               "Cookie": f"session={CANARIES[3]}", "x-forwarded-note": f"note Bearer {CANARIES[0]}",
               "api-key": CANARIES[2], "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(headers=mock_server.control_headers) as c:
        await c.post(f"{mock_server.url}/ch/sec/v1/messages?api_key={CANARIES[2]}&key={CANARIES[0]}&sig={CANARIES[3]}",
                     json={"model": "m", "max_tokens": 3, "messages": []}, headers=headers)
        text = (await c.get(f"{mock_server.url}/__mock/log")).text + (await c.get(f"{mock_server.url}/__mock/last?channel=sec")).text
    file_text = (tmp_path / "mock-records.jsonl").read_text()
    for canary in CANARIES:
        assert canary not in text and canary not in file_text
    rec = json.loads(file_text.splitlines()[-1])
    assert rec["headers"]["anthropic-version"] == "2023-06-01"
    assert re.fullmatch(r"Bearer \[REDACTED len=29 fp=[0-9a-f]{8}\]", rec["headers"]["authorization"])
    # Equal secrets share a fingerprint, so "forwarded verbatim" stays visible.
    fp_auth = rec["headers"]["authorization"].split("fp=")[1]
    assert rec["headers"]["x-forwarded-note"].endswith(fp_auth)


def test_cli_terminal_output_has_no_secrets_and_stops_on_sigint(tmp_path: Path) -> None:
    record = tmp_path / "rec.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "gatewaylens.mock", "--port", "0", "--record-file", str(record)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, line
        url = m.group(0)
        r = httpx.post(f"{url}/ch/cli/v1/chat/completions?api_key={CANARIES[0]}&token={CANARIES[2]}",
                       json={"model": "m", "messages": []}, headers={"authorization": f"Bearer {CANARIES[1]}"})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        # Read the rest through the same buffered reader: communicate() would bypass its buffer.
        assert proc.stdout is not None
        out = proc.stdout.read()
    assert proc.returncode == 0
    full = line + out
    assert "/ch/litellm" in full and "[cli] POST /v1/chat/completions" in full and "stopped" in full
    for canary in CANARIES:
        assert canary not in full and canary not in record.read_text()


def test_cli_port_in_use_is_one_line_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "gatewaylens.mock", "--port", str(port)], capture_output=True,
                           text=True, timeout=20, env={**os.environ})
    assert r.returncode == 2
    assert "cannot listen" in r.stderr and "Traceback" not in r.stderr
