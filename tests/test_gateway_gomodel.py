"""GoModel: the profile, its generated config, the installer's pins, and the real gateway on loopback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, _go, gomodel
from gatewaylens.capture.launch import PROJECT_ROOT
from gatewaylens.dialects import DIALECTS, UPSTREAMS, redaction_marker
from gatewaylens.mock.server import MockServer
from tests.go_gateway_probe import BODIES, assert_complete, channel_records, launched, send

SCRIPT = PROJECT_ROOT / "scripts" / "install-go-gateways.sh"


# --- fast ------------------------------------------------------------------------------------


def test_profile_is_registered_and_valid() -> None:
    prof = PROFILES["gomodel"]
    # the registry key is the profile's own name (it becomes the mock channel), every route a path
    assert prof.name == "gomodel" and prof.routes and all(r.path.startswith("/") for r in prof.routes)
    assert prof.launcher in LAUNCHERS
    assert prof.image == f"enterpilot/gomodel:{gomodel.PINNED_VERSION.removeprefix('v')}"
    # Every (dialect, upstream) pair is either routed or declared unsupported with a reason.
    for d in DIALECTS:
        for u in UPSTREAMS:
            assert prof.route_for(d, u) or prof.unsupported_reason(d, u), (d, u)
    assert "/v1/messages" in (prof.unsupported_reason("messages", "openai") or "")
    passthrough = [r for r in prof.routes if r.passthrough]
    assert {r.path for r in passthrough} == {"/p/anthropic/v1/messages", "/p/openai/v1/chat/completions",
                                             "/p/openai/v1/responses"}
    assert all(r.variant == "passthrough" and r.model is None for r in passthrough)
    assert prof.client_headers["Authorization"].startswith("Bearer sk-gwlens-client-")


def test_installer_pins_match_profile() -> None:
    text = SCRIPT.read_text()
    assert re.search(rf'^GOMODEL_VERSION="{re.escape(gomodel.PINNED_VERSION)}"$', text, re.M)
    assert re.search(rf'^GOMODEL_COMMIT="{gomodel.PINNED_COMMIT}"$', text, re.M)


def test_generated_config_points_at_channel_without_secrets(tmp_path: Path) -> None:
    path = gomodel.write_config(tmp_path, "http://127.0.0.1:9999/ch/gomodel", 4321)
    cfg = yaml.safe_load(path.read_text())
    assert cfg["server"]["port"] == "4321"
    assert cfg["providers"]["openai"]["base_url"] == "http://127.0.0.1:9999/ch/gomodel/v1"
    assert cfg["providers"]["anthropic"]["base_url"] == "http://127.0.0.1:9999/ch/gomodel/v1"
    assert cfg["cache"]["model"]["model_list"]["url"] == ""  # offline: no model-list download
    text = path.read_text()
    for secret in (gomodel.CLIENT_KEY, gomodel.UPSTREAM_OPENAI_KEY, gomodel.UPSTREAM_ANTHROPIC_KEY):
        assert secret not in text
    assert set(gomodel.gomodel_env()) == set(re.findall(r"\$\{(\w+)\}", text))


def test_docker_config_is_the_generated_one() -> None:
    mounted = yaml.safe_load((PROJECT_ROOT / "docker" / "gomodel" / "config.yaml").read_text())
    assert mounted == gomodel.gomodel_config("http://mock:9999/ch/gomodel", 8080)


def test_unavailable_reason_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_go, "GO_BIN", tmp_path)
    reason = LAUNCHERS["gomodel"]().available()
    assert reason and "\n" not in reason and reason.startswith("GoModel not installed: cannot be installed here")
    # The skip names the command that fixes it.
    assert "scripts/register-built-gateway.sh gomodel BINARY SOURCE_DIR" in reason
    # A binary dropped in by hand with a stamp but no source record must match the pin.
    (tmp_path / "gomodel").write_text("#!/bin/sh\n")
    (tmp_path / "gomodel.version").write_text("v0.0.1\n")
    reason = LAUNCHERS["gomodel"]().available() or ""
    assert "not the pinned v0.1.22" in reason and "register-built-gateway.sh" in reason


def test_profile_retry_note_matches_the_source() -> None:
    # GoModel v0.1.22 internal/llmclient/client.go: isRetryable is 429, 502, 503, 504 (not 500);
    # canRetryPassthrough is false for a POST without Idempotency-Key; DefaultRetryConfig 3 retries.
    notes = PROFILES["gomodel"].notes
    assert "429/502/503/504" in notes and "a 500 is not retried" in notes and "passthrough POSTs are never" in notes
    # config/config.go DefaultCircuitBreakerConfig: FailureThreshold 5, Timeout 30 s.
    assert "5 failed translated requests in a row" in notes and "30 s" in notes


# --- slow: the real GoModel ------------------------------------------------------------------

_SKIP = LAUNCHERS["gomodel"]().available()
needs_gomodel = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


@pytest.mark.slow
@needs_gomodel
@pytest.mark.parametrize("stream", [False, True])
async def test_translated_routes(mock_server: MockServer, tmp_path: Path, stream: bool) -> None:
    prof = PROFILES["gomodel"]
    async with launched(LAUNCHERS["gomodel"](), mock_server, "gomodel", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        # Offline start: no model-list download, no upstream /models polling in allowlist mode.
        assert await channel_records(client, mock_server, "gomodel") == []
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for route in (r for r in prof.routes if not r.passthrough):
            sent = await send(client, mock_server, gw, prof, route, stream)
            assert_complete(route.dialect, sent, stream)
            assert len(sent.upstream) == 1, sent.upstream
            up = sent.upstream[0]
            assert up["path"] == ("/v1/messages" if route.upstream == "anthropic" else f"/v1/{route.path.rsplit('/v1/', 1)[1]}")
            body = up["body_json"]
            # provider/model selector: the prefix picks the provider and is stripped upstream.
            assert route.model and body["model"] == route.model.split("/", 1)[1]
            if route.upstream == "anthropic":
                assert up["headers"]["x-api-key"] == redaction_marker(gomodel.UPSTREAM_ANTHROPIC_KEY)
            else:
                assert up["headers"]["authorization"] == f"Bearer {redaction_marker(gomodel.UPSTREAM_OPENAI_KEY)}"
            seen[(route.dialect, route.upstream)] = body

    # Responses -> Anthropic: max_output_tokens is renamed max_tokens, instructions become system.
    resp_anth = seen[("responses", "anthropic")]
    assert resp_anth["max_tokens"] == 66 and "max_output_tokens" not in resp_anth
    assert resp_anth["system"] == "gwl-system-responses"
    # Chat -> Anthropic: the system message moves to the top-level system field.
    chat_anth = seen[("chat", "anthropic")]
    assert chat_anth["system"] == "gwl-system-chat" and chat_anth["max_tokens"] == 77
    assert all(m["role"] != "system" for m in chat_anth["messages"])
    # Responses -> OpenAI keeps the Responses shape and its own parameter names.
    assert seen[("responses", "openai")]["max_output_tokens"] == 66
    chat_oai = seen[("chat", "openai")]
    if stream:
        # ENFORCE_RETURNING_USAGE_DATA (default on) adds include_usage to streaming chat.
        assert chat_oai["stream_options"] == {"include_usage": True}
    else:
        # GoModel re-serialises the request and drops the client's explicit "stream": false.
        assert "stream" not in chat_oai


@pytest.mark.slow
@needs_gomodel
@pytest.mark.parametrize("stream", [False, True])
async def test_passthrough_routes_forward_the_body_byte_for_byte(mock_server: MockServer, tmp_path: Path,
                                                                  stream: bool) -> None:
    prof = PROFILES["gomodel"]
    async with launched(LAUNCHERS["gomodel"](), mock_server, "gomodel", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        for route in (r for r in prof.routes if r.passthrough):
            sent = await send(client, mock_server, gw, prof, route, stream)
            assert_complete(route.dialect, sent, stream)
            assert len(sent.upstream) == 1
            up = sent.upstream[0]
            # /p/<provider>/v1/<endpoint> -> <provider base>/<endpoint>; the base ends in /v1.
            assert up["path"] == "/v1/" + route.path.split("/v1/", 1)[1]
            assert up["body_text"].encode() == sent.body_sent
            # Credentials are substituted: the client's GoModel key never goes upstream.
            if route.upstream == "anthropic":
                assert up["headers"]["x-api-key"] == redaction_marker(gomodel.UPSTREAM_ANTHROPIC_KEY)
                assert "authorization" not in up["headers"]
            else:
                assert up["headers"]["authorization"] == f"Bearer {redaction_marker(gomodel.UPSTREAM_OPENAI_KEY)}"


@pytest.mark.slow
@needs_gomodel
async def test_messages_to_openai_is_refused_without_upstream_call(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["gomodel"]
    async with launched(LAUNCHERS["gomodel"](), mock_server, "gomodel", tmp_path) as gw, \
            httpx.AsyncClient(timeout=30, trust_env=False) as client:
        body = {**BODIES["messages"], "model": gomodel.OPENAI_MODEL}
        r = await client.post(f"{gw.base_url}/v1/messages", json=body, headers=prof.client_headers)
        assert r.status_code == 404
        assert await channel_records(client, mock_server, "gomodel") == []




#: GoModel v0.1.22 internal/llmclient/client.go: ``isRetryable`` is true for 429, 502, 503 and 504 only;
#: ``Do`` retries those up to ``RetryConfig.MaxRetries`` (config/config.go DefaultRetryConfig: 3) with a
#: 1 s initial backoff; ``DoPassthrough`` retries only when ``canRetryPassthrough`` (GET/HEAD/OPTIONS/PUT
#: or an Idempotency-Key header), so a passthrough POST is sent once.
RETRIED = (429, 502, 503, 504)


@pytest.mark.slow
@needs_gomodel
async def test_retries_follow_the_source(mock_server: MockServer, tmp_path: Path) -> None:
    prof = PROFILES["gomodel"]
    chat = next(r for r in prof.routes if r.dialect == "chat" and r.upstream == "openai" and not r.passthrough)
    passthrough = next(r for r in prof.routes if r.passthrough and r.dialect == "chat")
    async with launched(LAUNCHERS["gomodel"](), mock_server, "gomodel", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def fail_once(status: int) -> None:
            r = await client.post(f"{mock_server.url}/__mock/script", params={"channel": "gomodel"}, headers=mock_server.control_headers,
                                  json={"steps": [{"status": status}], "mode": "replace"})
            r.raise_for_status()

        # A 500 is not retried: one upstream call, and the client gets an error.
        await fail_once(500)
        sent = await send(client, mock_server, gw, prof, chat, False)
        assert len(sent.upstream) == 1 and sent.status >= 500, (sent.status, sent.upstream)
        for status in RETRIED:
            await fail_once(status)
            sent = await send(client, mock_server, gw, prof, chat, False)
            # The scripted failure, then the retry the mock answers normally.
            assert [u["response"]["status"] for u in sent.upstream] == [status, 200], status
            assert_complete("chat", sent, False)
        # Passthrough POSTs are sent once, and the upstream's 503 reaches the client unchanged.
        await fail_once(503)
        sent = await send(client, mock_server, gw, prof, passthrough, False)
        assert len(sent.upstream) == 1 and sent.status == 503, (sent.status, sent.upstream)


@pytest.mark.slow
@needs_gomodel
async def test_five_failures_open_the_circuit_breaker(mock_server: MockServer, tmp_path: Path) -> None:
    # GoModel v0.1.22 internal/llmclient/client.go: a 5xx (not 429) is recorded as a failure once the
    # request is over (recordCircuitBreakerCompletion); config/config.go DefaultCircuitBreakerConfig opens
    # the breaker after FailureThreshold 5 consecutive failures, for Timeout 30 s.
    prof = PROFILES["gomodel"]
    chat = next(r for r in prof.routes if r.dialect == "chat" and r.upstream == "openai" and not r.passthrough)
    async with launched(LAUNCHERS["gomodel"](), mock_server, "gomodel", tmp_path) as gw, \
            httpx.AsyncClient(timeout=60, trust_env=False) as client:
        r = await client.post(f"{mock_server.url}/__mock/script", params={"channel": "gomodel"}, headers=mock_server.control_headers,
                              json={"steps": [{"status": 500, "times": 5}], "mode": "replace"})
        r.raise_for_status()
        for _ in range(5):
            sent = await send(client, mock_server, gw, prof, chat, False)
            assert len(sent.upstream) == 1 and sent.status >= 500
        # The mock would answer normally now, but GoModel no longer asks it.
        sent = await send(client, mock_server, gw, prof, chat, False)
        assert sent.upstream == [] and sent.status >= 500, (sent.status, sent.text[:200])
        # The other provider has its own breaker.
        anth = next(r for r in prof.routes if r.dialect == "chat" and r.upstream == "anthropic")
        assert_complete("chat", await send(client, mock_server, gw, prof, anth, False), False)
