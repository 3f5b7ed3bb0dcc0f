"""LiteLLM proxy: the two profiles, the generated config, the installer's pins, and the real proxy."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gatewaylens.capture.gateways import LAUNCHERS, PROFILES, litellm
from gatewaylens.capture.launch import PROJECT_ROOT
from gatewaylens.dialects import DIALECT_PATHS, DIALECTS, UPSTREAMS, redaction_marker
from gatewaylens.mock.server import MockServer
from tests.gateway_checks import listening_addresses
from tests.go_gateway_probe import BODIES, assert_complete, channel_records, launched, send

NAMES = ("litellm", "litellm-chat")

# --- fast ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_profiles_are_registered_and_valid(name: str) -> None:
    prof = PROFILES[name]
    # the registry key is the profile's own name (it becomes the mock channel), every route a path
    assert prof.name == name and prof.routes and all(r.path.startswith("/") for r in prof.routes)
    assert prof.launcher == name and issubclass(LAUNCHERS[name], litellm.LiteLLMLauncher)
    for d in DIALECTS:
        for u in UPSTREAMS:
            (route,) = [r for r in prof.route_for(d, u) if not r.passthrough]
            assert route.path == DIALECT_PATHS[d] and route.model == litellm.CLIENT_MODELS[u]
    assert {r.path for r in prof.routes if r.passthrough} == ({
        "/openai/v1/chat/completions", "/openai_passthrough/v1/responses", "/anthropic/v1/messages"}
        if name == "litellm" else set())
    assert all(r.variant == "passthrough" and r.model is None for r in prof.routes if r.passthrough)
    assert prof.client_headers == {"authorization": f"Bearer {litellm.MASTER_KEY}"}
    assert litellm.MASTER_KEY.startswith("sk-gwlens-client-")
    assert prof.version == litellm.VERSION and prof.image and prof.image.endswith(litellm.VERSION)


def test_launchers_differ_only_in_routing_env() -> None:
    assert litellm.LiteLLMLauncher.routing_env == {}
    assert litellm.LiteLLMChatLauncher.routing_env == {"LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True"}


def test_installer_pins_match_profile() -> None:
    req = (PROJECT_ROOT / "gateways" / "litellm" / "requirements.txt").read_text()
    assert re.search(rf"^litellm\[proxy\]=={re.escape(litellm.VERSION)}$", req, re.M)
    constraints = (PROJECT_ROOT / "gateways" / "litellm" / "constraints.txt").read_text()
    assert re.search(rf"^litellm=={re.escape(litellm.VERSION)}$", constraints, re.M)
    pins = [ln for ln in constraints.splitlines() if ln and not ln.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s=]+", ln) for ln in pins), pins


def test_generated_config_points_at_channel_without_secrets() -> None:
    cfg = litellm.make_config("http://127.0.0.1:9999/ch/litellm")
    bases = {m["model_name"]: m["litellm_params"]["api_base"] for m in cfg["model_list"]}
    assert bases == {"gwlens-openai": "http://127.0.0.1:9999/ch/litellm/v1",
                     "gwlens-openai-reasoning": "http://127.0.0.1:9999/ch/litellm/v1",
                     "gwlens-anthropic": "http://127.0.0.1:9999/ch/litellm"}
    text = yaml.safe_dump(cfg)
    for secret in (litellm.MASTER_KEY, *litellm.UPSTREAM_KEYS.values()):
        assert secret not in text
    assert cfg["litellm_settings"]["num_retries"] == 0


@pytest.mark.parametrize(("name", "fname"), [("litellm", "config.yaml"), ("litellm-chat", "config-chat.yaml")])
def test_docker_config_is_the_generated_one(name: str, fname: str) -> None:
    mounted = yaml.safe_load((PROJECT_ROOT / "docker" / "litellm" / fname).read_text())
    assert mounted == litellm.make_config(f"http://mock:9999/ch/{name}")


def test_available_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reason = litellm.LiteLLMLauncher().available()
    assert reason is None or (isinstance(reason, str) and "\n" not in reason)
    monkeypatch.setattr(litellm, "VENV", tmp_path)
    assert litellm.LiteLLMChatLauncher().available() == "LiteLLM not installed: run scripts/install-litellm.sh"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "litellm").write_text("#!/bin/sh\n")
    (tmp_path / "lib/python3.11/site-packages/litellm-1.0.0.dist-info").mkdir(parents=True)
    assert litellm.LiteLLMLauncher().available() == (
        f"LiteLLM 1.0.0 installed but {litellm.VERSION} is pinned: run scripts/install-litellm.sh")


# --- slow: the real LiteLLM proxy ------------------------------------------------------------

_SKIP = litellm.LiteLLMLauncher().available()
needs_litellm = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

#: Upstream path LiteLLM calls per (client dialect, upstream kind), default routing.
UPSTREAM_PATH: dict[tuple[str, str], str] = {
    ("chat", "openai"): "/v1/chat/completions",
    ("chat", "anthropic"): "/v1/messages",
    ("responses", "openai"): "/v1/responses",
    ("responses", "anthropic"): "/v1/messages",
    ("messages", "openai"): "/v1/responses",
    ("messages", "anthropic"): "/v1/messages",
}
#: The token limit each client body carries (tests/go_gateway_probe.BODIES), as it must arrive upstream.
LIMIT = {"chat": 77, "responses": 66, "messages": 55}


def check_auth(up: dict[str, Any], upstream: str) -> None:
    if upstream == "anthropic":
        assert up["headers"]["x-api-key"] == redaction_marker(litellm.UPSTREAM_KEYS["anthropic"])
    else:
        assert up["headers"]["authorization"] == f"Bearer {redaction_marker(litellm.UPSTREAM_KEYS['openai'])}"
    # The client's master key never goes upstream.
    assert redaction_marker(litellm.MASTER_KEY) not in str(up["headers"])


async def run_routes(name: str, mock: MockServer, tmp_path: Path,
                     passthrough: bool) -> dict[tuple[str, str, bool], dict[str, Any]]:
    """Launch ``name``, send every (passthrough or translated) route stream and not; upstream records."""
    prof = PROFILES[name]
    seen: dict[tuple[str, str, bool], dict[str, Any]] = {}
    async with launched(LAUNCHERS[name](), mock, name, tmp_path) as gw, \
            httpx.AsyncClient(timeout=90, trust_env=False) as client:
        assert gw.version == litellm.VERSION
        assert listening_addresses(int(gw.base_url.rsplit(":", 1)[1])) == {"127.0.0.1"}
        # Offline start: nothing reached the channel before the first request.
        assert await channel_records(client, mock, name) == []
        for route in (r for r in prof.routes if r.passthrough == passthrough):
            for stream in (False, True):
                sent = await send(client, mock, gw, prof, route, stream)
                assert_complete(route.dialect, sent, stream)
                assert len(sent.upstream) == 1, [u["path"] for u in sent.upstream]  # retries are off
                up = sent.upstream[0]
                up["sent_bytes"] = sent.body_sent
                check_auth(up, route.upstream)
                seen[(route.dialect, route.upstream, stream)] = up
        # Without the master key nothing is forwarded.  (1.106.12 without a DB answers 500, not 401:
        # its auth error handler imports the optional 'prisma' module, which the [proxy] extra lacks.)
        seq = int((await client.get(f"{mock.url}/__mock/health")).json()["last_seq"])
        r = await client.post(f"{gw.base_url}/v1/chat/completions", json={**BODIES["chat"], "model": "gwlens-openai"})
        assert r.status_code in (401, 500)
        assert await channel_records(client, mock, name, seq) == []
    return seen


@pytest.mark.slow
@needs_litellm
async def test_real_litellm_default_routing(mock_server: MockServer, tmp_path: Path) -> None:
    seen = await run_routes("litellm", mock_server, tmp_path, passthrough=False)
    for (dialect, upstream, stream), up in seen.items():
        assert up["path"] == UPSTREAM_PATH[(dialect, upstream)], (dialect, upstream)
        body = up["body_json"]
        # The client's alias is mapped to the deployment's model.
        assert body["model"] == litellm.UPSTREAM_MODELS[upstream]  # type: ignore[index]
        limit_field = "max_output_tokens" if up["path"] == "/v1/responses" else "max_tokens"
        assert body[limit_field] == LIMIT[dialect], (dialect, upstream, body)
        assert body.get("stream", False) is stream
    # Messages -> OpenAI goes upstream as Responses: system becomes a developer message and
    # LiteLLM adds an include the client never asked for.
    m2o = seen[("messages", "openai", False)]["body_json"]
    assert m2o["input"][0] == {"type": "message", "role": "developer",
                               "content": [{"type": "input_text", "text": "gwl-system-messages"}]}
    assert m2o["include"] == ["reasoning.encrypted_content"]
    # Chat and Responses -> Anthropic: system text moves to a top-level block list.
    assert seen[("chat", "anthropic", True)]["body_json"]["system"] == [{"type": "text", "text": "gwl-system-chat"}]
    r2a = seen[("responses", "anthropic", False)]["body_json"]
    assert r2a["system"] == [{"type": "text", "text": "gwl-system-responses"}] and "max_output_tokens" not in r2a
    # Streaming chat to OpenAI: LiteLLM asks for usage on its own.
    assert seen[("chat", "openai", True)]["body_json"]["stream_options"] == {"include_usage": True}


@pytest.mark.slow
@needs_litellm
async def test_real_litellm_chat_routing_for_messages(mock_server: MockServer, tmp_path: Path) -> None:
    seen = await run_routes("litellm-chat", mock_server, tmp_path, passthrough=False)
    for (dialect, upstream, _stream), up in seen.items():
        expected = "/v1/chat/completions" if (dialect, upstream) == ("messages", "openai") else UPSTREAM_PATH[(dialect, upstream)]
        assert up["path"] == expected, (dialect, upstream)
    for stream in (False, True):
        body = seen[("messages", "openai", stream)]["body_json"]
        assert body["model"] == litellm.UPSTREAM_MODELS["openai"]
        assert body["max_tokens"] == LIMIT["messages"]
        assert body["messages"][0] == {"role": "system", "content": "gwl-system-messages"}


@pytest.mark.slow
@needs_litellm
async def test_real_litellm_passthrough_is_byte_for_byte(mock_server: MockServer, tmp_path: Path) -> None:
    seen = await run_routes("litellm", mock_server, tmp_path, passthrough=True)
    assert {(d, u) for d, u, _ in seen} == {("chat", "openai"), ("responses", "openai"), ("messages", "anthropic")}
    for (dialect, _upstream, _stream), up in seen.items():
        assert up["path"] == DIALECT_PATHS[dialect]  # type: ignore[index]
        assert up["body_text"].encode() == up["sent_bytes"]


def test_installer_is_idempotent_when_installed() -> None:
    script = PROJECT_ROOT / "scripts" / "install-litellm.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    if litellm.LiteLLMLauncher().available() is not None:
        pytest.skip("LiteLLM not installed: idempotency needs an install")
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "GATEWAYLENS_TOOLS": str(litellm.VENV.parent)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"litellm {litellm.VERSION}: already installed in {litellm.VENV}"
