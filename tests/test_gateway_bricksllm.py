"""BricksLLM: profile, namespace bridge, and (slow) a real launch captured through the mock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, _go
from gatewaylens.capture.gateways import bricksllm as bl
from gatewaylens.capture.gateways._netns_bridge import forward_app, start_relay
from gatewaylens.capture.launch import LaunchContext, free_port
from gatewaylens.capture.models import GatewayProfile
from gatewaylens.dialects import redaction_marker
from gatewaylens.mock.server import MockServer

# --------------------------------------------------------------------------------------------
# fast
# --------------------------------------------------------------------------------------------


def test_profile_is_registered_and_covers_every_dialect_and_upstream() -> None:
    p = PROFILES["bricksllm"]
    assert LAUNCHERS["bricksllm"] is bl.BricksLLMLauncher
    GatewayProfile.model_validate(p.model_dump())  # round-trips through its own schema
    assert p.image == "luyuanxin1995/bricksllm:1.45.2" and p.version == bl.PINNED_VERSION
    assert p.client_headers == {"Authorization": f"Bearer {bl.CLIENT_KEY}"}
    for dialect in ("chat", "responses", "messages"):
        for upstream in ("openai", "anthropic"):
            routes = p.route_for(dialect, upstream)
            declared = [u for u in p.unsupported if (u.dialect, u.upstream) == (dialect, upstream)]
            assert bool(routes) != bool(declared), (dialect, upstream)  # exactly one of the two
    assert [r.path for r in p.route_for("chat", "openai")] == [
        "/api/providers/openai/v1/chat/completions", "/api/providers/vllm/v1/chat/completions"]
    assert [r.path for r in p.route_for("messages", "anthropic")] == ["/api/providers/anthropic/v1/messages"]
    assert "responses" in (p.unsupported_reason("responses", "openai") or "")


def test_launcher_says_why_when_binary_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_go, "GO_BIN", tmp_path)
    reason = bl.BricksLLMLauncher().available()
    assert reason is not None and "scripts/install-bricksllm.sh" in reason and "\n" not in reason


def test_env_turns_telemetry_off_and_points_at_private_stores() -> None:
    env = bl.bricksllm_env("adminpass")
    assert env["STATS_ENABLED"] == "false" and env["PROMETHEUS_ENABLED"] == "false"
    assert env["POSTGRESQL_HOSTS"] == env["REDIS_HOSTS"] == "127.0.0.1"
    assert env["TIKTOKEN_CACHE_DIR"] == str(bl.TIKTOKEN_DIR)
    # sha1 of tiktoken-go's download URL for r50k_base, as its cache names the file
    assert bl.tiktoken_cache_name("r50k_base") == "0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4"


@pytest.fixture
async def forwarder(mock_server: MockServer, tmp_path: Path) -> AsyncIterator[str]:
    """The namespace-side forwarder, in-process: plain HTTP -> unix socket -> mock."""
    sock = str(tmp_path / "mock.sock")
    relay = await start_relay(f"unix:{sock}>tcp:127.0.0.1:{mock_server.port}")
    runner = web.AppRunner(forward_app(sock, "/ch/bricksllm"), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        relay.close()


async def test_forwarder_passes_requests_and_answers_unchanged(forwarder: str, mock_server: MockServer) -> None:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fwd-7731"}],"stream":true}'
    headers = {"Host": "api.openai.com", "Content-Type": "application/json", "X-Probe": "p-42"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        r = await c.post(f"{forwarder}/v1/chat/completions?x=1", content=body, headers=headers)
        log = (await c.get(f"{mock_server.url}/__mock/log", params={"channel": "bricksllm"}, headers=mock_server.control_headers)).json()
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    [rec] = log["records"]
    assert rec["path"] == "/v1/chat/completions" and rec["raw_path"] == "/ch/bricksllm/v1/chat/completions"
    assert rec["query"] == [["x", "1"]]
    assert rec["body_text"] == body.decode()
    h = rec["headers"]
    assert h["host"] == "api.openai.com" and h["x-probe"] == "p-42"
    # the forwarder adds nothing of its own (aiohttp's default User-Agent/Accept would show here)
    assert "aiohttp" not in json.dumps(h).lower()


# --------------------------------------------------------------------------------------------
# slow: the real gateway
# --------------------------------------------------------------------------------------------

_SKIP = bl.BricksLLMLauncher().available()


def _records(log: dict[str, Any]) -> list[dict[str, Any]]:
    return list(log["records"])


@pytest.mark.slow
@pytest.mark.skipif(_SKIP is not None, reason=f"BricksLLM cannot launch here: {_SKIP}")
async def test_bricksllm_launch_and_capture(mock_server: MockServer, tmp_path: Path) -> None:
    launcher = bl.BricksLLMLauncher()
    ctx = LaunchContext(channel_url=f"{mock_server.url}/ch/bricksllm", mock_url=mock_server.url,
                        port=free_port(), workdir=tmp_path / "work")
    client_h = PROFILES["bricksllm"].client_headers
    launched = await launcher.start(ctx)
    procs = list(launcher._ordered)
    try:
        assert launched.version == "v1.45.2"
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "bricks-chat-5151"}],
                "max_tokens": 17, "temperature": 0.25}
        msgs = {"model": "claude-3-5-haiku-latest", "max_tokens": 33, "system": "sys-bricks-9",
                "messages": [{"role": "user", "content": "bricks-msg-6262"}]}
        sent = [
            ("/api/providers/openai/v1/chat/completions", chat),
            ("/api/providers/openai/v1/chat/completions", {**chat, "stream": True}),
            ("/api/providers/vllm/v1/chat/completions", chat),
            ("/api/providers/anthropic/v1/messages", msgs),
            ("/api/providers/anthropic/v1/messages", {**msgs, "stream": True}),
        ]
        answers = []
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            for path, body in sent:
                answers.append(await c.post(launched.base_url + path, json=body, headers=client_h))
            log = (await c.get(f"{mock_server.url}/__mock/log", params={"channel": "bricksllm"}, headers=mock_server.control_headers)).json()
    finally:
        await launcher.stop()
    assert all(p.poll() is not None for p in procs), "a BricksLLM/PostgreSQL/Redis/bridge process outlived stop()"

    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].json()["object"] == "chat.completion"
    assert answers[1].text.rstrip().endswith("data: [DONE]")
    assert "event: message_stop" in answers[4].text
    recs = _records(log)
    assert [(r["path"], r["headers"]["host"]) for r in recs] == [
        ("/v1/chat/completions", "api.openai.com"),
        ("/v1/chat/completions", "api.openai.com"),
        ("/v1/chat/completions", f"127.0.0.1:{bl.PLAIN_FORWARD_PORT}"),
        ("/v1/messages", "api.anthropic.com"),
        ("/v1/messages", "api.anthropic.com"),
    ]
    # bodies go upstream as the client sent them (BricksLLM forwards, it does not translate)
    assert [r["body_json"] for r in recs] == [b for _, b in sent]
    # the client's BricksLLM key is swapped for the provider setting's key ...
    assert recs[0]["headers"]["authorization"] == f"Bearer {redaction_marker(bl.UPSTREAM_OPENAI_KEY)}"
    assert recs[2]["headers"]["authorization"] == f"Bearer {redaction_marker(bl.UPSTREAM_VLLM_KEY)}"
    assert recs[3]["headers"]["x-api-key"] == redaction_marker(bl.UPSTREAM_ANTHROPIC_KEY)
    # ... except that on the Anthropic route the client's Authorization header is forwarded as is
    # (v1.45.2 sets x-api-key and copies every other header): the gateway key reaches Anthropic.
    assert recs[3]["headers"]["authorization"] == f"Bearer {redaction_marker(bl.CLIENT_KEY)}"
    assert recs[1]["headers"]["accept"] == "text/event-stream"  # set by BricksLLM for streams
